//! Which claims of a token carry a person's roles, enterprise and institution. Identity
//! providers differ (Keycloak puts realm roles under `realm_access.roles`, others use `roles`
//! or `groups`), so the names are configuration, dotted paths into the claims.

use super::{Caller, Role, Roles};
use crate::error::Error;
use serde_json::Value;

/// The claim paths a deployment reads (`KC_TOKEN_ROLES_CLAIM` and its siblings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub roles: String,
    pub enterprise: String,
    pub institution: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            roles: "roles".into(),
            enterprise: "enterprise_id".into(),
            institution: "institution_id".into(),
        }
    }
}

/// The value at a dotted `path` (`realm_access.roles`); a claim whose own name has a dot is
/// found too, as identity providers sometimes name them so.
fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

fn text(claims: &Value, path: &str) -> Option<String> {
    lookup(claims, path)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl ClaimNames {
    /// The caller the verified `claims` describe. Role names kechuang does not know are
    /// ignored (an identity provider's tokens carry others: `offline_access`, ...), but at
    /// least one must be known; an enterprise role needs its enterprise.
    pub fn caller(&self, claims: &Value) -> Result<Caller, Error> {
        let refuse = |why: String| Err(Error::Unauthenticated(format!("invalid token: {why}")));
        let Some(subject) = text(claims, "sub") else {
            return refuse("it has no subject".into());
        };
        let names: Vec<&str> = match lookup(claims, &self.roles) {
            Some(Value::String(one)) => one.split([' ', ',']).collect(),
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let roles = names
            .iter()
            .filter_map(|n| n.trim().parse::<Role>().ok())
            .fold(Roles::default(), Roles::with);
        if roles.is_empty() {
            return refuse(format!("no kechuang role in its claim {:?}", self.roles));
        }
        let caller = Caller {
            roles,
            subject,
            enterprise_id: text(claims, &self.enterprise),
            institution_id: text(claims, &self.institution),
        };
        if caller.has(Role::Enterprise) && caller.enterprise_id.is_none() {
            return refuse(format!(
                "an enterprise token must name its enterprise in {:?}",
                self.enterprise
            ));
        }
        Ok(caller)
    }

    /// The claims a token for `caller` carries under these names (for issuing tokens).
    pub fn claims_of(&self, caller: &Caller) -> serde_json::Map<String, Value> {
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), caller.subject.clone().into());
        let roles: Vec<Value> = caller.roles.iter().map(|r| r.as_str().into()).collect();
        insert_at(&mut claims, &self.roles, roles.into());
        if let Some(e) = &caller.enterprise_id {
            insert_at(&mut claims, &self.enterprise, e.clone().into());
        }
        if let Some(i) = &caller.institution_id {
            insert_at(&mut claims, &self.institution, i.clone().into());
        }
        claims
    }
}

/// Puts `value` at the dotted `path`, creating the objects on the way.
fn insert_at(claims: &mut serde_json::Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            claims.insert(path.into(), value);
        }
        Some((head, rest)) => {
            let inner = claims
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(map) = inner {
                insert_at(map, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_are_read_from_a_configured_path_and_unknown_ones_ignored() {
        let keycloak = ClaimNames {
            roles: "realm_access.roles".into(),
            ..ClaimNames::default()
        };
        let claims = json!({
            "sub": "li", "realm_access": {"roles": ["offline_access", "finance_approver", "auditor"]}
        });
        let caller = keycloak.caller(&claims).unwrap();
        assert!(caller.has(Role::FinanceApprover) && caller.has(Role::Auditor));
        assert!(!caller.has(Role::Enterprise));
        // The same claims read with the default names carry no role.
        let err = ClaimNames::default().caller(&claims).unwrap_err();
        assert!(err.to_string().contains("no kechuang role"), "{err}");
    }

    #[test]
    fn a_space_separated_role_string_works_and_an_enterprise_needs_its_id() {
        let names = ClaimNames::default();
        let claims = json!({"sub": "wang", "roles": "enterprise tech_manager", "enterprise_id": "91420100X"});
        let caller = names.caller(&claims).unwrap();
        assert!(caller.has(Role::Enterprise) && caller.has(Role::TechManager));
        assert_eq!(caller.enterprise_id.as_deref(), Some("91420100X"));
        let nameless = json!({"sub": "wang", "roles": ["enterprise"]});
        assert!(names.caller(&nameless).is_err());
        assert!(
            names.caller(&json!({"roles": ["auditor"]})).is_err(),
            "no subject"
        );
        assert!(
            names
                .caller(&json!({"sub": " ", "roles": ["auditor"]}))
                .is_err()
        );
    }

    #[test]
    fn a_registrar_is_read_from_its_claim_name() {
        let claims = json!({"sub": "登记员·周", "roles": ["registrar"]});
        let caller = ClaimNames::default().caller(&claims).unwrap();
        assert!(caller.has(Role::Registrar) && !caller.has(Role::FinanceApprover));
        assert_eq!(caller.roles.to_string(), "registrar");
    }

    #[test]
    fn issued_claims_read_back_to_the_same_caller() {
        for names in [
            ClaimNames::default(),
            ClaimNames {
                roles: "realm_access.roles".into(),
                enterprise: "kc.enterprise".into(),
                institution: "org".into(),
            },
        ] {
            let caller = Caller::new(Role::Enterprise, "li")
                .with_role(Role::Supplier)
                .with_enterprise("91420100MA4K0000X1")
                .with_institution("华中科技大学");
            let claims = Value::Object(names.claims_of(&caller));
            assert_eq!(names.caller(&claims).unwrap(), caller, "{claims}");
        }
    }
}
