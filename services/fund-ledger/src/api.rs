//! `kechuang.fund.v1.FundService`: checks the caller and the input, then calls `ledger`.

use crate::domain::audit;
use crate::store;
use crate::{ledger, wire};
use kechuang_platform::auth::{Role, caller};
use kechuang_platform::error::{Error, Violations};
use kechuang_platform::events::timestamp;
use kechuang_platform::input::{self, Text};
use kechuang_platform::{idempotency, paging};
use kechuang_proto::fund::{
    self as pb, CreateFundRequest, GetFundRequest, ListTransfersRequest, ListTransfersResponse,
    ReconcileReport, ReconcileRequest, TopUpRequest, fund_service_server::FundService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

const WRITERS: &[Role] = &[Role::FinanceOfficer, Role::FinanceApprover];
const READERS: &[Role] = &[
    Role::FinanceOfficer,
    Role::FinanceApprover,
    Role::Auditor,
    Role::Service,
];
const MAX_TEXT: usize = 200;

#[derive(Debug, Clone)]
pub struct FundApi {
    pool: PgPool,
}

impl FundApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn check_text(v: &mut Violations, value: &str, field: &str) {
    Text::line(MAX_TEXT).check(v, field, value);
}

fn check_fund_id(v: &mut Violations, fund_id: &str) {
    input::check_id(v, "fund_id", fund_id, MAX_TEXT);
}

#[tonic::async_trait]
impl FundService for FundApi {
    #[tracing::instrument(skip_all)]
    async fn create_fund(
        &self,
        request: Request<CreateFundRequest>,
    ) -> Result<Response<pb::Fund>, Status> {
        let who = caller(&request)?;
        who.require(WRITERS)?;
        let scope = idempotency::Scope::of("CreateFund", &who);
        let r = request.into_inner();
        let mut v = Violations::new();
        check_text(&mut v, &r.name, "name");
        input::check_fen(&mut v, "low_balance_fen", r.low_balance_fen, 0);
        if !r.request_id.is_empty() {
            input::check_id(&mut v, "request_id", &r.request_id, MAX_TEXT);
        }
        v.into_result()?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let fingerprint = idempotency::fingerprint(&r);
        if !r.request_id.is_empty() {
            let claim = idempotency::claim(&mut tx, &scope, &r.request_id, &fingerprint).await?;
            if let idempotency::Claim::Existing(id) = claim {
                let fund = store::fund(&mut tx, &id)
                    .await
                    .map_err(Error::from)?
                    .ok_or_else(|| Error::internal("a recorded fund is missing"))?;
                return Ok(Response::new(wire::fund(&fund)));
            }
        }
        let id = format!("fund-{}", uuid::Uuid::now_v7().simple());
        let fund = ledger::create_fund(&mut tx, &id, r.name.trim(), r.low_balance_fen)
            .await?
            .ok_or_else(|| Error::internal("a fresh fund id is taken"))?;
        if !r.request_id.is_empty() {
            idempotency::record(&mut tx, &scope, &r.request_id, &fingerprint, &id).await?;
        }
        kechuang_platform::outbox::commit(tx, crate::ledger::PRODUCER)
            .await
            .map_err(Error::from)?;
        tracing::info!(fund_id = %id, "fund created");
        Ok(Response::new(wire::fund(&fund)))
    }

    #[tracing::instrument(skip_all, fields(fund_id))]
    async fn top_up(&self, request: Request<TopUpRequest>) -> Result<Response<pb::Fund>, Status> {
        caller(&request)?.require(WRITERS)?;
        let r = request.into_inner();
        tracing::Span::current().record("fund_id", r.fund_id.as_str());
        let mut v = Violations::new();
        check_fund_id(&mut v, &r.fund_id);
        input::check_fen(&mut v, "amount_fen", r.amount_fen, 1);
        check_text(&mut v, &r.reference, "reference");
        v.into_result()?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        let fund = ledger::top_up(&mut tx, &r.fund_id, r.amount_fen, &r.reference).await?;
        kechuang_platform::outbox::commit(tx, crate::ledger::PRODUCER)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(wire::fund(&fund)))
    }

    async fn get_fund(
        &self,
        request: Request<GetFundRequest>,
    ) -> Result<Response<pb::Fund>, Status> {
        caller(&request)?.require(READERS)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        check_fund_id(&mut v, &r.fund_id);
        v.into_result()?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let fund = store::fund(&mut conn, &r.fund_id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::not_found(format!("fund {} not found", r.fund_id)))?;
        Ok(Response::new(wire::fund(&fund)))
    }

    async fn list_transfers(
        &self,
        request: Request<ListTransfersRequest>,
    ) -> Result<Response<ListTransfersResponse>, Status> {
        caller(&request)?.require(READERS)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        check_fund_id(&mut v, &r.fund_id);
        v.check(r.page_size >= 0, "page_size", "must not be negative");
        let query = format!("fund_id={}", r.fund_id);
        let cursor = match paging::decode_token::<i64>(&query, &r.page_token) {
            Ok(c) => c,
            Err(_) => {
                v.add("page_token", "is not a token this listing returned");
                None
            }
        };
        v.into_result()?;
        let size = paging::page_size(r.page_size)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        if store::fund(&mut conn, &r.fund_id)
            .await
            .map_err(Error::from)?
            .is_none()
        {
            return Err(Error::not_found(format!("fund {} not found", r.fund_id)).into());
        }
        // One extra row tells whether another page follows.
        let mut rows = store::list_transfers(&mut conn, &r.fund_id, cursor.unwrap_or(0), size + 1)
            .await
            .map_err(Error::from)?;
        let more = rows.len() as i64 > size;
        rows.truncate(size as usize);
        let next_page_token = match rows.last() {
            Some(last) if more => paging::encode_token(&query, &last.seq),
            _ => String::new(),
        };
        Ok(Response::new(ListTransfersResponse {
            transfers: rows.iter().map(wire::transfer).collect(),
            next_page_token,
        }))
    }

    async fn reconcile(
        &self,
        request: Request<ReconcileRequest>,
    ) -> Result<Response<ReconcileReport>, Status> {
        caller(&request)?.require(READERS)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        if !r.fund_id.is_empty() {
            check_fund_id(&mut v, &r.fund_id);
        }
        v.into_result()?;
        let mut tx = self.pool.begin().await.map_err(Error::from)?;
        // One snapshot for every figure: concurrent transfers cannot make them disagree.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(Error::from)?;
        let report = reconcile(&mut tx, (!r.fund_id.is_empty()).then_some(&*r.fund_id)).await?;
        // Read only: nothing appended, no relay to wake.
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(report))
    }
}

/// Checks every invariant of one fund, or of all, and reports the violations.
pub async fn reconcile(
    conn: &mut sqlx::PgConnection,
    fund_id: Option<&str>,
) -> Result<ReconcileReport, Error> {
    let funds = match fund_id {
        Some(id) => {
            if store::fund(conn, id).await?.is_none() {
                return Err(Error::not_found(format!("fund {id} not found")));
            }
            vec![id.to_string()]
        }
        None => store::fund_ids(conn).await?,
    };
    let mut violations = Vec::new();
    for id in &funds {
        let figures = store::fund_figures(conn, id).await?;
        violations.extend(audit::audit(&figures));
    }
    if !violations.is_empty() {
        tracing::error!(?violations, "the ledger is not sound");
    }
    Ok(ReconcileReport {
        checks: audit::CHECKS.iter().map(|c| c.to_string()).collect(),
        violations,
        transfer_count: store::transfer_count(conn, fund_id).await?,
        check_time: Some(timestamp(chrono::Utc::now())),
    })
}
