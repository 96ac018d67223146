//! The published Hubei rule, seeded once: an enterprise that buys a technology and uses it in
//! the province gets 10 % of the amount actually paid under the technology contract, at most
//! 1,000,000 yuan per enterprise a year, from the default fund.
//!
//! It is in force from the start, decided by the seed itself: no second person looked at it,
//! and the policy and the audit trail say so (`decided_by: seed`, `policy.seeded`).

use crate::domain::policy::{Limits, PolicyStatus};
use crate::store::{audit, policies};
use chrono::TimeZone;
use kechuang_platform::events::timestamp;
use kechuang_platform::outbox;
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::{CreatePolicyRequest, PolicyTier};
use sqlx::PgPool;

/// The fund the fund ledger seeds, empty until topped up.
pub use kechuang_vocabulary::DEFAULT_FUND_ID;
pub const HUBEI_POLICY_ID: &str = "pol-hubei-tech-contract";
/// The actor of the seed on the policy and in the audit trail.
pub const SEED_ACTOR: &str = "seed";
const SEED_NOTE: &str =
    "seeded at installation: the published rule, in force without a second person";

pub fn hubei_policy_request() -> CreatePolicyRequest {
    let from = chrono::FixedOffset::east_opt(8 * 3600)
        .expect("UTC+8")
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    CreatePolicyRequest {
        request_id: "seed:hubei-tech-contract".into(),
        name: "湖北省技术合同实付补贴".into(),
        fund_id: DEFAULT_FUND_ID.into(),
        tiers: vec![PolicyTier {
            from_cumulative_fen: 0,
            ratio_bps: 1000,
        }],
        per_contract_cap_fen: 100_000_000,
        per_enterprise_annual_cap_fen: 100_000_000,
        // Buying a technology: development, transfer and licence contracts; consulting and
        // service contracts buy advice and work, not a technology.
        contract_types: vec![
            ContractType::Development as i32,
            ContractType::Transfer as i32,
            ContractType::License as i32,
        ],
        region_prefixes: vec!["42".into()],
        industry_chains: vec![],
        valid_from: Some(timestamp(from.with_timezone(&chrono::Utc))),
        valid_to: None,
        // Above 100,000 yuan a subsidy needs two approvers.
        four_eyes_threshold_fen: 10_000_000,
        // A payment is claimed within a year of being made.
        claim_window_days: 365,
        // UNSPECIFIED is a subsidy policy; left unset so the request (and its idempotency
        // fingerprint) stays what earlier installations seeded.
        kind: 0,
        // Only registered technology contracts (技术合同认定登记), on their certified technical
        // amount: what the provinces' rules subsidise.
        subsidise_unregistered: false,
    }
}

/// Creates the policy in force unless it exists (safe with several replicas starting at
/// once: the request id makes the second a no-op).
fn seed_actor() -> kechuang_platform::Caller {
    kechuang_platform::Caller::new(kechuang_platform::Role::Service, SEED_ACTOR)
}

pub async fn hubei_policy(pool: &PgPool, limits: &Limits) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    if policies::exists(&mut conn, HUBEI_POLICY_ID).await? {
        return Ok(());
    }
    drop(conn);
    let seeded = async {
        let mut tx = pool.begin().await?;
        let request = hubei_policy_request();
        let (proposed, new) =
            crate::api::insert_proposal(&mut tx, HUBEI_POLICY_ID, &request, limits, &seed_actor())
                .await?;
        if new {
            let in_force = policies::decide(
                &mut tx,
                &proposed.id,
                PolicyStatus::InForce,
                SEED_ACTOR,
                SEED_NOTE,
            )
            .await?;
            let mut details = crate::api::policy_terms(&in_force);
            details["decided_by"] = SEED_ACTOR.into();
            details["note"] = SEED_NOTE.into();
            audit::append(
                &mut tx,
                SEED_ACTOR,
                "service",
                "policy.seeded",
                &in_force.id,
                details,
            )
            .await?;
        }
        outbox::commit(tx, crate::PRODUCER).await?;
        Ok::<(), kechuang_platform::Error>(())
    };
    seeded
        .await
        .map_err(|e| anyhow::anyhow!("seeding the Hubei policy: {e}"))
}
