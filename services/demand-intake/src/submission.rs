//! Writing a submitted demand: validate it, seal its row and event, and hand it to intake's
//! group commit ([`crate::group_commit`]), which writes it (the request id's claim, the
//! demand and its event) in one statement and one commit with whatever
//! other submissions arrived at the same moment.

use crate::domain::Status;
use crate::domain::validate::{self, NewDemand};
use crate::group_commit::GroupCommit;
use crate::store::{self, DemandRow, NewSubmission, RequestKey, Written};
use crate::{PRODUCER, wire};
use chrono::{DateTime, SubsecRound, Utc};
use kechuang_platform::error::Error;
use kechuang_platform::idempotency;
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

/// Creates the demand, or returns the one an earlier identical request created.
pub async fn submit(pool: &PgPool, writer: &GroupCommit, s: &Submission) -> Result<Demand, Error> {
    let req = &s.request;
    idempotency::check_request_id(&req.request_id)?;
    let submission = match seal(s) {
        Ok(submission) => submission,
        Err(refusal) => {
            // The retry of an accepted request gets its demand even once the deadline it
            // named has passed.
            return match earlier(pool, &req.enterprise_id, request_key(req).as_ref()).await? {
                Some(demand) => Ok(demand),
                None => Err(refusal),
            };
        }
    };
    let (row, key) = (submission.row.clone(), submission.request.clone());
    match writer.write(submission).await? {
        Written::Yes => wire::demand(&row, &[row.submission()]),
        Written::NoSuchEnterprise => Err(Error::NotFound(format!(
            "enterprise {} not found",
            req.enterprise_id
        ))),
        Written::RequestIdTaken => earlier(pool, &req.enterprise_id, key.as_ref())
            .await?
            .ok_or_else(|| Error::internal("a claimed request id names no demand")),
    }
}

/// Validates a submission (its request id already checked) and seals what writing it takes:
/// the demand's row, the claim of its request id and its event.
pub fn seal(s: &Submission) -> Result<NewSubmission, Error> {
    let new = validate::demand(&s.request, s.received)?;
    let row = submitted_row(new, &s.subject, s.received);
    let event = outbox::stage(
        PRODUCER,
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
    Ok(NewSubmission {
        row,
        request: request_key(&s.request),
        event,
    })
}

/// The claim a request id makes: `None` when the request names none.
fn request_key(req: &SubmitDemandRequest) -> Option<RequestKey> {
    (!req.request_id.is_empty()).then(|| RequestKey {
        request_id: req.request_id.clone(),
        fingerprint: idempotency::fingerprint(req),
    })
}

/// The demand a new submission creates, as it will be stored.
fn submitted_row(new: NewDemand, subject: &str, received: DateTime<Utc>) -> DemandRow {
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
        submitted_by: subject.into(),
    }
}

/// The demand an earlier use of the request id created: `None` when the id is unused (or
/// there is none); refused when it was used with another body.
async fn earlier(
    pool: &PgPool,
    enterprise_id: &str,
    key: Option<&RequestKey>,
) -> Result<Option<Demand>, Error> {
    let Some(key) = key else { return Ok(None) };
    let mut conn = pool.acquire().await?;
    let Some((id, fingerprint)) =
        store::demand_by_request(&mut conn, enterprise_id, &key.request_id).await?
    else {
        return Ok(None);
    };
    idempotency::same_request(&fingerprint, &key.fingerprint)?;
    let row = store::demand(&mut conn, id)
        .await?
        .ok_or_else(|| Error::internal(format!("request id names lost demand {id}")))?;
    let history = store::history(&mut conn, &row).await?;
    wire::demand(&row, &history).map(Some)
}
