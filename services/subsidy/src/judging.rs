//! Applications that waited for their contract's registration are judged when a registrar
//! decides it (in the same transaction) and, when its window closes undecided, by a sweep.

use crate::domain::application::Status;
use crate::domain::eligibility::{self, ContractFacts, Decision, PaymentCase};
use crate::store::applications::{self as apps, Application};
use crate::store::registrations::{self as regs, Registration};
use crate::store::{contracts, policies};
use chrono::{DateTime, Utc};
use kechuang_platform::Error;
use kechuang_platform::locks::{self, LockSpace};
use kechuang_proto::common::ContractType;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Writes a decision into the application it judges.
pub fn apply(app: &mut Application, d: Decision) {
    app.status = d.status.as_str().into();
    app.status_reason = d.reason;
    (app.policy_id, app.fund_id) = d
        .policy
        .map(|(p, f)| (Some(p), Some(f)))
        .unwrap_or_default();
    app.eligible_base_fen = d.eligible_base_fen;
    app.amount_fen = d.amount_fen;
    app.entitled_exact = d.entitled_exact;
    app.required_approvals = d.required_approvals;
    app.computation = d.steps;
}

/// Judges every application of the contract that waits for its registration, under the
/// registration as `reg` now stands, in the order their payments were recorded. The caller
/// holds the registration's lock; this takes the contract's, the applications' and the
/// enterprise's (contract before enterprise, as a payment does, so the two never deadlock).
/// Returns how many were judged.
pub async fn awaiting(
    conn: &mut PgConnection,
    reg: &Registration,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    // The contract first, even when nothing seems to wait: a payment holds it from before it
    // reads the registration until it commits, so once we hold it every payment that saw the
    // registration undecided has committed its waiting application, and every later one will
    // see the decision.
    let contract = contracts::lock(conn, &reg.contract_id)
        .await?
        .ok_or_else(|| Error::internal(format!("contract {} vanished", reg.contract_id)))?;
    let waiting = apps::awaiting_registration(conn, &reg.contract_id).await?;
    let registration = reg.for_eligibility(now);
    // A certified contract with a facilitator may owe rewards even when nothing waits.
    let rewards_due = matches!(registration, eligibility::Registration::Certified { .. })
        && !contract.facilitator.trim().is_empty();
    if waiting.is_empty() && !rewards_due {
        return Ok(0);
    }
    locks::lock(conn, LockSpace::EnterprisePayments, &contract.enterprise_id).await?;
    let in_force = policies::in_force(conn).await?;
    let mut judged = 0;
    for w in waiting {
        let mut app = w.application;
        let case = PaymentCase {
            payment_fen: app.payment_amount_fen,
            paid_at: w.paid_at,
            claimed_at: app.created_at,
            paid_before_fen: apps::paid_before(conn, &app).await?,
            contract: ContractFacts {
                amount_fen: contract.amount_fen,
                declared_type: ContractType::try_from(contract.contract_type)
                    .unwrap_or(ContractType::Unspecified),
                region_code: &contract.region_code,
                industry_chain: &contract.industry_chain,
            },
            registration: &registration,
        };
        let standing =
            apps::standing(conn, &app.enterprise_id, app.paid_year, &app.contract_id).await?;
        let decision = eligibility::judge(&in_force, &case, standing).unwrap_or_else(|e| {
            // The claim was in time under the policy chosen then; the certified type chose
            // another whose window had closed.
            let reason = format!("按认定的合同类型适用的政策，申领已超期：{}", e);
            Decision {
                status: Status::Ineligible,
                steps: vec![reason.clone()],
                reason,
                policy: None,
                eligible_base_fen: 0,
                amount_fen: 0,
                entitled_exact: 0,
                required_approvals: 1,
            }
        });
        if decision.status == Status::AwaitingRegistration {
            continue;
        }
        apply(&mut app, decision);
        apps::judged(conn, &app).await?;
        judged += 1;
    }
    // The broker's rewards of every payment so far, now that the contract is certified.
    crate::rewards::reward_contract(conn, &in_force, &contract, &registration, now).await?;
    Ok(judged)
}

/// How often the sweep looks for registration windows that closed undecided.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Makes the applications of contracts whose registration window closed undecided
/// INELIGIBLE (or, under a policy that subsidises unregistered contracts, judges them), a
/// contract per transaction. Several replicas may sweep at once: the registration's lock
/// orders them, and the second finds nothing left to judge.
pub async fn sweep_lapsed_registrations(pool: &PgPool, now: DateTime<Utc>) -> Result<usize, Error> {
    let mut conn = pool.acquire().await?;
    let contracts = apps::contracts_past_registration(&mut conn, now, 100).await?;
    drop(conn);
    let mut judged = 0;
    for contract_id in contracts {
        let mut tx = pool.begin().await?;
        if let Some(reg) = regs::lock(&mut tx, &contract_id).await? {
            judged += awaiting(&mut tx, &reg, now).await?;
        }
        tx.commit().await?;
    }
    Ok(judged)
}

/// The sweep, every minute until cancelled.
pub async fn run_sweep(pool: PgPool, cancel: CancellationToken) {
    loop {
        match sweep_lapsed_registrations(&pool, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                judged = n,
                "applications judged after their registration window closed"
            ),
            Err(e) => tracing::warn!(error = %e, "registration sweep failed; retrying"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}
