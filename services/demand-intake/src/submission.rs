//! Writing a submitted demand. Intake is the platform's busiest write, so a submission is one
//! statement and one commit ([`store::insert_submitted`]): the request id's claim, the demand,
//! its history line and its event. Postgres's own group commit shares WAL flushes between
//! concurrent submissions; no batching of ours is needed.

use crate::domain::Status;
use crate::domain::validate::{self, NewDemand};
use crate::store::{self, ChangeRow, DemandRow, RequestKey, Submitted};
use crate::{SERVICE, wire};
use chrono::{DateTime, SubsecRound, Utc};
use kechuang_platform::error::Error;
use kechuang_platform::idempotency::{self, Claim};
use kechuang_platform::{NewEvent, outbox};
use kechuang_proto::demand::{Demand, SubmitDemandRequest};
use kechuang_proto::events::DemandSubmitted;
use kechuang_proto::events::envelope::Payload;
use sqlx::PgPool;
use uuid::Uuid;

/// One authorised SubmitDemand call.
#[derive(Debug, Clone)]
pub struct Submission {
    pub subject: String,
    pub request: SubmitDemandRequest,
    /// When it arrived: the deadline must lie after this.
    pub received: DateTime<Utc>,
}

impl Submission {
    /// Request ids are the enterprise's own: two enterprises may pick the same one.
    fn scope(&self) -> String {
        format!("submit_demand/{}", self.request.enterprise_id)
    }
}

/// Creates the demand, or returns the one an earlier identical request created.
pub async fn submit(pool: &PgPool, s: &Submission) -> Result<Demand, Error> {
    let req = &s.request;
    idempotency::check_request_id(&req.request_id)?;
    let scope = s.scope();
    let fingerprint = idempotency::fingerprint(req);
    let key = RequestKey {
        scope: &scope,
        request_id: &req.request_id,
        fingerprint: &fingerprint,
    };
    let new = match validate::demand(req, s.received) {
        Ok(new) => new,
        Err(refusal) => {
            // The retry of an accepted request gets its demand even once the deadline it
            // named has passed.
            return match earlier(pool, &key).await? {
                Some(demand) => Ok(demand),
                None => Err(refusal),
            };
        }
    };
    let row = submitted_row(new, s.received);
    let event = outbox::stage(
        SERVICE,
        NewEvent {
            correlation_id: Some(row.correlation_id.clone()),
            ..NewEvent::new(
                row.id.to_string(),
                row.version,
                Payload::DemandSubmitted(DemandSubmitted {
                    demand: Some(wire::details(&row)),
                }),
            )
        },
    );
    if store::insert_submitted(pool, &row, &s.subject, &key, &event).await? == Submitted::Written {
        outbox::ring();
        let first = ChangeRow {
            from_status: None,
            to_status: row.status.clone(),
            actor: s.subject.clone(),
            cause_event_id: None,
            note: String::new(),
            changed_at: row.created_at,
        };
        return wire::demand(&row, &[first]);
    }
    earlier(pool, &key)
        .await?
        .ok_or_else(|| Error::internal("a claimed request id names no demand"))
}

/// The demand a new submission creates, as it will be stored.
fn submitted_row(new: NewDemand, received: DateTime<Utc>) -> DemandRow {
    // Postgres keeps microseconds: the answer must equal what GetDemand later reads.
    let now = received.trunc_subsecs(6);
    DemandRow {
        id: Uuid::now_v7(),
        enterprise_id: new.enterprise_id,
        title: new.title,
        description: new.description,
        industry_chain: new.industry_chain,
        contract_type: new.contract_type as i32,
        budget_min_fen: new.budget_min_fen,
        budget_max_fen: new.budget_max_fen,
        region_code: new.region_code,
        deadline: new.deadline,
        status: Status::Submitted.as_str().into(),
        version: 1,
        correlation_id: Uuid::now_v7().to_string(),
        created_at: now,
        updated_at: now,
    }
}

/// The demand an earlier use of the request id created: `None` when the id is unused (or
/// empty); refused when it was used with another body.
async fn earlier(pool: &PgPool, key: &RequestKey<'_>) -> Result<Option<Demand>, Error> {
    if key.request_id.is_empty() {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    let id =
        match idempotency::lookup(&mut conn, key.scope, key.request_id, key.fingerprint).await? {
            Claim::New => return Ok(None),
            Claim::Existing(id) => Uuid::parse_str(&id).map_err(Error::internal)?,
        };
    let row = store::demand(&mut conn, id)
        .await?
        .ok_or_else(|| Error::internal(format!("request id names lost demand {id}")))?;
    let history = store::history(&mut conn, id).await?;
    wire::demand(&row, &history).map(Some)
}
