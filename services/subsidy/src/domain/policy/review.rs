//! Maker–checker for policies: a finance officer proposes a version; a finance approver who is
//! not the proposer (people compared by their normalised token subject) puts it in force or
//! rejects it. Only a version in force computes subsidies.

use kechuang_platform::{Caller, Error, Role};
use kechuang_proto::subsidy::PolicyStatus as Proto;

/// Where a policy version is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyStatus {
    Proposed,
    InForce,
    Rejected,
    Superseded,
}

impl PolicyStatus {
    pub const ALL: [PolicyStatus; 4] = [
        PolicyStatus::Proposed,
        PolicyStatus::InForce,
        PolicyStatus::Rejected,
        PolicyStatus::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::Proposed => "PROPOSED",
            PolicyStatus::InForce => "IN_FORCE",
            PolicyStatus::Rejected => "REJECTED",
            PolicyStatus::Superseded => "SUPERSEDED",
        }
    }

    pub fn parse(s: &str) -> Option<PolicyStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn to_proto(self) -> Proto {
        match self {
            PolicyStatus::Proposed => Proto::Proposed,
            PolicyStatus::InForce => Proto::InForce,
            PolicyStatus::Rejected => Proto::Rejected,
            PolicyStatus::Superseded => Proto::Superseded,
        }
    }

    pub fn from_proto(s: Proto) -> Option<PolicyStatus> {
        Self::ALL.into_iter().find(|x| x.to_proto() == s)
    }
}

/// The longest approval note or rejection reason.
pub const MAX_NOTE_CHARS: usize = 500;

/// What a decision on a version looks at.
#[derive(Debug, Clone)]
pub struct Review<'a> {
    pub status: PolicyStatus,
    pub version: i32,
    /// The proposer's token subject.
    pub proposed_by: &'a str,
    /// The version of the same name in force now, if any.
    pub in_force_version: Option<i32>,
}

/// The rules both decisions share, in the order applications answer them: the role, then
/// the person, then the state.
fn may_decide(review: &Review<'_>, caller: &Caller, verb: &str) -> Result<(), Error> {
    caller.require(&[Role::FinanceApprover])?;
    if caller.is_person(review.proposed_by) {
        return Err(Error::PermissionDenied(format!(
            "the proposer cannot {verb} their own policy; another finance approver decides"
        )));
    }
    if review.status != PolicyStatus::Proposed {
        return Err(Error::FailedPrecondition(format!(
            "the policy is {}; only a PROPOSED policy can be decided",
            review.status.as_str()
        )));
    }
    Ok(())
}

/// Whether `caller` may put the version in force now.
pub fn approve(review: &Review<'_>, caller: &Caller, note: &str) -> Result<(), Error> {
    if note.trim().chars().count() > MAX_NOTE_CHARS {
        return Err(Error::invalid("note", "must be at most 500 characters"));
    }
    may_decide(review, caller, "approve")?;
    if let Some(current) = review.in_force_version.filter(|v| *v >= review.version) {
        return Err(Error::FailedPrecondition(format!(
            "version {current} of this policy is already in force; an older proposal can only be rejected"
        )));
    }
    Ok(())
}

/// Whether `caller` may reject the version now.
pub fn reject(review: &Review<'_>, caller: &Caller, reason: &str) -> Result<(), Error> {
    let len = reason.trim().chars().count();
    if !(2..=MAX_NOTE_CHARS).contains(&len) {
        return Err(Error::invalid(
            "reason",
            "a rejection needs a reason of 2 to 500 characters",
        ));
    }
    may_decide(review, caller, "reject")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn person(role: Role, name: &str) -> Caller {
        Caller::new(role, name)
    }

    fn proposed<'a>() -> Review<'a> {
        Review {
            status: PolicyStatus::Proposed,
            version: 2,
            proposed_by: "wang.fang",
            in_force_version: Some(1),
        }
    }

    #[test]
    fn another_approver_decides_the_proposer_never() {
        let li = person(Role::FinanceApprover, "li.na");
        assert!(approve(&proposed(), &li, "同意").is_ok());
        assert!(reject(&proposed(), &li, "比例过高").is_ok());
        for own in ["wang.fang", " Wang.Fang ", "WANG.FANG"] {
            let me = person(Role::FinanceApprover, own);
            assert!(matches!(
                approve(&proposed(), &me, ""),
                Err(Error::PermissionDenied(_))
            ));
            assert!(matches!(
                reject(&proposed(), &me, "撤回"),
                Err(Error::PermissionDenied(_))
            ));
        }
        for role in [Role::FinanceOfficer, Role::Auditor, Role::Service] {
            assert!(matches!(
                approve(&proposed(), &person(role, "zhao"), ""),
                Err(Error::PermissionDenied(_))
            ));
        }
    }

    #[test]
    fn only_a_proposal_is_decided_and_never_behind_the_version_in_force() {
        let li = person(Role::FinanceApprover, "li.na");
        for status in [
            PolicyStatus::InForce,
            PolicyStatus::Rejected,
            PolicyStatus::Superseded,
        ] {
            let r = Review {
                status,
                ..proposed()
            };
            assert!(matches!(
                approve(&r, &li, ""),
                Err(Error::FailedPrecondition(_))
            ));
            assert!(matches!(
                reject(&r, &li, "不同意"),
                Err(Error::FailedPrecondition(_))
            ));
        }
        let behind = Review {
            in_force_version: Some(3),
            ..proposed()
        };
        assert!(matches!(
            approve(&behind, &li, ""),
            Err(Error::FailedPrecondition(_))
        ));
        assert!(reject(&behind, &li, "已有新版").is_ok());
        let first = Review {
            in_force_version: None,
            ..proposed()
        };
        assert!(approve(&first, &li, "").is_ok());
    }

    #[test]
    fn notes_and_reasons_are_bounded() {
        let li = person(Role::FinanceApprover, "li.na");
        assert!(matches!(
            approve(&proposed(), &li, &"长".repeat(501)),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            reject(&proposed(), &li, " x "),
            Err(Error::InvalidArgument(_))
        ));
        for s in PolicyStatus::ALL {
            assert_eq!(PolicyStatus::parse(s.as_str()), Some(s));
            assert_eq!(PolicyStatus::from_proto(s.to_proto()), Some(s));
        }
        assert_eq!(PolicyStatus::from_proto(Proto::Unspecified), None);
    }

    proptest! {
        /// A decision is allowed exactly when an approver who is not the proposer decides a
        /// proposal: whatever the subjects' case and spaces.
        #[test]
        fn a_decision_needs_a_second_person(
            proposer in "[A-Za-z]{1,6}",
            decider in "[A-Za-z]{1,6}",
            pad in "[ \t]{0,2}",
            status in 0usize..4,
        ) {
            let status = PolicyStatus::ALL[status];
            let review = Review { status, version: 1, proposed_by: &proposer, in_force_version: None };
            let caller = person(Role::FinanceApprover, &format!("{pad}{}{pad}", decider.to_uppercase()));
            let allowed = approve(&review, &caller, "").is_ok();
            let second_person = proposer.to_lowercase() != decider.to_lowercase();
            prop_assert_eq!(allowed, second_person && status == PolicyStatus::Proposed);
        }
    }
}
