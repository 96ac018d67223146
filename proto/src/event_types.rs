//! The name of every event: `<aggregate>.<event>`, the tail of its NATS subject.

use crate::events::envelope::Payload;

/// What the envelope's payload variant is called on the bus.
pub trait EventType {
    /// `<aggregate>.<event>`, e.g. `demand.submitted`.
    fn event_type(&self) -> &'static str;

    /// The aggregate part, e.g. `demand`.
    fn aggregate_type(&self) -> &'static str {
        let name = self.event_type();
        name.split_once('.')
            .map_or(name, |(aggregate, _)| aggregate)
    }

    /// The one service entitled to emit this event: consumers act on it only when that
    /// service signed it. Each aggregate has one owner, so the aggregate decides.
    fn producer(&self) -> &'static str {
        producer_of(self.aggregate_type())
    }
}

/// The service that owns `aggregate` (and alone emits its events); `""` for an unknown one.
pub fn producer_of(aggregate: &str) -> &'static str {
    match aggregate {
        "enterprise" | "demand" => "demand-intake",
        "achievement" | "pairing" | "contract" => "matching",
        "policy" | "payment" | "subsidy" => "subsidy",
        "fund" => "fund-ledger",
        _ => "",
    }
}

impl EventType for Payload {
    fn event_type(&self) -> &'static str {
        match self {
            Payload::EnterpriseRegistered(_) => "enterprise.registered",
            Payload::DemandSubmitted(_) => "demand.submitted",
            Payload::DemandVerified(_) => "demand.verified",
            Payload::DemandRejected(_) => "demand.rejected",
            Payload::DemandWithdrawn(_) => "demand.withdrawn",
            Payload::AchievementRegistered(_) => "achievement.registered",
            Payload::PairingProposed(_) => "pairing.proposed",
            Payload::PairingAccepted(_) => "pairing.accepted",
            Payload::PairingRejected(_) => "pairing.rejected",
            Payload::ContractSigned(_) => "contract.signed",
            Payload::PolicyCreated(_) => "policy.created",
            Payload::PaymentRecorded(_) => "payment.recorded",
            Payload::SubsidyApproved(_) => "subsidy.approved",
            Payload::SubsidyRejected(_) => "subsidy.rejected",
            Payload::SubsidyDisbursed(_) => "subsidy.disbursed",
            Payload::SubsidyDisbursementFailed(_) => "subsidy.disbursement_failed",
            Payload::FundCreated(_) => "fund.created",
            Payload::FundToppedUp(_) => "fund.topped_up",
            Payload::FundReserved(_) => "fund.reserved",
            Payload::FundReservationRejected(_) => "fund.reservation_rejected",
            Payload::FundPosted(_) => "fund.posted",
            Payload::FundVoided(_) => "fund.voided",
            Payload::FundLowBalance(_) => "fund.low_balance",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{FundLowBalance, SubsidyDisbursementFailed};

    #[test]
    fn each_event_has_one_entitled_producer() {
        use crate::events::{ContractSigned, FundReserved, SubsidyApproved};
        assert_eq!(
            Payload::ContractSigned(ContractSigned::default()).producer(),
            "matching"
        );
        assert_eq!(
            Payload::FundReserved(FundReserved::default()).producer(),
            "fund-ledger"
        );
        assert_eq!(
            Payload::SubsidyApproved(SubsidyApproved::default()).producer(),
            "subsidy"
        );
        assert_eq!(producer_of("demand"), "demand-intake");
        assert_eq!(producer_of("bank"), "");
    }

    #[test]
    fn aggregate_is_the_part_before_the_dot() {
        let p = Payload::SubsidyDisbursementFailed(SubsidyDisbursementFailed::default());
        assert_eq!(p.event_type(), "subsidy.disbursement_failed");
        assert_eq!(p.aggregate_type(), "subsidy");
        let p = Payload::FundLowBalance(FundLowBalance::default());
        assert_eq!(p.aggregate_type(), "fund");
    }
}
