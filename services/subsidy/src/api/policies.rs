use crate::domain::policy::review::{self, Review};
use crate::domain::policy::{self, Kind, Limits, Policy, PolicyDraft, PolicyStatus, Tier};
use crate::store::{audit, policies};
use crate::wire;
use chrono::{DateTime, Utc};
use kechuang_platform::auth::caller;
use kechuang_platform::events::from_timestamp;
use kechuang_platform::idempotency::{self, Claim};
use kechuang_platform::{Caller, Error, NewEvent, Role, outbox, paging};
use kechuang_proto::events::{PolicyCreated, envelope::Payload};
use kechuang_proto::subsidy as pb;
use kechuang_proto::subsidy::policy_service_server::PolicyService;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct PolicyApi {
    pool: PgPool,
    limits: Limits,
}

impl PolicyApi {
    pub fn new(pool: PgPool, limits: Limits) -> Self {
        Self { pool, limits }
    }
}

pub fn draft(r: &pb::CreatePolicyRequest) -> PolicyDraft {
    PolicyDraft {
        name: r.name.clone(),
        fund_id: r.fund_id.clone(),
        tiers: r
            .tiers
            .iter()
            .map(|t| Tier {
                from_cumulative_fen: t.from_cumulative_fen,
                ratio_bps: t.ratio_bps,
            })
            .collect(),
        per_contract_cap_fen: r.per_contract_cap_fen,
        per_enterprise_annual_cap_fen: r.per_enterprise_annual_cap_fen,
        contract_types: r.contract_types.clone(),
        region_prefixes: r.region_prefixes.clone(),
        industry_chains: r.industry_chains.clone(),
        valid_from: r.valid_from.as_ref().and_then(from_timestamp),
        valid_to: r.valid_to.as_ref().and_then(from_timestamp),
        four_eyes_threshold_fen: r.four_eyes_threshold_fen,
        claim_window_days: policy::claim_window_or_default(r.claim_window_days),
        subsidise_unregistered: r.subsidise_unregistered,
        // An unknown number is refused by `checked`.
        kind: Kind::from_policy_proto(r.kind).unwrap_or_default(),
    }
}

/// The request as a draft, or every rule it breaks.
fn checked(request: &pb::CreatePolicyRequest, limits: &Limits) -> Result<PolicyDraft, Error> {
    let d = draft(request);
    let mut v = policy::validate(&d, limits);
    v.check(
        Kind::from_policy_proto(request.kind).is_some(),
        "kind",
        "must be SUBSIDY or BROKER_REWARD",
    );
    for (field, t) in [
        ("valid_from", &request.valid_from),
        ("valid_to", &request.valid_to),
    ] {
        v.check(
            t.as_ref().is_none_or(|t| from_timestamp(t).is_some()),
            field,
            "is not a valid time",
        );
    }
    v.into_result()?;
    Ok(d)
}

/// Inserts the proposal and announces it (`kc.policy.created`), in the caller's transaction,
/// with `true`; when its request id was already used, the earlier policy, unchanged, with
/// `false`.
pub(crate) async fn insert_proposal(
    tx: &mut PgConnection,
    id: &str,
    request: &pb::CreatePolicyRequest,
    limits: &Limits,
    proposer: &Caller,
) -> Result<(Policy, bool), Error> {
    let proposed_by = proposer.subject.as_str();
    let scope = idempotency::Scope::of("CreatePolicy", proposer);
    let d = checked(request, limits)?;
    if !request.request_id.is_empty() {
        let fingerprint = idempotency::fingerprint(request);
        if let Claim::Existing(existing) =
            idempotency::claim(tx, &scope, &request.request_id, &fingerprint).await?
        {
            let earlier = policies::get(tx, &existing)
                .await?
                .ok_or_else(|| Error::internal("idempotent policy vanished"))?;
            return Ok((earlier, false));
        }
        idempotency::record(tx, &scope, &request.request_id, &fingerprint, id).await?;
    }
    let created = policies::insert(tx, id, &d, proposed_by).await?;
    let payload = Payload::PolicyCreated(PolicyCreated {
        policy_id: created.id.clone(),
        name: created.name.clone(),
        fund_id: created.fund_id.clone(),
        version: created.version,
        created_by: proposed_by.to_string(),
        kind: created.kind.to_application_proto() as i32,
    });
    outbox::append(tx, crate::PRODUCER, NewEvent::new(&created.id, 1, payload)).await?;
    Ok((created, true))
}

/// What the audit trail keeps of a version's terms.
pub(crate) fn terms(p: &Policy) -> serde_json::Value {
    serde_json::json!({
        "name": p.name, "version": p.version, "fund_id": p.fund_id, "tiers": p.tiers,
        "per_contract_cap_fen": p.per_contract_cap_fen,
        "per_enterprise_annual_cap_fen": p.per_enterprise_annual_cap_fen,
        "region_prefixes": p.region_prefixes, "four_eyes_threshold_fen": p.four_eyes_threshold_fen,
        "claim_window_days": p.claim_window_days, "status": p.status.as_str(),
        "subsidise_unregistered": p.subsidise_unregistered, "kind": p.kind.as_str(),
    })
}

/// A finance officer proposes a version: PROPOSED, audited and announced, in one transaction.
pub async fn propose(
    pool: &PgPool,
    id: &str,
    request: &pb::CreatePolicyRequest,
    who: &Caller,
    limits: &Limits,
) -> Result<Policy, Error> {
    who.require(&[Role::FinanceOfficer])?;
    let mut tx = pool.begin().await?;
    let (proposed, new) = insert_proposal(&mut tx, id, request, limits, who).await?;
    if new {
        audit::by(
            &mut tx,
            who,
            "policy.proposed",
            &proposed.id,
            terms(&proposed),
        )
        .await?;
    }
    outbox::commit(tx, crate::PRODUCER).await?;
    Ok(proposed)
}

/// A decision on a proposed version.
enum Decision<'a> {
    Approve { note: &'a str },
    Reject { reason: &'a str },
}

async fn decide(
    pool: &PgPool,
    who: &Caller,
    policy_id: &str,
    decision: Decision<'_>,
) -> Result<Policy, Error> {
    who.require(&[Role::FinanceApprover])?;
    if policy_id.trim().is_empty() || policy_id.len() > 100 {
        return Err(Error::invalid("policy_id", "is required"));
    }
    let not_found = || Error::not_found(format!("policy {policy_id} not found"));
    let mut tx = pool.begin().await?;
    let name = policies::get(&mut tx, policy_id)
        .await?
        .ok_or_else(not_found)?
        .name;
    // Decisions on one name, one at a time: the line has at most one version in force.
    policies::lock_name(&mut tx, &name).await?;
    let p = policies::lock(&mut tx, policy_id)
        .await?
        .ok_or_else(not_found)?;
    let review = Review {
        status: p.status,
        version: p.version,
        proposed_by: &p.created_by,
        in_force_version: policies::in_force_version(&mut tx, &p.name).await?,
    };
    let decided = match decision {
        Decision::Approve { note } => {
            review::approve(&review, who, note)?;
            let superseded =
                policies::supersede_earlier(&mut tx, &p.name, p.version, &p.id).await?;
            let decided = policies::decide(
                &mut tx,
                &p.id,
                PolicyStatus::InForce,
                &who.subject,
                note.trim(),
            )
            .await?;
            let mut details = terms(&decided);
            details["note"] = note.trim().into();
            details["proposed_by"] = p.created_by.clone().into();
            details["superseded"] = superseded
                .iter()
                .map(|(id, was)| serde_json::json!({ "policy_id": id, "was": was }))
                .collect();
            audit::by(&mut tx, who, "policy.approved", &p.id, details).await?;
            decided
        }
        Decision::Reject { reason } => {
            review::reject(&review, who, reason)?;
            let decided = policies::decide(
                &mut tx,
                &p.id,
                PolicyStatus::Rejected,
                &who.subject,
                reason.trim(),
            )
            .await?;
            let mut details = terms(&decided);
            details["reason"] = reason.trim().into();
            details["proposed_by"] = p.created_by.clone().into();
            audit::by(&mut tx, who, "policy.rejected", &p.id, details).await?;
            decided
        }
    };
    outbox::commit(tx, crate::PRODUCER).await?;
    Ok(decided)
}

#[tonic::async_trait]
impl PolicyService for PolicyApi {
    async fn create_policy(
        &self,
        request: Request<pb::CreatePolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let who = caller(&request)?;
        let id = format!("pol-{}", uuid::Uuid::now_v7().simple());
        let proposed = propose(&self.pool, &id, request.get_ref(), &who, &self.limits).await?;
        Ok(Response::new(wire::policy(&proposed)))
    }

    async fn approve_policy(
        &self,
        request: Request<pb::ApprovePolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let who = caller(&request)?;
        let r = request.get_ref();
        let note = Decision::Approve { note: &r.note };
        let decided = decide(&self.pool, &who, &r.policy_id, note).await?;
        Ok(Response::new(wire::policy(&decided)))
    }

    async fn reject_policy(
        &self,
        request: Request<pb::RejectPolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let who = caller(&request)?;
        let r = request.get_ref();
        let reason = Decision::Reject { reason: &r.reason };
        let decided = decide(&self.pool, &who, &r.policy_id, reason).await?;
        Ok(Response::new(wire::policy(&decided)))
    }

    async fn list_policies(
        &self,
        request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        caller(&request)?; // policies are public to every signed-in user
        let r = request.get_ref();
        let limit = paging::page_size(r.page_size)?;
        let status = match pb::PolicyStatus::try_from(r.status) {
            Ok(pb::PolicyStatus::Unspecified) => None,
            Ok(s) => PolicyStatus::from_proto(s),
            Err(_) => return Err(Error::invalid("status", "is not a policy status").into()),
        };
        let query = format!("policies|{}", r.status);
        let after: Option<(DateTime<Utc>, String)> = paging::decode_token(&query, &r.page_token)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = policies::page(&mut conn, status, after, limit + 1).await?;
        let (page, next_page_token) =
            paging::finish(rows, limit, &query, |p| (p.created_at, p.id.clone()));
        Ok(Response::new(pb::ListPoliciesResponse {
            policies: page.iter().map(wire::policy).collect(),
            next_page_token,
        }))
    }
}
