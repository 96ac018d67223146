//! Who may do what. An enterprise acts only for the enterprise its token names; another
//! enterprise's enterprise or demand answers `NOT_FOUND`, exactly as an id that does not exist,
//! so ids cannot be probed. Technology managers verify and read; auditors only read; the
//! `service` role (the demo driver, the gateway) may do anything an operator can.

use kechuang_platform::error::Error;
use kechuang_platform::{Caller, Role};

/// The finance office reads demands too: it funds the contracts they lead to and watches the
/// supply chain's funnel (the console's funnel page).
const READERS: &[Role] = &[
    Role::Enterprise,
    Role::TechManager,
    Role::Auditor,
    Role::FinanceOfficer,
    Role::FinanceApprover,
    Role::Service,
];

/// The answer for anything the caller may not know exists.
pub fn hidden(what: &str, id: &str) -> Error {
    Error::NotFound(format!("{what} {id} not found"))
}

/// An enterprise registers itself (its token names its credit code); technology managers
/// register the enterprises they visit (地网), and the `service` role any.
pub fn register_enterprise(caller: &Caller, credit_code: &str) -> Result<(), Error> {
    caller.require(&[Role::Enterprise, Role::TechManager, Role::Service])?;
    if !caller.has_any(&[Role::TechManager, Role::Service]) && !caller.is_enterprise(credit_code) {
        return Err(Error::PermissionDenied(
            "an enterprise registers only itself: the token's enterprise_id must be the credit code"
                .into(),
        ));
    }
    Ok(())
}

pub fn read(caller: &Caller) -> Result<(), Error> {
    caller.require(READERS)
}

/// Roles that read every enterprise's records (technology managers, auditors, the finance
/// office, the service role).
const READ_ALL: &[Role] = &[
    Role::TechManager,
    Role::Auditor,
    Role::FinanceOfficer,
    Role::FinanceApprover,
    Role::Service,
];

/// Whether the caller reads every enterprise's records.
pub fn reads_all(caller: &Caller) -> bool {
    caller.has_any(READ_ALL)
}

/// Whether the caller may see what belongs to `enterprise_id` (when it may read at all).
pub fn sees(caller: &Caller, enterprise_id: &str) -> bool {
    reads_all(caller) || caller.is_enterprise(enterprise_id)
}

/// Whether the caller may change what belongs to `enterprise_id`: the enterprise itself, or
/// the service role. (Reading everything, as an auditor does, is no licence to change it.)
pub fn acts_for(caller: &Caller, enterprise_id: &str) -> bool {
    caller.has(Role::Service) || caller.is_enterprise(enterprise_id)
}

/// The enterprise a caller's listings are confined to: its own, unless it reads all.
pub fn list_scope(caller: &Caller) -> Option<&str> {
    if reads_all(caller) {
        None
    } else {
        caller.enterprise_id.as_deref()
    }
}

/// An enterprise submits its own demands; the `service` role on anyone's behalf.
pub fn submit(caller: &Caller, enterprise_id: &str) -> Result<(), Error> {
    caller.require(&[Role::Enterprise, Role::Service])?;
    // An empty id is bad input, reported by validation with the other fields.
    if !enterprise_id.is_empty() && !acts_for(caller, enterprise_id) {
        return Err(hidden("enterprise", enterprise_id));
    }
    Ok(())
}

pub fn verify(caller: &Caller) -> Result<(), Error> {
    caller.require(&[Role::TechManager, Role::Service])
}

/// Withdrawal is the owner's (checked with [`sees`] once the demand is loaded).
pub fn withdraw(caller: &Caller) -> Result<(), Error> {
    caller.require(&[Role::Enterprise, Role::Service])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, enterprise: Option<&str>) -> Caller {
        let caller = Caller::new(role, "someone");
        match enterprise {
            Some(e) => caller.with_enterprise(e),
            None => caller,
        }
    }

    #[test]
    fn reading_everything_is_no_licence_to_act_for_an_enterprise() {
        // An enterprise's employee who also audits reads every demand, and still submits and
        // withdraws only for their own enterprise.
        let both = caller(Role::Enterprise, Some("A")).with_role(Role::Auditor);
        assert!(sees(&both, "B") && list_scope(&both).is_none());
        assert!(submit(&both, "A").is_ok());
        assert!(matches!(submit(&both, "B"), Err(Error::NotFound(_))));
        assert!(acts_for(&both, "A") && !acts_for(&both, "B"));
        assert!(matches!(
            register_enterprise(&both, "B"),
            Err(Error::PermissionDenied(_))
        ));
        // A technology manager who is also an enterprise registers the enterprises they visit.
        let visiting = caller(Role::Enterprise, Some("A")).with_role(Role::TechManager);
        assert!(register_enterprise(&visiting, "B").is_ok());
    }

    #[test]
    fn an_enterprise_acts_only_for_itself() {
        let e = caller(Role::Enterprise, Some("A"));
        assert!(register_enterprise(&e, "A").is_ok());
        assert!(matches!(
            register_enterprise(&e, "B"),
            Err(Error::PermissionDenied(_))
        ));
        assert!(submit(&e, "A").is_ok());
        assert!(matches!(submit(&e, "B"), Err(Error::NotFound(_))));
        assert!(sees(&e, "A") && !sees(&e, "B"));
        assert_eq!(list_scope(&e), Some("A"));
        assert!(verify(&e).is_err());
    }

    #[test]
    fn roles() {
        let tm = caller(Role::TechManager, None);
        assert!(verify(&tm).is_ok() && read(&tm).is_ok() && register_enterprise(&tm, "A").is_ok());
        assert!(submit(&tm, "A").is_err() && withdraw(&tm).is_err());
        let auditor = caller(Role::Auditor, None);
        assert!(read(&auditor).is_ok() && sees(&auditor, "A"));
        assert!(verify(&auditor).is_err());
        assert!(submit(&auditor, "A").is_err());
        assert!(withdraw(&auditor).is_err());
        assert!(register_enterprise(&auditor, "A").is_err());
        let service = caller(Role::Service, None);
        assert!(
            verify(&service).is_ok() && submit(&service, "A").is_ok() && withdraw(&service).is_ok()
        );
        let supplier = caller(Role::Supplier, None);
        assert!(read(&supplier).is_err());
        for finance in [Role::FinanceOfficer, Role::FinanceApprover] {
            let f = caller(finance, None);
            assert!(read(&f).is_ok() && sees(&f, "A"));
            assert!(verify(&f).is_err() && submit(&f, "A").is_err() && withdraw(&f).is_err());
            assert!(register_enterprise(&f, "A").is_err());
        }
    }
}
