//! What the sky net hears: demands verified (open: pair them; who verified them is kept),
//! withdrawn or rejected (closed:
//! no more pairings). Each handler runs in the consumer's transaction, which also records the
//! event as processed, so a redelivery changes nothing.

use crate::Shared;
use crate::domain::DemandState;
use crate::index::demand_doc;
use crate::pushing;
use crate::store::{self, meanings};
use kechuang_platform::events::from_timestamp;
use kechuang_platform::{EventHandler, HandlerError};
use kechuang_proto::events::{Envelope, envelope::Payload};
use sqlx::PgConnection;
use std::sync::Arc;

/// Handles `demand.verified`, `demand.withdrawn` and `demand.rejected` (one durable consumer
/// per subject: NATS 2.9 takes one filter subject per consumer).
pub struct DemandEvents {
    pub shared: Arc<Shared>,
}

impl EventHandler for DemandEvents {
    async fn handle(&self, event: &Envelope, tx: &mut PgConnection) -> Result<(), HandlerError> {
        match &event.payload {
            Some(Payload::DemandVerified(v)) => {
                let d = v.demand.as_ref().ok_or_else(|| {
                    HandlerError::Permanent("demand.verified without its demand".into())
                })?;
                if d.demand_id.is_empty() || d.enterprise_id.is_empty() {
                    return Err(HandlerError::Permanent(
                        "demand.verified without demand or enterprise id".into(),
                    ));
                }
                let deadline = d.deadline.as_ref().and_then(from_timestamp);
                // Already verified (a second verification of the same demand): its pairings
                // were pushed then.
                // The verifier is kept: an accepted pairing names them as its facilitator
                // unless the enterprise names a broker.
                let Some(demand) =
                    store::store_verified_demand(tx, d, deadline, v.verified_by.trim()).await?
                else {
                    return Ok(());
                };
                if !demand.is_open() {
                    // Withdrawn or rejected before this verification arrived.
                    return Ok(());
                }
                store::lock_demand(tx, &demand.id).await?;
                let semantic = &self.shared.semantic;
                let meaning = semantic.query(demand_doc(&demand).meaning_text()).await;
                if let (Some(model), Some(v)) = (semantic.model(), &meaning) {
                    meanings::insert_demand_meaning(tx, model, &demand.id, v).await?;
                }
                pushing::propose_for_demand(
                    tx,
                    &self.shared.engine,
                    &demand,
                    meaning,
                    self.shared.top_k,
                    event,
                )
                .await?;
                store::notify(
                    tx,
                    store::Changed::Demands,
                    "",
                    std::slice::from_ref(&demand.id),
                )
                .await?;
                Ok(())
            }
            Some(Payload::DemandWithdrawn(w)) => {
                close(tx, &w.demand_id, &w.enterprise_id, DemandState::Withdrawn).await
            }
            Some(Payload::DemandRejected(r)) => {
                close(tx, &r.demand_id, &r.enterprise_id, DemandState::Rejected).await
            }
            // Another type on a subject we filter: not ours to judge.
            _ => Ok(()),
        }
    }
}

async fn close(
    tx: &mut PgConnection,
    demand_id: &str,
    enterprise_id: &str,
    status: DemandState,
) -> Result<(), HandlerError> {
    if demand_id.is_empty() {
        return Err(HandlerError::Permanent(
            "closing event without demand id".into(),
        ));
    }
    // Serialises with a reverse push onto this demand that is in flight.
    store::lock_demand(tx, demand_id).await?;
    store::close_demand(tx, demand_id, enterprise_id, status).await?;
    store::notify(tx, store::Changed::Demands, "", &[demand_id.to_string()]).await?;
    Ok(())
}
