//! The JSON shapes of the HTTP API: the gRPC messages with snake_case enums, RFC 3339 times
//! and money in fen, and their conversions to and from the proto messages. The
//! shared enums and time conversions live here, the messages by area below.

use chrono::{DateTime, Utc};
use kechuang_proto::common::ContractType as PbContractType;
use kechuang_proto::demand as dpb;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;
use prost_types::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    kechuang_platform::events::timestamp(t)
}

pub fn time(t: Option<Timestamp>) -> Option<DateTime<Utc>> {
    kechuang_platform::events::from_timestamp(&t?)
}

/// The five kinds of Chinese technology contract (技术合同).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractType {
    /// 技术开发
    Development,
    /// 技术转让
    Transfer,
    /// 技术许可
    License,
    /// 技术咨询
    Consulting,
    /// 技术服务
    Service,
}

impl ContractType {
    pub fn to_proto(self) -> i32 {
        (match self {
            ContractType::Development => PbContractType::Development,
            ContractType::Transfer => PbContractType::Transfer,
            ContractType::License => PbContractType::License,
            ContractType::Consulting => PbContractType::Consulting,
            ContractType::Service => PbContractType::Service,
        }) as i32
    }

    pub fn from_proto(value: i32) -> Option<Self> {
        match PbContractType::try_from(value).ok()? {
            PbContractType::Development => Some(ContractType::Development),
            PbContractType::Transfer => Some(ContractType::Transfer),
            PbContractType::License => Some(ContractType::License),
            PbContractType::Consulting => Some(ContractType::Consulting),
            PbContractType::Service => Some(ContractType::Service),
            PbContractType::Unspecified => None,
        }
    }
}

/// Where a demand is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DemandStatus {
    Submitted,
    Verified,
    Rejected,
    Matching,
    Docking,
    Contracted,
    Completed,
    Withdrawn,
}

impl DemandStatus {
    const ALL: [(DemandStatus, dpb::DemandStatus); 8] = [
        (DemandStatus::Submitted, dpb::DemandStatus::Submitted),
        (DemandStatus::Verified, dpb::DemandStatus::Verified),
        (DemandStatus::Rejected, dpb::DemandStatus::Rejected),
        (DemandStatus::Matching, dpb::DemandStatus::Matching),
        (DemandStatus::Docking, dpb::DemandStatus::Docking),
        (DemandStatus::Contracted, dpb::DemandStatus::Contracted),
        (DemandStatus::Completed, dpb::DemandStatus::Completed),
        (DemandStatus::Withdrawn, dpb::DemandStatus::Withdrawn),
    ];

    pub fn to_proto(self) -> i32 {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, p)| *p as i32)
            .unwrap_or(0)
    }

    pub fn from_proto(value: i32) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, p)| *p as i32 == value)
            .map(|(s, _)| *s)
    }
}

/// Where a pairing is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PairingStatus {
    Proposed,
    Accepted,
    Rejected,
    Expired,
}

impl PairingStatus {
    pub fn from_proto(value: i32) -> Option<Self> {
        match mpb::PairingStatus::try_from(value).ok()? {
            mpb::PairingStatus::Proposed => Some(PairingStatus::Proposed),
            mpb::PairingStatus::Accepted => Some(PairingStatus::Accepted),
            mpb::PairingStatus::Rejected => Some(PairingStatus::Rejected),
            mpb::PairingStatus::Expired => Some(PairingStatus::Expired),
            mpb::PairingStatus::Unspecified => None,
        }
    }
}

/// Where a subsidy application is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    PendingReview,
    Approved,
    Rejected,
    Ineligible,
    FundsReserved,
    Waitlisted,
    Disbursed,
    DisbursementFailed,
    /// Its contract is not registered yet; judged when the registrar decides.
    AwaitingRegistration,
}

impl ApplicationStatus {
    const ALL: [(ApplicationStatus, spb::ApplicationStatus); 9] = [
        (
            ApplicationStatus::PendingReview,
            spb::ApplicationStatus::PendingReview,
        ),
        (
            ApplicationStatus::Approved,
            spb::ApplicationStatus::Approved,
        ),
        (
            ApplicationStatus::Rejected,
            spb::ApplicationStatus::Rejected,
        ),
        (
            ApplicationStatus::Ineligible,
            spb::ApplicationStatus::Ineligible,
        ),
        (
            ApplicationStatus::FundsReserved,
            spb::ApplicationStatus::FundsReserved,
        ),
        (
            ApplicationStatus::Waitlisted,
            spb::ApplicationStatus::Waitlisted,
        ),
        (
            ApplicationStatus::Disbursed,
            spb::ApplicationStatus::Disbursed,
        ),
        (
            ApplicationStatus::DisbursementFailed,
            spb::ApplicationStatus::DisbursementFailed,
        ),
        (
            ApplicationStatus::AwaitingRegistration,
            spb::ApplicationStatus::AwaitingRegistration,
        ),
    ];

    pub fn to_proto(self) -> i32 {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, p)| *p as i32)
            .unwrap_or(0)
    }

    pub fn from_proto(value: i32) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, p)| *p as i32 == value)
            .map(|(s, _)| *s)
    }
}

mod deals;
mod demands;
mod subsidy;

pub use deals::*;
pub use demands::*;
pub use subsidy::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_proto_values() {
        for s in DemandStatus::ALL.map(|(s, _)| s) {
            assert_eq!(DemandStatus::from_proto(s.to_proto()), Some(s));
        }
        for s in ApplicationStatus::ALL.map(|(s, _)| s) {
            assert_eq!(ApplicationStatus::from_proto(s.to_proto()), Some(s));
        }
        for t in [
            ContractType::Development,
            ContractType::Transfer,
            ContractType::License,
            ContractType::Consulting,
            ContractType::Service,
        ] {
            assert_eq!(ContractType::from_proto(t.to_proto()), Some(t));
        }
        assert_eq!(ContractType::from_proto(0), None);
        assert_eq!(DemandStatus::from_proto(99), None);
    }

    #[test]
    fn times_round_trip_and_bad_nanos_are_none() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T08:30:00.5Z")
            .unwrap()
            .to_utc();
        assert_eq!(time(Some(timestamp(t))), Some(t));
        assert_eq!(
            time(Some(Timestamp {
                seconds: 0,
                nanos: -1
            })),
            None
        );
        assert_eq!(time(None), None);
    }

    #[test]
    fn json_enums_are_snake_case() {
        assert_eq!(
            serde_json::to_string(&ApplicationStatus::PendingReview).unwrap(),
            "\"pending_review\""
        );
        let body: RespondBody = serde_json::from_str(r#"{"accept":true}"#).unwrap();
        assert!(body.accept && body.note.is_empty());
    }
}
