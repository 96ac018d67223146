use kechuang_platform::events::timestamp;
use kechuang_platform::testing::{TestService, authed, eventually};
use kechuang_platform::{NewEvent, Role, ServiceKind};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::{ContractSigned, Envelope, envelope::Payload};
use kechuang_proto::subsidy::policy_service_client::PolicyServiceClient;
use kechuang_proto::subsidy::registration_service_client::RegistrationServiceClient;
use kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient;
use kechuang_proto::subsidy::{
    ApprovePolicyRequest, CertifyContractRequest, CreatePolicyRequest, GetApplicationRequest,
    Payment, Policy, PolicyTier, RecordPaymentRequest, RefuseRegistrationRequest, Registration,
    SubsidyApplication,
};
use std::time::Duration;
use tonic::transport::Channel;

pub const YUAN: i64 = 100;

pub async fn start() -> TestService {
    TestService::start(ServiceKind::Subsidy, subsidy::build).await
}

pub async fn client(svc: &TestService) -> SubsidyServiceClient<Channel> {
    SubsidyServiceClient::new(svc.channel().await)
}

/// Signs a contract (10 days ago) through the bus, waits until the service has recorded it, and
/// has a registrar certify it at its whole amount and declared type (so its payments are
/// judged on their whole amount, as before registration existed).
pub async fn sign(
    svc: &TestService,
    enterprise: &str,
    region: &str,
    t: ContractType,
    amount_fen: i64,
) -> String {
    let id = sign_unregistered(svc, enterprise, region, t, amount_fen).await;
    certify(svc, &id, t, amount_fen).await.unwrap();
    id
}

/// [`sign`] without the registrar: the contract waits for its registration.
pub async fn sign_unregistered(
    svc: &TestService,
    enterprise: &str,
    region: &str,
    t: ContractType,
    amount_fen: i64,
) -> String {
    let signed_at = chrono::Utc::now() - chrono::Duration::days(10);
    sign_at(svc, enterprise, region, t, amount_fen, signed_at).await
}

pub async fn registrations(svc: &TestService) -> RegistrationServiceClient<Channel> {
    RegistrationServiceClient::new(svc.channel().await)
}

/// A registrar certifies the contract at `certified_fen` of technical amount.
pub async fn certify(
    svc: &TestService,
    contract_id: &str,
    t: ContractType,
    certified_fen: i64,
) -> Result<Registration, tonic::Status> {
    let token = svc.token(Role::Registrar, "registrar-wang", None);
    registrations(svc)
        .await
        .certify_contract(authed(
            CertifyContractRequest {
                contract_id: contract_id.into(),
                registration_no: format!("REG-{}", uuid::Uuid::new_v4().simple()),
                contract_type: t as i32,
                certified_amount_fen: certified_fen,
                note: String::new(),
            },
            &token,
        ))
        .await
        .map(|r| r.into_inner())
}

/// A registrar refuses the contract's registration.
pub async fn refuse(
    svc: &TestService,
    contract_id: &str,
    reason: &str,
) -> Result<Registration, tonic::Status> {
    let token = svc.token(Role::Registrar, "registrar-wang", None);
    registrations(svc)
        .await
        .refuse_registration(authed(
            RefuseRegistrationRequest {
                contract_id: contract_id.into(),
                reason: reason.into(),
            },
            &token,
        ))
        .await
        .map(|r| r.into_inner())
}

/// [`sign`], signed at `signed_at`, not registered.
pub async fn sign_at(
    svc: &TestService,
    enterprise: &str,
    region: &str,
    t: ContractType,
    amount_fen: i64,
    signed_at: chrono::DateTime<chrono::Utc>,
) -> String {
    let contract_id = format!("c-{}", uuid::Uuid::new_v4().simple());
    publish_contract(
        svc,
        contract_signed(&contract_id, enterprise, region, t, amount_fen, signed_at),
    )
    .await;
    contract_id
}

/// The event announcing a contract signed at `signed_at`, brokered by nobody.
pub fn contract_signed(
    contract_id: &str,
    enterprise: &str,
    region: &str,
    t: ContractType,
    amount_fen: i64,
    signed_at: chrono::DateTime<chrono::Utc>,
) -> ContractSigned {
    ContractSigned {
        contract_id: contract_id.into(),
        pairing_id: "p-1".into(),
        demand_id: format!("d-{contract_id}"),
        achievement_id: "a-1".into(),
        enterprise_id: enterprise.into(),
        supplier: "华中科技大学".into(),
        contract_no: format!("HT-{contract_id}"),
        contract_type: t as i32,
        amount_fen,
        signed_at: Some(timestamp(signed_at)),
        region_code: region.into(),
        industry_chain: "高端装备".into(),
        supplier_region_code: "420100".into(),
        facilitator: String::new(),
        facilitator_role: String::new(),
    }
}

/// Publishes `kc.contract.signed` and waits until the service has recorded the contract.
pub async fn publish_contract(svc: &TestService, signed: ContractSigned) -> Envelope {
    let contract_id = signed.contract_id.clone();
    let event = svc
        .publish(NewEvent::new(
            &contract_id,
            1,
            Payload::ContractSigned(signed),
        ))
        .await;
    let pool = svc.pool.clone();
    let id = contract_id.clone();
    eventually(
        Duration::from_secs(20),
        "the contract to be registered",
        || {
            let (pool, id) = (pool.clone(), id.clone());
            async move {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM contracts WHERE id = $1)",
                )
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        },
    )
    .await;
    event
}

pub fn enterprise_token(svc: &TestService, enterprise: &str) -> String {
    svc.token(
        Role::Enterprise,
        &format!("cfo-of-{enterprise}"),
        Some(enterprise),
    )
}

pub fn approver(svc: &TestService, name: &str) -> String {
    svc.token(Role::FinanceApprover, name, None)
}

pub fn payment(contract_id: &str, amount_fen: i64, reference: &str) -> RecordPaymentRequest {
    RecordPaymentRequest {
        contract_id: contract_id.into(),
        amount_fen,
        paid_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::hours(1))),
        bank_reference: reference.into(),
    }
}

pub async fn pay(
    svc: &TestService,
    enterprise: &str,
    contract_id: &str,
    amount_fen: i64,
) -> (Payment, SubsidyApplication) {
    let mut c = client(svc).await;
    let token = enterprise_token(svc, enterprise);
    let reference = format!("BANK-{}", uuid::Uuid::new_v4().simple());
    let p = c
        .record_payment(authed(payment(contract_id, amount_fen, &reference), &token))
        .await
        .unwrap()
        .into_inner();
    let app = c
        .get_application(authed(
            GetApplicationRequest {
                id: p.application_id.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    (p, app)
}

pub async fn application(svc: &TestService, id: &str) -> SubsidyApplication {
    let mut c = client(svc).await;
    let token = svc.token(Role::Auditor, "auditor", None);
    c.get_application(authed(GetApplicationRequest { id: id.into() }, &token))
        .await
        .unwrap()
        .into_inner()
}

pub async fn wait_status(
    svc: &TestService,
    id: &str,
    status: kechuang_proto::subsidy::ApplicationStatus,
) -> SubsidyApplication {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let app = application(svc, id).await;
        if app.status == status as i32 {
            return app;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "application {id} stuck at {:?}, wanted {status:?}",
            app.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub async fn policies(svc: &TestService) -> PolicyServiceClient<Channel> {
    PolicyServiceClient::new(svc.channel().await)
}

pub fn officer(svc: &TestService, name: &str) -> String {
    svc.token(Role::FinanceOfficer, name, None)
}

/// A Wuhan policy (region 4201): 15 % up to 1,000,000 yuan paid, then 10 %.
pub fn wuhan(request_id: &str) -> CreatePolicyRequest {
    let mut r = subsidy::seed::hubei_policy_request();
    r.request_id = request_id.into();
    r.name = "武汉市首购首用补贴".into();
    r.region_prefixes = vec!["4201".into()];
    r.tiers = vec![
        PolicyTier {
            from_cumulative_fen: 0,
            ratio_bps: 1500,
        },
        PolicyTier {
            from_cumulative_fen: 100_000_000,
            ratio_bps: 1000,
        },
    ];
    r
}

/// `officer_name` (a finance officer) proposes `request`.
pub async fn propose(
    svc: &TestService,
    officer_name: &str,
    request: CreatePolicyRequest,
) -> Policy {
    policies(svc)
        .await
        .create_policy(authed(request, &officer(svc, officer_name)))
        .await
        .unwrap()
        .into_inner()
}

/// `approver_name` (a finance approver) approves the policy.
pub async fn approve_policy(
    svc: &TestService,
    approver_name: &str,
    policy_id: &str,
) -> Result<Policy, tonic::Status> {
    policies(svc)
        .await
        .approve_policy(authed(
            ApprovePolicyRequest {
                policy_id: policy_id.into(),
                note: "复核同意".into(),
            },
            &approver(svc, approver_name),
        ))
        .await
        .map(|r| r.into_inner())
}
