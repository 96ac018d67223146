use chrono::{Duration, Utc};
use kechuang_platform::error::field_violations;
use kechuang_platform::events::timestamp;
use kechuang_platform::testing::{TestService, authed, eventually};
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::common::ContractType;
use kechuang_proto::demand::demand_service_client::DemandServiceClient;
use kechuang_proto::demand::{
    Demand, DemandStatus, GetDemandRequest, RegisterEnterpriseRequest, SubmitDemandRequest,
    VerifyDemandRequest,
};
use kechuang_vocabulary::credit_code_check_char;
use sqlx::PgPool;
use tonic::transport::Channel;

pub type Client = DemandServiceClient<Channel>;

pub struct Ground {
    pub svc: TestService,
    pub client: Client,
    /// The `service` role: may do anything.
    pub operator: String,
    pub manager: String,
    pub auditor: String,
}

pub async fn start() -> Ground {
    start_with(kechuang_platform::testing::isolated_settings()).await
}

pub async fn start_with(settings: kechuang_platform::Settings) -> Ground {
    let svc =
        TestService::start_with(settings, ServiceKind::DemandIntake, demand_intake::build).await;
    let client = DemandServiceClient::new(svc.channel().await);
    Ground {
        operator: svc.token(Role::Service, "demo-driver", None),
        manager: svc.token(Role::TechManager, "zhang.wei", None),
        auditor: svc.token(Role::Auditor, "audit.liu", None),
        client,
        svc,
    }
}

impl Ground {
    pub fn enterprise_token(&self, enterprise_id: &str) -> String {
        self.svc
            .token(Role::Enterprise, "li.ming", Some(enterprise_id))
    }

    /// Registers enterprise number `n` (by the operator) and returns its id.
    pub async fn enterprise(&mut self, n: u32) -> String {
        let token = self.operator.clone();
        self.client
            .register_enterprise(authed(enterprise_request(n), &token))
            .await
            .expect("register")
            .into_inner()
            .id
    }

    /// Submits a good demand for `enterprise_id` as that enterprise.
    pub async fn demand(&mut self, enterprise_id: &str, request_id: &str) -> Demand {
        let token = self.enterprise_token(enterprise_id);
        self.client
            .submit_demand(authed(demand_request(enterprise_id, request_id), &token))
            .await
            .expect("submit")
            .into_inner()
    }

    /// A submitted demand verified by the technology manager.
    pub async fn verified_demand(&mut self, enterprise_id: &str, request_id: &str) -> Demand {
        let demand = self.demand(enterprise_id, request_id).await;
        let token = self.manager.clone();
        self.client
            .verify_demand(authed(
                VerifyDemandRequest {
                    demand_id: demand.id,
                    approve: true,
                    note: "需求清晰，可进入匹配".into(),
                },
                &token,
            ))
            .await
            .expect("verify")
            .into_inner()
    }

    pub async fn get(&mut self, demand_id: &str) -> Demand {
        let token = self.auditor.clone();
        self.client
            .get_demand(authed(
                GetDemandRequest {
                    demand_id: demand_id.into(),
                },
                &token,
            ))
            .await
            .expect("get")
            .into_inner()
    }

    /// Waits until the demand's status is `status`.
    pub async fn wait_for_status(&mut self, demand_id: &str, status: DemandStatus) -> Demand {
        let pool = self.svc.pool.clone();
        let id = uuid::Uuid::parse_str(demand_id).unwrap();
        eventually(
            std::time::Duration::from_secs(20),
            &format!("demand {demand_id} to become {status:?}"),
            || {
                let pool = pool.clone();
                async move {
                    let now: String =
                        sqlx::query_scalar("SELECT status FROM demands WHERE id = $1")
                            .bind(id)
                            .fetch_one(&pool)
                            .await
                            .unwrap();
                    DemandStatus::from_str_name(&format!("DEMAND_STATUS_{}", now.to_uppercase()))
                        == Some(status)
                }
            },
        )
        .await;
        self.get(demand_id).await
    }

    pub async fn stop(self) {
        self.svc.stop().await;
    }
}

/// A valid credit code registered in Wuhan, distinct for each `n`.
pub fn credit_code(n: u32) -> String {
    let body = format!("91420100{n:09}");
    let check = credit_code_check_char(&body).unwrap();
    format!("{body}{check}")
}

pub fn enterprise_request(n: u32) -> RegisterEnterpriseRequest {
    RegisterEnterpriseRequest {
        name: format!("武汉光谷第{n}激光装备有限公司"),
        credit_code: credit_code(n),
        region_code: "420100".into(),
        industry_chain: "高端装备".into(),
    }
}

pub fn demand_request(enterprise_id: &str, request_id: &str) -> SubmitDemandRequest {
    SubmitDemandRequest {
        request_id: request_id.into(),
        enterprise_id: enterprise_id.into(),
        title: "焊缝气孔导致返修率高".into(),
        description: "厚板焊接时焊缝经常出现气孔，返修率高达百分之八，希望找到能稳定焊接质量的工艺"
            .into(),
        industry_chain: "高端装备".into(),
        contract_type: ContractType::Development as i32,
        budget_min_fen: 10_000_000,
        budget_max_fen: 50_000_000,
        region_code: "420100".into(),
        deadline: Some(timestamp(Utc::now() + Duration::days(90))),
    }
}

/// The fields a status names as violated.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    field_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

pub async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Outbox rows written for one event type (the relay deletes what it has published).
pub async fn outbox_count(pool: &PgPool, event_type: &str) -> i64 {
    kechuang_platform::testing::outbox_written(pool, event_type).await
}

/// Waits until the relay has published everything committed so far.
pub async fn outbox_drained(pool: &PgPool) {
    let pool = pool.clone();
    eventually(
        std::time::Duration::from_secs(20),
        "the outbox to drain",
        || {
            let pool = pool.clone();
            async move { count(&pool, "SELECT count(*) FROM outbox").await == 0 }
        },
    )
    .await;
}

pub fn status_of(d: &Demand) -> DemandStatus {
    DemandStatus::try_from(d.status).unwrap()
}
