//! Brokers' rewards made in the transaction that judges a payment on a certified contract:
//! at RecordPayment when the contract is already certified, and in the registrar's
//! transaction for the payments recorded before (see [`crate::domain::reward`]).

use crate::domain::calculator::Standing;
use crate::domain::eligibility::{ContractFacts, PaymentCase, Registration};
use crate::domain::kind::Kind;
use crate::domain::policy::Policy;
use crate::domain::reward;
use crate::judging;
use crate::store::applications::{self as apps, Application, Payment};
use crate::store::contracts::Contract;
use chrono::{DateTime, Utc};
use kechuang_platform::Error;
use kechuang_platform::auth::normalised_subject;
use kechuang_platform::locks::{self, LockSpace};
use kechuang_proto::common::ContractType;
use sqlx::PgConnection;

/// One payment to reward.
pub struct RewardCase<'a> {
    pub contract: &'a Contract,
    pub payment: &'a Payment,
    /// What the contract's earlier payments add up to.
    pub paid_before_fen: i64,
    /// Who recorded the payment (the applicant: never its reviewer).
    pub recorded_by: &'a str,
    /// When the payment was claimed (recorded).
    pub claimed_at: DateTime<Utc>,
    /// The calendar year (China time) of the payment.
    pub paid_year: i32,
}

/// Makes the reward application of one payment, if it earns one and has none yet. The caller
/// holds the contract's lock; this takes the broker's (after the enterprise's, when the caller
/// holds that: a broker's rewards share the broker's annual cap whatever the enterprise).
pub async fn reward_payment(
    conn: &mut PgConnection,
    in_force: &[Policy],
    registration: &Registration,
    case: &RewardCase<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Application>, Error> {
    let facilitator = case.contract.facilitator.trim();
    if facilitator.is_empty() || !matches!(registration, Registration::Certified { .. }) {
        return Ok(None);
    }
    if !in_force.iter().any(|p| p.kind == Kind::BrokerReward) {
        return Ok(None);
    }
    locks::lock(
        conn,
        LockSpace::BrokerRewards,
        &normalised_subject(facilitator),
    )
    .await?;
    if apps::has_reward(conn, &case.payment.id).await? {
        return Ok(None);
    }
    let contract = case.contract;
    let payment_case = PaymentCase {
        payment_fen: case.payment.amount_fen,
        paid_at: case.payment.paid_at,
        claimed_at: case.claimed_at,
        paid_before_fen: case.paid_before_fen,
        contract: ContractFacts {
            amount_fen: contract.amount_fen,
            declared_type: ContractType::try_from(contract.contract_type)
                .unwrap_or(ContractType::Unspecified),
            region_code: &contract.region_code,
            industry_chain: &contract.industry_chain,
        },
        registration,
    };
    let standing: Standing =
        apps::reward_standing(conn, facilitator, case.paid_year, &contract.id).await?;
    let Some(decision) = reward::judge(in_force, &payment_case, facilitator, standing) else {
        return Ok(None);
    };
    let mut app = Application {
        id: format!("app-{}", uuid::Uuid::now_v7().simple()),
        payment_id: case.payment.id.clone(),
        contract_id: contract.id.clone(),
        enterprise_id: contract.enterprise_id.clone(),
        policy_id: None,
        fund_id: None,
        payment_amount_fen: case.payment.amount_fen,
        eligible_base_fen: 0,
        amount_fen: 0,
        entitled_exact: 0,
        paid_year: case.paid_year,
        status: String::new(),
        status_reason: String::new(),
        computation: vec![],
        required_approvals: 1,
        recorded_by: case.recorded_by.to_string(),
        approved_at: None,
        payout_reference: String::new(),
        created_at: now,
        updated_at: now,
        version: 1,
        kind: Kind::BrokerReward.as_str().into(),
        payee: facilitator.to_string(),
    };
    judging::apply(&mut app, decision);
    apps::insert(conn, &app).await?;
    Ok(Some(app))
}

/// Rewards every payment of a certified contract that has no reward yet, in the order they
/// were recorded (the registrar's transaction; a repeated decision finds nothing left).
pub async fn reward_contract(
    conn: &mut PgConnection,
    in_force: &[Policy],
    contract: &Contract,
    registration: &Registration,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    if contract.facilitator.trim().is_empty()
        || !matches!(registration, Registration::Certified { .. })
    {
        return Ok(0);
    }
    let mut made = 0;
    for (payment, paid_before_fen, recorded_by) in
        apps::payments_without_reward(conn, &contract.id).await?
    {
        let case = RewardCase {
            contract,
            payment: &payment,
            paid_before_fen,
            recorded_by: &recorded_by,
            claimed_at: payment.created_at,
            paid_year: crate::api::china_year(payment.paid_at),
        };
        if reward_payment(conn, in_force, registration, &case, now)
            .await?
            .is_some()
        {
            made += 1;
        }
    }
    Ok(made)
}
