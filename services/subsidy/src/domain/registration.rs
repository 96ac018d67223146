//! Technology-contract registration (技术合同认定登记): a registration body's registrar
//! certifies a signed contract as a technology contract (its registration number, its
//! statutory type confirmed or corrected, its technical transaction amount: the contract
//! amount less equipment, materials and other non-technical parts) or refuses it, within a
//! window after signing. Plain rules, no I/O: the store keeps the decision, the API asks here
//! whether it may be made.

use chrono::{DateTime, TimeDelta, Utc};
use kechuang_platform::input::{self, Text};
use kechuang_platform::{Caller, Error, Role, Violations};
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::{
    CertifyContractRequest, RefuseRegistrationRequest, RegistrationStatus,
};

/// The window after signing when the platform is not told otherwise
/// (`KC_REGISTRATION_WINDOW_DAYS`).
pub const DEFAULT_WINDOW_DAYS: u32 = 30;

/// A registration number as the registration body writes it (e.g. `2026420100000123`).
pub const REGISTRATION_NO: Text = Text::line(64);
/// The registrar's note on a certification.
pub const NOTE: Text = Text::paragraphs(500).optional();
/// Why a contract is not a technology contract: the enterprise reads it.
pub const REASON: Text = Text {
    min: 2,
    ..Text::paragraphs(500)
};

const MAX_ID_CHARS: usize = 100;

/// Who decides registrations.
pub const REGISTRARS: &[Role] = &[Role::Registrar];

/// The decision recorded on a registration (what the database keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Waiting,
    Certified,
    Refused,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "WAITING",
            State::Certified => "CERTIFIED",
            State::Refused => "REFUSED",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::Waiting, State::Certified, State::Refused]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// The deadline of a contract signed at `signed_at`: the end of the window.
pub fn deadline(signed_at: DateTime<Utc>, window_days: u32) -> DateTime<Utc> {
    signed_at + TimeDelta::days(i64::from(window_days))
}

/// The status a registration shows at `now`: an undecided one past its deadline has expired
/// (derived, not stored, so it needs no job to flip it at midnight).
pub fn status(state: State, deadline: DateTime<Utc>, now: DateTime<Utc>) -> RegistrationStatus {
    match state {
        State::Waiting if now > deadline => RegistrationStatus::Expired,
        State::Waiting => RegistrationStatus::Waiting,
        State::Certified => RegistrationStatus::Certified,
        State::Refused => RegistrationStatus::Refused,
    }
}

/// A certification as the registrar asked for it, checked and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certification {
    pub registration_no: String,
    pub contract_type: ContractType,
    pub certified_amount_fen: i64,
    pub note: String,
}

/// The statutory type a request names, if it names one of the five.
fn statutory_type(value: i32) -> Option<ContractType> {
    ContractType::try_from(value)
        .ok()
        .filter(|t| *t != ContractType::Unspecified)
}

/// The request's own rules, every broken one named; the amount against the contract's is
/// checked when the contract is read ([`certify`]).
pub fn certification(r: &CertifyContractRequest) -> Result<Certification, Error> {
    let mut v = Violations::new();
    input::check_id(&mut v, "contract_id", &r.contract_id, MAX_ID_CHARS);
    REGISTRATION_NO.check(&mut v, "registration_no", &r.registration_no);
    let contract_type = statutory_type(r.contract_type);
    v.check(
        contract_type.is_some(),
        "contract_type",
        "must be one of the five statutory types (development, transfer, licence, consulting, service)",
    );
    input::check_fen(&mut v, "certified_amount_fen", r.certified_amount_fen, 1);
    NOTE.check(&mut v, "note", &r.note);
    v.into_result()?;
    Ok(Certification {
        registration_no: r.registration_no.trim().to_string(),
        contract_type: contract_type.unwrap_or(ContractType::Unspecified),
        certified_amount_fen: r.certified_amount_fen,
        note: r.note.trim().to_string(),
    })
}

/// The refusal's reason, checked and trimmed.
pub fn refusal(r: &RefuseRegistrationRequest) -> Result<String, Error> {
    let mut v = Violations::new();
    input::check_id(&mut v, "contract_id", &r.contract_id, MAX_ID_CHARS);
    REASON.check(&mut v, "reason", &r.reason);
    v.into_result()?;
    Ok(r.reason.trim().to_string())
}

/// A registration as the rules look at it.
#[derive(Debug, Clone)]
pub struct Standing {
    pub state: State,
    pub deadline: DateTime<Utc>,
    pub enterprise_id: String,
    pub contract_amount_fen: i64,
    /// The certification recorded, when `state` is `Certified`.
    pub certified: Option<Certification>,
    /// The refusal's reason, when `state` is `Refused`.
    pub refusal_reason: String,
}

/// What a decision request comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Record it (with its event and audit entry).
    Decide,
    /// The very same decision was already recorded: answer the registration as it stands,
    /// record nothing (a client's retry).
    AlreadyDecided,
}

fn may_decide(standing: &Standing, caller: &Caller) -> Result<(), Error> {
    caller.require(REGISTRARS)?;
    // A registrar who also acts for the enterprise does not register its own contracts.
    if caller.enterprise_id.as_deref() == Some(standing.enterprise_id.as_str()) {
        return Err(Error::PermissionDenied(
            "nobody registers a contract of their own enterprise".into(),
        ));
    }
    Ok(())
}

fn open(standing: &Standing, now: DateTime<Utc>) -> Result<(), Error> {
    if standing.state != State::Waiting {
        return Err(Error::FailedPrecondition(format!(
            "the registration is already {}; a decided registration is not decided again",
            standing.state.as_str()
        )));
    }
    if now > standing.deadline {
        return Err(Error::FailedPrecondition(format!(
            "the registration window closed at {}: the contract can no longer be certified or refused",
            standing
                .deadline
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    Ok(())
}

/// Whether `caller` may certify the registration as `c` asks, at `now`.
pub fn certify(
    standing: &Standing,
    c: &Certification,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    may_decide(standing, caller)?;
    if standing.certified.as_ref() == Some(c) {
        return Ok(Outcome::AlreadyDecided);
    }
    open(standing, now)?;
    if c.certified_amount_fen > standing.contract_amount_fen {
        return Err(Error::invalid(
            "certified_amount_fen",
            format!(
                "must be at most the contract amount of {} fen (is {})",
                standing.contract_amount_fen, c.certified_amount_fen
            ),
        ));
    }
    Ok(Outcome::Decide)
}

/// Whether `caller` may refuse the registration with `reason`, at `now`.
pub fn refuse(
    standing: &Standing,
    reason: &str,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    may_decide(standing, caller)?;
    if standing.state == State::Refused && standing.refusal_reason == reason {
        return Ok(Outcome::AlreadyDecided);
    }
    open(standing, now)?;
    Ok(Outcome::Decide)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap()
    }

    fn registrar() -> Caller {
        Caller::new(Role::Registrar, "登记员·周")
    }

    fn waiting(amount: i64) -> Standing {
        Standing {
            state: State::Waiting,
            deadline: now() + TimeDelta::days(1),
            enterprise_id: "e-1".into(),
            contract_amount_fen: amount,
            certified: None,
            refusal_reason: String::new(),
        }
    }

    fn request(amount: i64) -> CertifyContractRequest {
        CertifyContractRequest {
            contract_id: "c-1".into(),
            registration_no: "  2026420100000123 ".into(),
            contract_type: ContractType::Transfer as i32,
            certified_amount_fen: amount,
            note: " 扣除设备费 ".into(),
        }
    }

    fn fields(e: Error) -> Vec<String> {
        match e {
            Error::InvalidArgument(v) => v.into_iter().map(|x| x.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_certification_is_trimmed_and_every_bad_field_named() {
        let c = certification(&request(600)).unwrap();
        assert_eq!(c.registration_no, "2026420100000123");
        assert_eq!(c.note, "扣除设备费");
        let bad = CertifyContractRequest {
            contract_id: "c 1".into(),
            registration_no: " \0 ".into(),
            contract_type: ContractType::Unspecified as i32,
            certified_amount_fen: 0,
            note: "x".repeat(501),
        };
        assert_eq!(
            fields(certification(&bad).unwrap_err()),
            [
                "contract_id",
                "registration_no",
                "contract_type",
                "certified_amount_fen",
                "note"
            ]
        );
        for t in [99, -1, i32::MAX] {
            let r = CertifyContractRequest {
                contract_type: t,
                ..request(1)
            };
            assert_eq!(fields(certification(&r).unwrap_err()), ["contract_type"]);
        }
        for amount in [-1, i64::MAX, input::MAX_FEN + 1] {
            assert_eq!(
                fields(certification(&request(amount)).unwrap_err()),
                ["certified_amount_fen"]
            );
        }
        let blank = RefuseRegistrationRequest {
            contract_id: "c-1".into(),
            reason: " ".into(),
        };
        assert_eq!(fields(refusal(&blank).unwrap_err()), ["reason"]);
    }

    #[test]
    fn only_a_registrar_decides_and_not_for_their_own_enterprise() {
        let c = certification(&request(600)).unwrap();
        for role in [
            Role::Enterprise,
            Role::FinanceApprover,
            Role::FinanceOfficer,
            Role::Auditor,
            Role::TechManager,
            Role::Service,
        ] {
            let who = Caller::new(role, "x").with_enterprise("e-2");
            assert!(matches!(
                certify(&waiting(1_000), &c, &who, now()),
                Err(Error::PermissionDenied(_))
            ));
            assert!(matches!(
                refuse(&waiting(1_000), "不是技术合同", &who, now()),
                Err(Error::PermissionDenied(_))
            ));
        }
        let own = registrar().with_enterprise("e-1");
        assert!(matches!(
            certify(&waiting(1_000), &c, &own, now()),
            Err(Error::PermissionDenied(_))
        ));
        assert_eq!(
            certify(&waiting(1_000), &c, &registrar(), now()).unwrap(),
            Outcome::Decide
        );
    }

    #[test]
    fn the_same_certification_again_is_answered_and_another_decision_refused() {
        let c = certification(&request(600)).unwrap();
        let certified = Standing {
            state: State::Certified,
            certified: Some(c.clone()),
            ..waiting(1_000)
        };
        assert_eq!(
            certify(&certified, &c, &registrar(), now()).unwrap(),
            Outcome::AlreadyDecided
        );
        // Even after the window: a retry changes nothing.
        assert_eq!(
            certify(&certified, &c, &registrar(), now() + TimeDelta::days(90)).unwrap(),
            Outcome::AlreadyDecided
        );
        let other = Certification {
            certified_amount_fen: 599,
            ..c.clone()
        };
        assert!(matches!(
            certify(&certified, &other, &registrar(), now()),
            Err(Error::FailedPrecondition(_))
        ));
        assert!(matches!(
            refuse(&certified, "不是技术合同", &registrar(), now()),
            Err(Error::FailedPrecondition(_))
        ));
        let refused = Standing {
            state: State::Refused,
            refusal_reason: "不是技术合同".into(),
            ..waiting(1_000)
        };
        assert_eq!(
            refuse(&refused, "不是技术合同", &registrar(), now()).unwrap(),
            Outcome::AlreadyDecided
        );
        assert!(matches!(
            certify(&refused, &c, &registrar(), now()),
            Err(Error::FailedPrecondition(_))
        ));
    }

    #[test]
    fn past_the_window_nothing_is_decided_and_the_status_says_expired() {
        let c = certification(&request(600)).unwrap();
        let late = waiting(1_000);
        let after = late.deadline + TimeDelta::seconds(1);
        let closed = certify(&late, &c, &registrar(), after).unwrap_err();
        assert!(
            matches!(&closed, Error::FailedPrecondition(m) if m.contains("window closed")),
            "{closed:?}"
        );
        assert!(refuse(&late, "不是技术合同", &registrar(), after).is_err());
        assert!(certify(&late, &c, &registrar(), late.deadline).is_ok());
        assert_eq!(
            status(State::Waiting, late.deadline, after),
            RegistrationStatus::Expired
        );
        assert_eq!(
            status(State::Certified, late.deadline, after),
            RegistrationStatus::Certified
        );
        let signed = now();
        assert_eq!(
            deadline(signed, DEFAULT_WINDOW_DAYS),
            signed + TimeDelta::days(30)
        );
    }

    proptest! {
        /// A waiting registration within its window is certified exactly when the technical
        /// amount is positive and at most the contract amount.
        #[test]
        fn the_certified_amount_is_bounded_by_the_contract(
            contract in 1i64..=input::MAX_FEN,
            amount in -10i64..=input::MAX_FEN + 10,
        ) {
            let ok = certification(&request(amount))
                .and_then(|c| certify(&waiting(contract), &c, &registrar(), now()))
                .is_ok();
            prop_assert_eq!(ok, amount >= 1 && amount <= contract);
        }

        /// Whatever decisions arrive, in whatever order, the first one recorded stands:
        /// later ones are either the same (answered) or refused.
        #[test]
        fn the_first_decision_stands(choices in proptest::collection::vec((0u8..2, 1i64..4), 1..12)) {
            let mut standing = waiting(10);
            let mut first: Option<(u8, i64)> = None;
            for (kind, value) in choices {
                let outcome = if kind == 0 {
                    let c = certification(&request(value)).unwrap();
                    let o = certify(&standing, &c, &registrar(), now());
                    if matches!(o, Ok(Outcome::Decide)) {
                        standing.state = State::Certified;
                        standing.certified = Some(c);
                    }
                    o
                } else {
                    let r = format!("理由{value}");
                    let o = refuse(&standing, &r, &registrar(), now());
                    if matches!(o, Ok(Outcome::Decide)) {
                        standing.refusal_reason = r;
                        standing.state = State::Refused;
                    }
                    o
                };
                match (first, outcome) {
                    (None, Ok(Outcome::Decide)) => first = Some((kind, value)),
                    (None, other) => prop_assert!(false, "a waiting registration refused a decision: {:?}", other),
                    (Some(_), Ok(Outcome::Decide)) => prop_assert!(false, "decided twice"),
                    (Some(f), Ok(Outcome::AlreadyDecided)) => prop_assert_eq!(f, (kind, value)),
                    (Some(f), Err(Error::FailedPrecondition(_))) => prop_assert_ne!(f, (kind, value)),
                    (Some(_), Err(e)) => prop_assert!(false, "{e:?}"),
                }
            }
        }

        #[test]
        fn an_accepted_number_is_trimmed_and_printable(no in "\\PC{0,70}|.{0,70}") {
            let r = CertifyContractRequest { registration_no: no.clone(), ..request(1) };
            if let Ok(c) = certification(&r) {
                prop_assert_eq!(c.registration_no.as_str(), no.trim());
                prop_assert!(!c.registration_no.is_empty());
                prop_assert!(!c.registration_no.chars().any(char::is_control));
            }
        }
    }
}
