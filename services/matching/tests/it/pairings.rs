use crate::helpers::*;
use futures::StreamExt;
use kechuang_platform::Role;
use kechuang_platform::testing::authed;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::matching::{
    GetAchievementRequest, ListPairingsRequest, PairingStatus, WatchPairingsRequest,
};
use std::time::Duration;
use tonic::Code;

async fn seed(svc: &kechuang_platform::testing::TestService) -> String {
    for a in unrelated() {
        register(svc, a).await;
    }
    register(svc, welding()).await.id
}

#[tokio::test]
async fn a_verified_demand_gets_scored_explained_pairings_over_nats() {
    let svc = start().await;
    let welding_id = seed(&svc).await;
    let cause = svc
        .publish(verified(welding_demand("d-1", ENTERPRISE)))
        .await;
    let event = svc
        .wait_for_event(
            "pairing.proposed",
            |e| matches!(&e.payload, Some(Payload::PairingProposed(p)) if p.demand_id == "d-1"),
        )
        .await;
    assert_eq!(event.causation_id, cause.event_id);
    assert_eq!(event.correlation_id, cause.correlation_id);
    processed(&svc, &cause).await;
    let pairings = list(&svc, "d-1").await;
    assert!(!pairings.is_empty() && pairings.len() <= matching::DEFAULT_TOP_K);
    let best = &pairings[0];
    assert_eq!(
        best.achievement_id, welding_id,
        "the welding achievement ranks first"
    );
    assert_eq!(best.rank, 1);
    assert_eq!(best.enterprise_id, ENTERPRISE);
    assert_eq!(best.status, PairingStatus::Proposed as i32);
    assert!(!best.reasons.is_empty());
    let ranks: Vec<i32> = pairings.iter().map(|p| p.rank).collect();
    assert_eq!(ranks, (1..=pairings.len() as i32).collect::<Vec<_>>());
    assert!(pairings.windows(2).all(|w| w[0].score >= w[1].score));
    // The rice-breeding achievement shares no problem with a welding line.
    let mut titles = Vec::new();
    for p in &pairings {
        let a = catalog(&svc)
            .await
            .get_achievement(authed(
                GetAchievementRequest {
                    achievement_id: p.achievement_id.clone(),
                },
                &enterprise(&svc),
            ))
            .await
            .unwrap()
            .into_inner();
        titles.push(a.title);
    }
    assert!(titles.iter().all(|t| !t.contains("水稻")), "{titles:?}");
    // Paging one at a time gives the same list; another enterprise sees none of it.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListPairingsRequest {
            demand_id: "d-1".into(),
            page_size: 1,
            page_token: token.clone(),
        };
        let page = matching(&svc)
            .await
            .list_pairings(authed(request, &enterprise(&svc)))
            .await
            .unwrap()
            .into_inner();
        paged.extend(page.pairings);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, pairings);
    let request = ListPairingsRequest {
        demand_id: "d-1".into(),
        page_size: 0,
        page_token: String::new(),
    };
    let stranger = matching(&svc)
        .await
        .list_pairings(authed(request, &other_enterprise(&svc)))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);
    // Every stored pairing was announced, once.
    kechuang_platform::testing::eventually(
        Duration::from_secs(20),
        "every pairing announced",
        || async { proposed_for(&svc, "d-1").await.len() == pairings.len() },
    )
    .await;
    svc.stop().await;
}

#[tokio::test]
async fn replays_of_a_verification_create_no_second_set() {
    let svc = start().await;
    seed(&svc).await;
    let cause = svc
        .publish(verified(welding_demand("d-1", ENTERPRISE)))
        .await;
    processed(&svc, &cause).await;
    let first = pairing_count(&svc, "d-1").await;
    assert!(first > 0);
    // The same envelope again (past the bus's de-duplication), and a second verification event.
    svc.publish_envelope(&cause).await;
    let second = svc
        .publish(verified(welding_demand("d-1", ENTERPRISE)))
        .await;
    processed(&svc, &second).await;
    // A marker behind them on the same consumer: once it is processed, so are they.
    let marker = svc
        .publish(verified(welding_demand("d-2", ENTERPRISE)))
        .await;
    processed(&svc, &marker).await;
    assert_eq!(pairing_count(&svc, "d-1").await, first);
    kechuang_platform::testing::eventually(Duration::from_secs(20), "d-2 announced", || async {
        !proposed_for(&svc, "d-2").await.is_empty()
    })
    .await;
    assert_eq!(proposed_for(&svc, "d-1").await.len() as i64, first);
    svc.stop().await;
}

#[tokio::test]
async fn a_better_achievement_registered_later_is_pushed_and_ranked() {
    // k = 1: a late achievement must beat the single pairing.
    let svc = start_with_k(1).await;
    let weak = register(
        &svc,
        achievement(
            "钢结构焊接变形控制",
            "针对钢结构焊接产线的焊接变形问题，提出反变形工装与焊接顺序优化方法，返修率降低。",
            &["焊接变形", "钢结构"],
            "高端装备",
        ),
    )
    .await;
    let cause = svc
        .publish(verified(welding_demand("d-1", ENTERPRISE)))
        .await;
    processed(&svc, &cause).await;
    let before = list(&svc, "d-1").await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].achievement_id, weak.id);

    let strong = register(&svc, welding()).await;
    let pushed = svc
        .wait_for_event("pairing.proposed", |e| {
            matches!(&e.payload, Some(Payload::PairingProposed(p)) if p.achievement_id == strong.id)
        })
        .await;
    let Some(Payload::PairingProposed(p)) = pushed.payload else {
        panic!()
    };
    assert_eq!((p.demand_id.as_str(), p.rank), ("d-1", 1));
    let after = list(&svc, "d-1").await;
    let order: Vec<(&str, i32)> = after
        .iter()
        .map(|p| (p.achievement_id.as_str(), p.rank))
        .collect();
    assert_eq!(order, [(strong.id.as_str(), 1), (weak.id.as_str(), 2)]);

    // Unrelated achievements do not beat the first pairing.
    for a in unrelated() {
        register(&svc, a).await;
    }
    assert_eq!(pairing_count(&svc, "d-1").await, 2);
    svc.stop().await;
}

#[tokio::test]
async fn a_withdrawn_demand_gets_no_more_pairings() {
    let svc = start().await;
    // Withdrawn before its verification arrives (out of order): never paired.
    let w = svc.publish(withdrawn("d-early", ENTERPRISE)).await;
    processed(&svc, &w).await;
    seed(&svc).await;
    let v = svc
        .publish(verified(welding_demand("d-early", ENTERPRISE)))
        .await;
    processed(&svc, &v).await;
    assert_eq!(pairing_count(&svc, "d-early").await, 0);

    // Verified, paired, then withdrawn: its proposals expire and new achievements pass it by.
    let v = svc
        .publish(verified(welding_demand("d-1", ENTERPRISE)))
        .await;
    processed(&svc, &v).await;
    let paired = pairing_count(&svc, "d-1").await;
    assert!(paired > 0);
    let w = svc.publish(withdrawn("d-1", ENTERPRISE)).await;
    processed(&svc, &w).await;
    assert!(
        list(&svc, "d-1")
            .await
            .iter()
            .all(|p| p.status == PairingStatus::Expired as i32)
    );
    // Whether or not this replica's engine has dropped the demand yet, the push checks it.
    let mut better = welding();
    better.title = "焊缝经常出现气孔返修率高的焊接工艺改进".into();
    register(&svc, better).await;
    assert_eq!(pairing_count(&svc, "d-1").await, paired);
    assert_eq!(pairing_count(&svc, "d-early").await, 0);
    svc.stop().await;
}

#[tokio::test]
async fn watchers_receive_existing_then_pushed_pairings_of_their_own_demands() {
    let svc = start().await;
    seed(&svc).await;
    let mut client = matching(&svc).await;
    let refused = client
        .watch_pairings(authed(
            WatchPairingsRequest {
                demand_id: String::new(),
                enterprise_id: ENTERPRISE.into(),
            },
            &other_enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let empty = client
        .watch_pairings(authed(WatchPairingsRequest::default(), &enterprise(&svc)))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);

    let v = svc
        .publish(verified(welding_demand("d-1", ENTERPRISE)))
        .await;
    processed(&svc, &v).await;
    let existing = pairing_count(&svc, "d-1").await as usize;
    let mut stream = client
        .watch_pairings(authed(
            WatchPairingsRequest {
                demand_id: String::new(),
                enterprise_id: ENTERPRISE.into(),
            },
            &enterprise(&svc),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    for _ in 0..existing {
        let p = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("an existing pairing")
            .unwrap()
            .unwrap();
        got.push(p);
    }
    assert!(got.iter().all(|p| p.demand_id == "d-1"));
    // Another enterprise's demand is not streamed; this enterprise's next demand is.
    let other = svc
        .publish(verified(welding_demand("d-other", OTHER_ENTERPRISE)))
        .await;
    svc.publish(verified(welding_demand("d-2", ENTERPRISE)))
        .await;
    let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("a pushed pairing")
        .unwrap()
        .unwrap();
    assert_eq!(next.demand_id, "d-2");
    assert_eq!(next.enterprise_id, ENTERPRISE);
    drop(stream);

    // A tech manager may watch any demand (verified demands are paired several at a time, so
    // d-other may be stored after d-2: wait for it).
    processed(&svc, &other).await;
    let mut by_demand = client
        .watch_pairings(authed(
            WatchPairingsRequest {
                demand_id: "d-other".into(),
                enterprise_id: String::new(),
            },
            &svc.token(Role::TechManager, "tm", None),
        ))
        .await
        .unwrap()
        .into_inner();
    let p = tokio::time::timeout(Duration::from_secs(20), by_demand.next())
        .await
        .expect("a pairing of d-other")
        .unwrap()
        .unwrap();
    assert_eq!(p.enterprise_id, OTHER_ENTERPRISE);
    drop(by_demand);
    svc.stop().await;
}

#[tokio::test]
async fn replicas_rebuild_the_index_and_stream_each_others_pairings() {
    let a = start().await;
    let welding_id = seed(&a).await;
    // A second replica on the same database and stream: its index is rebuilt at start.
    let b = kechuang_platform::testing::TestService::start_with(
        a.settings.clone(),
        kechuang_platform::ServiceKind::Matching,
        matching::build,
    )
    .await;
    let (mut on_a, mut on_b) = (watch_enterprise(&a).await, watch_enterprise(&b).await);
    // Both replicas consume the same durable consumers: each demand is handled by one of
    // them, and either must pair the welding achievement first.
    let demands: Vec<String> = (0..6).map(|i| format!("d-{i}")).collect();
    for d in &demands {
        a.publish(verified(welding_demand(d, ENTERPRISE))).await;
    }
    for d in &demands {
        kechuang_platform::testing::eventually(Duration::from_secs(20), "pairings", || async {
            pairing_count(&a, d).await > 0
        })
        .await;
        let best = list(&b, d).await;
        assert_eq!(best[0].achievement_id, welding_id, "{d}");
    }
    // Each replica's watcher saw every demand's pairings, whichever replica made them.
    let total = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pairings")
        .fetch_one(&a.pool)
        .await
        .unwrap() as usize;
    for stream in [&mut on_a, &mut on_b] {
        let mut seen = std::collections::HashSet::new();
        while seen.len() < total {
            let p = tokio::time::timeout(Duration::from_secs(20), stream.next())
                .await
                .expect("a pairing")
                .unwrap()
                .unwrap();
            seen.insert(p.id);
        }
    }
    drop((on_a, on_b));
    b.stop().await;
    a.stop().await;
}

async fn watch_enterprise(
    svc: &kechuang_platform::testing::TestService,
) -> tonic::Streaming<kechuang_proto::matching::Pairing> {
    let request = WatchPairingsRequest {
        demand_id: String::new(),
        enterprise_id: ENTERPRISE.into(),
    };
    matching(svc)
        .await
        .watch_pairings(authed(request, &enterprise(svc)))
        .await
        .unwrap()
        .into_inner()
}
