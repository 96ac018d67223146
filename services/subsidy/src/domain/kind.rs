//! What a policy computes and what an application pays: a subsidy to the enterprise, or a
//! reward to the broker who facilitated the deal.

use kechuang_proto::common::ApplicationKind;
use kechuang_proto::subsidy::PolicyKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// A share of what the enterprise paid, paid to the enterprise.
    #[default]
    Subsidy,
    /// A share of the certified amount paid under a deal, paid to its facilitator.
    BrokerReward,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Subsidy => "SUBSIDY",
            Kind::BrokerReward => "BROKER_REWARD",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Subsidy, Kind::BrokerReward]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// A policy's kind as the API names it.
    pub fn to_policy_proto(self) -> PolicyKind {
        match self {
            Kind::Subsidy => PolicyKind::Subsidy,
            Kind::BrokerReward => PolicyKind::BrokerReward,
        }
    }

    /// A request's policy kind: UNSPECIFIED (older clients) is a subsidy policy; `None` for a
    /// number no kind has.
    pub fn from_policy_proto(kind: i32) -> Option<Kind> {
        match PolicyKind::try_from(kind).ok()? {
            PolicyKind::Unspecified | PolicyKind::Subsidy => Some(Kind::Subsidy),
            PolicyKind::BrokerReward => Some(Kind::BrokerReward),
        }
    }

    /// An application's kind as the API and the events name it.
    pub fn to_application_proto(self) -> ApplicationKind {
        match self {
            Kind::Subsidy => ApplicationKind::Subsidy,
            Kind::BrokerReward => ApplicationKind::BrokerReward,
        }
    }

    /// A filter's kind: `Some(None)` for UNSPECIFIED (every kind), `None` for a number no
    /// kind has.
    pub fn application_filter(kind: i32) -> Option<Option<Kind>> {
        match ApplicationKind::try_from(kind).ok()? {
            ApplicationKind::Unspecified => Some(None),
            ApplicationKind::Subsidy => Some(Some(Kind::Subsidy)),
            ApplicationKind::BrokerReward => Some(Some(Kind::BrokerReward)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_clients_propose_subsidy_policies() {
        assert_eq!(Kind::from_policy_proto(0), Some(Kind::Subsidy));
        assert_eq!(Kind::from_policy_proto(2), Some(Kind::BrokerReward));
        assert_eq!(Kind::from_policy_proto(99), None);
        assert_eq!(Kind::application_filter(0), Some(None));
        assert_eq!(Kind::application_filter(2), Some(Some(Kind::BrokerReward)));
        assert_eq!(Kind::application_filter(7), None);
        for k in [Kind::Subsidy, Kind::BrokerReward] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }
}
