use crate::helpers::*;
use kechuang_platform::error::field_violations;
use kechuang_platform::testing::authed;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::matching::{GetAchievementRequest, RegisterAchievementRequest};
use tonic::Code;

type Breaker = fn(&mut RegisterAchievementRequest);

async fn achievement_rows(svc: &kechuang_platform::testing::TestService) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM achievements")
        .fetch_one(&svc.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_achievement_is_registered_once_per_request_id_and_announced() {
    let svc = start().await;
    let mut client = catalog(&svc).await;
    let mut req = welding();
    req.request_id = "import-7f3a".into();
    let first = client
        .register_achievement(authed(req.clone(), &supplier(&svc)))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .register_achievement(authed(req.clone(), &supplier(&svc)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, again.id);
    assert_eq!(achievement_rows(&svc).await, 1);

    let mut changed = req.clone();
    changed.trl = 7;
    let status = client
        .register_achievement(authed(changed, &supplier(&svc)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&status)[0].0, "request_id");

    let got = client
        .get_achievement(authed(
            GetAchievementRequest {
                achievement_id: first.id.clone(),
            },
            &enterprise(&svc),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.title, req.title);
    assert_eq!(got.keywords, req.keywords);
    let missing = client
        .get_achievement(authed(
            GetAchievementRequest {
                achievement_id: "nope".into(),
            },
            &enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let event = svc
        .wait_for_event("achievement.registered", |e| e.aggregate_id == first.id)
        .await;
    let Some(Payload::AchievementRegistered(a)) = event.payload else {
        panic!("payload")
    };
    assert_eq!((a.institution.as_str(), a.trl), ("华中科技大学", 6));
    assert_eq!(svc.events_of("achievement.registered").await.len(), 1);

    let refused = client
        .register_achievement(authed(welding(), &enterprise(&svc)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    svc.stop().await;
}

#[tokio::test]
async fn each_invalid_field_is_named_and_nothing_is_written() {
    let svc = start().await;
    let mut client = catalog(&svc).await;
    let cases: Vec<(Breaker, &str)> = vec![
        (|r| r.institution = String::new(), "institution"),
        (|r| r.title = " ".into(), "title"),
        (|r| r.r#abstract = "字".repeat(5001), "abstract"),
        (|r| r.keywords = vec![], "keywords"),
        (|r| r.keywords = vec!["".into()], "keywords"),
        (|r| r.industry_chain = "房地产".into(), "industry_chain"),
        (|r| r.trl = 0, "trl"),
        (|r| r.transfer_modes = vec![], "transfer_modes"),
        (|r| r.transfer_modes = vec![0], "transfer_modes"),
        (|r| r.asking_price_fen = -100, "asking_price_fen"),
        (|r| r.region_code = "42010".into(), "region_code"),
    ];
    for (break_it, field) in cases {
        let mut req = welding();
        break_it(&mut req);
        let status = client
            .register_achievement(authed(req, &supplier(&svc)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        let fields: Vec<String> = field_violations(&status).into_iter().map(|f| f.0).collect();
        assert_eq!(fields, [field]);
    }
    assert_eq!(achievement_rows(&svc).await, 0);
    svc.stop().await;
}

#[tokio::test]
async fn an_import_keeps_good_records_and_reports_bad_ones_by_index() {
    let svc = start().await;
    let mut records: Vec<RegisterAchievementRequest> = Vec::new();
    for i in 0..1200 {
        let mut r = unrelated()[i % 3].clone();
        r.title = format!("{} 第{i}号", r.title);
        r.request_id = format!("batch-{i}");
        records.push(r);
    }
    records[2].title.clear();
    records[5].trl = 12;
    records[700].region_code = "abc".into();
    records[700].keywords.clear();
    // The same record twice: a duplicate, not an error.
    records[1100] = records[1099].clone();
    // The same request id for another record: refused.
    records[1101].request_id = records[1098].request_id.clone();
    let summary = catalog(&svc)
        .await
        .import_achievements(authed(futures::stream::iter(records), &supplier(&svc)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.received_count, 1200);
    assert_eq!(summary.duplicate_count, 1);
    assert_eq!(summary.rejected_count, 4);
    assert_eq!(summary.imported_count, 1200 - 5);
    let errors: Vec<(i64, &str)> = summary
        .errors
        .iter()
        .map(|e| (e.index, e.field.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (2, "title"),
            (5, "trl"),
            (700, "keywords"),
            (700, "region_code"),
            (1101, "request_id")
        ]
    );
    assert!(summary.errors.iter().all(|e| !e.reason.is_empty()));
    assert_eq!(achievement_rows(&svc).await, 1195);

    // Importing the first records again finds duplicates.
    let mut again: Vec<RegisterAchievementRequest> = Vec::new();
    for i in 0..10 {
        let mut r = unrelated()[i % 3].clone();
        r.title = format!("{} 第{i}号", r.title);
        r.request_id = format!("batch-{i}");
        again.push(r);
    }
    let summary = catalog(&svc)
        .await
        .import_achievements(authed(futures::stream::iter(again), &supplier(&svc)))
        .await
        .unwrap()
        .into_inner();
    // Records 2 and 5 were refused the first time, so their request ids are still free.
    assert_eq!((summary.imported_count, summary.duplicate_count), (2, 8));
    assert_eq!(summary.rejected_count, 0);
    assert_eq!(achievement_rows(&svc).await, 1197);
    svc.stop().await;
}

#[tokio::test]
async fn concurrent_registrations_with_one_request_id_create_one_achievement() {
    let svc = start().await;
    let mut req = welding();
    req.request_id = "race-1".into();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let (channel, token, req) = (svc.channel().await, supplier(&svc), req.clone());
        calls.push(tokio::spawn(async move {
            kechuang_proto::matching::catalog_service_client::CatalogServiceClient::new(channel)
                .register_achievement(authed(req, &token))
                .await
                .map(|r| r.into_inner().id)
        }));
    }
    let mut ids = Vec::new();
    for c in calls {
        ids.push(c.await.unwrap().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(achievement_rows(&svc).await, 1);
    svc.stop().await;
}
