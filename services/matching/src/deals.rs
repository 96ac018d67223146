//! The deals' operations: an enterprise answers a pairing (an acceptance records who
//! facilitated the deal: the broker it names, else the technology manager who verified the
//! demand), signs a contract on an accepted one (the contract and kc.contract.signed carry
//! that facilitator), reads it back. Each authorises, validates, then runs one transaction whose state change
//! and event commit together (transactional outbox); the gRPC handlers only translate.

use crate::PRODUCER;
use crate::domain::{self, DemandState, Facilitator, Response as Answer};
use crate::store::{self, ContractParties, ContractRow, PairingRow};
use crate::wire::contract_signed;
use chrono::Utc;
use kechuang_platform::auth::{Caller, Role};
use kechuang_platform::error::{Error, ResultExt, Violations};
use kechuang_platform::idempotency::{self, Claim, Scope};
use kechuang_platform::input::{self, Text};
use kechuang_platform::{NewEvent, outbox};
use kechuang_proto::events::{PairingAccepted, PairingRejected, envelope::Payload};
use kechuang_proto::matching::{
    GetContractRequest, PairingStatus, RespondToPairingRequest, SignContractRequest,
};
use sqlx::PgPool;
use uuid::Uuid;

/// Idempotency scope of contract request ids.
const SCOPE: &str = "contract";
const MAX_NOTE_CHARS: usize = 500;
/// The platform's people who read contracts and outcomes across enterprises.
pub const PLATFORM_READERS: &[Role] = &[
    Role::TechManager,
    Role::Auditor,
    Role::FinanceOfficer,
    Role::FinanceApprover,
    Role::Service,
];

pub fn pairing_not_found(pairing_id: &str) -> Error {
    Error::not_found(format!("pairing {} not found", input::quote(pairing_id)))
}

#[derive(Clone)]
pub struct Deals {
    pool: PgPool,
}

impl Deals {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn respond(
        &self,
        caller: &Caller,
        req: RespondToPairingRequest,
    ) -> Result<PairingRow, Error> {
        caller.require(&[Role::Enterprise])?;
        let mut v = Violations::new();
        input::check_id(&mut v, "pairing_id", &req.pairing_id, domain::MAX_ID_CHARS);
        Text::paragraphs(MAX_NOTE_CHARS)
            .optional()
            .check(&mut v, "note", &req.note);
        let broker = domain::check_broker(&mut v, &caller.subject, req.accept, &req.broker);
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let pairing = store::get_pairing(&mut tx, &req.pairing_id, true)
            .await?
            .filter(|p| caller.is_enterprise(&p.enterprise_id))
            .ok_or_else(|| pairing_not_found(&req.pairing_id))?;
        let status = PairingStatus::try_from(pairing.status).unwrap_or(PairingStatus::Unspecified);
        if req.accept && status == PairingStatus::Proposed {
            let achievement = store::get_achievement(&mut tx, &pairing.achievement_id).await?;
            if achievement.is_none_or(|a| a.withdrawn_at.is_some()) {
                return Err(Error::FailedPrecondition(
                    "the achievement was withdrawn by its supplier; this pairing can only be declined"
                        .into(),
                ));
            }
        }
        let row = match domain::respond(status, req.accept)? {
            Answer::Unchanged => {
                if req.accept {
                    domain::check_repeated_acceptance(
                        &pairing.recorded_facilitator(),
                        broker.as_deref(),
                    )?;
                }
                pairing
            }
            Answer::Moved(to) => {
                let facilitator = if to == PairingStatus::Accepted {
                    // The demand is not locked: its verifier is written once, when verified.
                    let verified_by = store::get_demand(&mut tx, &pairing.demand_id)
                        .await?
                        .map(|d| d.verified_by)
                        .unwrap_or_default();
                    Facilitator::of(broker.as_deref(), &verified_by)
                } else {
                    Facilitator::default()
                };
                store::record_outcome(&mut tx, &pairing, to == PairingStatus::Accepted).await?;
                let row = store::set_pairing_status(
                    &mut tx,
                    &pairing.id,
                    to,
                    req.note.trim(),
                    &facilitator,
                )
                .await?;
                outbox::append(&mut tx, PRODUCER, response_event(&row, to)).await?;
                row
            }
        };
        outbox::commit(tx, crate::PRODUCER).await?;
        Ok(row)
    }

    pub async fn sign(
        &self,
        caller: &Caller,
        req: SignContractRequest,
    ) -> Result<ContractRow, Error> {
        caller.require(&[Role::Enterprise, Role::Service])?;
        let contract = domain::validate_contract(&req, Utc::now())?;
        let fingerprint = idempotency::fingerprint(&req);
        let mut tx = self.pool.begin().await?;
        if !req.request_id.is_empty()
            && let Claim::Existing(id) = idempotency::claim(
                &mut tx,
                &Scope::of(SCOPE, caller),
                &req.request_id,
                &fingerprint,
            )
            .await?
        {
            return store::get_contract(&mut tx, &id)
                .await?
                .ok_or_else(|| Error::internal("an idempotency key names a missing contract"));
        }
        // Lock order of every writer: the demand, then its pairings.
        let demand_id = store::get_pairing(&mut tx, &req.pairing_id, false)
            .await?
            .filter(|p| caller.has(Role::Service) || caller.is_enterprise(&p.enterprise_id))
            .ok_or_else(|| pairing_not_found(&req.pairing_id))?
            .demand_id;
        let demand = store::lock_demand(&mut tx, &demand_id)
            .await?
            .ok_or_else(|| Error::internal("a pairing without its demand"))?;
        let pairing = store::get_pairing(&mut tx, &req.pairing_id, true)
            .await?
            .ok_or_else(|| Error::internal("a pairing vanished"))?;
        if !caller.has(Role::Service) && !caller.is_enterprise(&pairing.enterprise_id) {
            return Err(pairing_not_found(&req.pairing_id));
        }
        if pairing.status != PairingStatus::Accepted as i32 {
            return Err(Error::FailedPrecondition(
                "a contract can only be signed for an accepted pairing".into(),
            ));
        }
        domain::check_signed_after_acceptance(contract.signed_at, pairing.accepted_at)?;
        // Withdrawn or rejected: no contract. Already contracted: another accepted pairing of
        // the same demand may still be signed (a demand can need two suppliers).
        if !demand.verified || !demand.state().is_some_and(DemandState::takes_contracts) {
            return Err(Error::FailedPrecondition(format!(
                "the demand is {}; no contract can be signed on it",
                demand.status
            )));
        }
        let achievement = store::get_achievement(&mut tx, &pairing.achievement_id)
            .await?
            .ok_or_else(|| Error::internal("a pairing without its achievement"))?;
        let id = Uuid::now_v7().to_string();
        let parties = ContractParties {
            pairing: &pairing,
            demand: &demand,
            achievement: &achievement,
        };
        let row = store::insert_contract(&mut tx, &id, &parties, &contract)
            .await
            .on_constraint("contracts_contract_no_key", || {
                Error::AlreadyExists(format!(
                    "contract number {} is already recorded",
                    contract.contract_no
                ))
            })
            .on_constraint("contracts_pairing_key", || {
                Error::AlreadyExists("this pairing already has a signed contract".into())
            })?;
        let event = NewEvent::new(&row.id, 1, Payload::ContractSigned(contract_signed(&row)));
        outbox::append(&mut tx, PRODUCER, event).await?;
        store::outcome_contracted(&mut tx, &row.pairing_id).await?;
        store::mark_contracted(&mut tx, &demand.id).await?;
        store::notify(
            &mut tx,
            store::Changed::Demands,
            "",
            std::slice::from_ref(&demand.id),
        )
        .await?;
        if !req.request_id.is_empty() {
            idempotency::record(
                &mut tx,
                &Scope::of(SCOPE, caller),
                &req.request_id,
                &fingerprint,
                &row.id,
            )
            .await?;
        }
        outbox::commit(tx, crate::PRODUCER).await?;
        Ok(row)
    }

    pub async fn contract(
        &self,
        caller: &Caller,
        req: GetContractRequest,
    ) -> Result<ContractRow, Error> {
        // An enterprise reads its own contracts (checked below); the platform's people all.
        let reads_all = caller.has_any(PLATFORM_READERS);
        if !reads_all {
            caller.require(&[Role::Enterprise])?;
        }
        if req.contract_id.is_empty() {
            return Err(Error::invalid("contract_id", "must not be empty"));
        }
        let mut conn = self.pool.acquire().await?;
        let row = store::get_contract(&mut conn, &req.contract_id)
            .await?
            .filter(|c| reads_all || caller.is_enterprise(&c.enterprise_id))
            .ok_or_else(|| {
                Error::not_found(format!(
                    "contract {} not found",
                    input::quote(&req.contract_id)
                ))
            })?;
        Ok(row)
    }
}

fn response_event(row: &PairingRow, to: PairingStatus) -> NewEvent {
    let payload = if to == PairingStatus::Accepted {
        Payload::PairingAccepted(PairingAccepted {
            pairing_id: row.id.clone(),
            demand_id: row.demand_id.clone(),
            enterprise_id: row.enterprise_id.clone(),
            achievement_id: row.achievement_id.clone(),
            facilitator: row.facilitator.clone(),
            facilitator_role: row.facilitator_role.clone(),
        })
    } else {
        Payload::PairingRejected(PairingRejected {
            pairing_id: row.id.clone(),
            demand_id: row.demand_id.clone(),
            enterprise_id: row.enterprise_id.clone(),
            achievement_id: row.achievement_id.clone(),
            note: row.note.clone(),
        })
    };
    NewEvent::new(&row.id, row.version, payload)
}
