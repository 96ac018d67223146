//! Status from downstream events: other services report how far a demand has come. Each
//! report is applied by the pure state machine (`domain::status::on_stage`): forward only,
//! so a late or repeated event changes nothing and is kept in `demand_ignored_events`.
//! The consumer plumbing makes a redelivery of one event id a no-op.

use crate::domain::status::{self, Reaction, Stage};
use crate::store::{self, Move};
use kechuang_platform::{EventHandler, HandlerError};
use kechuang_proto::common::ApplicationKind;
use kechuang_proto::event_types;
use kechuang_proto::events::Envelope;
use kechuang_proto::events::envelope::Payload;
use sqlx::PgConnection;
use uuid::Uuid;

/// The durable consumers (one filter subject each: NATS 2.9) and what they listen to.
pub const SUBSCRIPTIONS: [(&str, &str); 3] = [
    ("pairings", event_types::every::PAIRING),
    ("contracts", event_types::CONTRACT_SIGNED),
    ("subsidies", event_types::SUBSIDY_DISBURSED),
];

/// Events each consumer handles at a time: what one group ([`kechuang_platform::consumer::Grouped`])
/// can gather. Downstream news arrives at the saga's pace (a disbursement a subsidy).
pub const IN_PARALLEL: usize = 32;

/// Which demand an event is about, the stage it reports, and a note for the history.
pub fn stage_of(payload: &Payload) -> Option<(&str, Stage, String)> {
    match payload {
        Payload::PairingProposed(p) => Some((
            p.demand_id.as_str(),
            Stage::Matching,
            format!("pairing {} proposed", p.pairing_id),
        )),
        Payload::PairingAccepted(p) => Some((
            p.demand_id.as_str(),
            Stage::Docking,
            format!("pairing {} accepted", p.pairing_id),
        )),
        Payload::ContractSigned(c) => Some((
            c.demand_id.as_str(),
            Stage::Contracted,
            format!("contract {} signed", c.contract_no),
        )),
        // A broker's reward paid under the deal is not the demand's subsidy: it completes nothing.
        Payload::SubsidyDisbursed(s) if s.kind != ApplicationKind::BrokerReward as i32 => Some((
            s.demand_id.as_str(),
            Stage::Completed,
            format!("subsidy {} disbursed", s.application_id),
        )),
        _ => None,
    }
}

pub struct StageHandler;

impl EventHandler for StageHandler {
    async fn handle(&self, event: &Envelope, tx: &mut PgConnection) -> Result<(), HandlerError> {
        // Other events on these subjects (e.g. pairing.rejected) do not move a demand.
        let Some((demand, stage, note)) = event.payload.as_ref().and_then(stage_of) else {
            return Ok(());
        };
        let event_id = Uuid::parse_str(&event.event_id)
            .map_err(|e| HandlerError::Permanent(format!("event id: {e}")))?;
        let ignore = async |tx: &mut PgConnection, then, reason: &str| {
            tracing::info!(demand, reason, "event does not move the demand");
            store::record_ignored(tx, event_id, &event.event_type, demand, then, reason).await
        };
        // Demands are born here, so an unknown id is another service's mistake: keep it, do
        // not retry it forever.
        let found = match Uuid::parse_str(demand) {
            Ok(id) => store::lock_demand(tx, id).await?,
            Err(_) => None,
        };
        let Some(row) = found else {
            tracing::warn!(demand, event_type = %event.event_type, "event about an unknown demand");
            ignore(tx, None, "no such demand").await?;
            return Ok(());
        };
        let current = row.status()?;
        match status::on_stage(current, stage) {
            Reaction::Advance(to) => {
                let moved = Move {
                    from: current,
                    to,
                    actor: &event.event_type,
                    cause_event_id: Some(event_id),
                    note: &note,
                };
                store::move_status(tx, row.id, &moved).await?;
            }
            Reaction::Ignore(reason) => ignore(tx, Some(current), &reason.to_string()).await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kechuang_proto::events::SubsidyDisbursed;

    #[test]
    fn the_subsidy_completes_the_demand_a_brokers_reward_does_not() {
        let disbursed = |kind: ApplicationKind| {
            Payload::SubsidyDisbursed(SubsidyDisbursed {
                application_id: "app-1".into(),
                demand_id: "d-1".into(),
                amount_fen: 100,
                kind: kind as i32,
                ..Default::default()
            })
        };
        for kind in [ApplicationKind::Unspecified, ApplicationKind::Subsidy] {
            let event = disbursed(kind);
            let (demand, stage, _) = stage_of(&event).unwrap();
            assert_eq!((demand, stage), ("d-1", Stage::Completed));
        }
        assert!(stage_of(&disbursed(ApplicationKind::BrokerReward)).is_none());
    }
}
