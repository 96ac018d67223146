use crate::domain::application::Status;
use crate::domain::calculator::Standing;
use crate::domain::kind::Kind;
use chrono::{DateTime, Utc};
use kechuang_platform::Error;
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub id: String,
    pub contract_id: String,
    pub enterprise_id: String,
    pub amount_fen: i64,
    pub paid_at: DateTime<Utc>,
    pub bank_reference: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PaymentWithApplication {
    #[sqlx(flatten)]
    payment: Payment,
    application_id: String,
}

/// The payment recorded under `bank_reference`, with its application's id.
/// The payment `enterprise_id` recorded under `bank_reference`, with its application.
pub async fn payment_by_reference(
    conn: &mut PgConnection,
    enterprise_id: &str,
    bank_reference: &str,
) -> Result<Option<(Payment, String)>, Error> {
    let row: Option<PaymentWithApplication> = sqlx::query_as(
        "SELECT p.id, p.contract_id, p.enterprise_id, p.amount_fen, p.paid_at, p.bank_reference, p.created_at, \
         a.id AS application_id \
         FROM payments p JOIN applications a ON a.payment_id = p.id AND a.kind = 'SUBSIDY' \
         WHERE p.enterprise_id = $1 AND p.bank_reference = $2",
    )
    .bind(enterprise_id)
    .bind(bank_reference)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.payment, r.application_id)))
}

pub async fn insert_payment(
    conn: &mut PgConnection,
    p: &Payment,
    recorded_by: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO payments (id, contract_id, enterprise_id, amount_fen, paid_at, bank_reference, recorded_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&p.id)
    .bind(&p.contract_id)
    .bind(&p.enterprise_id)
    .bind(p.amount_fen)
    .bind(p.paid_at)
    .bind(&p.bank_reference)
    .bind(recorded_by)
    .bind(p.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Application {
    pub id: String,
    pub payment_id: String,
    pub contract_id: String,
    pub enterprise_id: String,
    pub policy_id: Option<String>,
    pub fund_id: Option<String>,
    pub payment_amount_fen: i64,
    /// The part of the payment the subsidy is computed on.
    pub eligible_base_fen: i64,
    pub amount_fen: i64,
    pub entitled_exact: i64,
    pub paid_year: i32,
    pub status: String,
    pub status_reason: String,
    pub computation: Vec<String>,
    pub required_approvals: i32,
    pub recorded_by: String,
    pub approved_at: Option<DateTime<Utc>>,
    pub payout_reference: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// SUBSIDY or BROKER_REWARD.
    pub kind: String,
    /// Who is paid: the enterprise id for a subsidy, the broker's subject for a reward.
    pub payee: String,
}

impl Application {
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::PendingReview)
    }

    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind).unwrap_or_default()
    }
}

const COLUMNS: &str = "id, payment_id, contract_id, enterprise_id, policy_id, fund_id, payment_amount_fen, \
    eligible_base_fen, amount_fen, entitled_exact, paid_year, status, status_reason, computation, required_approvals, \
    recorded_by, approved_at, payout_reference, created_at, updated_at, version, kind, payee";

pub async fn insert(conn: &mut PgConnection, a: &Application) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO applications (id, payment_id, contract_id, enterprise_id, policy_id, fund_id, \
         payment_amount_fen, amount_fen, entitled_exact, paid_year, status, status_reason, computation, \
         required_approvals, recorded_by, created_at, updated_at, eligible_base_fen, kind, payee) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17, $18, $19)",
    )
    .bind(&a.id)
    .bind(&a.payment_id)
    .bind(&a.contract_id)
    .bind(&a.enterprise_id)
    .bind(&a.policy_id)
    .bind(&a.fund_id)
    .bind(a.payment_amount_fen)
    .bind(a.amount_fen)
    .bind(a.entitled_exact)
    .bind(a.paid_year)
    .bind(&a.status)
    .bind(&a.status_reason)
    .bind(&a.computation)
    .bind(a.required_approvals)
    .bind(&a.recorded_by)
    .bind(a.created_at)
    .bind(a.eligible_base_fen)
    .bind(&a.kind)
    .bind(&a.payee)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut PgConnection, id: &str) -> Result<Option<Application>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM applications WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The application, locked for this transaction.
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<Application>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM applications WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// What a reservation needs of an application.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Reservable {
    pub id: String,
    pub status: String,
    pub fund_id: Option<String>,
    pub amount_fen: i64,
    pub payee: String,
}

impl Reservable {
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::PendingReview)
    }
}

/// The applications `ids` that exist, locked for this transaction in id order (the order
/// every batch takes them in, so that two batches never wait on each other in a cycle).
pub async fn lock_reservable(
    conn: &mut PgConnection,
    ids: &[&str],
) -> Result<Vec<Reservable>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, status, fund_id, amount_fen, payee FROM applications \
         WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?)
}

/// The applications `ids` that exist, locked for this transaction in id order.
pub async fn lock_all(conn: &mut PgConnection, ids: &[&str]) -> Result<Vec<Application>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM applications WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await?)
}

/// An application and the demand its contract answers (`""` when the contract is not known).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WithDemand {
    #[sqlx(flatten)]
    pub application: Application,
    pub demand_id: String,
}

/// [`lock_all`], each with its contract's demand, in the same statement: what a settlement
/// needs to build its events.
pub async fn lock_all_with_demands(
    conn: &mut PgConnection,
    ids: &[&str],
) -> Result<Vec<WithDemand>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, coalesce((SELECT c.demand_id FROM contracts c \
                                     WHERE c.id = applications.contract_id), '') AS demand_id \
         FROM applications WHERE id = ANY($1) ORDER BY id FOR UPDATE"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await?)
}

/// [`set_paid`] for several applications, `(id, reference)` each, all moving to `status`,
/// in one statement.
pub async fn set_all_paid(
    conn: &mut PgConnection,
    paid: &[(&str, &str)],
    status: Status,
) -> Result<(), Error> {
    if paid.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = paid.iter().map(|p| p.0).collect();
    let references: Vec<&str> = paid.iter().map(|p| p.1).collect();
    sqlx::query(
        "UPDATE applications a SET status = $3, status_reason = '', payout_reference = p.reference, \
         updated_at = now(), version = a.version + 1 \
         FROM unnest($1::text[], $2::text[]) AS p(id, reference) WHERE a.id = p.id",
    )
    .bind(&ids)
    .bind(&references)
    .bind(status.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// As [`moved`], for callers that need no answer.
pub async fn set_status(
    conn: &mut PgConnection,
    id: &str,
    status: Status,
    reason: &str,
) -> Result<(), Error> {
    moved(conn, id, status, reason).await.map(|_| ())
}

/// Moves an application the transaction holds to `status`, answering it as it now stands (what
/// an RPC answers with, without reading it back).
pub async fn moved(
    conn: &mut PgConnection,
    id: &str,
    status: Status,
    reason: &str,
) -> Result<Application, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE applications SET status = $2, status_reason = $3, updated_at = now(), version = version + 1, \
         approved_at = CASE WHEN $2 = 'APPROVED' THEN now() ELSE approved_at END WHERE id = $1 \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(reason)
    .fetch_one(conn)
    .await?)
}

/// Moves the pending applications `ids` that the transaction holds to APPROVED, in one
/// statement, answering each as it now stands (in no particular order).
pub async fn approved_all(
    conn: &mut PgConnection,
    ids: &[&str],
) -> Result<Vec<Application>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE applications SET status = $2, status_reason = '', updated_at = now(), \
         version = version + 1, approved_at = now() WHERE id = ANY($1) RETURNING {COLUMNS}"
    )))
    .bind(ids)
    .bind(Status::Approved.as_str())
    .fetch_all(conn)
    .await?)
}

/// Moves a paid application to `status` with the bank's reference, in one statement.
pub async fn set_paid(
    conn: &mut PgConnection,
    id: &str,
    status: Status,
    reference: &str,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE applications SET status = $2, status_reason = '', payout_reference = $3, \
         updated_at = now(), version = version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(reference)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApprovalRow {
    pub application_id: String,
    pub approver: String,
    pub note: String,
    pub approved_at: DateTime<Utc>,
}

/// Records `approver`'s approval, answering it as stored.
pub async fn add_approval(
    conn: &mut PgConnection,
    id: &str,
    approver: &str,
    note: &str,
) -> Result<ApprovalRow, Error> {
    Ok(sqlx::query_as(
        "INSERT INTO approvals (application_id, approver, note) VALUES ($1, $2, $3) \
         RETURNING application_id, approver, note, approved_at",
    )
    .bind(id)
    .bind(approver)
    .bind(note)
    .fetch_one(conn)
    .await?)
}

/// Records several approvals, `(application, approver, note)` each, in one statement,
/// answering them as stored (in no particular order).
pub async fn add_approvals(
    conn: &mut PgConnection,
    added: &[(&str, &str, &str)],
) -> Result<Vec<ApprovalRow>, Error> {
    if added.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = added.iter().map(|a| a.0).collect();
    let approvers: Vec<&str> = added.iter().map(|a| a.1).collect();
    let notes: Vec<&str> = added.iter().map(|a| a.2).collect();
    Ok(sqlx::query_as(
        "INSERT INTO approvals (application_id, approver, note) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) \
         RETURNING application_id, approver, note, approved_at",
    )
    .bind(ids)
    .bind(approvers)
    .bind(notes)
    .fetch_all(conn)
    .await?)
}

pub async fn approvals(conn: &mut PgConnection, ids: &[String]) -> Result<Vec<ApprovalRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT application_id, approver, note, approved_at FROM approvals \
         WHERE application_id = ANY($1) ORDER BY approved_at, approver",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?)
}

/// What the enterprise and the contract already stand at, from the applications still alive.
pub async fn standing(
    conn: &mut PgConnection,
    enterprise_id: &str,
    year: i32,
    contract_id: &str,
) -> Result<Standing, Error> {
    let (paid_year, granted_year, contract_exact, contract_granted): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT \
           COALESCE(SUM(eligible_base_fen) FILTER (WHERE paid_year = $2), 0)::BIGINT, \
           COALESCE(SUM(amount_fen) FILTER (WHERE paid_year = $2), 0)::BIGINT, \
           COALESCE(SUM(entitled_exact) FILTER (WHERE contract_id = $3), 0)::BIGINT, \
           COALESCE(SUM(amount_fen) FILTER (WHERE contract_id = $3), 0)::BIGINT \
         FROM applications \
         WHERE enterprise_id = $1 AND kind = 'SUBSIDY' \
           AND status NOT IN ('REJECTED', 'INELIGIBLE', 'DISBURSEMENT_FAILED')",
        )
        .bind(enterprise_id)
        .bind(year)
        .bind(contract_id)
        .fetch_one(conn)
        .await?;
    Ok(Standing {
        enterprise_paid_in_year_fen: paid_year,
        enterprise_granted_in_year_fen: granted_year,
        contract_entitled_exact: contract_exact,
        contract_granted_fen: contract_granted,
    })
}

/// Newest first, after the cursor `(created_at, id)`, optionally filtered.
pub async fn page(
    conn: &mut PgConnection,
    status: Option<Status>,
    enterprise_id: Option<&str>,
    kind: Option<Kind>,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Application>, Error> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM applications \
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR enterprise_id = $2) \
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) \
           AND ($6::text IS NULL OR kind = $6) \
         ORDER BY created_at DESC, id DESC LIMIT $5"
    )))
    .bind(status.map(Status::as_str))
    .bind(enterprise_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .bind(kind.map(Kind::as_str))
    .fetch_all(conn)
    .await?)
}

/// A fund's waitlist in approval order.
pub async fn waitlisted(conn: &mut PgConnection, fund_id: &str) -> Result<Vec<Application>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM applications WHERE status = 'WAITLISTED' AND fund_id = $1 \
         ORDER BY approved_at, id FOR UPDATE"
    )))
    .bind(fund_id)
    .fetch_all(conn)
    .await?)
}

/// An application waiting for its contract's registration, with its payment's date.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Awaiting {
    #[sqlx(flatten)]
    pub application: Application,
    pub paid_at: DateTime<Utc>,
}

/// The contract's applications waiting for its registration, locked, in the order their
/// payments were recorded (the order the pro-rata shares are taken in).
pub async fn awaiting_registration(
    conn: &mut PgConnection,
    contract_id: &str,
) -> Result<Vec<Awaiting>, Error> {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("a.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns}, p.paid_at FROM applications a JOIN payments p ON p.id = a.payment_id \
         WHERE a.contract_id = $1 AND a.status = 'AWAITING_REGISTRATION' \
         ORDER BY a.created_at, a.id FOR UPDATE OF a"
    )))
    .bind(contract_id)
    .fetch_all(conn)
    .await?)
}

/// What the contract's payments recorded before `application` (by the order they were
/// recorded in) add up to.
pub async fn paid_before(conn: &mut PgConnection, application: &Application) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(SUM(payment_amount_fen), 0)::BIGINT FROM applications \
         WHERE contract_id = $1 AND kind = 'SUBSIDY' AND (created_at, id) < ($2, $3)",
    )
    .bind(&application.contract_id)
    .bind(application.created_at)
    .bind(&application.id)
    .fetch_one(conn)
    .await?)
}

/// Writes the judgement of an application that waited for its registration.
pub async fn judged(conn: &mut PgConnection, a: &Application) -> Result<(), Error> {
    sqlx::query(
        "UPDATE applications SET status = $2, status_reason = $3, policy_id = $4, fund_id = $5, \
         eligible_base_fen = $6, amount_fen = $7, entitled_exact = $8, required_approvals = $9, \
         computation = $10, updated_at = now(), version = version + 1 \
         WHERE id = $1 AND status = 'AWAITING_REGISTRATION'",
    )
    .bind(&a.id)
    .bind(&a.status)
    .bind(&a.status_reason)
    .bind(&a.policy_id)
    .bind(&a.fund_id)
    .bind(a.eligible_base_fen)
    .bind(a.amount_fen)
    .bind(a.entitled_exact)
    .bind(a.required_approvals)
    .bind(&a.computation)
    .execute(conn)
    .await?;
    Ok(())
}

/// Contracts with applications still waiting although their registration window has closed
/// undecided, at most `limit`.
pub async fn contracts_past_registration(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT a.contract_id FROM applications a \
         JOIN registrations r ON r.contract_id = a.contract_id \
         WHERE a.status = 'AWAITING_REGISTRATION' AND r.status = 'WAITING' AND r.deadline < $1 \
         LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// What a broker's rewards and a deal's rewards already stand at, from the reward
/// applications still alive: the broker's cumulative base and rewards in `year` (the
/// per-broker annual figures, keyed by payee as people are told apart: trimmed and
/// case-folded, so one person under two spellings has one cap) and the deal's exact
/// entitlement and rewards.
pub async fn reward_standing(
    conn: &mut PgConnection,
    payee: &str,
    year: i32,
    contract_id: &str,
) -> Result<Standing, Error> {
    let (paid_year, granted_year, contract_exact, contract_granted): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT \
           COALESCE(SUM(eligible_base_fen) FILTER (WHERE lower(btrim(payee)) = $1 AND paid_year = $2), 0)::BIGINT, \
           COALESCE(SUM(amount_fen) FILTER (WHERE lower(btrim(payee)) = $1 AND paid_year = $2), 0)::BIGINT, \
           COALESCE(SUM(entitled_exact) FILTER (WHERE contract_id = $3), 0)::BIGINT, \
           COALESCE(SUM(amount_fen) FILTER (WHERE contract_id = $3), 0)::BIGINT \
         FROM applications \
         WHERE kind = 'BROKER_REWARD' AND (lower(btrim(payee)) = $1 OR contract_id = $3) \
           AND status NOT IN ('REJECTED', 'INELIGIBLE', 'DISBURSEMENT_FAILED')",
    )
    .bind(kechuang_platform::auth::normalised_subject(payee))
    .bind(year)
    .bind(contract_id)
    .fetch_one(conn)
    .await?;
    Ok(Standing {
        enterprise_paid_in_year_fen: paid_year,
        enterprise_granted_in_year_fen: granted_year,
        contract_entitled_exact: contract_exact,
        contract_granted_fen: contract_granted,
    })
}

/// Whether the payment already has a reward application.
pub async fn has_reward(conn: &mut PgConnection, payment_id: &str) -> Result<bool, Error> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM applications WHERE payment_id = $1 AND kind = 'BROKER_REWARD')",
    )
    .bind(payment_id)
    .fetch_one(conn)
    .await?)
}

/// A contract's payments with no reward application yet, in the order they were recorded,
/// each with what the contract's earlier payments add up to and who recorded it.
pub async fn payments_without_reward(
    conn: &mut PgConnection,
    contract_id: &str,
) -> Result<Vec<(Payment, i64, String)>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        payment: Payment,
        paid_before: i64,
        recorded_by: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT * FROM ( \
           SELECT p.id, p.contract_id, p.enterprise_id, p.amount_fen, p.paid_at, p.bank_reference, \
                  p.created_at, p.recorded_by, \
                  (COALESCE(SUM(p.amount_fen) OVER (ORDER BY p.created_at, p.id \
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))::BIGINT AS paid_before, \
                  EXISTS (SELECT 1 FROM applications a \
                          WHERE a.payment_id = p.id AND a.kind = 'BROKER_REWARD') AS rewarded \
           FROM payments p WHERE p.contract_id = $1) x \
         WHERE NOT rewarded ORDER BY created_at, id",
    )
    .bind(contract_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.payment, r.paid_before, r.recorded_by))
        .collect())
}
