//! The name of every event: `<aggregate>.<event>`, the tail of its NATS subject.

use crate::events::envelope::Payload;

// Every event's name, once: the payloads' `event_type()` and the services' subscriptions
// both use these, so a subscription cannot name an event that does not exist.
pub const ENTERPRISE_REGISTERED: &str = "enterprise.registered";
pub const DEMAND_SUBMITTED: &str = "demand.submitted";
pub const DEMAND_VERIFIED: &str = "demand.verified";
pub const DEMAND_REJECTED: &str = "demand.rejected";
pub const DEMAND_WITHDRAWN: &str = "demand.withdrawn";
pub const ACHIEVEMENT_REGISTERED: &str = "achievement.registered";
pub const PAIRING_PROPOSED: &str = "pairing.proposed";
pub const PAIRING_ACCEPTED: &str = "pairing.accepted";
pub const PAIRING_REJECTED: &str = "pairing.rejected";
pub const CONTRACT_SIGNED: &str = "contract.signed";
pub const POLICY_CREATED: &str = "policy.created";
pub const PAYMENT_RECORDED: &str = "payment.recorded";
pub const SUBSIDY_APPROVED: &str = "subsidy.approved";
pub const SUBSIDY_REJECTED: &str = "subsidy.rejected";
pub const SUBSIDY_DISBURSED: &str = "subsidy.disbursed";
pub const SUBSIDY_DISBURSEMENT_FAILED: &str = "subsidy.disbursement_failed";
pub const FUND_CREATED: &str = "fund.created";
pub const FUND_TOPPED_UP: &str = "fund.topped_up";
pub const FUND_RESERVED: &str = "fund.reserved";
pub const FUND_RESERVATION_REJECTED: &str = "fund.reservation_rejected";
pub const FUND_POSTED: &str = "fund.posted";
pub const FUND_VOIDED: &str = "fund.voided";
pub const FUND_LOW_BALANCE: &str = "fund.low_balance";
pub const REGISTRATION_CERTIFIED: &str = "registration.certified";
pub const REGISTRATION_REFUSED: &str = "registration.refused";
pub const AUDIT_ANCHORED: &str = "audit.anchored";

/// Every event of one aggregate, as a subscription filter (`fund.*`).
pub mod every {
    pub const ENTERPRISE: &str = "enterprise.*";
    pub const DEMAND: &str = "demand.*";
    pub const ACHIEVEMENT: &str = "achievement.*";
    pub const PAIRING: &str = "pairing.*";
    pub const CONTRACT: &str = "contract.*";
    pub const POLICY: &str = "policy.*";
    pub const PAYMENT: &str = "payment.*";
    pub const SUBSIDY: &str = "subsidy.*";
    pub const FUND: &str = "fund.*";
    pub const REGISTRATION: &str = "registration.*";
}

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
        "policy" | "payment" | "subsidy" | "registration" | "audit" => "subsidy",
        "fund" => "fund-ledger",
        _ => "",
    }
}

impl EventType for Payload {
    fn event_type(&self) -> &'static str {
        match self {
            Payload::EnterpriseRegistered(_) => ENTERPRISE_REGISTERED,
            Payload::DemandSubmitted(_) => DEMAND_SUBMITTED,
            Payload::DemandVerified(_) => DEMAND_VERIFIED,
            Payload::DemandRejected(_) => DEMAND_REJECTED,
            Payload::DemandWithdrawn(_) => DEMAND_WITHDRAWN,
            Payload::AchievementRegistered(_) => ACHIEVEMENT_REGISTERED,
            Payload::PairingProposed(_) => PAIRING_PROPOSED,
            Payload::PairingAccepted(_) => PAIRING_ACCEPTED,
            Payload::PairingRejected(_) => PAIRING_REJECTED,
            Payload::ContractSigned(_) => CONTRACT_SIGNED,
            Payload::PolicyCreated(_) => POLICY_CREATED,
            Payload::PaymentRecorded(_) => PAYMENT_RECORDED,
            Payload::SubsidyApproved(_) => SUBSIDY_APPROVED,
            Payload::SubsidyRejected(_) => SUBSIDY_REJECTED,
            Payload::SubsidyDisbursed(_) => SUBSIDY_DISBURSED,
            Payload::SubsidyDisbursementFailed(_) => SUBSIDY_DISBURSEMENT_FAILED,
            Payload::FundCreated(_) => FUND_CREATED,
            Payload::FundToppedUp(_) => FUND_TOPPED_UP,
            Payload::FundReserved(_) => FUND_RESERVED,
            Payload::FundReservationRejected(_) => FUND_RESERVATION_REJECTED,
            Payload::FundPosted(_) => FUND_POSTED,
            Payload::FundVoided(_) => FUND_VOIDED,
            Payload::FundLowBalance(_) => FUND_LOW_BALANCE,
            Payload::RegistrationCertified(_) => REGISTRATION_CERTIFIED,
            Payload::RegistrationRefused(_) => REGISTRATION_REFUSED,
            Payload::AuditAnchored(_) => AUDIT_ANCHORED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_aggregate_filter_names_an_aggregate_with_an_owner() {
        for filter in [
            every::ENTERPRISE,
            every::DEMAND,
            every::ACHIEVEMENT,
            every::PAIRING,
            every::CONTRACT,
            every::POLICY,
            every::PAYMENT,
            every::SUBSIDY,
            every::FUND,
            every::REGISTRATION,
        ] {
            let aggregate = filter
                .strip_suffix(".*")
                .expect("a wildcard over one aggregate");
            assert_ne!(producer_of(aggregate), "", "{filter}");
        }
    }
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
        assert_eq!(producer_of("registration"), "subsidy");
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
