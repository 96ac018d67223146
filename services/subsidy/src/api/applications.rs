use super::{FINANCE_READERS, reads_everything};
use crate::anchors::{Anchors, Latest};
use crate::approvals::{Approvals, Outcome, approved_details, approved_event, review};
use crate::domain::application::{self, Approval, Status};
use crate::domain::kind::Kind;
use crate::store::applications as apps;
use crate::store::audit;
use crate::wire;
use chrono::{DateTime, Utc};
use kechuang_platform::auth::caller;
use kechuang_platform::input;
use kechuang_platform::{Caller, Error, NewEvent, Role, Violations, outbox, paging};
use kechuang_proto::events::{SubsidyRejected, envelope::Payload};
use kechuang_proto::subsidy as pb;
use kechuang_proto::subsidy::subsidy_service_server::SubsidyService;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status as GrpcStatus};

#[derive(Clone)]
pub struct SubsidyApi {
    pool: PgPool,
    approvals: Approvals,
    anchors: Anchors,
}

impl SubsidyApi {
    /// Approvals go to `approvals`' group commit ([`crate::approvals`]).
    pub fn new(pool: PgPool, approvals: Approvals, anchors: Anchors) -> Self {
        Self {
            pool,
            approvals,
            anchors,
        }
    }
}

pub(super) async fn load(
    conn: &mut PgConnection,
    id: &str,
    who: &Caller,
) -> Result<pb::SubsidyApplication, Error> {
    // An enterprise sees its own subsidies, never a broker's reward on its contract.
    let app = apps::get(conn, id).await?.filter(|a| {
        reads_everything(who) || (who.is_enterprise(&a.enterprise_id) && a.kind() == Kind::Subsidy)
    });
    let Some(app) = app else {
        return Err(Error::not_found(format!("application {id} not found")));
    };
    let approvals = apps::approvals(conn, std::slice::from_ref(&app.id)).await?;
    Ok(wire::application(&app, &approvals))
}

fn check_approval(r: &pb::ApproveApplicationRequest) -> Result<(), Error> {
    let mut v = Violations::new();
    input::check_id(&mut v, "id", &r.id, MAX_ID_CHARS);
    application::NOTE.check(&mut v, "note", &r.note);
    v.into_result()
}

/// An approval made alone, in its own transaction: when its group failed
/// ([`crate::approvals`]), and the reference the group commit answers as.
async fn approve(
    pool: &PgPool,
    who: &Caller,
    r: &pb::ApproveApplicationRequest,
) -> Result<pb::SubsidyApplication, Error> {
    check_approval(r)?;
    let mut tx = pool.begin().await?;
    let app = apps::lock(&mut tx, &r.id)
        .await?
        .ok_or_else(|| Error::not_found(format!("application {} not found", r.id)))?;
    let mut approvals = apps::approvals(&mut tx, std::slice::from_ref(&app.id)).await?;
    let mut approvers: Vec<String> = approvals.iter().map(|a| a.approver.clone()).collect();
    let outcome = application::approve(&review(&app, &approvers), who)?;
    approvals.push(apps::add_approval(&mut tx, &app.id, &who.subject, r.note.trim()).await?);
    // In the order a read gives (a transaction's clock is its start, which a concurrent
    // approver's commit may follow).
    approvals.sort_by(|a, b| (a.approved_at, &a.approver).cmp(&(b.approved_at, &b.approver)));
    approvers.push(who.subject.clone());
    let complete = outcome == Approval::Complete;
    audit::by(
        &mut tx,
        who,
        "application.approved",
        &app.id,
        approved_details(&app, r.note.trim(), approvers.len(), complete),
    )
    .await?;
    // The answer is built from what the statements returned: the caller may approve, so it
    // may read the application, and nothing else touches it while the transaction holds it.
    let answer = if complete {
        let approved = apps::moved(&mut tx, &app.id, Status::Approved, "").await?;
        outbox::append(&mut tx, crate::PRODUCER, approved_event(&app, approvers)).await?;
        wire::application(&approved, &approvals)
    } else {
        wire::application(&app, &approvals)
    };
    outbox::commit(tx, crate::PRODUCER).await?;
    Ok(answer)
}

async fn reject(
    pool: &PgPool,
    who: &Caller,
    r: &pb::RejectApplicationRequest,
) -> Result<pb::SubsidyApplication, Error> {
    check_id(&r.id)?;
    application::check_reason(&r.reason)?;
    let mut tx = pool.begin().await?;
    let app = apps::lock(&mut tx, &r.id)
        .await?
        .ok_or_else(|| Error::not_found(format!("application {} not found", r.id)))?;
    let approvals = apps::approvals(&mut tx, std::slice::from_ref(&app.id)).await?;
    let approvers: Vec<String> = approvals.iter().map(|a| a.approver.clone()).collect();
    application::reject(&review(&app, &approvers), who, &r.reason)?;
    let reason = r.reason.trim();
    let rejected = apps::moved(&mut tx, &app.id, Status::Rejected, reason).await?;
    audit::by(
        &mut tx,
        who,
        "application.rejected",
        &app.id,
        serde_json::json!({
            "kind": app.kind, "payee": app.payee, "amount_fen": app.amount_fen, "reason": reason,
        }),
    )
    .await?;
    let payload = Payload::SubsidyRejected(SubsidyRejected {
        application_id: app.id.clone(),
        enterprise_id: app.enterprise_id.clone(),
        rejected_by: who.subject.clone(),
        reason: reason.to_string(),
        kind: app.kind().to_application_proto() as i32,
        payee: app.payee.clone(),
    });
    outbox::append(
        &mut tx,
        crate::PRODUCER,
        NewEvent::new(&app.id, app.version + 1, payload),
    )
    .await?;
    let answer = wire::application(&rejected, &approvals);
    outbox::commit(tx, crate::PRODUCER).await?;
    Ok(answer)
}

const MAX_ID_CHARS: usize = 100;

fn check_id(id: &str) -> Result<(), Error> {
    let mut v = Violations::new();
    input::check_id(&mut v, "id", id, MAX_ID_CHARS);
    v.into_result()
}

#[tonic::async_trait]
impl SubsidyService for SubsidyApi {
    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::Payment>, GrpcStatus> {
        let who = caller(&request)?;
        Ok(Response::new(
            super::payments::record(&self.pool, &who, request.get_ref()).await?,
        ))
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::SubsidyApplication>, GrpcStatus> {
        let who = caller(&request)?;
        check_id(&request.get_ref().id)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        Ok(Response::new(
            load(&mut conn, &request.get_ref().id, &who).await?,
        ))
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, GrpcStatus> {
        let who = caller(&request)?;
        let r = request.get_ref();
        let limit = paging::page_size(r.page_size)?;
        let status = match pb::ApplicationStatus::try_from(r.status) {
            Ok(pb::ApplicationStatus::Unspecified) => None,
            Ok(s) => Status::from_proto(s),
            Err(_) => return Err(Error::invalid("status", "is not an application status").into()),
        };
        let mut kind = Kind::application_filter(r.kind)
            .ok_or_else(|| Error::invalid("kind", "is not an application kind"))?;
        let enterprise = if reads_everything(&who) {
            (!r.enterprise_id.is_empty()).then_some(r.enterprise_id.as_str())
        } else {
            who.require(&[Role::Enterprise])?;
            let own = who.enterprise_id.as_deref().unwrap_or_default();
            if !r.enterprise_id.is_empty() && r.enterprise_id != own {
                return Err(Error::PermissionDenied(
                    "an enterprise lists only its own applications".into(),
                )
                .into());
            }
            // An enterprise lists its subsidies only: a broker's reward is not its business.
            if kind == Some(Kind::BrokerReward) {
                return Err(Error::PermissionDenied(
                    "an enterprise lists only its own subsidies".into(),
                )
                .into());
            }
            kind = Some(Kind::Subsidy);
            Some(own)
        };
        // The filters a page token is bound to; as before kinds existed when none is asked for
        // (an enterprise's kind is always its subsidies), so tokens handed out then still work.
        let mut query = format!("{}|{}", r.status, enterprise.unwrap_or(""));
        if r.kind != 0 {
            query.push_str(&format!("|{}", r.kind));
        }
        let after: Option<(DateTime<Utc>, String)> = paging::decode_token(&query, &r.page_token)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = apps::page(&mut conn, status, enterprise, kind, after, limit + 1).await?;
        let (page, next_page_token) =
            paging::finish(rows, limit, &query, |a| (a.created_at, a.id.clone()));
        let ids: Vec<String> = page.iter().map(|a| a.id.clone()).collect();
        let approvals = apps::approvals(&mut conn, &ids).await?;
        Ok(Response::new(pb::ListApplicationsResponse {
            applications: page
                .iter()
                .map(|a| wire::application(a, &approvals))
                .collect(),
            next_page_token,
        }))
    }

    async fn approve_application(
        &self,
        request: Request<pb::ApproveApplicationRequest>,
    ) -> Result<Response<pb::SubsidyApplication>, GrpcStatus> {
        let who = caller(&request)?;
        let r = request.get_ref();
        check_approval(r)?;
        let answer = match self.approvals.approve(&who, &r.id, &r.note).await {
            Outcome::Answered(answer) => (*answer)?,
            Outcome::Alone => approve(&self.pool, &who, r).await?,
        };
        Ok(Response::new(answer))
    }

    async fn reject_application(
        &self,
        request: Request<pb::RejectApplicationRequest>,
    ) -> Result<Response<pb::SubsidyApplication>, GrpcStatus> {
        let who = caller(&request)?;
        Ok(Response::new(
            reject(&self.pool, &who, request.get_ref()).await?,
        ))
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, GrpcStatus> {
        let who = caller(&request)?;
        who.require(FINANCE_READERS)?;
        let r = request.get_ref();
        let limit = paging::page_size(r.page_size)?;
        let after: i64 = paging::decode_token("audit", &r.page_token)?.unwrap_or(0);
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = audit::page(&mut conn, after, limit + 1).await?;
        let (entries, next_page_token) = paging::finish(rows, limit, "audit", |e| e.sequence);
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AuditEntry {
                    sequence: e.sequence,
                    time: DateTime::parse_from_rfc3339(&e.at)
                        .ok()
                        .map(|t| kechuang_platform::events::timestamp(t.with_timezone(&Utc))),
                    actor: e.actor,
                    role: e.role,
                    action: e.action,
                    target_id: e.target_id,
                    details: e.details,
                    prev_hash: e.prev_hash,
                    hash: e.hash,
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn verify_audit_trail(
        &self,
        request: Request<pb::VerifyAuditTrailRequest>,
    ) -> Result<Response<pb::AuditTrailReport>, GrpcStatus> {
        let who = caller(&request)?;
        who.require(FINANCE_READERS)?;
        // The anchor first: whatever it names was committed before, so the trail read after
        // it must hold it.
        let latest = self.anchors.latest().await?;
        let (anchor, anchored_sequence, forged) = match latest {
            Latest::Found(anchor) => {
                let sequence = anchor.sequence;
                (Some(anchor), sequence, None)
            }
            Latest::None => (None, 0, None),
            Latest::Unauthentic(why) => (None, 0, Some(why)),
        };
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let (entry_count, checked) = audit::check(&mut conn, anchor).await?;
        let checked = checked.and_then(|()| match forged {
            Some(why) => Err((
                0,
                format!("the latest anchor on the bus is not the subsidy service's: {why}"),
            )),
            None => Ok(()),
        });
        let (first_broken_sequence, problem) = checked.err().unwrap_or_default();
        Ok(Response::new(pb::AuditTrailReport {
            entry_count,
            intact: problem.is_empty(),
            first_broken_sequence,
            problem,
            anchored_sequence,
        }))
    }
}
