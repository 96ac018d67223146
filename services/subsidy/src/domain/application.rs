//! The subsidy application's state machine and the approval rules (four eyes, no
//! self-approval; nobody decides a reward paid to themselves).

use super::kind::Kind;
use kechuang_platform::input::Text;
use kechuang_platform::{Caller, Error, Role, Violations};
use kechuang_proto::subsidy::ApplicationStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    PendingReview,
    Approved,
    Rejected,
    Ineligible,
    FundsReserved,
    Waitlisted,
    Disbursed,
    DisbursementFailed,
    /// Judged once its contract's registration is decided (see `eligibility`).
    AwaitingRegistration,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::PendingReview,
        Status::Approved,
        Status::Rejected,
        Status::Ineligible,
        Status::FundsReserved,
        Status::Waitlisted,
        Status::Disbursed,
        Status::DisbursementFailed,
        Status::AwaitingRegistration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingReview => "PENDING_REVIEW",
            Status::Approved => "APPROVED",
            Status::Rejected => "REJECTED",
            Status::Ineligible => "INELIGIBLE",
            Status::FundsReserved => "FUNDS_RESERVED",
            Status::Waitlisted => "WAITLISTED",
            Status::Disbursed => "DISBURSED",
            Status::DisbursementFailed => "DISBURSEMENT_FAILED",
            Status::AwaitingRegistration => "AWAITING_REGISTRATION",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn to_proto(self) -> ApplicationStatus {
        match self {
            Status::PendingReview => ApplicationStatus::PendingReview,
            Status::Approved => ApplicationStatus::Approved,
            Status::Rejected => ApplicationStatus::Rejected,
            Status::Ineligible => ApplicationStatus::Ineligible,
            Status::FundsReserved => ApplicationStatus::FundsReserved,
            Status::Waitlisted => ApplicationStatus::Waitlisted,
            Status::Disbursed => ApplicationStatus::Disbursed,
            Status::DisbursementFailed => ApplicationStatus::DisbursementFailed,
            Status::AwaitingRegistration => ApplicationStatus::AwaitingRegistration,
        }
    }

    pub fn from_proto(s: ApplicationStatus) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.to_proto() == s)
    }

    /// Whether the application still stands: its payment counts toward cumulative amounts and
    /// its amount toward what was granted.
    pub fn is_alive(self) -> bool {
        !matches!(
            self,
            Status::Rejected | Status::Ineligible | Status::DisbursementFailed
        )
    }

    /// The saga's moves. `None`: the event does not apply in this state (a replay, or a late
    /// arrival), and is ignored.
    pub fn on_funds_reserved(self) -> Option<Status> {
        matches!(self, Status::Approved | Status::Waitlisted).then_some(Status::FundsReserved)
    }

    pub fn on_reservation_rejected(self) -> Option<Status> {
        (self == Status::Approved).then_some(Status::Waitlisted)
    }

    pub fn on_payout(self, paid: bool) -> Option<Status> {
        (self == Status::FundsReserved).then_some(if paid {
            Status::Disbursed
        } else {
            Status::DisbursementFailed
        })
    }
}

/// What the approval rules look at.
#[derive(Debug, Clone)]
pub struct Review<'a> {
    pub status: Status,
    /// A subsidy or a broker's reward.
    pub kind: Kind,
    pub enterprise_id: &'a str,
    /// Who is paid: the enterprise id for a subsidy, the broker's subject for a reward.
    pub payee: &'a str,
    /// The person who recorded the payment (the applicant).
    pub recorded_by: &'a str,
    pub approvers: &'a [String],
    pub required_approvals: i32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Approval {
    /// Recorded; another approver is still needed.
    Recorded,
    /// The last required approval: the application is approved.
    Complete,
}

fn not_own(review: &Review<'_>, caller: &Caller) -> Result<(), Error> {
    if caller.enterprise_id.as_deref() == Some(review.enterprise_id) {
        return Err(Error::PermissionDenied(
            "nobody reviews an application of their own enterprise".into(),
        ));
    }
    if review.kind == Kind::BrokerReward && caller.is_person(review.payee) {
        return Err(Error::PermissionDenied(
            "nobody reviews a reward paid to themselves".into(),
        ));
    }
    if caller.is_person(review.recorded_by) {
        return Err(Error::PermissionDenied(
            "the applicant cannot review their own application".into(),
        ));
    }
    Ok(())
}

/// Whether `caller` may approve now, and what their approval completes.
pub fn approve(review: &Review<'_>, caller: &Caller) -> Result<Approval, Error> {
    caller.require(&[Role::FinanceApprover])?;
    not_own(review, caller)?;
    if review.status != Status::PendingReview {
        return Err(Error::FailedPrecondition(format!(
            "the application is {}; only PENDING_REVIEW can be approved",
            review.status.as_str()
        )));
    }
    if review.approvers.iter().any(|a| caller.is_person(a)) {
        return Err(Error::FailedPrecondition(format!(
            "{} already approved; four eyes need a different approver",
            caller.subject
        )));
    }
    if review.approvers.len() as i32 + 1 >= review.required_approvals {
        Ok(Approval::Complete)
    } else {
        Ok(Approval::Recorded)
    }
}

/// A rejection's reason, which the enterprise reads.
pub const REASON: Text = Text {
    min: 2,
    ..Text::paragraphs(500)
};
/// An approver's note.
pub const NOTE: Text = Text::paragraphs(500).optional();

pub fn check_reason(reason: &str) -> Result<(), Error> {
    let mut v = Violations::new();
    REASON.check(&mut v, "reason", reason);
    v.into_result()
}

/// Whether `caller` may reject now.
pub fn reject(review: &Review<'_>, caller: &Caller, reason: &str) -> Result<(), Error> {
    caller.require(&[Role::FinanceApprover])?;
    check_reason(reason)?;
    not_own(review, caller)?;
    if !matches!(
        review.status,
        Status::PendingReview | Status::Waitlisted | Status::AwaitingRegistration
    ) {
        return Err(Error::FailedPrecondition(format!(
            "the application is {}; only PENDING_REVIEW, WAITLISTED or AWAITING_REGISTRATION can be rejected",
            review.status.as_str()
        )));
    }
    Ok(())
}

/// Why the ledger's word that it reserved money does not fit the application it names: a
/// reservation is for the fund and the amount we asked for, or nothing is paid out on it.
pub fn reservation_mismatch(
    asked_fund: Option<&str>,
    asked_fen: i64,
    reserved_fund: &str,
    reserved_fen: i64,
) -> Option<String> {
    if asked_fund != Some(reserved_fund) {
        return Some(format!(
            "the reservation is on fund {reserved_fund:?}, the application draws on {:?}",
            asked_fund.unwrap_or("no fund")
        ));
    }
    (reserved_fen != asked_fen).then(|| {
        format!("the reservation is of {reserved_fen} fen, the application asked for {asked_fen}")
    })
}

/// What the ledger's reservation of `reserved_fen` on `reserved_fund` does to an application
/// in `status` that asked for `asked_fen` from `asked_fund`: the status it moves to (`None`
/// when it is past that point: a redelivery, a second answer), or why nothing may be paid
/// out on it.
pub fn on_reservation(
    status: Status,
    asked_fund: Option<&str>,
    asked_fen: i64,
    reserved_fund: &str,
    reserved_fen: i64,
) -> Result<Option<Status>, String> {
    let Some(next) = status.on_funds_reserved() else {
        return Ok(None);
    };
    match reservation_mismatch(asked_fund, asked_fen, reserved_fund, reserved_fen) {
        Some(why) => Err(why),
        None => Ok(Some(next)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn approver(name: &str) -> Caller {
        Caller::new(Role::FinanceApprover, name)
    }

    fn review<'a>(status: Status, approvers: &'a [String], required: i32) -> Review<'a> {
        Review {
            status,
            kind: Kind::Subsidy,
            enterprise_id: "e-1",
            payee: "e-1",
            recorded_by: "applicant",
            approvers,
            required_approvals: required,
        }
    }

    #[test]
    fn four_eyes_need_two_different_approvers() {
        let none: Vec<String> = vec![];
        assert_eq!(
            approve(&review(Status::PendingReview, &none, 2), &approver("a")).unwrap(),
            Approval::Recorded
        );
        let one = vec!["a".to_string()];
        let again = approve(&review(Status::PendingReview, &one, 2), &approver("a")).unwrap_err();
        assert!(matches!(again, Error::FailedPrecondition(_)));
        // The same person, whatever the case and spaces of their token's subject.
        let again = approve(&review(Status::PendingReview, &one, 2), &approver(" A ")).unwrap_err();
        assert!(matches!(again, Error::FailedPrecondition(_)));
        assert_eq!(
            approve(&review(Status::PendingReview, &one, 2), &approver("b")).unwrap(),
            Approval::Complete
        );
        assert_eq!(
            approve(&review(Status::PendingReview, &none, 1), &approver("a")).unwrap(),
            Approval::Complete
        );
    }

    #[test]
    fn nobody_approves_their_own_enterprise_or_application() {
        let none: Vec<String> = vec![];
        let mut own = approver("boss");
        own.enterprise_id = Some("e-1".into());
        assert!(matches!(
            approve(&review(Status::PendingReview, &none, 1), &own),
            Err(Error::PermissionDenied(_))
        ));
        for applicant in ["applicant", "Applicant ", " APPLICANT"] {
            assert!(matches!(
                approve(
                    &review(Status::PendingReview, &none, 1),
                    &approver(applicant)
                ),
                Err(Error::PermissionDenied(_))
            ));
        }
        let officer = Caller::new(Role::FinanceOfficer, "o");
        assert!(matches!(
            approve(&review(Status::PendingReview, &none, 1), &officer),
            Err(Error::PermissionDenied(_))
        ));
    }

    #[test]
    fn a_broker_never_approves_or_rejects_their_own_reward() {
        let none: Vec<String> = vec![];
        let mut r = review(Status::PendingReview, &none, 1);
        r.kind = Kind::BrokerReward;
        r.payee = "周经理";
        for own in ["周经理", " 周经理 "] {
            assert!(matches!(
                approve(&r, &approver(own)),
                Err(Error::PermissionDenied(_))
            ));
            assert!(matches!(
                reject(&r, &approver(own), "不予奖励"),
                Err(Error::PermissionDenied(_))
            ));
        }
        // Case-folded like every subject comparison.
        r.payee = "Broker-Zhou";
        assert!(matches!(
            approve(&r, &approver("broker-zhou")),
            Err(Error::PermissionDenied(_))
        ));
        // Another approver may; four eyes still hold.
        let one = vec!["a".to_string()];
        let mut r2 = review(Status::PendingReview, &one, 2);
        r2.kind = Kind::BrokerReward;
        r2.payee = "周经理";
        assert_eq!(approve(&r2, &approver("b")).unwrap(), Approval::Complete);
        assert!(matches!(
            approve(&r2, &approver("a")),
            Err(Error::FailedPrecondition(_))
        ));
        assert!(matches!(
            approve(&r2, &approver("周经理")),
            Err(Error::PermissionDenied(_))
        ));
    }

    #[test]
    fn rejected_or_disbursed_cannot_be_approved_and_rejection_needs_a_reason() {
        let none: Vec<String> = vec![];
        for s in [
            Status::Rejected,
            Status::Disbursed,
            Status::Approved,
            Status::Ineligible,
        ] {
            assert!(matches!(
                approve(&review(s, &none, 1), &approver("a")),
                Err(Error::FailedPrecondition(_))
            ));
        }
        assert!(matches!(
            reject(
                &review(Status::PendingReview, &none, 1),
                &approver("a"),
                " "
            ),
            Err(Error::InvalidArgument(_))
        ));
        assert!(
            reject(
                &review(Status::Waitlisted, &none, 1),
                &approver("a"),
                "资料不全"
            )
            .is_ok()
        );
        assert!(
            reject(
                &review(Status::Disbursed, &none, 1),
                &approver("a"),
                "资料不全"
            )
            .is_err()
        );
    }

    proptest! {
        /// Whatever the saga's events and their order, money-moving states are only reached
        /// along the chain APPROVED → (WAITLISTED →) FUNDS_RESERVED → DISBURSED | FAILED.
        #[test]
        fn saga_events_never_skip_a_step(events in proptest::collection::vec(0u8..4, 0..20)) {
            let mut s = Status::Approved;
            let mut reserved_seen = false;
            for e in events {
                let next = match e {
                    0 => s.on_funds_reserved(),
                    1 => s.on_reservation_rejected(),
                    2 => s.on_payout(true),
                    _ => s.on_payout(false),
                };
                if let Some(n) = next {
                    if n == Status::FundsReserved { reserved_seen = true; }
                    if matches!(n, Status::Disbursed | Status::DisbursementFailed) { prop_assert!(reserved_seen); }
                    prop_assert!(!matches!(s, Status::Disbursed | Status::DisbursementFailed), "left a final state");
                    s = n;
                }
            }
        }
    }

    #[test]
    fn a_reservation_moves_only_an_application_waiting_for_it_and_only_when_it_fits() {
        let fits = |status| on_reservation(status, Some("f"), 100, "f", 100);
        assert_eq!(fits(Status::Approved), Ok(Some(Status::FundsReserved)));
        assert_eq!(fits(Status::Waitlisted), Ok(Some(Status::FundsReserved)));
        for past in [Status::FundsReserved, Status::Disbursed, Status::Rejected] {
            assert_eq!(
                fits(past),
                Ok(None),
                "{past:?}: a second answer moves nothing"
            );
            assert_eq!(on_reservation(past, Some("f"), 100, "f", 99), Ok(None));
        }
        assert!(on_reservation(Status::Approved, Some("f"), 100, "f", 99).is_err());
        assert!(on_reservation(Status::Approved, Some("f"), 100, "g", 100).is_err());
    }

    #[test]
    fn a_reservation_must_be_for_the_fund_and_amount_asked() {
        assert_eq!(reservation_mismatch(Some("f"), 100, "f", 100), None);
        assert!(reservation_mismatch(Some("f"), 100, "g", 100).is_some());
        assert!(reservation_mismatch(Some("f"), 100, "f", 99).is_some());
        assert!(reservation_mismatch(Some("f"), 100, "f", 101).is_some());
        assert!(reservation_mismatch(None, 100, "f", 100).is_some());
    }
}
