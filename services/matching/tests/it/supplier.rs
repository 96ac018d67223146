//! The catalog as suppliers read it: ListAchievements answers a supplier only their own, in
//! pages; validate_only checks without writing (alone and in an import); ListMatchingDemands
//! lists the open demands paired with my achievements, with reasons, and drops a demand once
//! it is withdrawn; another supplier sees none of them.

use crate::helpers::*;
use kechuang_platform::Role;
use kechuang_platform::error::field_violations;
use kechuang_platform::testing::{TestService, authed};
use kechuang_proto::matching::{
    ListAchievementsRequest, ListMatchingDemandsRequest, MatchingDemand, RegisterAchievementRequest,
};
use tonic::Code;

async fn mine(svc: &TestService, token: &str, page_token: &str) -> (Vec<String>, String) {
    let page = catalog(svc)
        .await
        .list_achievements(authed(
            ListAchievementsRequest {
                page_size: 2,
                page_token: page_token.into(),
                registered_by: String::new(),
                achievement_id: String::new(),
            },
            token,
        ))
        .await
        .expect("list achievements")
        .into_inner();
    (
        page.achievements.into_iter().map(|a| a.id).collect(),
        page.next_page_token,
    )
}

async fn matches(svc: &TestService, token: &str) -> Vec<MatchingDemand> {
    catalog(svc)
        .await
        .list_matching_demands(authed(ListMatchingDemandsRequest::default(), token))
        .await
        .expect("list matching demands")
        .into_inner()
        .demands
}

#[tokio::test]
async fn a_supplier_lists_their_own_achievements_and_the_demands_paired_with_them() {
    let svc = start().await;
    let other = svc.token(Role::Supplier, "another.supplier", None);
    let welding_id = register(&svc, welding()).await.id;
    let mut ids = vec![welding_id.clone()];
    for x in unrelated().into_iter().take(2) {
        ids.push(register(&svc, x).await.id);
    }
    // Someone else's achievement is never in my list.
    let theirs = catalog(&svc)
        .await
        .register_achievement(authed(
            RegisterAchievementRequest {
                request_id: "theirs-1".into(),
                ..unrelated().remove(2)
            },
            &other,
        ))
        .await
        .unwrap()
        .into_inner()
        .id;
    let (first, next) = mine(&svc, &supplier(&svc), "").await;
    assert_eq!(first, [ids[2].clone(), ids[1].clone()], "newest first");
    let (second, last) = mine(&svc, &supplier(&svc), &next).await;
    assert_eq!((second, last.as_str()), (vec![ids[0].clone()], ""));
    assert_eq!(
        mine(&svc, &other, "").await.0,
        std::slice::from_ref(&theirs)
    );
    // Asking for one by id answers it only to its owner.
    let one = |token: String| {
        let svc = &svc;
        let id = welding_id.clone();
        async move {
            catalog(svc)
                .await
                .list_achievements(authed(
                    ListAchievementsRequest {
                        achievement_id: id,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner()
                .achievements
                .len()
        }
    };
    assert_eq!(
        (one(supplier(&svc)).await, one(other.clone()).await),
        (1, 0)
    );

    // validate_only: a good record is answered without an id, a bad one with its fields, and
    // nothing is written either way.
    let check = |req: RegisterAchievementRequest| RegisterAchievementRequest {
        validate_only: true,
        request_id: String::new(),
        ..req
    };
    let ok = catalog(&svc)
        .await
        .register_achievement(authed(check(welding()), &supplier(&svc)))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.id.is_empty() && ok.title == welding().title);
    let bad = catalog(&svc)
        .await
        .register_achievement(authed(
            check(RegisterAchievementRequest {
                trl: 12,
                ..welding()
            }),
            &supplier(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&bad)[0].0, "trl");
    let records = vec![
        check(welding()),
        check(RegisterAchievementRequest {
            region_code: "42".into(),
            ..welding()
        }),
    ];
    let summary = catalog(&svc)
        .await
        .import_achievements(authed(futures::stream::iter(records), &supplier(&svc)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.received_count, summary.imported_count), (2, 0));
    assert_eq!(
        (summary.errors[0].index, summary.errors[0].field.as_str()),
        (1, "region_code")
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM achievements")
        .fetch_one(&svc.pool)
        .await
        .unwrap();
    assert_eq!(count, 4, "validate_only wrote nothing");

    // Reverse matching: the verified welding demand, with the pairing's reasons.
    let cause = svc
        .publish(verified(welding_demand("d-s1", ENTERPRISE)))
        .await;
    processed(&svc, &cause).await;
    let found = matches(&svc, &supplier(&svc)).await;
    let on_welding: Vec<_> = found
        .iter()
        .filter(|m| m.pairing.as_ref().unwrap().achievement_id == welding_id)
        .collect();
    assert_eq!(on_welding.len(), 1, "{found:?}");
    assert_eq!(on_welding[0].pairing.as_ref().unwrap().demand_id, "d-s1");
    assert!(
        !on_welding[0].title.is_empty()
            && !on_welding[0].pairing.as_ref().unwrap().reasons.is_empty()
    );
    assert!(
        matches(&svc, &other)
            .await
            .iter()
            .all(|m| m.pairing.as_ref().unwrap().achievement_id == theirs)
    );
    // A withdrawn demand is no longer open.
    let cause = svc.publish(withdrawn("d-s1", ENTERPRISE)).await;
    processed(&svc, &cause).await;
    assert!(matches(&svc, &supplier(&svc)).await.is_empty());
    // Enterprises do not read the catalog's reverse matches.
    let refused = catalog(&svc)
        .await
        .list_matching_demands(authed(
            ListMatchingDemandsRequest::default(),
            &enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    svc.stop().await;
}
