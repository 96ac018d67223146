//! The Keycloak realm compose imports (deploy/keycloak/kechuang-realm.json) issues what the
//! services and the gateway expect: kechuang's roles as realm roles (read from
//! `realm_access.roles`), access tokens for the audience `kechuang`, an enterprise user's
//! enterprise in `enterprise_id`, a gateway client that must use PKCE, one demo person per
//! role. (JSON is YAML: serde_yaml reads it.)

use crate::manifests::{read, str_of, strings};
use serde_yaml::Value;
use std::collections::BTreeSet;

/// The role names of services/platform/src/auth/mod.rs (`Role::X => "name"`).
fn platform_roles() -> BTreeSet<String> {
    read("services/platform/src/auth/mod.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Role::"))
        .filter_map(|l| l.split("=> \"").nth(1))
        .filter_map(|l| l.split('"').next())
        .map(String::from)
        .collect()
}

#[test]
fn the_realm_issues_the_tokens_kechuang_verifies() {
    let realm: Value = serde_yaml::from_str(&read("deploy/keycloak/kechuang-realm.json")).unwrap();
    assert_eq!(str_of(&realm["realm"]), "kechuang");
    let roles = platform_roles();
    assert_eq!(roles.len(), 9, "{roles:?}");
    let realm_roles: BTreeSet<String> = realm["roles"]["realm"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| str_of(&r["name"]))
        .collect();
    assert_eq!(realm_roles, roles);

    let clients = realm["clients"].as_sequence().unwrap();
    let gateway = clients
        .iter()
        .find(|c| str_of(&c["clientId"]) == "kechuang-gateway")
        .expect("the gateway's client");
    let compose = crate::manifests::yaml_documents("docker-compose.yml").remove(0);
    let env = crate::manifests::env_map(compose["services"]["gateway"].get("environment"));
    let value = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        value("KC_GATEWAY_OIDC_CLIENT_ID").as_deref(),
        Some("kechuang-gateway")
    );
    assert!(
        strings(&gateway["redirectUris"]).contains(&value("KC_GATEWAY_OIDC_REDIRECT_URL").unwrap())
    );
    assert_eq!(
        str_of(&gateway["attributes"]["pkce.code.challenge.method"]),
        "S256"
    );
    assert_eq!(gateway["standardFlowEnabled"].as_bool(), Some(true));
    assert_eq!(gateway["implicitFlowEnabled"].as_bool(), Some(false));
    assert_eq!(gateway["directAccessGrantsEnabled"].as_bool(), Some(false));
    assert!(
        strings(&gateway["defaultClientScopes"]).contains(&"roles".to_string()),
        "realm_access.roles"
    );
    let mappers = gateway["protocolMappers"].as_sequence().unwrap();
    let audience = mappers
        .iter()
        .find(|m| str_of(&m["protocolMapper"]) == "oidc-audience-mapper")
        .expect("an audience mapper");
    assert_eq!(
        str_of(&audience["config"]["included.custom.audience"]),
        "kechuang"
    );
    assert_eq!(str_of(&audience["config"]["access.token.claim"]), "true");
    let enterprise = mappers
        .iter()
        .find(|m| m["config"]["claim.name"].as_str() == Some("enterprise_id"))
        .expect("enterprise_id mapped into tokens");
    assert_eq!(str_of(&enterprise["config"]["access.token.claim"]), "true");

    // One demo person per role people hold (`service` is no person's).
    let users = realm["users"].as_sequence().unwrap();
    let held: BTreeSet<String> = users
        .iter()
        .flat_map(|u| strings(&u["realmRoles"]))
        .collect();
    let people: BTreeSet<String> = roles.iter().filter(|r| *r != "service").cloned().collect();
    assert_eq!(held, people);
    assert_eq!(users.len(), people.len());
    for u in users {
        if strings(&u["realmRoles"]).contains(&"enterprise".to_string()) {
            let id = strings(&u["attributes"]["enterprise_id"]);
            assert_eq!(id.len(), 1, "the enterprise user names its enterprise");
            assert_eq!(id[0].len(), 18, "a credit code");
        }
    }
}

/// Kubernetes: the gateway signs people in with the provider whose tokens the services trust.
#[test]
fn kubernetes_signs_people_in_with_the_trusted_provider() {
    let common = crate::manifests::yaml_documents("deploy/k8s/common.yaml").remove(0);
    let gateway = crate::manifests::yaml_documents("deploy/k8s/gateway.yaml").remove(0);
    let issuer = str_of(&gateway["data"]["KC_GATEWAY_OIDC_ISSUER"]);
    assert_eq!(issuer, str_of(&common["data"]["KC_TOKEN_ISSUER"]));
    assert!(issuer.starts_with("https://"), "{issuer}");
    let redirect = str_of(&gateway["data"]["KC_GATEWAY_OIDC_REDIRECT_URL"]);
    assert!(
        redirect.starts_with("https://") && redirect.ends_with("/login/callback"),
        "{redirect}"
    );
}
