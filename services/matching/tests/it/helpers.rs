use kechuang_platform::testing::{TestService, authed};
use kechuang_platform::{NewEvent, Role, ServiceKind};
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::events::{
    DemandDetails, DemandVerified, DemandWithdrawn, Envelope, envelope::Payload,
};
use kechuang_proto::matching::catalog_service_client::CatalogServiceClient;
use kechuang_proto::matching::matching_service_client::MatchingServiceClient;
use kechuang_proto::matching::{
    Achievement, ListPairingsRequest, Pairing, RegisterAchievementRequest,
};
use matching::MatchingOptions;
use std::time::Duration;
use tonic::transport::Channel;

pub const ENTERPRISE: &str = "91420100MA4KX0001A";
pub const OTHER_ENTERPRISE: &str = "91420100MA4KX0002B";

pub async fn start() -> TestService {
    TestService::start(ServiceKind::Matching, matching::build).await
}

pub async fn start_with_k(k: usize) -> TestService {
    TestService::start(ServiceKind::Matching, move |config| {
        let options = MatchingOptions {
            top_k: k,
            ..MatchingOptions::from_config(&config)
        };
        matching::build_with(config, options)
    })
    .await
}

pub async fn catalog(svc: &TestService) -> CatalogServiceClient<Channel> {
    CatalogServiceClient::new(svc.channel().await)
}

pub async fn matching(svc: &TestService) -> MatchingServiceClient<Channel> {
    MatchingServiceClient::new(svc.channel().await)
}

pub fn supplier(svc: &TestService) -> String {
    svc.token(Role::Supplier, "zhang.san", None)
}

pub fn enterprise(svc: &TestService) -> String {
    svc.token(Role::Enterprise, "li.si", Some(ENTERPRISE))
}

pub fn other_enterprise(svc: &TestService) -> String {
    svc.token(Role::Enterprise, "wang.wu", Some(OTHER_ENTERPRISE))
}

pub fn achievement(
    title: &str,
    abstract_text: &str,
    keywords: &[&str],
    chain: &str,
) -> RegisterAchievementRequest {
    RegisterAchievementRequest {
        request_id: String::new(),
        institution: "华中科技大学".into(),
        title: title.into(),
        r#abstract: abstract_text.into(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        industry_chain: chain.into(),
        trl: 6,
        transfer_modes: vec![
            TransferMode::License as i32,
            TransferMode::Assignment as i32,
        ],
        asking_price_fen: 30_000_000,
        region_code: "420100".into(),
        validate_only: false,
    }
}

/// The achievement that cures the welding demand below.
pub fn welding() -> RegisterAchievementRequest {
    achievement(
        "焊缝气孔在线抑制的激光-电弧复合焊接工艺",
        "针对焊缝经常出现气孔、返修率高的问题，采用激光-电弧复合焊接，基于熔池视觉对焊接工艺参数自适应调控，焊缝气孔率降低80%。",
        &["焊缝气孔", "激光-电弧复合焊接", "焊接工艺"],
        "高端装备",
    )
}

/// Achievements about other problems.
pub fn unrelated() -> Vec<RegisterAchievementRequest> {
    vec![
        achievement(
            "分布式光纤振动传感管道防挖掘预警系统",
            "利用分布式光纤振动传感识别管道沿线的机械挖掘与人工偷挖，定位精度10米。",
            &["分布式光纤", "振动传感", "管道安全"],
            "光电子信息",
        ),
        achievement(
            "水稻抗倒伏高产品种选育",
            "通过分子标记辅助选择培育抗倒伏、高产的水稻新品种，适合长江中游种植。",
            &["水稻", "育种", "抗倒伏"],
            "现代农业与食品",
        ),
        achievement(
            "锂电池正极材料低成本制备",
            "采用共沉淀法制备高镍三元正极材料，循环寿命提升，成本降低。",
            &["锂电池", "正极材料"],
            "新材料",
        ),
    ]
}

pub fn welding_demand(demand_id: &str, enterprise_id: &str) -> DemandDetails {
    DemandDetails {
        demand_id: demand_id.into(),
        enterprise_id: enterprise_id.into(),
        title: "焊缝经常出现气孔，返修率高".into(),
        description:
            "我们的钢结构焊接产线焊缝经常出现气孔，返修率高，希望引进焊接工艺改进技术降低气孔。"
                .into(),
        industry_chain: "高端装备".into(),
        contract_type: ContractType::Transfer as i32,
        budget_min_fen: 10_000_000,
        budget_max_fen: 50_000_000,
        region_code: "420100".into(),
        deadline: None,
    }
}

pub fn verified(demand: DemandDetails) -> NewEvent {
    let id = demand.demand_id.clone();
    NewEvent::new(
        id,
        2,
        Payload::DemandVerified(DemandVerified {
            demand: Some(demand),
            verified_by: "tm.zhao".into(),
            note: String::new(),
        }),
    )
}

pub fn withdrawn(demand_id: &str, enterprise_id: &str) -> NewEvent {
    NewEvent::new(
        demand_id,
        3,
        Payload::DemandWithdrawn(DemandWithdrawn {
            demand_id: demand_id.into(),
            enterprise_id: enterprise_id.into(),
            reason: "不再需要".into(),
        }),
    )
}

pub async fn register(svc: &TestService, req: RegisterAchievementRequest) -> Achievement {
    catalog(svc)
        .await
        .register_achievement(authed(req, &supplier(svc)))
        .await
        .expect("register")
        .into_inner()
}

pub async fn list(svc: &TestService, demand_id: &str) -> Vec<Pairing> {
    matching(svc)
        .await
        .list_pairings(authed(
            ListPairingsRequest {
                demand_id: demand_id.into(),
                page_size: 0,
                page_token: String::new(),
            },
            &svc.token(Role::Auditor, "audit", None),
        ))
        .await
        .expect("list pairings")
        .into_inner()
        .pairings
}

/// The `kc.pairing.proposed` events of a demand in the stream.
pub async fn proposed_for(svc: &TestService, demand_id: &str) -> Vec<Envelope> {
    svc.events_of("pairing.proposed")
        .await
        .into_iter()
        .filter(
            |e| matches!(&e.payload, Some(Payload::PairingProposed(p)) if p.demand_id == demand_id),
        )
        .collect()
}

pub async fn pairing_count(svc: &TestService, demand_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pairings WHERE demand_id = $1")
        .bind(demand_id)
        .fetch_one(&svc.pool)
        .await
        .expect("count")
}

/// Waits until the service processed `event` (its id is in `processed_events`).
pub async fn processed(svc: &TestService, event: &Envelope) {
    let id = uuid::Uuid::parse_str(&event.event_id).expect("uuid");
    kechuang_platform::testing::eventually(Duration::from_secs(20), "the event processed", || {
        let pool = svc.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM processed_events WHERE event_id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .map(|n| n > 0)
            .unwrap_or(false)
        }
    })
    .await;
}
