//! Bearer-token authentication. Every RPC carries `authorization: Bearer <JWT>`, signed by
//! the identity provider with a key no service holds (EdDSA, ES256 or RS256); services verify
//! it against the provider's key set ([`keys`]), check issuer, audience, times and lifetime,
//! and read the person's roles, enterprise and institution from configured claims
//! ([`claims`]). The interceptor puts the [`Caller`] into the request's extensions.

pub mod claims;
mod issuer;
pub mod keys;
#[cfg(test)]
mod tests;

pub use claims::ClaimNames;
pub use issuer::Issuer;
pub use keys::{KeyTable, TrustedKeys};

use crate::error::Error;
use jsonwebtoken::Validation;
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
    /// A technology-contract registration body's staff (技术合同认定登记员): certifies a
    /// signed contract as a technology contract, or refuses it.
    Registrar,
    /// A technology broker (技术经纪人): brokers a deal between an enterprise and a supplier;
    /// an enterprise names one when it accepts a pairing, and the pairing and its contract
    /// record them as the deal's facilitator.
    Broker,
    /// Another kechuang component acting on its own behalf (the demo driver, the gateway).
    Service,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::Enterprise,
        Role::TechManager,
        Role::Supplier,
        Role::FinanceOfficer,
        Role::FinanceApprover,
        Role::Auditor,
        Role::Registrar,
        Role::Broker,
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
            Role::Registrar => "registrar",
            Role::Broker => "broker",
            Role::Service => "service",
        }
    }

    /// One bit of [`Roles`]' word: sixteen roles at most, checked when compiled.
    fn bit(self) -> u16 {
        const _: () = assert!(Role::ALL.len() <= 16);
        1 << (self as u8)
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

/// The roles one person holds (a technology manager may also audit, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Roles(u16);

impl Roles {
    pub fn of(role: Role) -> Self {
        Self(role.bit())
    }

    pub fn with(self, role: Role) -> Self {
        Self(self.0 | role.bit())
    }

    pub fn has(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// In [`Role::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.has(*r))
    }
}

/// `finance_approver` or `auditor+finance_approver`: how logs, audit entries and
/// idempotency scopes name a person's roles.
impl std::fmt::Display for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.iter().map(Role::as_str).collect();
        f.write_str(&names.join("+"))
    }
}

/// Who is calling: a person (subject) in one or more roles, for enterprise users their
/// enterprise, for suppliers their institution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub roles: Roles,
    pub subject: String,
    pub enterprise_id: Option<String>,
    pub institution_id: Option<String>,
}

impl Caller {
    /// `subject` in `role`, of no enterprise or institution.
    pub fn new(role: Role, subject: impl Into<String>) -> Self {
        Self {
            roles: Roles::of(role),
            subject: subject.into(),
            enterprise_id: None,
            institution_id: None,
        }
    }

    pub fn with_role(mut self, role: Role) -> Self {
        self.roles = self.roles.with(role);
        self
    }

    pub fn with_enterprise(mut self, enterprise_id: impl Into<String>) -> Self {
        self.enterprise_id = Some(enterprise_id.into());
        self
    }

    pub fn with_institution(mut self, institution_id: impl Into<String>) -> Self {
        self.institution_id = Some(institution_id.into());
        self
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.has(role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// `PermissionDenied` unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Error> {
        if self.has_any(roles) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "role {} may not do this",
                self.roles
            )))
        }
    }

    /// Whether the caller acts for the enterprise `enterprise_id`.
    pub fn is_enterprise(&self, enterprise_id: &str) -> bool {
        self.has(Role::Enterprise) && self.enterprise_id.as_deref() == Some(enterprise_id)
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

/// The longest a token may live (`exp - iat`) unless configured: a working day and a half.
/// A stolen token is worth little for long; a person signs in again the next day.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// What a token must say to be accepted: its issuer and audience, where its roles are, how
/// long it may live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules {
    pub issuer: String,
    pub audience: String,
    pub claims: ClaimNames,
    pub max_lifetime: Duration,
}

impl Default for TokenRules {
    fn default() -> Self {
        Self {
            issuer: DEVELOPMENT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            claims: ClaimNames::default(),
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }
}

/// The `iss` of the development issuer (`kechuang up`).
pub const DEVELOPMENT_ISSUER: &str = "kechuang-development";
/// The `aud` kechuang's services expect unless configured.
pub const DEFAULT_AUDIENCE: &str = "kechuang";

/// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY: u64 = 5;

/// Verifies tokens against the identity provider's keys and the deployment's rules.
pub struct Authenticator {
    keys: Arc<TrustedKeys>,
    rules: TokenRules,
    leeway: u64,
    verified: Mutex<lru::LruCache<String, Verified>>,
}

/// A token this process has verified: a caller presenting the very same token again (a
/// client sends one token on every call until it expires) is not decoded and checked again;
/// its expiry still is. Only tokens that passed are kept, so a bad token costs its check
/// every time, and the cache is bounded ([`VERIFIED_TOKENS`]).
#[derive(Clone)]
struct Verified {
    caller: Caller,
    expires: u64,
}

/// Tokens remembered, least recently used dropped first.
const VERIFIED_TOKENS: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

impl Authenticator {
    pub fn new(keys: Arc<TrustedKeys>, rules: TokenRules) -> Self {
        Self {
            keys,
            rules,
            leeway: LEEWAY,
            verified: Mutex::new(lru::LruCache::new(VERIFIED_TOKENS)),
        }
    }

    /// An authenticator that trusts `issuer`'s key alone, under its rules (tests, tools).
    pub fn trusting(issuer: &Issuer) -> Self {
        let table = KeyTable::from_jwks(&issuer.jwks()).expect("an issuer's own key set");
        Self::new(TrustedKeys::fixed(table), issuer.rules().clone())
    }

    #[cfg(test)]
    fn with_leeway(mut self, leeway: u64) -> Self {
        self.leeway = leeway;
        self
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
            && v.expires + self.leeway >= unix_now()
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

    /// Decodes `token`, checks its algorithm, key, signature and claims; the caller and the
    /// expiry.
    fn check(&self, token: &str) -> Result<(Caller, u64), Error> {
        let refuse = |why: String| Error::Unauthenticated(format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| refuse(e.to_string()))?;
        if !keys::ACCEPTED.contains(&header.alg) {
            return Err(refuse(format!(
                "it is signed with {:?}; only EdDSA, ES256 or RS256 tokens of the identity provider are accepted",
                header.alg
            )));
        }
        let key = self
            .keys
            .find(header.kid.as_deref(), header.alg)
            .ok_or_else(|| {
                refuse("it is signed with a key the identity provider does not list".into())
            })?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.rules.issuer]);
        validation.set_audience(&[&self.rules.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud", "iat"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| refuse(e.to_string()))?;
        let claims = data.claims;
        let time = |name: &str| claims.get(name).and_then(serde_json::Value::as_u64);
        let (Some(iat), Some(exp)) = (time("iat"), time("exp")) else {
            return Err(refuse("iat and exp must be whole seconds".into()));
        };
        if iat > unix_now() + self.leeway {
            return Err(refuse("issued in the future".into()));
        }
        if exp.saturating_sub(iat) > self.rules.max_lifetime.as_secs() {
            return Err(refuse(format!(
                "it lives longer than the {} hours allowed",
                self.rules.max_lifetime.as_secs() / 3600
            )));
        }
        Ok((self.rules.claims.caller(&claims)?, exp))
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

/// A client's request with `authorization: Bearer <token>` (the tools and the tests; a token
/// this platform's issuer or an identity provider minted is base64url and dots, ASCII).
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a JWT is ASCII"),
    );
    request
}

/// The authenticated caller of a request that went through [`AuthInterceptor`].
pub fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}
