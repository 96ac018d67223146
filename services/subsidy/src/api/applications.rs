use super::{FINANCE_READERS, convert, reads_everything};
use crate::domain::application::{self, Approval, Review, Status};
use crate::domain::calculator;
use crate::domain::policy::{Choice, PaymentFacts, choose};
use crate::store::applications::{self as apps, Application, Payment};
use crate::store::{audit, contracts, policies};
use chrono::{DateTime, Datelike, FixedOffset, SubsecRound, Utc};
use kechuang_platform::auth::caller;
use kechuang_platform::events::from_timestamp;
use kechuang_platform::locks::{self, LockSpace};
use kechuang_platform::{Caller, Error, NewEvent, Role, Violations, outbox, paging};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::{
    PaymentRecorded, SubsidyApproved, SubsidyRejected, envelope::Payload,
};
use kechuang_proto::subsidy as pb;
use kechuang_proto::subsidy::subsidy_service_server::SubsidyService;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status as GrpcStatus};

#[derive(Clone)]
pub struct SubsidyApi {
    pool: PgPool,
}

impl SubsidyApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The calendar year of a payment, in China time: the annual cap's year.
fn china_year(t: DateTime<Utc>) -> i32 {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .year()
}

async fn load(
    conn: &mut PgConnection,
    id: &str,
    who: &Caller,
) -> Result<pb::SubsidyApplication, Error> {
    let app = apps::get(conn, id)
        .await?
        .filter(|a| reads_everything(who) || who.is_enterprise(&a.enterprise_id));
    let Some(app) = app else {
        return Err(Error::not_found(format!("application {id} not found")));
    };
    let approvals = apps::approvals(conn, std::slice::from_ref(&app.id)).await?;
    Ok(convert::application(&app, &approvals))
}

async fn record_payment(
    pool: &PgPool,
    who: &Caller,
    r: &pb::RecordPaymentRequest,
) -> Result<pb::Payment, Error> {
    who.require(&[Role::Enterprise])?;
    let paid_at = r.paid_at.as_ref().and_then(from_timestamp);
    let now = Utc::now();
    let mut v = Violations::new();
    v.check(
        !r.contract_id.trim().is_empty(),
        "contract_id",
        "is required",
    );
    v.check(r.amount_fen > 0, "amount_fen", "must be positive");
    match paid_at {
        None => {
            v.add("paid_at", "is required");
        }
        Some(t) => {
            v.check(
                t <= now + chrono::Duration::minutes(5),
                "paid_at",
                "must not be in the future",
            );
        }
    }
    let reference_len = r.bank_reference.trim().chars().count();
    v.check(
        (4..=64).contains(&reference_len),
        "bank_reference",
        "must be 4 to 64 characters",
    );
    v.into_result()?;
    // Postgres keeps microseconds: compare and store at that precision.
    let paid_at = paid_at.expect("checked").trunc_subsecs(6);
    let reference = r.bank_reference.trim();

    let mut tx = pool.begin().await?;
    // A repeated bank reference waits for the first, then returns it.
    locks::lock(&mut tx, LockSpace::BankReference, reference).await?;
    if let Some((existing, application_id)) = apps::payment_by_reference(&mut tx, reference).await?
    {
        let same = existing.contract_id == r.contract_id
            && existing.amount_fen == r.amount_fen
            && existing.paid_at == paid_at
            && who.is_enterprise(&existing.enterprise_id);
        if same {
            return Ok(convert::payment(&existing, &application_id));
        }
        return Err(Error::invalid(
            "bank_reference",
            "was already recorded for another payment",
        ));
    }
    let contract = contracts::lock(&mut tx, &r.contract_id)
        .await?
        .filter(|c| who.is_enterprise(&c.enterprise_id))
        .ok_or_else(|| Error::not_found(format!("contract {} not found", r.contract_id)))?;
    if paid_at < contract.signed_at - chrono::Duration::days(1) {
        return Err(Error::invalid(
            "paid_at",
            "is before the contract was signed",
        ));
    }
    if contract.paid_fen + r.amount_fen > contract.amount_fen {
        return Err(Error::invalid(
            "amount_fen",
            format!(
                "would bring the total paid to {} fen, above the contract amount of {} fen",
                contract.paid_fen + r.amount_fen,
                contract.amount_fen
            ),
        ));
    }
    // One enterprise's payments are judged one at a time: they share the annual cap.
    locks::lock(
        &mut tx,
        LockSpace::EnterprisePayments,
        &contract.enterprise_id,
    )
    .await?;
    let year = china_year(paid_at);
    let standing = apps::standing(&mut tx, &contract.enterprise_id, year, &contract.id).await?;
    let all_policies = policies::in_force(&mut tx).await?;
    let contract_type =
        ContractType::try_from(contract.contract_type).unwrap_or(ContractType::Unspecified);
    let facts = PaymentFacts {
        paid_at,
        contract_type,
        region_code: &contract.region_code,
        industry_chain: &contract.industry_chain,
    };
    let payment = Payment {
        id: format!("pay-{}", uuid::Uuid::now_v7().simple()),
        contract_id: contract.id.clone(),
        enterprise_id: contract.enterprise_id.clone(),
        amount_fen: r.amount_fen,
        paid_at,
        bank_reference: reference.to_string(),
        created_at: now,
    };
    let mut app = Application {
        id: format!("app-{}", uuid::Uuid::now_v7().simple()),
        payment_id: payment.id.clone(),
        contract_id: contract.id.clone(),
        enterprise_id: contract.enterprise_id.clone(),
        policy_id: None,
        fund_id: None,
        payment_amount_fen: r.amount_fen,
        amount_fen: 0,
        entitled_exact: 0,
        paid_year: year,
        status: Status::Ineligible.as_str().into(),
        status_reason: String::new(),
        computation: vec![],
        required_approvals: 1,
        recorded_by: who.subject.clone(),
        approved_at: None,
        payout_reference: String::new(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    match choose(&all_policies, &facts) {
        Choice::Applies(policy) => {
            let grant = calculator::compute(policy, standing, r.amount_fen);
            app.policy_id = Some(policy.id.clone());
            app.fund_id = Some(policy.fund_id.clone());
            app.computation = grant.steps;
            if grant.amount_fen > 0 {
                app.amount_fen = grant.amount_fen;
                app.entitled_exact = grant.entitled_exact;
                app.status = Status::PendingReview.as_str().into();
                app.required_approvals = policy.required_approvals(grant.amount_fen);
            } else {
                app.status_reason = "按政策核定的补贴为零（已达上限或金额过小）".into();
            }
        }
        Choice::Ineligible(reasons) => {
            app.status_reason = reasons.join("；");
            app.computation = reasons;
        }
    }
    apps::insert_payment(&mut tx, &payment, &who.subject).await?;
    apps::insert(&mut tx, &app).await?;
    contracts::add_paid(&mut tx, &contract.id, r.amount_fen).await?;
    let event = Payload::PaymentRecorded(PaymentRecorded {
        payment_id: payment.id.clone(),
        contract_id: contract.id.clone(),
        enterprise_id: contract.enterprise_id.clone(),
        amount_fen: r.amount_fen,
        paid_at: Some(kechuang_platform::events::timestamp(paid_at)),
        bank_reference: reference.to_string(),
        application_id: app.id.clone(),
    });
    outbox::append(
        &mut tx,
        crate::PRODUCER,
        NewEvent::new(&payment.id, 1, event),
    )
    .await?;
    outbox::commit(tx).await?;
    Ok(convert::payment(&payment, &app.id))
}

fn review<'a>(app: &'a Application, approvers: &'a [String]) -> Review<'a> {
    Review {
        status: app.status(),
        enterprise_id: &app.enterprise_id,
        recorded_by: &app.recorded_by,
        approvers,
        required_approvals: app.required_approvals,
    }
}

async fn approve(
    pool: &PgPool,
    who: &Caller,
    r: &pb::ApproveApplicationRequest,
) -> Result<pb::SubsidyApplication, Error> {
    check_id(&r.id)?;
    if r.note.chars().count() > 500 {
        return Err(Error::invalid("note", "must be at most 500 characters"));
    }
    let mut tx = pool.begin().await?;
    let app = apps::lock(&mut tx, &r.id)
        .await?
        .ok_or_else(|| Error::not_found(format!("application {} not found", r.id)))?;
    let mut approvers: Vec<String> = apps::approvals(&mut tx, std::slice::from_ref(&app.id))
        .await?
        .into_iter()
        .map(|a| a.approver)
        .collect();
    let outcome = application::approve(&review(&app, &approvers), who)?;
    apps::add_approval(&mut tx, &app.id, &who.subject, r.note.trim()).await?;
    approvers.push(who.subject.clone());
    let complete = outcome == Approval::Complete;
    audit::by(
        &mut tx,
        who,
        "application.approved",
        &app.id,
        serde_json::json!({
            "amount_fen": app.amount_fen, "note": r.note.trim(), "approvals": approvers.len(),
            "required_approvals": app.required_approvals, "complete": complete,
        }),
    )
    .await?;
    if complete {
        apps::set_status(&mut tx, &app.id, Status::Approved, "").await?;
        let payload = Payload::SubsidyApproved(SubsidyApproved {
            application_id: app.id.clone(),
            fund_id: app.fund_id.clone().unwrap_or_default(),
            enterprise_id: app.enterprise_id.clone(),
            contract_id: app.contract_id.clone(),
            amount_fen: app.amount_fen,
            approvers,
        });
        outbox::append(
            &mut tx,
            crate::PRODUCER,
            NewEvent::new(&app.id, app.version + 1, payload),
        )
        .await?;
    }
    let answer = load(&mut tx, &app.id, who).await?;
    outbox::commit(tx).await?;
    Ok(answer)
}

async fn reject(
    pool: &PgPool,
    who: &Caller,
    r: &pb::RejectApplicationRequest,
) -> Result<pb::SubsidyApplication, Error> {
    check_id(&r.id)?;
    let mut tx = pool.begin().await?;
    let app = apps::lock(&mut tx, &r.id)
        .await?
        .ok_or_else(|| Error::not_found(format!("application {} not found", r.id)))?;
    let approvers: Vec<String> = apps::approvals(&mut tx, std::slice::from_ref(&app.id))
        .await?
        .into_iter()
        .map(|a| a.approver)
        .collect();
    application::reject(&review(&app, &approvers), who, &r.reason)?;
    let reason = r.reason.trim();
    apps::set_status(&mut tx, &app.id, Status::Rejected, reason).await?;
    audit::by(
        &mut tx,
        who,
        "application.rejected",
        &app.id,
        serde_json::json!({ "amount_fen": app.amount_fen, "reason": reason }),
    )
    .await?;
    let payload = Payload::SubsidyRejected(SubsidyRejected {
        application_id: app.id.clone(),
        enterprise_id: app.enterprise_id.clone(),
        rejected_by: who.subject.clone(),
        reason: reason.to_string(),
    });
    outbox::append(
        &mut tx,
        crate::PRODUCER,
        NewEvent::new(&app.id, app.version + 1, payload),
    )
    .await?;
    let answer = load(&mut tx, &app.id, who).await?;
    outbox::commit(tx).await?;
    Ok(answer)
}

fn check_id(id: &str) -> Result<(), Error> {
    if id.trim().is_empty() || id.len() > 100 {
        return Err(Error::invalid("id", "is required"));
    }
    Ok(())
}

#[tonic::async_trait]
impl SubsidyService for SubsidyApi {
    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::Payment>, GrpcStatus> {
        let who = caller(&request)?;
        Ok(Response::new(
            record_payment(&self.pool, &who, request.get_ref()).await?,
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
            Some(own)
        };
        let query = format!("{}|{}", r.status, enterprise.unwrap_or(""));
        let after: Option<(DateTime<Utc>, String)> = paging::decode_token(&query, &r.page_token)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let rows = apps::page(&mut conn, status, enterprise, after, limit + 1).await?;
        let (page, next_page_token) =
            paging::finish(rows, limit, &query, |a| (a.created_at, a.id.clone()));
        let ids: Vec<String> = page.iter().map(|a| a.id.clone()).collect();
        let approvals = apps::approvals(&mut conn, &ids).await?;
        Ok(Response::new(pb::ListApplicationsResponse {
            applications: page
                .iter()
                .map(|a| convert::application(a, &approvals))
                .collect(),
            next_page_token,
        }))
    }

    async fn approve_application(
        &self,
        request: Request<pb::ApproveApplicationRequest>,
    ) -> Result<Response<pb::SubsidyApplication>, GrpcStatus> {
        let who = caller(&request)?;
        Ok(Response::new(
            approve(&self.pool, &who, request.get_ref()).await?,
        ))
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
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let entries = audit::all(&mut conn).await?;
        let report = match crate::domain::audit::verify(&entries) {
            Ok(()) => pb::AuditTrailReport {
                entry_count: entries.len() as i64,
                intact: true,
                first_broken_sequence: 0,
                problem: String::new(),
            },
            Err((sequence, problem)) => pb::AuditTrailReport {
                entry_count: entries.len() as i64,
                intact: false,
                first_broken_sequence: sequence,
                problem,
            },
        };
        Ok(Response::new(report))
    }
}
