use crate::helpers::*;
use chrono::{Duration, Utc};
use kechuang_platform::events::timestamp;
use kechuang_platform::testing::authed;
use kechuang_proto::demand::{DemandStatus, SubmitDemandRequest};
use kechuang_proto::events::envelope::Payload;
use tonic::Code;

#[tokio::test]
async fn a_submitted_demand_is_stored_with_its_history_and_announced() {
    let mut g = start().await;
    let e = g.enterprise(10).await;
    let request = demand_request(&e, "req-1");
    let demand = g.demand(&e, "req-1").await;
    assert_eq!(status_of(&demand), DemandStatus::Submitted);
    assert_eq!(demand.enterprise_id, e);
    assert_eq!(demand.title, request.title);
    assert_eq!(
        demand.deadline.as_ref().map(|t| t.seconds),
        request.deadline.as_ref().map(|t| t.seconds)
    );
    assert_eq!(demand.history.len(), 1);
    assert_eq!(demand.history[0].to_status, DemandStatus::Submitted as i32);
    assert_eq!(demand.history[0].actor, "li.ming");

    let event = g
        .svc
        .wait_for_event("demand.submitted", |ev| ev.aggregate_id == demand.id)
        .await;
    assert_eq!(event.aggregate_version, 1);
    let Some(Payload::DemandSubmitted(p)) = event.payload else {
        panic!("payload {event:?}")
    };
    let details = p.demand.unwrap();
    assert_eq!(details.demand_id, demand.id);
    assert_eq!(details.description, request.description);
    assert_eq!(details.budget_max_fen, request.budget_max_fen);

    // What GetDemand shows is what SubmitDemand answered.
    assert_eq!(g.get(&demand.id).await, demand);
    g.stop().await;
}

#[tokio::test]
async fn a_repeated_request_returns_the_same_demand_and_another_body_is_refused() {
    let mut g = start().await;
    let e = g.enterprise(11).await;
    let token = g.enterprise_token(&e);
    let request = demand_request(&e, "req-same");
    let first = g
        .client
        .submit_demand(authed(request.clone(), &token))
        .await
        .unwrap()
        .into_inner();
    let second = g
        .client
        .submit_demand(authed(request.clone(), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);

    let other_body = SubmitDemandRequest {
        title: "另一个需求的标题".into(),
        ..request.clone()
    };
    let status = g
        .client
        .submit_demand(authed(other_body, &token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), vec!["request_id"]);

    // Request ids belong to their enterprise: another may reuse one.
    let f = g.enterprise(12).await;
    let theirs = g.demand(&f, "req-same").await;
    assert_ne!(theirs.id, first.id);

    assert_eq!(count(&g.svc.pool, "SELECT count(*) FROM demands").await, 2);
    assert_eq!(outbox_count(&g.svc.pool, "demand.submitted").await, 2);
    g.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_submissions_of_one_request_make_one_demand_and_one_event() {
    let mut g = start().await;
    let e = g.enterprise(13).await;
    let token = g.enterprise_token(&e);
    let request = demand_request(&e, "req-race");
    let calls = (0..50).map(|_| {
        let mut client = g.client.clone();
        let request = authed(request.clone(), &token);
        tokio::spawn(async move { client.submit_demand(request).await })
    });
    let results = futures::future::join_all(calls).await;
    let ids: std::collections::BTreeSet<String> = results
        .into_iter()
        .map(|r| r.unwrap().expect("every call succeeds").into_inner().id)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(count(&g.svc.pool, "SELECT count(*) FROM demands").await, 1);
    assert_eq!(outbox_count(&g.svc.pool, "demand.submitted").await, 1);
    outbox_drained(&g.svc.pool).await;
    assert_eq!(g.svc.events_of("demand.submitted").await.len(), 1);
    g.stop().await;
}

#[tokio::test]
async fn bad_demands_name_their_fields_and_write_nothing() {
    let mut g = start().await;
    let e = g.enterprise(14).await;
    let token = g.enterprise_token(&e);
    let good = demand_request(&e, "");
    type Breaker = fn(&mut SubmitDemandRequest);
    let cases: Vec<(&str, Breaker)> = vec![
        ("title", |r| r.title = "太短".into()),
        ("title", |r| r.title = "很".repeat(101)),
        ("title", |r| r.title = "含有\u{0}控制字符的标题".into()),
        ("description", |r| r.description = "不够长".into()),
        ("description", |r| r.description = "长".repeat(5001)),
        ("industry_chain", |r| r.industry_chain = "房地产".into()),
        ("industry_chain", |r| r.industry_chain = String::new()),
        ("contract_type", |r| r.contract_type = 0),
        ("contract_type", |r| r.contract_type = 42),
        ("budget_min_fen", |r| r.budget_min_fen = -1),
        ("budget_max_fen", |r| {
            r.budget_min_fen = 2_000;
            r.budget_max_fen = 1_000;
        }),
        ("region_code", |r| r.region_code = "42010".into()),
        ("region_code", |r| r.region_code = "000000".into()),
        ("deadline", |r| r.deadline = None),
        ("deadline", |r| {
            r.deadline = Some(timestamp(Utc::now() - Duration::days(1)))
        }),
        ("deadline", |r| {
            r.deadline = Some(prost_types::Timestamp {
                seconds: 1,
                nanos: -5,
            })
        }),
        ("request_id", |r| r.request_id = "r".repeat(201)),
        ("enterprise_id", |r| r.enterprise_id.clear()),
    ];
    for (field, breaker) in cases {
        let mut request = good.clone();
        breaker(&mut request);
        let status = g
            .client
            .submit_demand(authed(request.clone(), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(fields(&status), vec![field], "{field}: {status:?}");
    }
    // Everything wrong at once: every field is named.
    let status = g
        .client
        .submit_demand(authed(
            SubmitDemandRequest {
                enterprise_id: e.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap_err();
    let named = fields(&status);
    for f in [
        "title",
        "description",
        "industry_chain",
        "contract_type",
        "region_code",
        "deadline",
    ] {
        assert!(named.contains(&f.to_string()), "{f} not in {named:?}");
    }
    let pool = &g.svc.pool;
    assert_eq!(count(pool, "SELECT count(*) FROM demands").await, 0);
    assert_eq!(
        count(pool, "SELECT count(*) FROM demand_status_changes").await,
        0
    );
    assert_eq!(outbox_count(pool, "demand.submitted").await, 0);
    g.stop().await;
}

#[tokio::test]
async fn a_demand_for_an_unregistered_enterprise_is_not_found() {
    let mut g = start().await;
    let ghost = credit_code(15);
    let status = g
        .client
        .submit_demand(authed(
            demand_request(&ghost, "r"),
            &g.enterprise_token(&ghost),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    // Neither the demand nor its request id's claim was written.
    assert_eq!(count(&g.svc.pool, "SELECT count(*) FROM demands").await, 0);
    g.stop().await;
}

#[tokio::test]
async fn a_retry_after_the_deadline_passed_still_returns_the_demand() {
    let mut g = start().await;
    let e = g.enterprise(16).await;
    let token = g.enterprise_token(&e);
    let request = SubmitDemandRequest {
        deadline: Some(timestamp(Utc::now() + Duration::milliseconds(1500))),
        ..demand_request(&e, "soon")
    };
    let first = g
        .client
        .submit_demand(authed(request.clone(), &token))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let retry = g
        .client
        .submit_demand(authed(request.clone(), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, first);
    // A new request with that deadline is refused.
    let status = g
        .client
        .submit_demand(authed(
            SubmitDemandRequest {
                request_id: "late".into(),
                ..request
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(&status), vec!["deadline"]);
    g.stop().await;
}

#[tokio::test]
async fn a_burst_of_mixed_submissions_gets_one_right_answer_each() {
    let mut g = start().await;
    let e = g.enterprise(17).await;
    let token = g.enterprise_token(&e);
    let taken = g.demand(&e, "taken").await;
    let ghost = credit_code(18);
    let operator = g.operator.clone();
    let mut calls = Vec::new();
    for i in 0..40 {
        let (request, token) = match i % 8 {
            // Reuses a request id with another body.
            0 => (
                SubmitDemandRequest {
                    title: format!("另一个标题之{i}"),
                    ..demand_request(&e, "taken")
                },
                token.clone(),
            ),
            // An enterprise that never registered.
            1 => (demand_request(&ghost, &format!("g-{i}")), operator.clone()),
            _ => (demand_request(&e, &format!("ok-{i}")), token.clone()),
        };
        let mut client = g.client.clone();
        calls.push(tokio::spawn(async move {
            (i, client.submit_demand(authed(request, &token)).await)
        }));
    }
    let mut created = std::collections::BTreeSet::new();
    for call in calls {
        let (i, answer) = call.await.unwrap();
        match i % 8 {
            0 => {
                let status = answer.unwrap_err();
                assert_eq!(fields(&status), vec!["request_id"], "{status:?}");
            }
            1 => assert_eq!(answer.unwrap_err().code(), Code::NotFound),
            _ => {
                created.insert(answer.expect("a good submission").into_inner().id);
            }
        }
    }
    assert_eq!(created.len(), 30);
    assert!(!created.contains(&taken.id));
    let pool = &g.svc.pool;
    assert_eq!(count(pool, "SELECT count(*) FROM demands").await, 31);
    // Each records its own submission; nothing has moved since.
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM demands WHERE submitted_by <> ''"
        )
        .await,
        31
    );
    assert_eq!(
        count(pool, "SELECT count(*) FROM demand_status_changes").await,
        0
    );
    assert_eq!(outbox_count(pool, "demand.submitted").await, 31);
    g.stop().await;
}
