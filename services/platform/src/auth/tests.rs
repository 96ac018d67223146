use super::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use tonic::service::Interceptor;

fn officer() -> Caller {
    Caller::new(Role::FinanceOfficer, "wang.fang")
}

fn issuer() -> Issuer {
    Issuer::generate(TokenRules::default())
}

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

#[test]
fn subjects_name_one_person_whatever_their_case_and_spaces() {
    assert_eq!(normalised_subject(" Wang.Fang\t"), "wang.fang");
    assert!(same_person("审批人·李", " 审批人·李 "));
    assert!(officer().is_person("WANG.FANG "));
    assert!(!officer().is_person("wang.fan"));
}

#[test]
fn a_minted_token_verifies_to_its_caller_with_every_role() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer);
    let both = officer().with_role(Role::Auditor);
    let token = issuer.mint(&both, Duration::from_secs(60));
    let caller = auth.verify(&token).unwrap();
    assert_eq!(caller, both);
    assert!(caller.has(Role::Auditor) && caller.has(Role::FinanceOfficer));
    assert!(caller.require(&[Role::Auditor]).is_ok());
    assert!(caller.require(&[Role::FinanceApprover]).is_err());
    assert_eq!(caller.roles.to_string(), "finance_officer+auditor");
}

#[test]
fn expired_foreign_and_garbage_tokens_are_refused() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer);
    let now = unix_now();
    let expired = issuer.mint_at(&officer(), now - 7200, now - 3600);
    assert!(matches!(
        auth.verify(&expired),
        Err(Error::Unauthenticated(_))
    ));
    let stranger =
        Issuer::generate(TokenRules::default()).mint(&officer(), Duration::from_secs(60));
    let err = auth.verify(&stranger).unwrap_err().to_string();
    assert!(err.contains("does not list"), "{err}");
    assert!(matches!(
        auth.verify("not.a.jwt"),
        Err(Error::Unauthenticated(_))
    ));
}

#[test]
fn a_token_signed_with_a_shared_secret_is_refused_whatever_it_says() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer);
    let now = unix_now();
    let body = json!({
        "sub": "li", "roles": ["finance_approver"], "iss": DEVELOPMENT_ISSUER,
        "aud": DEFAULT_AUDIENCE, "iat": now, "exp": now + 60,
    });
    for secret in [
        "kechuang-development-secret-do-not-use-in-production",
        // The public key's own bytes as an HMAC key (the classic algorithm confusion).
        issuer.jwks().as_str(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(issuer.kid().to_string());
        let hs256 =
            jsonwebtoken::encode(&header, &body, &EncodingKey::from_secret(secret.as_bytes()))
                .unwrap();
        let err = auth.verify(&hs256).unwrap_err().to_string();
        assert!(err.contains("HS256"), "{err}");
    }
    // An unsigned token ("alg": "none") does not even parse as one.
    let none = format!(
        "{}.{}.",
        base64_url(r#"{"alg":"none","typ":"JWT"}"#),
        base64_url(&body.to_string())
    );
    assert!(auth.verify(&none).is_err());
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn issuer_and_audience_are_checked() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer);
    let now = unix_now();
    let base = json!({"sub": "li", "roles": ["auditor"], "iat": now, "exp": now + 60});
    for (iss, aud, ok) in [
        (DEVELOPMENT_ISSUER, DEFAULT_AUDIENCE, true),
        ("https://evil.example", DEFAULT_AUDIENCE, false),
        (DEVELOPMENT_ISSUER, "another-app", false),
    ] {
        let mut c = claims(base.clone());
        c.insert("iss".into(), iss.into());
        c.insert("aud".into(), aud.into());
        assert_eq!(auth.verify(&issuer.sign(&c)).is_ok(), ok, "{iss} {aud}");
    }
    let mut no_aud = claims(base);
    no_aud.insert("iss".into(), DEVELOPMENT_ISSUER.into());
    assert!(
        auth.verify(&issuer.sign(&no_aud)).is_err(),
        "aud is required"
    );
}

#[test]
fn a_remembered_token_still_expires() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer).with_leeway(0);
    let now = unix_now();
    let token = issuer.mint_at(&officer(), now, now + 1);
    assert_eq!(auth.verify(&token).unwrap(), officer());
    assert_eq!(auth.verify(&token).unwrap(), officer(), "remembered");
    std::thread::sleep(Duration::from_millis(2100));
    assert!(matches!(
        auth.verify(&token),
        Err(Error::Unauthenticated(_))
    ));
}

#[test]
fn a_remembered_token_with_another_signature_is_checked_and_refused() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer);
    let token = issuer.mint(&officer(), Duration::from_secs(60));
    assert!(auth.verify(&token).is_ok());
    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    let forged = format!("{unsigned}.{}", signature.chars().rev().collect::<String>());
    assert_ne!(forged, token);
    assert!(matches!(
        auth.verify(&forged),
        Err(Error::Unauthenticated(_))
    ));
    // Nor does a refused token displace the good one.
    assert_eq!(auth.verify(&token).unwrap(), officer());
}

#[test]
fn the_remembered_tokens_are_bounded() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer);
    for i in 0..VERIFIED_TOKENS.get() + 10 {
        let caller = Caller::new(Role::FinanceOfficer, format!("officer-{i}"));
        let token = issuer.mint(&caller, Duration::from_secs(60));
        assert_eq!(auth.verify(&token).unwrap(), caller);
    }
    assert_eq!(auth.remembered().len(), VERIFIED_TOKENS.get());
}

#[test]
fn an_enterprise_token_must_name_its_enterprise() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer);
    let token = issuer.mint(
        &Caller::new(Role::Enterprise, "li"),
        Duration::from_secs(60),
    );
    assert!(auth.verify(&token).is_err());
}

#[test]
fn interceptor_requires_a_bearer_token() {
    let issuer = issuer();
    let auth = Arc::new(Authenticator::trusting(&issuer));
    let mut interceptor = AuthInterceptor::new(auth);
    let status = interceptor.call(Request::new(())).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let mut request = Request::new(());
    let token = issuer.mint(&officer(), Duration::from_secs(60));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let request = interceptor.call(request).unwrap();
    assert_eq!(caller(&request).unwrap(), officer());
}

#[test]
fn roles_round_trip_through_their_names() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        assert_eq!(Roles::of(role).iter().collect::<Vec<_>>(), [role]);
    }
    assert!("root".parse::<Role>().is_err());
    assert!(Roles::default().is_empty());
}

#[test]
fn long_lived_future_and_not_yet_valid_tokens_are_refused() {
    let issuer = issuer();
    let auth = Authenticator::trusting(&issuer);
    let now = unix_now();
    let at = |iat: u64, exp: u64, nbf: Option<u64>| {
        let mut c = claims(json!({
            "sub": "wang.fang", "roles": ["finance_approver"], "iss": DEVELOPMENT_ISSUER,
            "aud": DEFAULT_AUDIENCE, "iat": iat, "exp": exp,
        }));
        if let Some(nbf) = nbf {
            c.insert("nbf".into(), nbf.into());
        }
        issuer.sign(&c)
    };
    // Correctly signed, but valid until 2141.
    let err = auth
        .verify(&at(now, 5_364_662_400, None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("longer than the 12 hours"), "{err}");
    // Issued tomorrow.
    assert!(auth.verify(&at(now + 86_400, now + 90_000, None)).is_err());
    // Not valid before tomorrow.
    assert!(
        auth.verify(&at(now, now + 3600, Some(now + 86_400)))
            .is_err()
    );
    // Within the rules.
    let fine = at(now, now + 3600, Some(now));
    assert_eq!(auth.verify(&fine).unwrap().subject, "wang.fang");
    // The lifetime is configurable.
    let short = Authenticator::new(
        TrustedKeys::fixed(KeyTable::from_jwks(&issuer.jwks()).unwrap()),
        TokenRules {
            max_lifetime: Duration::from_secs(600),
            ..TokenRules::default()
        },
    );
    assert!(short.verify(&fine).is_err());
    // Without an issue time: refused.
    let no_iat = issuer.sign(&claims(json!({
        "sub": "wang.fang", "roles": ["auditor"], "iss": DEVELOPMENT_ISSUER,
        "aud": DEFAULT_AUDIENCE, "exp": now + 60,
    })));
    assert!(auth.verify(&no_iat).is_err());
}

#[test]
fn a_key_set_keeps_only_asymmetric_signing_keys() {
    let issuer = issuer();
    let table = KeyTable::from_jwks(&issuer.jwks()).unwrap();
    assert_eq!(table.len(), 1);
    let symmetric = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"s"}]}"#;
    assert!(KeyTable::from_jwks(symmetric).is_err());
    assert!(KeyTable::from_jwks("{}").is_err());
    assert!(KeyTable::from_jwks("not json").is_err());
    // A symmetric key beside a good one is skipped, the good one kept.
    let mut set: Value = serde_json::from_str(&issuer.jwks()).unwrap();
    set["keys"].as_array_mut().unwrap().push(
        serde_json::from_str(symmetric)
            .map(|v: Value| v["keys"][0].clone())
            .unwrap(),
    );
    assert_eq!(KeyTable::from_jwks(&set.to_string()).unwrap().len(), 1);
}

#[test]
fn an_issuer_key_is_kept_and_read_back() {
    let dir = std::env::temp_dir().join(format!("kc-issuer-{}", uuid::Uuid::new_v4().simple()));
    let path = dir.join("issuer.key.pem");
    let first = Issuer::load_or_create(&path, TokenRules::default()).unwrap();
    let again = Issuer::load_or_create(&path, TokenRules::default()).unwrap();
    assert_eq!(first.kid(), again.kid(), "the same key, not a new one");
    let token = first.mint(&officer(), Duration::from_secs(60));
    assert!(Authenticator::trusting(&again).verify(&token).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the private key is the owner's alone");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_bearer_token_is_read_one_way_everywhere() {
    assert_eq!(bearer_token("Bearer a.b.c"), Some("a.b.c"));
    assert_eq!(bearer_token("bearer  a.b.c "), Some("a.b.c"));
    assert_eq!(bearer_token("Bearer "), None);
    assert_eq!(bearer_token("Basic dXNlcg=="), None);
}
