use super::convert;
use crate::domain::policy::{self, PolicyDraft, Tier};
use crate::store::{audit, policies};
use chrono::{DateTime, Utc};
use kechuang_platform::auth::caller;
use kechuang_platform::events::from_timestamp;
use kechuang_platform::idempotency::{self, Claim};
use kechuang_platform::{Error, NewEvent, Role, outbox, paging};
use kechuang_proto::events::{PolicyCreated, envelope::Payload};
use kechuang_proto::subsidy::policy_service_server::PolicyService;
use kechuang_proto::subsidy::{
    CreatePolicyRequest, ListPoliciesRequest, ListPoliciesResponse, Policy,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct PolicyApi {
    pool: PgPool,
}

impl PolicyApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

pub fn draft(r: &CreatePolicyRequest) -> PolicyDraft {
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
    }
}

/// Creates a policy version, audited and announced, in one transaction.
pub async fn create(
    pool: &PgPool,
    id: &str,
    request: &CreatePolicyRequest,
    actor: &str,
    role: &str,
) -> Result<crate::domain::policy::Policy, Error> {
    let d = draft(request);
    let mut v = policy::validate(&d);
    v.check(
        request
            .valid_from
            .as_ref()
            .is_none_or(|t| from_timestamp(t).is_some()),
        "valid_from",
        "is not a valid time",
    );
    v.check(
        request
            .valid_to
            .as_ref()
            .is_none_or(|t| from_timestamp(t).is_some()),
        "valid_to",
        "is not a valid time",
    );
    v.into_result()?;
    let mut tx = pool.begin().await?;
    if !request.request_id.is_empty() {
        let fingerprint = idempotency::fingerprint(request);
        if let Claim::Existing(existing) =
            idempotency::claim(&mut tx, "policy", &request.request_id, &fingerprint).await?
        {
            return policies::get(&mut tx, &existing)
                .await?
                .ok_or_else(|| Error::internal("idempotent policy vanished"));
        }
        idempotency::record(&mut tx, "policy", &request.request_id, &fingerprint, id).await?;
    }
    let created = policies::insert(&mut tx, id, &d, actor).await?;
    audit::append(
        &mut tx,
        actor,
        role,
        "policy.created",
        &created.id,
        serde_json::json!({
            "name": created.name, "version": created.version, "fund_id": created.fund_id,
            "tiers": created.tiers, "per_contract_cap_fen": created.per_contract_cap_fen,
            "per_enterprise_annual_cap_fen": created.per_enterprise_annual_cap_fen,
            "region_prefixes": created.region_prefixes, "four_eyes_threshold_fen": created.four_eyes_threshold_fen,
        }),
    )
    .await?;
    let payload = Payload::PolicyCreated(PolicyCreated {
        policy_id: created.id.clone(),
        name: created.name.clone(),
        fund_id: created.fund_id.clone(),
        version: created.version,
        created_by: actor.to_string(),
    });
    outbox::append(
        &mut tx,
        crate::PRODUCER,
        NewEvent::new(&created.id, 1, payload),
    )
    .await?;
    outbox::commit(tx).await?;
    Ok(created)
}

#[tonic::async_trait]
impl PolicyService for PolicyApi {
    async fn create_policy(
        &self,
        request: Request<CreatePolicyRequest>,
    ) -> Result<Response<Policy>, Status> {
        let who = caller(&request)?;
        who.require(&[Role::FinanceOfficer])?;
        let id = format!("pol-{}", uuid::Uuid::now_v7().simple());
        let created = create(
            &self.pool,
            &id,
            request.get_ref(),
            &who.subject,
            who.role.as_str(),
        )
        .await?;
        Ok(Response::new(convert::policy(&created)))
    }

    async fn list_policies(
        &self,
        request: Request<ListPoliciesRequest>,
    ) -> Result<Response<ListPoliciesResponse>, Status> {
        caller(&request)?; // policies are public to every signed-in user
        let r = request.get_ref();
        let limit = paging::page_size(r.page_size)?;
        let after: Option<(DateTime<Utc>, String)> =
            paging::decode_token("policies", &r.page_token)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = policies::page(&mut conn, after, limit + 1).await?;
        let (page, next_page_token) =
            paging::finish(rows, limit, "policies", |p| (p.created_at, p.id.clone()));
        Ok(Response::new(ListPoliciesResponse {
            policies: page.iter().map(convert::policy).collect(),
            next_page_token,
        }))
    }
}
