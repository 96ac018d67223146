use fund_ledger::api;
use kechuang_platform::testing::{TestService, authed, isolated_settings};
use kechuang_platform::{NewEvent, Role, ServiceKind};
use kechuang_proto::events::{
    Envelope, SubsidyApproved, SubsidyDisbursed, SubsidyDisbursementFailed, envelope::Payload,
};
use kechuang_proto::fund::fund_service_client::FundServiceClient;
use kechuang_proto::fund::{CreateFundRequest, Fund, GetFundRequest, TopUpRequest};
use tonic::transport::Channel;

pub const DEFAULT_FUND: &str = "fund-default";

/// The running service, a client, and tokens for the roles the tests use.
pub struct Ledger {
    pub svc: TestService,
    pub client: FundServiceClient<Channel>,
    pub officer: String,
    pub auditor: String,
}

impl Ledger {
    pub async fn start() -> Self {
        let mut settings = isolated_settings();
        // Room for a post that arrives before its reservation to be retried.
        settings.max_deliver = 20;
        let svc =
            TestService::start_with(settings, ServiceKind::FundLedger, fund_ledger::build).await;
        let client = FundServiceClient::new(svc.channel().await);
        let officer = svc.token(Role::FinanceOfficer, "wang.fang", None);
        let auditor = svc.token(Role::Auditor, "zhao.min", None);
        Self {
            svc,
            client,
            officer,
            auditor,
        }
    }

    pub async fn create_fund(&self, name: &str, low_balance_fen: i64) -> Fund {
        self.client
            .clone()
            .create_fund(authed(
                CreateFundRequest {
                    request_id: String::new(),
                    name: name.into(),
                    low_balance_fen,
                },
                &self.officer,
            ))
            .await
            .expect("create fund")
            .into_inner()
    }

    pub async fn top_up(&self, fund_id: &str, amount_fen: i64, reference: &str) -> Fund {
        self.client
            .clone()
            .top_up(authed(
                TopUpRequest {
                    fund_id: fund_id.into(),
                    amount_fen,
                    reference: reference.into(),
                },
                &self.officer,
            ))
            .await
            .expect("top up")
            .into_inner()
    }

    pub async fn fund(&self, fund_id: &str) -> Fund {
        self.client
            .clone()
            .get_fund(authed(
                GetFundRequest {
                    fund_id: fund_id.into(),
                },
                &self.auditor,
            ))
            .await
            .expect("get fund")
            .into_inner()
    }

    /// Reconcile run on the service's database in one snapshot, as the RPC runs it (a killed
    /// process's last COMMIT may land between two of its reads otherwise), asserted clean.
    pub async fn assert_reconciles(&self) {
        let mut tx = self.svc.pool.begin().await.unwrap();
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .unwrap();
        let report = api::reconcile(&mut tx, None).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(report.violations, Vec::<String>::new());
    }

    /// Counts the outbox rows of one event type this service wrote (the relay deletes what it
    /// has published).
    pub async fn emitted(&self, event_type: &str) -> i64 {
        kechuang_platform::testing::outbox_written(&self.svc.pool, event_type).await
    }

    pub async fn transfer_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM transfers")
            .fetch_one(&self.svc.pool)
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.svc.stop().await;
    }
}

pub fn approved(application_id: &str, fund_id: &str, amount_fen: i64) -> NewEvent {
    NewEvent::new(
        application_id,
        3,
        Payload::SubsidyApproved(SubsidyApproved {
            application_id: application_id.into(),
            fund_id: fund_id.into(),
            enterprise_id: "91420100MA4KX1234X".into(),
            contract_id: format!("contract-{application_id}"),
            amount_fen,
            approvers: vec!["li.na".into()],
            ..Default::default()
        }),
    )
}

pub fn disbursed(application_id: &str, fund_id: &str, amount_fen: i64) -> NewEvent {
    NewEvent::new(
        application_id,
        5,
        Payload::SubsidyDisbursed(SubsidyDisbursed {
            application_id: application_id.into(),
            fund_id: fund_id.into(),
            enterprise_id: "91420100MA4KX1234X".into(),
            contract_id: format!("contract-{application_id}"),
            demand_id: format!("demand-{application_id}"),
            amount_fen,
            payout_reference: format!("payout-{application_id}"),
            ..Default::default()
        }),
    )
}

pub fn failed(application_id: &str, fund_id: &str, amount_fen: i64) -> NewEvent {
    NewEvent::new(
        application_id,
        5,
        Payload::SubsidyDisbursementFailed(SubsidyDisbursementFailed {
            application_id: application_id.into(),
            fund_id: fund_id.into(),
            enterprise_id: "91420100MA4KX1234X".into(),
            amount_fen,
            reason: "bank account closed".into(),
            ..Default::default()
        }),
    )
}

/// The application id a fund event is about, if any.
pub fn application_of(e: &Envelope) -> &str {
    match &e.payload {
        Some(Payload::FundReserved(p)) => &p.application_id,
        Some(Payload::FundReservationRejected(p)) => &p.application_id,
        Some(Payload::FundPosted(p)) => &p.application_id,
        Some(Payload::FundVoided(p)) => &p.application_id,
        _ => "",
    }
}

/// Waits for the fund event of `event_type` about `application_id`.
pub async fn wait_for(ledger: &Ledger, event_type: &str, application_id: &str) -> Envelope {
    ledger
        .svc
        .wait_for_event(event_type, |e| application_of(e) == application_id)
        .await
}
