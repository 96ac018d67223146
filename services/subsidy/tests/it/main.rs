//! The subsidy service over gRPC, real Postgres and real NATS. The fund ledger's answers are
//! published on the bus by the tests here; the saga with the real ledger is in tests/ (e2e).

mod approval;
mod approval_groups;
mod audit_trail;
mod certified_base;
mod figures;
mod helpers;
mod migrations;
mod payments;
mod policies;
mod policy_review;
mod registration;
mod rewards;
mod saga;
mod timing;
