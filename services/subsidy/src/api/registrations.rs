//! RegistrationService: registrars certify or refuse signed contracts; each decision is one
//! transaction with its event (through the outbox) and its entry in the audit trail.

use super::reads_everything;
use crate::domain::figures;
use crate::domain::registration::{self, Outcome, REGISTRARS};
use crate::judging;
use crate::store::audit;
use crate::store::figures as tallies;
use crate::store::registrations::{self as regs, Registration};
use crate::wire;
use chrono::{DateTime, Utc};
use kechuang_platform::auth::caller;
use kechuang_platform::events::timestamp;
use kechuang_platform::{Caller, Error, NewEvent, Role, input, outbox, paging};
use kechuang_proto::events::{RegistrationCertified, RegistrationRefused, envelope::Payload};
use kechuang_proto::subsidy as pb;
use kechuang_proto::subsidy::registration_service_server::RegistrationService;
use sqlx::{PgPool, Postgres, Transaction};
use tonic::{Request, Response, Status as GrpcStatus};

#[derive(Clone)]
pub struct RegistrationApi {
    pool: PgPool,
}

impl RegistrationApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The registration, locked; an unknown contract id is NOT_FOUND.
async fn locked(
    tx: &mut Transaction<'_, Postgres>,
    contract_id: &str,
) -> Result<Registration, Error> {
    regs::lock(tx, contract_id).await?.ok_or_else(|| {
        Error::not_found(format!("contract {} not found", input::quote(contract_id)))
    })
}

async fn certify(
    pool: &PgPool,
    who: &Caller,
    r: &pb::CertifyContractRequest,
) -> Result<pb::Registration, Error> {
    // The role first: someone who may not certify learns nothing about contracts or input.
    who.require(REGISTRARS)?;
    let c = registration::certification(r)?;
    let mut tx = pool.begin().await?;
    let reg = locked(&mut tx, &r.contract_id).await?;
    let now = Utc::now();
    if registration::certify(&reg.standing(), &c, who, now)? == Outcome::AlreadyDecided {
        return Ok(wire::registration(&reg, now));
    }
    regs::certify(&mut tx, &reg.contract_id, &c, &who.subject, now).await?;
    // Before the audit entry: the audit chain's lock is always taken last.
    let decided = locked(&mut tx, &reg.contract_id).await?;
    let judged = judging::awaiting(&mut tx, &decided, now).await?;
    audit::by(
        &mut tx,
        who,
        "registration.certified",
        &reg.contract_id,
        serde_json::json!({
            "registration_no": c.registration_no,
            "contract_type": c.contract_type.as_str_name(),
            "declared_contract_type": reg.declared_contract_type,
            "certified_amount_fen": c.certified_amount_fen,
            "contract_amount_fen": reg.contract_amount_fen,
            "note": c.note,
            "applications_judged": judged,
        }),
    )
    .await?;
    let payload = Payload::RegistrationCertified(RegistrationCertified {
        contract_id: reg.contract_id.clone(),
        enterprise_id: reg.enterprise_id.clone(),
        registration_no: c.registration_no.clone(),
        contract_type: c.contract_type as i32,
        certified_amount_fen: c.certified_amount_fen,
        contract_amount_fen: reg.contract_amount_fen,
        registrar: who.subject.clone(),
        certified_at: Some(timestamp(now)),
        note: c.note.clone(),
    });
    finish(tx, &reg, payload, now).await
}

async fn refuse(
    pool: &PgPool,
    who: &Caller,
    r: &pb::RefuseRegistrationRequest,
) -> Result<pb::Registration, Error> {
    who.require(REGISTRARS)?;
    let reason = registration::refusal(r)?;
    let mut tx = pool.begin().await?;
    let reg = locked(&mut tx, &r.contract_id).await?;
    let now = Utc::now();
    if registration::refuse(&reg.standing(), &reason, who, now)? == Outcome::AlreadyDecided {
        return Ok(wire::registration(&reg, now));
    }
    regs::refuse(&mut tx, &reg.contract_id, &reason, &who.subject, now).await?;
    let decided = locked(&mut tx, &reg.contract_id).await?;
    let judged = judging::awaiting(&mut tx, &decided, now).await?;
    audit::by(
        &mut tx,
        who,
        "registration.refused",
        &reg.contract_id,
        serde_json::json!({
            "reason": reason,
            "contract_amount_fen": reg.contract_amount_fen,
            "applications_judged": judged,
        }),
    )
    .await?;
    let payload = Payload::RegistrationRefused(RegistrationRefused {
        contract_id: reg.contract_id.clone(),
        enterprise_id: reg.enterprise_id.clone(),
        reason,
        registrar: who.subject.clone(),
        refused_at: Some(timestamp(now)),
    });
    finish(tx, &reg, payload, now).await
}

/// The monthly figures of the months asked for (registrars, finance and auditors).
async fn monthly_figures(
    pool: &PgPool,
    who: &Caller,
    r: &pb::GetMonthlyFiguresRequest,
) -> Result<pb::MonthlyFigures, Error> {
    who.require(figures::READERS)?;
    let q = figures::query(r)?;
    let (start, end) = q.window();
    let mut conn = pool.acquire().await?;
    let tallies = tallies::tallies(&mut conn, start, end).await?;
    Ok(pb::MonthlyFigures {
        from_month: q.from.to_string(),
        to_month: q.to.to_string(),
        rows: figures::rows(&tallies, &q.region_prefix),
        region_prefix: q.region_prefix,
    })
}

/// The decision's event, the commit, and the registration as it now stands.
async fn finish(
    mut tx: Transaction<'_, Postgres>,
    before: &Registration,
    payload: Payload,
    now: DateTime<Utc>,
) -> Result<pb::Registration, Error> {
    outbox::append(
        &mut tx,
        crate::PRODUCER,
        NewEvent::new(&before.contract_id, before.version + 1, payload),
    )
    .await?;
    let after = locked(&mut tx, &before.contract_id).await?;
    outbox::commit(tx, crate::PRODUCER).await?;
    Ok(wire::registration(&after, now))
}

#[tonic::async_trait]
impl RegistrationService for RegistrationApi {
    async fn list_registrations(
        &self,
        request: Request<pb::ListRegistrationsRequest>,
    ) -> Result<Response<pb::ListRegistrationsResponse>, GrpcStatus> {
        let who = caller(&request)?;
        let r = request.get_ref();
        let enterprise = if reads_everything(&who) || who.has(Role::Registrar) {
            None
        } else {
            // An enterprise reads its own contracts' registrations; nobody else reads any.
            who.require(&[Role::Enterprise])?;
            Some(who.enterprise_id.clone().unwrap_or_default())
        };
        let limit = paging::page_size(r.page_size)?;
        let status = match pb::RegistrationStatus::try_from(r.status) {
            Ok(pb::RegistrationStatus::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => return Err(Error::invalid("status", "is not a registration status").into()),
        };
        let query = format!("{}|{}", r.status, enterprise.as_deref().unwrap_or(""));
        let after: Option<(DateTime<Utc>, String)> = paging::decode_token(&query, &r.page_token)?;
        let now = Utc::now();
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = regs::page(
            &mut conn,
            status,
            enterprise.as_deref(),
            now,
            after,
            limit + 1,
        )
        .await?;
        let (page, next_page_token) =
            paging::finish(rows, limit, &query, |g| (g.deadline, g.contract_id.clone()));
        Ok(Response::new(pb::ListRegistrationsResponse {
            registrations: page.iter().map(|g| wire::registration(g, now)).collect(),
            next_page_token,
        }))
    }

    async fn certify_contract(
        &self,
        request: Request<pb::CertifyContractRequest>,
    ) -> Result<Response<pb::Registration>, GrpcStatus> {
        let who = caller(&request)?;
        Ok(Response::new(
            certify(&self.pool, &who, request.get_ref()).await?,
        ))
    }

    async fn refuse_registration(
        &self,
        request: Request<pb::RefuseRegistrationRequest>,
    ) -> Result<Response<pb::Registration>, GrpcStatus> {
        let who = caller(&request)?;
        Ok(Response::new(
            refuse(&self.pool, &who, request.get_ref()).await?,
        ))
    }

    async fn get_monthly_figures(
        &self,
        request: Request<pb::GetMonthlyFiguresRequest>,
    ) -> Result<Response<pb::MonthlyFigures>, GrpcStatus> {
        let who = caller(&request)?;
        Ok(Response::new(
            monthly_figures(&self.pool, &who, request.get_ref()).await?,
        ))
    }
}
