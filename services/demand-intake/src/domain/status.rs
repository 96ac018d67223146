//! The demand's state machine (DESIGN.md): `SUBMITTED → VERIFIED | REJECTED`;
//! `VERIFIED → MATCHING → DOCKING → CONTRACTED → COMPLETED`; `WITHDRAWN` from any state before
//! `CONTRACTED`. Commands come from people over gRPC; stages come from other services' events,
//! which may arrive late, twice or out of order: a stage only ever moves a demand forward.

use kechuang_proto::demand::DemandStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Submitted,
    Verified,
    Rejected,
    Matching,
    Docking,
    Contracted,
    Completed,
    Withdrawn,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Submitted,
        Status::Verified,
        Status::Rejected,
        Status::Matching,
        Status::Docking,
        Status::Contracted,
        Status::Completed,
        Status::Withdrawn,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::Verified => "verified",
            Status::Rejected => "rejected",
            Status::Matching => "matching",
            Status::Docking => "docking",
            Status::Contracted => "contracted",
            Status::Completed => "completed",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn to_wire(self) -> DemandStatus {
        match self {
            Status::Submitted => DemandStatus::Submitted,
            Status::Verified => DemandStatus::Verified,
            Status::Rejected => DemandStatus::Rejected,
            Status::Matching => DemandStatus::Matching,
            Status::Docking => DemandStatus::Docking,
            Status::Contracted => DemandStatus::Contracted,
            Status::Completed => DemandStatus::Completed,
            Status::Withdrawn => DemandStatus::Withdrawn,
        }
    }

    /// `None` for `UNSPECIFIED`.
    pub fn from_wire(status: DemandStatus) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.to_wire() == status)
    }

    /// Nothing moves a demand out of these.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Rejected | Status::Withdrawn | Status::Completed
        )
    }

    /// Position along the main chain; `None` off it (rejected, withdrawn).
    fn rank(self) -> Option<u8> {
        match self {
            Status::Submitted => Some(0),
            Status::Verified => Some(1),
            Status::Matching => Some(2),
            Status::Docking => Some(3),
            Status::Contracted => Some(4),
            Status::Completed => Some(5),
            Status::Rejected | Status::Withdrawn => None,
        }
    }
}

/// How far a downstream service says the demand has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `kc.pairing.proposed`
    Matching,
    /// `kc.pairing.accepted`
    Docking,
    /// `kc.contract.signed`
    Contracted,
    /// `kc.subsidy.disbursed`
    Completed,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Matching,
        Stage::Docking,
        Stage::Contracted,
        Stage::Completed,
    ];

    pub fn status(self) -> Status {
        match self {
            Stage::Matching => Status::Matching,
            Stage::Docking => Status::Docking,
            Stage::Contracted => Status::Contracted,
            Stage::Completed => Status::Completed,
        }
    }
}

/// What a person asks of a demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// A technology manager's verdict on a submitted demand.
    Verify { approve: bool },
    /// The owning enterprise takes the demand back.
    Withdraw,
}

/// Why a command cannot be carried out in the demand's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only a submitted demand can be verified; this one is {}", .0.as_str())]
    NotAwaitingVerification(Status),
    #[error("the demand is already {}", .0.as_str())]
    AlreadyClosed(Status),
    #[error("a {} demand can no longer be withdrawn", .0.as_str())]
    TooLateToWithdraw(Status),
}

/// The status a command moves the demand to, or why it cannot.
pub fn decide(current: Status, command: Command) -> Result<Status, Refusal> {
    match command {
        Command::Verify { approve } => match current {
            Status::Submitted if approve => Ok(Status::Verified),
            Status::Submitted => Ok(Status::Rejected),
            other => Err(Refusal::NotAwaitingVerification(other)),
        },
        Command::Withdraw => match current {
            Status::Rejected | Status::Withdrawn => Err(Refusal::AlreadyClosed(current)),
            Status::Contracted | Status::Completed => Err(Refusal::TooLateToWithdraw(current)),
            Status::Submitted | Status::Verified | Status::Matching | Status::Docking => {
                Ok(Status::Withdrawn)
            }
        },
    }
}

/// What a downstream stage does to a demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// Move to this status (possibly skipping stages whose events are still on their way).
    Advance(Status),
    /// Leave the demand as it is; recorded with the reason.
    Ignore(IgnoreReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreReason {
    #[error("the demand is {} already; a stage never moves it back", .0.as_str())]
    AlreadyPast(Status),
    #[error("the demand is {}; it stays so", .0.as_str())]
    Closed(Status),
    /// Only verified demands go to matching; a stage before verification skips the human gate.
    #[error("the demand has not been verified")]
    NotVerified,
}

/// Applies a stage reported by another service: forward only, idempotent, order-independent.
pub fn on_stage(current: Status, stage: Stage) -> Reaction {
    let target = stage.status();
    match current {
        Status::Rejected | Status::Withdrawn => Reaction::Ignore(IgnoreReason::Closed(current)),
        Status::Submitted => Reaction::Ignore(IgnoreReason::NotVerified),
        _ if current.rank() < target.rank() => Reaction::Advance(target),
        _ => Reaction::Ignore(IgnoreReason::AlreadyPast(current)),
    }
}

/// Every move the state machine allows, written out independently of `decide` and `on_stage`
/// (jumps forward along the chain are allowed: their events may arrive in any order).
pub fn is_legal(from: Status, to: Status) -> bool {
    use Status::*;
    match (from, to) {
        (Submitted, Verified | Rejected | Withdrawn) => true,
        (Verified | Matching | Docking, Withdrawn) => true,
        (
            Verified | Matching | Docking | Contracted,
            Matching | Docking | Contracted | Completed,
        ) => from.rank() < to.rank(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_and_wire_values_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(Status::from_wire(s.to_wire()), Some(s));
        }
        assert_eq!(Status::from_wire(DemandStatus::Unspecified), None);
        assert_eq!(Status::parse("lost"), None);
    }

    #[test]
    fn verification_only_from_submitted() {
        assert_eq!(
            decide(Status::Submitted, Command::Verify { approve: true }),
            Ok(Status::Verified)
        );
        assert_eq!(
            decide(Status::Submitted, Command::Verify { approve: false }),
            Ok(Status::Rejected)
        );
        for s in Status::ALL.into_iter().filter(|s| *s != Status::Submitted) {
            for approve in [true, false] {
                assert_eq!(
                    decide(s, Command::Verify { approve }),
                    Err(Refusal::NotAwaitingVerification(s))
                );
            }
        }
    }

    #[test]
    fn withdrawal_before_contract_only() {
        use Status::*;
        for s in [Submitted, Verified, Matching, Docking] {
            assert_eq!(decide(s, Command::Withdraw), Ok(Withdrawn));
        }
        for s in [Contracted, Completed] {
            assert_eq!(
                decide(s, Command::Withdraw),
                Err(Refusal::TooLateToWithdraw(s))
            );
        }
        for s in [Rejected, Withdrawn] {
            assert_eq!(decide(s, Command::Withdraw), Err(Refusal::AlreadyClosed(s)));
        }
    }

    #[test]
    fn stages_jump_forward_and_never_back() {
        use Status::*;
        assert_eq!(
            on_stage(Verified, Stage::Contracted),
            Reaction::Advance(Contracted)
        );
        assert_eq!(
            on_stage(Contracted, Stage::Matching),
            Reaction::Ignore(IgnoreReason::AlreadyPast(Contracted))
        );
        assert_eq!(
            on_stage(Matching, Stage::Matching),
            Reaction::Ignore(IgnoreReason::AlreadyPast(Matching))
        );
        assert_eq!(
            on_stage(Withdrawn, Stage::Completed),
            Reaction::Ignore(IgnoreReason::Closed(Withdrawn))
        );
        assert_eq!(
            on_stage(Rejected, Stage::Matching),
            Reaction::Ignore(IgnoreReason::Closed(Rejected))
        );
        assert_eq!(
            on_stage(Submitted, Stage::Docking),
            Reaction::Ignore(IgnoreReason::NotVerified)
        );
        assert_eq!(
            on_stage(Completed, Stage::Completed),
            Reaction::Ignore(IgnoreReason::AlreadyPast(Completed))
        );
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Command(Command),
        Stage(Stage),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            any::<bool>().prop_map(|approve| Step::Command(Command::Verify { approve })),
            Just(Step::Command(Command::Withdraw)),
            proptest::sample::select(Stage::ALL.to_vec()).prop_map(Step::Stage),
        ]
    }

    fn run(mut status: Status, step: Step) -> Status {
        match step {
            Step::Command(c) => {
                if let Ok(next) = decide(status, c) {
                    status = next;
                }
            }
            Step::Stage(s) => {
                if let Reaction::Advance(next) = on_stage(status, s) {
                    status = next;
                }
            }
        }
        status
    }

    proptest! {
        /// Whatever people and services do, in any order: every move is a legal edge, a final
        /// status stays final, and along the chain the demand only moves forward.
        #[test]
        fn no_sequence_reaches_an_illegal_state(steps in proptest::collection::vec(step(), 0..40)) {
            let mut status = Status::Submitted;
            for step in steps {
                let next = run(status, step);
                if next != status {
                    prop_assert!(is_legal(status, next), "{status:?} -> {next:?} by {step:?}");
                    prop_assert!(!status.is_final(), "left final {status:?} by {step:?}");
                    if let (Some(a), Some(b)) = (status.rank(), next.rank()) {
                        prop_assert!(a < b, "{status:?} -> {next:?} went backwards");
                    }
                }
                status = next;
            }
        }

        /// A verified demand ends at the furthest stage reported, whatever order the stage
        /// events arrive in and however often each is delivered.
        #[test]
        fn stage_events_commute(stages in proptest::collection::vec(proptest::sample::select(Stage::ALL.to_vec()), 1..12)) {
            let mut status = Status::Verified;
            for s in &stages {
                status = run(status, Step::Stage(*s));
            }
            let furthest = stages.iter().map(|s| s.status()).max_by_key(|s| s.rank()).unwrap();
            prop_assert_eq!(status, furthest);
        }

        /// Replaying a stage that was applied changes nothing.
        #[test]
        fn stages_are_idempotent(start in proptest::sample::select(Status::ALL.to_vec()), stage in proptest::sample::select(Stage::ALL.to_vec())) {
            let once = run(start, Step::Stage(stage));
            prop_assert_eq!(run(once, Step::Stage(stage)), once);
        }
    }
}
