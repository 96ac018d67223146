//! RecordPayment: a payment under a signed contract, judged under the policy in force that
//! covers it, becomes an application, all in one transaction.

use crate::domain::application::Status;
use crate::domain::eligibility::{self, ContractFacts, PaymentCase};
use crate::domain::kind::Kind;
use crate::domain::timing::{self, CLOCK_SKEW};
use crate::judging;
use crate::rewards::{self, RewardCase};
use crate::store::applications::{self as apps, Application, Payment};
use crate::store::contracts;
use crate::store::{policies, registrations};
use crate::wire;
use chrono::{DateTime, Datelike, FixedOffset, SubsecRound, Utc};
use kechuang_platform::events::{from_timestamp, timestamp};
use kechuang_platform::input::{self, Text};
use kechuang_platform::locks::{self, LockSpace};
use kechuang_platform::{Caller, Error, NewEvent, Role, Violations, outbox};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::{PaymentRecorded, envelope::Payload};
use kechuang_proto::subsidy as pb;
use sqlx::PgPool;

/// China time (UTC+8), checked when compiled.
/// The bank's reference of a payment (unique): what a statement shows, 4 to 64 characters.
const BANK_REFERENCE: Text = Text {
    min: 4,
    ..Text::line(64)
};

const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The calendar year of a payment, in China time: the annual cap's year.
pub(crate) fn china_year(t: DateTime<Utc>) -> i32 {
    t.with_timezone(&CHINA).year()
}

/// The request's own rules (before the contract is read): every broken one named; the payment
/// time at the microseconds Postgres keeps.
fn checked(r: &pb::RecordPaymentRequest, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let paid_at = r.paid_at.as_ref().and_then(from_timestamp);
    let mut v = Violations::new();
    input::check_id(&mut v, "contract_id", &r.contract_id, 100);
    input::check_fen(&mut v, "amount_fen", r.amount_fen, 1);
    match paid_at {
        None => {
            v.add("paid_at", "is required");
        }
        Some(t) => {
            v.check(
                t <= now + CLOCK_SKEW,
                "paid_at",
                "must not be in the future",
            );
        }
    }
    BANK_REFERENCE.check(&mut v, "bank_reference", &r.bank_reference);
    v.into_result()?;
    paid_at
        .map(|t| t.trunc_subsecs(6))
        .ok_or_else(|| Error::invalid("paid_at", "is required"))
}

/// The application a payment makes, before it is judged.
fn application(payment: &Payment, year: i32, who: &Caller) -> Application {
    Application {
        id: format!("app-{}", uuid::Uuid::now_v7().simple()),
        payment_id: payment.id.clone(),
        contract_id: payment.contract_id.clone(),
        enterprise_id: payment.enterprise_id.clone(),
        policy_id: None,
        fund_id: None,
        payment_amount_fen: payment.amount_fen,
        eligible_base_fen: 0,
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
        created_at: payment.created_at,
        updated_at: payment.created_at,
        version: 1,
        kind: Kind::Subsidy.as_str().into(),
        payee: payment.enterprise_id.clone(),
    }
}

/// Records the payment and its application, or refuses it having written nothing.
pub(super) async fn record(
    pool: &PgPool,
    who: &Caller,
    r: &pb::RecordPaymentRequest,
) -> Result<pb::Payment, Error> {
    who.require(&[Role::Enterprise])?;
    let now = Utc::now();
    let paid_at = checked(r, now)?;
    let reference = r.bank_reference.trim();

    let mut tx = pool.begin().await?;
    // Ownership first: another enterprise's contract answers as an unknown one, before anything
    // about its payments is looked at.
    let contract = contracts::lock(&mut tx, &r.contract_id)
        .await?
        .filter(|c| who.is_enterprise(&c.enterprise_id))
        .ok_or_else(|| {
            Error::not_found(format!(
                "contract {} not found",
                input::quote(&r.contract_id)
            ))
        })?;
    // A repeated bank reference (the enterprise's own) waits for the first, then returns it.
    let key = format!("{}/{reference}", contract.enterprise_id);
    locks::lock(&mut tx, LockSpace::BankReference, &key).await?;
    if let Some((existing, application_id)) =
        apps::payment_by_reference(&mut tx, &contract.enterprise_id, reference).await?
    {
        let same = existing.contract_id == r.contract_id
            && existing.amount_fen == r.amount_fen
            && existing.paid_at == paid_at;
        if same {
            return Ok(wire::payment(&existing, &application_id));
        }
        return Err(Error::invalid(
            "bank_reference",
            "was already recorded for another payment",
        ));
    }
    timing::check_paid_at(paid_at, contract.signed_at, now)?;
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
    let in_force = policies::in_force(&mut tx).await?;
    let payment = Payment {
        id: format!("pay-{}", uuid::Uuid::now_v7().simple()),
        contract_id: contract.id.clone(),
        enterprise_id: contract.enterprise_id.clone(),
        amount_fen: r.amount_fen,
        paid_at,
        bank_reference: reference.to_string(),
        created_at: now,
    };
    let registration = registrations::get(&mut tx, &contract.id)
        .await?
        .ok_or_else(|| Error::internal(format!("contract {} has no registration", contract.id)))?
        .for_eligibility(now);
    let case = PaymentCase {
        payment_fen: r.amount_fen,
        paid_at,
        claimed_at: now,
        paid_before_fen: contract.paid_fen,
        contract: ContractFacts {
            amount_fen: contract.amount_fen,
            declared_type: ContractType::try_from(contract.contract_type)
                .unwrap_or(ContractType::Unspecified),
            region_code: &contract.region_code,
            industry_chain: &contract.industry_chain,
        },
        registration: &registration,
    };
    let mut app = application(&payment, year, who);
    judging::apply(&mut app, eligibility::judge(&in_force, &case, standing)?);
    apps::insert_payment(&mut tx, &payment, &who.subject).await?;
    apps::insert(&mut tx, &app).await?;
    // On a certified contract with a facilitator, the broker's reward, in this transaction.
    let reward = RewardCase {
        contract: &contract,
        payment: &payment,
        paid_before_fen: contract.paid_fen,
        recorded_by: &who.subject,
        claimed_at: now,
        paid_year: year,
    };
    rewards::reward_payment(&mut tx, &in_force, &registration, &reward, now).await?;
    contracts::add_paid(&mut tx, &contract.id, r.amount_fen).await?;
    let event = Payload::PaymentRecorded(PaymentRecorded {
        payment_id: payment.id.clone(),
        contract_id: contract.id.clone(),
        enterprise_id: contract.enterprise_id.clone(),
        amount_fen: r.amount_fen,
        paid_at: Some(timestamp(paid_at)),
        bank_reference: reference.to_string(),
        application_id: app.id.clone(),
    });
    outbox::append(
        &mut tx,
        crate::PRODUCER,
        NewEvent::new(&payment.id, 1, event),
    )
    .await?;
    outbox::commit(tx, crate::PRODUCER).await?;
    Ok(wire::payment(&payment, &app.id))
}
