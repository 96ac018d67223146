//! Bearer-token authentication. Every RPC carries `authorization: Bearer <JWT>` (HS256); the
//! interceptor verifies it and puts the [`Caller`] into the request's extensions.

use crate::error::Error;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tonic::{Request, Status};

/// The roles of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Enterprise,
    TechManager,
    Supplier,
    FinanceOfficer,
    FinanceApprover,
    Auditor,
    /// Another kechuang component acting on its own behalf (the demo driver, the gateway).
    Service,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Enterprise,
        Role::TechManager,
        Role::Supplier,
        Role::FinanceOfficer,
        Role::FinanceApprover,
        Role::Auditor,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Enterprise => "enterprise",
            Role::TechManager => "tech_manager",
            Role::Supplier => "supplier",
            Role::FinanceOfficer => "finance_officer",
            Role::FinanceApprover => "finance_approver",
            Role::Auditor => "auditor",
            Role::Service => "service",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {s:?}; one of {}", names.join(", "))
            })
    }
}

/// Who is calling: a person (subject) in a role, and for enterprise users their enterprise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub role: Role,
    pub subject: String,
    pub enterprise_id: Option<String>,
}

impl Caller {
    /// `PermissionDenied` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "role {} may not do this",
                self.role.as_str()
            )))
        }
    }

    /// Whether an enterprise caller acts for `enterprise_id`.
    pub fn is_enterprise(&self, enterprise_id: &str) -> bool {
        self.role == Role::Enterprise && self.enterprise_id.as_deref() == Some(enterprise_id)
    }

    /// Whether the caller is the person named `subject` (compared as [`normalised_subject`]).
    pub fn is_person(&self, subject: &str) -> bool {
        same_person(&self.subject, subject)
    }
}

/// A token subject as people are told apart by it (four eyes, maker–checker): trimmed and
/// case-folded, so `" Wang.Fang "` and `"wang.fang"` are one person.
pub fn normalised_subject(subject: &str) -> String {
    subject.trim().to_lowercase()
}

/// Whether two subjects name the same person.
pub fn same_person(a: &str, b: &str) -> bool {
    normalised_subject(a) == normalised_subject(b)
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enterprise_id: Option<String>,
    iss: String,
    iat: u64,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

const ISSUER: &str = "kechuang";

/// The longest a token may live (`exp - iat`) unless configured: a working day and a half.
/// A stolen token is worth little for long; a person signs in again the next day.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Mints and verifies tokens with one HS256 key.
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    max_lifetime: u64,
    verified: Mutex<lru::LruCache<String, Verified>>,
}

/// A token this key has verified: a caller presenting the very same token again (a client
/// sends one token on every call until it expires) is not decoded and checked again; its
/// expiry still is. Parsing and the HMAC were about a twentieth of a SubmitDemand's CPU in
/// the service (perf). Only tokens that passed are kept, so a bad token costs its check
/// every time, and the cache is bounded ([`VERIFIED_TOKENS`]).
#[derive(Clone)]
struct Verified {
    caller: Caller,
    expires: u64,
}

/// Tokens remembered per key, least recently used dropped first.
const VERIFIED_TOKENS: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

impl Authenticator {
    pub fn new(secret: &str) -> Self {
        Self::with_leeway(secret, 5)
    }

    /// Refuses tokens that live longer than `max_lifetime` from their issue.
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime.as_secs();
        self
    }

    /// `leeway`: seconds past its expiry that a token is still accepted (clock skew).
    fn with_leeway(secret: &str, leeway: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "iat"]);
        validation.validate_nbf = true;
        validation.leeway = leeway;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            max_lifetime: DEFAULT_MAX_LIFETIME.as_secs(),
            verified: Mutex::new(lru::LruCache::new(VERIFIED_TOKENS)),
        }
    }

    /// A token for `caller`, valid for `ttl` (a negative age makes an expired token for tests).
    pub fn mint(&self, caller: &Caller, ttl: Duration) -> String {
        let now = unix_now();
        self.mint_at(caller, now, now + ttl.as_secs())
    }

    /// A token with explicit issue and expiry times (seconds since the epoch).
    pub fn mint_at(&self, caller: &Caller, iat: u64, exp: u64) -> String {
        let claims = Claims {
            sub: caller.subject.clone(),
            role: caller.role,
            enterprise_id: caller.enterprise_id.clone(),
            iss: ISSUER.into(),
            iat,
            exp,
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Error> {
        self.verify_with_expiry(token).map(|(caller, _)| caller)
    }

    /// As [`Authenticator::verify`], with the token's expiry (seconds since the epoch): a
    /// console session ends no later than its token.
    pub fn verify_with_expiry(&self, token: &str) -> Result<(Caller, u64), Error> {
        let remembered = self.remembered().get(token).cloned();
        // The same bound as the full check: expired once `exp` is more than the leeway ago.
        // An expired token falls through to the full check, which refuses it.
        if let Some(v) = remembered
            && v.expires + self.validation.leeway >= unix_now()
        {
            return Ok((v.caller, v.expires));
        }
        let (caller, expires) = self.check(token)?;
        self.remembered().put(
            token.to_owned(),
            Verified {
                caller: caller.clone(),
                expires,
            },
        );
        Ok((caller, expires))
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Verified>> {
        // A panic while holding the lock leaves nothing half-done in a cache: carry on.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decodes `token`, checks its signature and claims; the caller and the expiry.
    fn check(&self, token: &str) -> Result<(Caller, u64), Error> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| Error::Unauthenticated(format!("invalid token: {e}")))?;
        let claims = data.claims;
        let now = unix_now();
        if claims.iat > now + self.validation.leeway {
            return Err(Error::Unauthenticated(
                "invalid token: issued in the future".into(),
            ));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime {
            return Err(Error::Unauthenticated(format!(
                "invalid token: it lives longer than the {} hours allowed",
                self.max_lifetime / 3600
            )));
        }
        if claims.sub.trim().is_empty() {
            return Err(Error::Unauthenticated("token has no subject".into()));
        }
        if claims.role == Role::Enterprise && claims.enterprise_id.is_none() {
            return Err(Error::Unauthenticated(
                "an enterprise token must name its enterprise_id".into(),
            ));
        }
        let caller = Caller {
            role: claims.role,
            subject: claims.sub,
            enterprise_id: claims.enterprise_id,
        };
        Ok((caller, claims.exp))
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The tonic interceptor: rejects a request without a valid bearer token.
#[derive(Clone)]
pub struct AuthInterceptor(Arc<Authenticator>);

impl AuthInterceptor {
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self(authenticator)
    }
}

/// The token of an `Authorization` header's value: `Bearer <token>` (either case of the
/// scheme's first letter), trimmed; `None` when the value is not that or the token is empty.
pub fn bearer_token(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let value = header
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
        let token = bearer_token(value)
            .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        let caller = self.0.verify(token)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The authenticated caller of a request that went through [`AuthInterceptor`].
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn officer() -> Caller {
        Caller {
            role: Role::FinanceOfficer,
            subject: "wang.fang".into(),
            enterprise_id: None,
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
    fn a_minted_token_verifies_to_its_caller() {
        let auth = Authenticator::new("k");
        let token = auth.mint(&officer(), Duration::from_secs(60));
        assert_eq!(auth.verify(&token).unwrap(), officer());
    }

    #[test]
    fn expired_wrong_key_and_garbage_are_refused() {
        let auth = Authenticator::new("k");
        let now = unix_now();
        let expired = auth.mint_at(&officer(), now - 7200, now - 3600);
        assert!(matches!(
            auth.verify(&expired),
            Err(Error::Unauthenticated(_))
        ));
        let other = Authenticator::new("other").mint(&officer(), Duration::from_secs(60));
        assert!(matches!(
            auth.verify(&other),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.verify("not.a.jwt"),
            Err(Error::Unauthenticated(_))
        ));
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let auth = Authenticator::with_leeway("k", 0);
        let now = unix_now();
        let token = auth.mint_at(&officer(), now, now + 1);
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
        let auth = Authenticator::new("k");
        let token = auth.mint(&officer(), Duration::from_secs(60));
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
        let auth = Authenticator::new("k");
        for i in 0..VERIFIED_TOKENS.get() + 10 {
            let caller = Caller {
                subject: format!("officer-{i}"),
                ..officer()
            };
            let token = auth.mint(&caller, Duration::from_secs(60));
            assert_eq!(auth.verify(&token).unwrap(), caller);
        }
        assert_eq!(auth.remembered().len(), VERIFIED_TOKENS.get());
    }

    #[test]
    fn an_enterprise_token_must_name_its_enterprise() {
        let auth = Authenticator::new("k");
        let caller = Caller {
            role: Role::Enterprise,
            subject: "li".into(),
            enterprise_id: None,
        };
        let token = auth.mint(&caller, Duration::from_secs(60));
        assert!(auth.verify(&token).is_err());
    }

    #[test]
    fn interceptor_requires_a_bearer_token() {
        let auth = Arc::new(Authenticator::new("k"));
        let mut interceptor = AuthInterceptor::new(auth.clone());
        let status = interceptor.call(Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);

        let mut request = Request::new(());
        let token = auth.mint(&officer(), Duration::from_secs(60));
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
        }
        assert!("root".parse::<Role>().is_err());
    }

    fn forged(secret: &str, iat: u64, exp: u64, nbf: Option<u64>) -> String {
        let claims = Claims {
            sub: "wang.fang".into(),
            role: Role::FinanceApprover,
            enterprise_id: None,
            iss: ISSUER.into(),
            iat,
            exp,
            nbf,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn long_lived_future_and_not_yet_valid_tokens_are_refused() {
        let auth = Authenticator::new("k");
        let now = unix_now();
        // Correctly signed, but valid until 2141.
        let forever = forged("k", now, 5_364_662_400, None);
        let err = auth.verify(&forever).unwrap_err().to_string();
        assert!(err.contains("longer than the 12 hours"), "{err}");
        // Issued tomorrow.
        let future = forged("k", now + 86_400, now + 90_000, None);
        assert!(auth.verify(&future).is_err());
        // Not valid before tomorrow.
        let later = forged("k", now, now + 3600, Some(now + 86_400));
        assert!(auth.verify(&later).is_err());
        // Within the rules.
        let fine = forged("k", now, now + 3600, Some(now));
        assert_eq!(auth.verify(&fine).unwrap().subject, "wang.fang");
        // The lifetime is configurable.
        let short = Authenticator::new("k").with_max_lifetime(Duration::from_secs(600));
        assert!(short.verify(&fine).is_err());
    }

    #[test]
    fn a_token_without_its_issue_time_is_refused() {
        #[derive(Serialize)]
        struct NoIat {
            sub: String,
            role: Role,
            iss: String,
            exp: u64,
        }
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoIat {
                sub: "wang.fang".into(),
                role: Role::Auditor,
                iss: ISSUER.into(),
                exp: unix_now() + 60,
            },
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(Authenticator::new("k").verify(&token).is_err());
    }

    #[test]
    fn the_bearer_token_is_read_one_way_everywhere() {
        assert_eq!(bearer_token("Bearer a.b.c"), Some("a.b.c"));
        assert_eq!(bearer_token("bearer  a.b.c "), Some("a.b.c"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic dXNlcg=="), None);
    }
}
