//! The gRPC surface: thin handlers over the domain and the store.

mod applications;

mod payments;
mod policies;
mod registrations;

pub use applications::SubsidyApi;
pub(crate) use payments::china_year;
pub use policies::{PolicyApi, propose as propose_policy};
pub(crate) use policies::{insert_proposal, terms as policy_terms};
pub use registrations::RegistrationApi;

use kechuang_platform::{Caller, Role};

/// Roles that read everything in the finance net.
pub(crate) const FINANCE_READERS: &[Role] = &[
    Role::FinanceOfficer,
    Role::FinanceApprover,
    Role::Auditor,
    Role::Service,
];

pub(crate) fn reads_everything(caller: &Caller) -> bool {
    caller.has_any(FINANCE_READERS)
}
