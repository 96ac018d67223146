//! Registrations: one per recorded contract, read together with the contract a registrar
//! decides on.

use crate::domain::eligibility;
use crate::domain::registration::{Certification, Standing, State};
use chrono::{DateTime, Utc};
use kechuang_platform::error::ResultExt;
use kechuang_platform::{Error, input};
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::RegistrationStatus;
use sqlx::PgConnection;

/// A registration with its contract.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Registration {
    pub contract_id: String,
    pub status: String,
    pub deadline: DateTime<Utc>,
    pub registration_no: Option<String>,
    pub contract_type: Option<i32>,
    pub certified_amount_fen: Option<i64>,
    pub note: String,
    pub refusal_reason: String,
    pub registrar: String,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
    pub contract_no: String,
    pub enterprise_id: String,
    pub supplier: String,
    pub declared_contract_type: i32,
    pub contract_amount_fen: i64,
    pub signed_at: DateTime<Utc>,
    pub region_code: String,
    pub industry_chain: String,
}

impl Registration {
    pub fn state(&self) -> State {
        State::parse(&self.status).unwrap_or(State::Waiting)
    }

    /// What a payment under the contract is judged against at `now`.
    pub fn for_eligibility(&self, now: DateTime<Utc>) -> eligibility::Registration {
        match self.state() {
            State::Certified => eligibility::Registration::Certified {
                contract_type: self
                    .contract_type
                    .and_then(|t| ContractType::try_from(t).ok())
                    .unwrap_or(ContractType::Unspecified),
                certified_amount_fen: self.certified_amount_fen.unwrap_or(0),
            },
            State::Refused => eligibility::Registration::Refused {
                reason: self.refusal_reason.clone(),
            },
            State::Waiting if now > self.deadline => eligibility::Registration::Expired,
            State::Waiting => eligibility::Registration::Waiting {
                deadline: self.deadline,
            },
        }
    }

    /// What the rules look at.
    pub fn standing(&self) -> Standing {
        let certified = (self.state() == State::Certified).then(|| Certification {
            registration_no: self.registration_no.clone().unwrap_or_default(),
            contract_type: self
                .contract_type
                .and_then(|t| ContractType::try_from(t).ok())
                .unwrap_or(ContractType::Unspecified),
            certified_amount_fen: self.certified_amount_fen.unwrap_or(0),
            note: self.note.clone(),
        });
        Standing {
            state: self.state(),
            deadline: self.deadline,
            enterprise_id: self.enterprise_id.clone(),
            contract_amount_fen: self.contract_amount_fen,
            certified,
            refusal_reason: self.refusal_reason.clone(),
        }
    }
}

const SELECT: &str = "SELECT r.contract_id, r.status, r.deadline, r.registration_no, r.contract_type, \
    r.certified_amount_fen, r.note, r.refusal_reason, r.registrar, r.decided_at, r.created_at, \
    r.version, c.contract_no, c.enterprise_id, c.supplier, c.contract_type AS declared_contract_type, \
    c.amount_fen AS contract_amount_fen, c.signed_at, c.region_code, c.industry_chain \
    FROM registrations r JOIN contracts c ON c.id = r.contract_id";

/// Opens the registration of a contract just recorded; a replay changes nothing.
pub async fn open(
    conn: &mut PgConnection,
    contract_id: &str,
    deadline: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO registrations (contract_id, deadline) VALUES ($1, $2) \
         ON CONFLICT (contract_id) DO NOTHING",
    )
    .bind(contract_id)
    .bind(deadline)
    .execute(conn)
    .await?;
    Ok(())
}

/// The registration, locked for this transaction: decisions on one contract are serialised.
pub async fn lock(
    conn: &mut PgConnection,
    contract_id: &str,
) -> Result<Option<Registration>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.contract_id = $1 FOR UPDATE OF r"
    )))
    .bind(contract_id)
    .fetch_optional(conn)
    .await?)
}

/// The registration as it stands (not locked).
pub async fn get(
    conn: &mut PgConnection,
    contract_id: &str,
) -> Result<Option<Registration>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.contract_id = $1"
    )))
    .bind(contract_id)
    .fetch_optional(conn)
    .await?)
}

/// Records a certification. A number another contract holds (in any letter case) is refused
/// by the unique index, also when two registrars use it at once.
pub async fn certify(
    conn: &mut PgConnection,
    contract_id: &str,
    c: &Certification,
    registrar: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE registrations SET status = 'CERTIFIED', registration_no = $2, contract_type = $3, \
         certified_amount_fen = $4, note = $5, registrar = $6, decided_at = $7, version = version + 1 \
         WHERE contract_id = $1",
    )
    .bind(contract_id)
    .bind(&c.registration_no)
    .bind(c.contract_type as i32)
    .bind(c.certified_amount_fen)
    .bind(&c.note)
    .bind(registrar)
    .bind(at)
    .execute(conn)
    .await
    .on_constraint("registrations_registration_no_key", || {
        Error::invalid(
            "registration_no",
            format!(
                "{} is already the registration number of another contract",
                input::quote(&c.registration_no)
            ),
        )
    })?;
    Ok(())
}

pub async fn refuse(
    conn: &mut PgConnection,
    contract_id: &str,
    reason: &str,
    registrar: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE registrations SET status = 'REFUSED', refusal_reason = $2, registrar = $3, \
         decided_at = $4, version = version + 1 WHERE contract_id = $1",
    )
    .bind(contract_id)
    .bind(reason)
    .bind(registrar)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A page of registrations, the earliest deadline first (the most urgent on top), after the
/// cursor `(deadline, contract_id)`; `status` as shown at `now` (EXPIRED is WAITING past
/// its deadline), `enterprise` an enterprise's own.
pub async fn page(
    conn: &mut PgConnection,
    status: Option<RegistrationStatus>,
    enterprise: Option<&str>,
    now: DateTime<Utc>,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Registration>, Error> {
    let (state, window) = match status {
        None | Some(RegistrationStatus::Unspecified) => (None, None),
        Some(RegistrationStatus::Waiting) => (Some(State::Waiting), Some(true)),
        Some(RegistrationStatus::Expired) => (Some(State::Waiting), Some(false)),
        Some(RegistrationStatus::Certified) => (Some(State::Certified), None),
        Some(RegistrationStatus::Refused) => (Some(State::Refused), None),
    };
    let (after_deadline, after_id) = after.unzip();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::TEXT IS NULL OR r.status = $1) \
         AND ($2::BOOLEAN IS NULL OR (r.deadline >= $3) = $2) \
         AND ($4::TEXT IS NULL OR c.enterprise_id = $4) \
         AND ($5::TIMESTAMPTZ IS NULL OR (r.deadline, r.contract_id) > ($5, $6)) \
         ORDER BY r.deadline, r.contract_id LIMIT $7"
    )))
    .bind(state.map(State::as_str))
    .bind(window)
    .bind(now)
    .bind(enterprise)
    .bind(after_deadline)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
