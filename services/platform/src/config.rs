//! Configuration. Binaries load [`Settings`] from the environment (`KC_*`, plus the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`); libraries only ever receive the typed pieces.

use crate::auth::{ClaimNames, TokenRules, TrustedKeys};
use figment::{
    Figment,
    providers::{Env, Serialized},
};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Every knob of a kechuang installation, with defaults that work on a developer machine
/// (Postgres and NATS on 127.0.0.1 at their default ports).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Postgres server URL without a database; each service appends its own database.
    pub database_url: String,
    /// Database names are `<prefix><service>`, e.g. `kc_demand`.
    pub database_prefix: String,
    pub database_max_connections: u32,
    pub nats_url: String,
    pub stream_name: String,
    /// Subjects are `<prefix>.<aggregate>.<event>`.
    pub subject_prefix: String,
    pub stream_replicas: usize,
    pub duplicate_window_secs: u64,
    /// Deliveries of one message before it is dead-lettered.
    pub max_deliver: i64,
    /// First redelivery delay after a transient failure; doubles each time.
    pub redelivery_backoff_ms: u64,
    /// The `iss` tokens must carry: the identity provider's issuer URL in production;
    /// `kechuang-development` for the development issuer of `kechuang up`.
    pub token_issuer: String,
    /// The `aud` tokens must carry (the client id the identity provider issues them for).
    pub token_audience: String,
    /// The identity provider's key set (JWKS) URL, fetched at start and refreshed (every 5
    /// minutes, and when a token names an unknown key). `kechuang serve` refuses to start
    /// without this or `token_jwks_file`.
    pub token_jwks_url: Option<String>,
    /// The key set in a file, for deployments that distribute it themselves.
    pub token_jwks_file: Option<String>,
    /// Dotted path of the claim with the person's roles (Keycloak: `realm_access.roles`).
    pub token_roles_claim: String,
    /// The claim naming an enterprise user's enterprise (its credit code).
    pub token_enterprise_claim: String,
    /// The claim naming a supplier's institution.
    pub token_institution_claim: String,
    /// The development or test issuer's private key (PKCS#8 PEM, Ed25519), for the tools that
    /// mint tokens (`kechuang token`, the demo, the bench); never given to a service. Unset:
    /// the development issuer's key under the user's state directory.
    pub token_signing_key: Option<String>,
    /// The longest a bearer token may live, from its issue to its expiry.
    pub token_max_lifetime_hours: u64,
    /// The directory of the services' event keys (`<service>.key.pem`, `<service>.pub.pem`;
    /// `kechuang event-keys DIR` writes a set). A service refuses to start without it;
    /// `kechuang up` keeps a development set under the user's state directory instead.
    pub event_keys: Option<String>,
    pub host: IpAddr,
    pub demand_port: u16,
    pub matching_port: u16,
    pub subsidy_port: u16,
    pub fund_port: u16,
    /// The gateway's HTTP port (console and JSON API).
    pub gateway_port: u16,
    /// The key of the console's CSRF tokens (at least 32 characters). Replicas of the gateway
    /// behind one address must share it, or a form rendered by one is refused by another;
    /// unset: a random key per start.
    pub gateway_csrf_key: Option<String>,
    /// Minutes a console session may go unused before it ends (sign in again). 30: what
    /// banks and grants offices commonly allow an unattended desk.
    pub console_idle_minutes: u64,
    /// Hours a console session lasts at most, however busy (and never past its token's
    /// expiry). 8: one working day.
    pub console_session_hours: u64,
    /// Mark the console's cookie `Secure` (sent over HTTPS only) even when a request does not
    /// say it came over TLS: set it when a TLS proxy in front of the gateway does not send
    /// `X-Forwarded-Proto: https`.
    pub gateway_secure_cookies: bool,
    /// The OpenID Connect provider people sign in with (its issuer URL; the gateway reads
    /// `/.well-known/openid-configuration` under it). Unset: no provider, and the login page
    /// takes a pasted token instead (development).
    pub gateway_oidc_issuer: Option<String>,
    /// Where the gateway reads the provider's metadata (`/.well-known/openid-configuration`
    /// under it) when it reaches the provider by another name than browsers do (inside
    /// Docker: `http://keycloak:8080/realms/kechuang`); unset: the issuer URL.
    pub gateway_oidc_discovery_url: Option<String>,
    /// The gateway's client id at the provider.
    pub gateway_oidc_client_id: String,
    /// Its client secret; unset for a public client, which PKCE alone protects.
    pub gateway_oidc_client_secret: Option<String>,
    /// Where the provider sends the browser back: the gateway's `/login/callback` as the
    /// browser reaches it, e.g. `https://kc.example.cn/login/callback`.
    pub gateway_oidc_redirect_url: Option<String>,
    /// Scopes asked for besides `openid`, space-separated.
    pub gateway_oidc_scopes: String,
    /// The provider's name on the login page's button.
    pub gateway_oidc_provider_name: String,
    /// Where the gateway reaches each service; unset: `http://<host>:<port>` of that service.
    pub demand_url: Option<String>,
    pub matching_url: Option<String>,
    pub subsidy_url: Option<String>,
    pub fund_url: Option<String>,
    /// OTLP/gRPC endpoint for traces; none means logs only.
    pub otlp_endpoint: Option<String>,
    /// The port of the process's Prometheus endpoint, `http://<host>:<port>/metrics` (0: any
    /// free port). One per process, not per service: `kechuang up` serves the four services
    /// and the gateway on one endpoint, every series labelled with its `service`. 9464: the
    /// port OpenTelemetry's Prometheus exporters use, clear of Prometheus's own 9090.
    pub metrics_port: u16,
    /// Seconds between two samples of the gauges that take a query (outbox backlog, consumer
    /// lag, fund balances, embedding backlog). 5: a third of Prometheus's default scrape
    /// interval, so a scrape sees values at most 5 s old, for a few index-only queries a
    /// service every 5 s.
    pub metrics_sample_secs: u64,
    /// Seconds the oldest unsent event of a service may wait in its outbox before its health
    /// says it lags (`kechuang.v1.EventBacklog` NOT_SERVING). 60: the relay publishes within
    /// milliseconds; a minute means NATS is away or the relay stuck.
    pub backlog_max_age_secs: u64,
    /// Messages a durable consumer may have waiting before its service's health says it lags.
    /// 10,000: about a minute of a busy consumer's work on two cores.
    pub backlog_max_pending: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// Threads of the process's async runtime; unset: see [`crate::launcher::runtime`].
    pub worker_threads: Option<usize>,
    /// Pairings proposed per verified demand (matching).
    pub pairings_per_demand: usize,
    /// Semantic matching with sentence embeddings (matching); off: words alone (BM25).
    pub semantic_matching: bool,
    /// Where the embedding model is fetched to and kept; unset: `$XDG_CACHE_HOME/kechuang`,
    /// else `~/.cache/kechuang` (matching).
    pub model_cache: Option<String>,
    /// Cores the background embedding of new achievements may use (matching); the rest stay
    /// with the requests.
    pub embedding_threads: usize,
    /// The simulated bank's latency per payout (subsidy).
    pub payout_latency_ms: u64,
    /// Share of payout attempts the simulated bank fails transiently, 0.0 to 1.0 (subsidy).
    pub payout_failure_rate: f64,
    /// Payout attempts before a disbursement is declared failed (subsidy).
    pub payout_max_attempts: u32,
    /// The highest per-contract or annual cap a proposed policy may set, in fen (subsidy).
    pub policy_cap_ceiling_fen: i64,
    /// Days after signing within which a contract may be certified or refused by a registrar
    /// (subsidy); each contract's deadline is fixed when the contract is recorded.
    pub registration_window_days: u32,

    // Limits (issue 20, item 6): what one caller or one flood of connections may take. Each
    // gRPC service applies its own (per listener: `kechuang up` runs four services and the
    // gateway in one process, so that process holds up to five times `max_connections`;
    // RLIMIT_NOFILE must leave room for that plus the database pools).
    /// Open connections one listener (a gRPC service, or the gateway) holds at once; one more
    /// is closed as soon as it is accepted, counted, and logged at most once a second. 4096:
    /// far above what the platform's clients hold (a gRPC channel is one connection, a browser
    /// six), small enough that the file descriptors and per-connection buffers of a flood stay
    /// bounded (a few hundred MB at most).
    pub max_connections: usize,
    /// Seconds a new connection has to send its first 24 bytes (the HTTP/2 preface; for the
    /// gateway also the time to send a whole HTTP/1 request head). 10: a client on a slow
    /// mobile link sends a preface in well under a second; a connection that has said nothing
    /// useful after 10 s is a held socket.
    pub handshake_timeout_secs: u64,
    /// Seconds one request may take before it is answered with CANCELLED (gRPC, also the
    /// client's shorter `grpc-timeout`) or 503 (gateway). 30: the slowest call the platform
    /// makes (an import of 10,000 achievements) takes about 3 s; streaming replies
    /// (WatchPairings) are bounded only until their headers.
    pub request_timeout_secs: u64,
    /// Requests in flight in one service (or the gateway) at once; beyond it a request is
    /// refused at once with RESOURCE_EXHAUSTED (503 from the gateway) rather than queued.
    /// `grpc.health.v1.Health` (and the gateway's `/healthz`, `/readyz`) are outside it.
    /// 256: the bench's 64 clients use a quarter; a service with 16 database connections
    /// serves at most 16 queries at a time, so more than 256 waiting only adds latency.
    pub max_concurrent_requests: usize,
    /// HTTP/2 streams one connection may open at once (gRPC services). 100: the floor RFC 9113
    /// recommends and what most gRPC servers advertise.
    pub max_concurrent_streams: u32,
    /// Seconds between the server's HTTP/2 keepalive pings on a connection (gRPC services and
    /// the gateway's HTTP/2). 30: a dead peer found within a minute, one small frame per idle
    /// connection per 30 s.
    pub keepalive_interval_secs: u64,
    /// Seconds a ping may go unanswered before the connection is closed. 10.
    pub keepalive_timeout_secs: u64,
    /// Writes one caller (token subject + role + enterprise; the gateway keys an anonymous
    /// caller by address) may make per second, sustained; 0 turns the limit off. Reads are
    /// never limited by it. 50: a person acts a few times a minute, an enterprise system
    /// submitting demands a few times a second; 50 a second per caller is automation gone
    /// wrong, and still lets the demo's single technology manager verify at its full rate.
    pub writes_per_second: u32,
    /// Writes one caller may make at once above that rate (the bucket's size). 100: a bulk
    /// action (approving a page of the queue) goes through in one burst.
    pub write_burst: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "postgres://postgres@127.0.0.1:5432".into(),
            database_prefix: "kc_".into(),
            database_max_connections: 16,
            nats_url: "nats://127.0.0.1:4222".into(),
            stream_name: "KC_EVENTS".into(),
            subject_prefix: "kc".into(),
            stream_replicas: 1,
            duplicate_window_secs: 120,
            max_deliver: 5,
            redelivery_backoff_ms: 1000,
            token_issuer: crate::auth::DEVELOPMENT_ISSUER.into(),
            token_audience: crate::auth::DEFAULT_AUDIENCE.into(),
            token_jwks_url: None,
            token_jwks_file: None,
            token_roles_claim: "roles".into(),
            token_enterprise_claim: "enterprise_id".into(),
            token_institution_claim: "institution_id".into(),
            token_signing_key: None,
            token_max_lifetime_hours: 12,
            event_keys: None,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            demand_port: 50051,
            matching_port: 50052,
            subsidy_port: 50053,
            fund_port: 50054,
            gateway_port: 8080,
            gateway_csrf_key: None,
            console_idle_minutes: 30,
            console_session_hours: 8,
            gateway_secure_cookies: false,
            gateway_oidc_issuer: None,
            gateway_oidc_discovery_url: None,
            gateway_oidc_client_id: "kechuang-gateway".into(),
            gateway_oidc_client_secret: None,
            gateway_oidc_redirect_url: None,
            gateway_oidc_scopes: "profile".into(),
            gateway_oidc_provider_name: "统一身份认证 Single sign-on".into(),
            demand_url: None,
            matching_url: None,
            subsidy_url: None,
            fund_url: None,
            otlp_endpoint: None,
            metrics_port: 9464,
            metrics_sample_secs: 5,
            backlog_max_age_secs: 60,
            backlog_max_pending: 10_000,
            log_format: "text".into(),
            worker_threads: None,
            pairings_per_demand: 5,
            semantic_matching: true,
            model_cache: None,
            embedding_threads: 1,
            payout_latency_ms: 20,
            payout_failure_rate: 0.0,
            payout_max_attempts: 5,
            // 1 billion yuan.
            policy_cap_ceiling_fen: 100_000_000_000,
            registration_window_days: 30,
            max_connections: 4096,
            handshake_timeout_secs: 10,
            request_timeout_secs: 30,
            max_concurrent_requests: 256,
            max_concurrent_streams: 100,
            keepalive_interval_secs: 30,
            keepalive_timeout_secs: 10,
            writes_per_second: 50,
            write_burst: 100,
        }
    }
}

/// The four services of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    DemandIntake,
    Matching,
    Subsidy,
    FundLedger,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 4] = [
        ServiceKind::DemandIntake,
        ServiceKind::Matching,
        ServiceKind::Subsidy,
        ServiceKind::FundLedger,
    ];

    /// The service's name: its binary, its NATS producer name and its dead-letter subject.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::DemandIntake => "demand-intake",
            ServiceKind::Matching => "matching",
            ServiceKind::Subsidy => "subsidy",
            ServiceKind::FundLedger => "fund-ledger",
        }
    }

    /// The service named `name` (its binary name).
    pub fn from_name(name: &str) -> Option<ServiceKind> {
        ServiceKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Every service's name: the producers whose events a service may receive.
    pub fn names() -> [&'static str; 4] {
        ServiceKind::ALL.map(ServiceKind::name)
    }

    /// The tail of its database name (`kc_demand`, `kc_matching`, `kc_subsidy`, `kc_ledger`).
    pub fn database_suffix(self) -> &'static str {
        match self {
            ServiceKind::DemandIntake => "demand",
            ServiceKind::Matching => "matching",
            ServiceKind::Subsidy => "subsidy",
            ServiceKind::FundLedger => "ledger",
        }
    }
}

impl Settings {
    /// Defaults, overridden by `KC_<FIELD>` environment variables and
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn from_env() -> Result<Self, Box<figment::Error>> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Env::prefixed("KC_"))
            .merge(
                Env::raw()
                    .only(&["OTEL_EXPORTER_OTLP_ENDPOINT"])
                    .map(|_| "otlp_endpoint".into()),
            )
            .extract()
            .map_err(Box::new)
    }

    pub fn port(&self, kind: ServiceKind) -> u16 {
        match kind {
            ServiceKind::DemandIntake => self.demand_port,
            ServiceKind::Matching => self.matching_port,
            ServiceKind::Subsidy => self.subsidy_port,
            ServiceKind::FundLedger => self.fund_port,
        }
    }

    pub fn bus(&self) -> BusConfig {
        BusConfig {
            nats_url: self.nats_url.clone(),
            stream_name: self.stream_name.clone(),
            subject_prefix: self.subject_prefix.clone(),
            replicas: self.stream_replicas,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            max_deliver: self.max_deliver,
            redelivery_backoff: Duration::from_millis(self.redelivery_backoff_ms),
        }
    }

    /// Where a client reaches service `kind`: its `KC_<SERVICE>_URL`, or its port on `host`
    /// (an unspecified listen address such as 0.0.0.0 is reached on loopback).
    pub fn service_url(&self, kind: ServiceKind) -> String {
        let explicit = match kind {
            ServiceKind::DemandIntake => &self.demand_url,
            ServiceKind::Matching => &self.matching_url,
            ServiceKind::Subsidy => &self.subsidy_url,
            ServiceKind::FundLedger => &self.fund_url,
        };
        explicit.clone().unwrap_or_else(|| {
            let host = if self.host.is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                self.host
            };
            format!("http://{}", SocketAddr::new(host, self.port(kind)))
        })
    }

    /// The gateway's configuration: its listen address, each service's URL, the token key.
    pub fn gateway(&self) -> GatewayConfig {
        GatewayConfig {
            listen: SocketAddr::new(self.host, self.gateway_port),
            demand_url: self.service_url(ServiceKind::DemandIntake),
            matching_url: self.service_url(ServiceKind::Matching),
            subsidy_url: self.service_url(ServiceKind::Subsidy),
            fund_url: self.service_url(ServiceKind::FundLedger),
            tokens: self.tokens(),
            csrf_key: self.gateway_csrf_key.clone(),
            limits: self.limits(),
            database: self.database(GATEWAY_DATABASE_SUFFIX),
            sessions: ConsoleSessions {
                idle_timeout: Duration::from_secs(self.console_idle_minutes.max(1) * 60),
                absolute_timeout: Duration::from_secs(self.console_session_hours.max(1) * 3600),
                secure_cookies: self.gateway_secure_cookies,
            },
            oidc: self.gateway_oidc_issuer.clone().map(|issuer| OidcClient {
                issuer,
                discovery_url: self.gateway_oidc_discovery_url.clone(),
                client_id: self.gateway_oidc_client_id.clone(),
                client_secret: self.gateway_oidc_client_secret.clone(),
                redirect_url: self.gateway_oidc_redirect_url.clone().unwrap_or_else(|| {
                    format!("http://{}:{}/login/callback", self.host, self.gateway_port)
                }),
                scopes: self
                    .gateway_oidc_scopes
                    .split_whitespace()
                    .map(String::from)
                    .collect(),
                provider_name: self.gateway_oidc_provider_name.clone(),
            }),
            dev_issuer: None,
        }
    }

    /// The database `<prefix><suffix>` on the configured server.
    fn database(&self, suffix: &str) -> DatabaseConfig {
        DatabaseConfig {
            server_url: self.database_url.clone(),
            name: format!("{}{suffix}", self.database_prefix),
            max_connections: self.database_max_connections,
        }
    }

    /// Where the process serves its Prometheus metrics.
    pub fn metrics_listen(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.metrics_port)
    }

    /// The connection, request and write limits every server applies.
    pub fn limits(&self) -> Limits {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Limits {
            max_connections: self.max_connections.max(1),
            handshake_timeout: secs(self.handshake_timeout_secs),
            request_timeout: secs(self.request_timeout_secs),
            max_concurrent_requests: self.max_concurrent_requests.max(1),
            max_concurrent_streams: self.max_concurrent_streams.max(1),
            keepalive_interval: secs(self.keepalive_interval_secs),
            keepalive_timeout: secs(self.keepalive_timeout_secs),
            writes: WriteRate {
                per_second: self.writes_per_second,
                burst: self.write_burst.max(1),
            },
        }
    }

    /// The model cache: as configured, else the user's cache directory.
    pub fn model_cache_root(&self) -> PathBuf {
        if let Some(dir) = &self.model_cache {
            return PathBuf::from(dir);
        }
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        env("XDG_CACHE_HOME")
            .or_else(|| env("HOME").map(|h| h.join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("kechuang")
    }

    /// Where `kechuang up` keeps its development event keys when `KC_EVENT_KEYS` is unset:
    /// `$XDG_STATE_HOME/kechuang/dev-event-keys`, else `~/.local/state/kechuang/dev-event-keys`.
    pub fn development_event_keys() -> PathBuf {
        state_dir().join("dev-event-keys")
    }

    /// Where `kechuang up` keeps its development issuer's private key.
    pub fn development_issuer_key() -> PathBuf {
        state_dir().join("dev-issuer").join("issuer.key.pem")
    }

    /// The issuer the token tools sign with: the configured key (which must exist), else the
    /// development issuer's, created on first use.
    pub fn issuer(&self) -> anyhow::Result<crate::auth::Issuer> {
        let rules = self.tokens().rules;
        match &self.token_signing_key {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("KC_TOKEN_SIGNING_KEY {path}: {e}"))?;
                crate::auth::Issuer::from_pem(&pem, rules)
                    .map_err(|e| anyhow::anyhow!("KC_TOKEN_SIGNING_KEY {path}: {e}"))
            }
            None => crate::auth::Issuer::load_or_create(&Self::development_issuer_key(), rules),
        }
    }

    pub fn token_max_lifetime(&self) -> Duration {
        Duration::from_secs(self.token_max_lifetime_hours.max(1) * 3600)
    }

    /// What tokens must say, and where their keys are.
    pub fn tokens(&self) -> TokenConfig {
        TokenConfig {
            rules: TokenRules {
                issuer: self.token_issuer.clone(),
                audience: self.token_audience.clone(),
                claims: ClaimNames {
                    roles: self.token_roles_claim.clone(),
                    enterprise: self.token_enterprise_claim.clone(),
                    institution: self.token_institution_claim.clone(),
                },
                max_lifetime: self.token_max_lifetime(),
            },
            jwks_url: self.token_jwks_url.clone(),
            jwks_file: self.token_jwks_file.as_ref().map(PathBuf::from),
        }
    }

    /// What a deployment (not `kechuang up`) must have configured: the identity provider's
    /// keys (no service can verify a token without them, and none holds a signing key).
    pub fn check_production_secrets(&self) -> Result<(), String> {
        if self.token_jwks_url.is_none() && self.token_jwks_file.is_none() {
            return Err(
                "no token keys: set KC_TOKEN_JWKS_URL to the identity provider's key set \
                 (e.g. https://sso.example/realms/kechuang/protocol/openid-connect/certs) or \
                 KC_TOKEN_JWKS_FILE to a file holding it, and KC_TOKEN_ISSUER to its issuer"
                    .into(),
            );
        }
        Ok(())
    }

    /// The configuration one service receives.
    pub fn service(&self, kind: ServiceKind) -> ServiceConfig {
        ServiceConfig {
            kind,
            listen: SocketAddr::new(self.host, self.port(kind)),
            database: self.database(kind.database_suffix()),
            bus: self.bus(),
            tokens: self.tokens(),
            event_keys: self.event_keys.as_ref().map(PathBuf::from),
            tuning: Tuning {
                pairings_per_demand: self.pairings_per_demand,
                embedding: EmbeddingTuning {
                    enabled: self.semantic_matching,
                    cache_root: self.model_cache_root(),
                    threads: self.embedding_threads.max(1),
                },
                payout_latency: Duration::from_millis(self.payout_latency_ms),
                payout_failure_rate: self.payout_failure_rate.clamp(0.0, 1.0),
                payout_max_attempts: self.payout_max_attempts.max(1),
                policy_cap_ceiling_fen: self.policy_cap_ceiling_fen,
                registration_window_days: self.registration_window_days.clamp(1, 3650),
            },
            limits: self.limits(),
            metrics_sample_every: Duration::from_secs(self.metrics_sample_secs.max(1)),
            backlog: BacklogLimits {
                max_age: Duration::from_secs(self.backlog_max_age_secs),
                max_pending: self.backlog_max_pending,
            },
        }
    }
}

/// The user's state directory for kechuang (`$XDG_STATE_HOME/kechuang`, else
/// `~/.local/state/kechuang`).
fn state_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_STATE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".local").join("state")))
        .unwrap_or_else(|| PathBuf::from(".state"))
        .join("kechuang")
}

/// How a server verifies bearer tokens: the rules, and the identity provider's key set.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub rules: TokenRules,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
}

impl TokenConfig {
    /// The verifier of these tokens: the key set read from the file, or fetched from the URL
    /// (and kept fresh).
    pub async fn authenticator(&self) -> anyhow::Result<crate::auth::Authenticator> {
        let keys = match (&self.jwks_file, &self.jwks_url) {
            (Some(file), _) => TrustedKeys::from_file(file)?,
            (None, Some(url)) => TrustedKeys::fetched(url).await?,
            (None, None) => anyhow::bail!(
                "no token keys: set KC_TOKEN_JWKS_URL or KC_TOKEN_JWKS_FILE (the identity provider's key set)"
            ),
        };
        Ok(crate::auth::Authenticator::new(keys, self.rules.clone()))
    }
}

/// One Postgres database.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Server URL without a database path.
    pub server_url: String,
    pub name: String,
    pub max_connections: u32,
}

/// The event bus: NATS JetStream.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub nats_url: String,
    pub stream_name: String,
    pub subject_prefix: String,
    pub replicas: usize,
    pub duplicate_window: Duration,
    pub max_deliver: i64,
    pub redelivery_backoff: Duration,
}

impl BusConfig {
    /// `<prefix>.<event_type>`, e.g. `kc.demand.submitted`.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.{}", self.subject_prefix, event_type)
    }

    /// Where a service's poison messages go.
    pub fn dead_letter_subject(&self, service: &str) -> String {
        format!("{}.dlq.{}", self.subject_prefix, service)
    }
}

/// Everything one service needs to start.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub kind: ServiceKind,
    pub listen: SocketAddr,
    pub database: DatabaseConfig,
    pub bus: BusConfig,
    pub tokens: TokenConfig,
    /// Where the event keys are (see [`Settings::event_keys`]).
    pub event_keys: Option<PathBuf>,
    pub tuning: Tuning,
    pub limits: Limits,
    /// How often the service samples its queue gauges (see [`crate::metrics`]).
    pub metrics_sample_every: Duration,
    /// When its health says the service lags behind its events.
    pub backlog: BacklogLimits,
}

/// How far behind its events a service may fall before its health says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogLimits {
    /// The oldest unsent outbox row's age.
    pub max_age: Duration,
    /// Messages waiting for one durable consumer.
    pub max_pending: u64,
}

/// The tail of the gateway's database name: it keeps the console's sessions there.
pub const GATEWAY_DATABASE_SUFFIX: &str = "gateway";

/// Everything the gateway needs: the services' APIs, and a database of its own for the
/// console's sessions (no stream: it publishes and consumes no events).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub demand_url: String,
    pub matching_url: String,
    pub subsidy_url: String,
    pub fund_url: String,
    /// Verifies the tokens people sign in with (to show their role); every call still
    /// carries the caller's own token to the services, which decide.
    pub tokens: TokenConfig,
    /// The console's CSRF key (shared by replicas); none: random per start.
    pub csrf_key: Option<String>,
    pub limits: Limits,
    pub database: DatabaseConfig,
    pub sessions: ConsoleSessions,
    /// The OpenID Connect provider people sign in with; none: a pasted token (development).
    pub oidc: Option<OidcClient>,
    /// `kechuang up`'s development issuer, for its development sign-in (never set by
    /// [`Settings::gateway`]: only `up` hands it over, and only while it is in charge).
    pub dev_issuer: Option<DevIssuer>,
}

/// The development issuer the gateway may mint demo people's tokens with.
#[derive(Clone)]
pub struct DevIssuer(pub std::sync::Arc<crate::auth::Issuer>);

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevIssuer(..)")
    }
}

/// The gateway as a client of an OpenID Connect provider (see the `gateway_oidc_*` fields of
/// [`Settings`]).
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub issuer: String,
    pub discovery_url: Option<String>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub provider_name: String,
}

/// How long a console session lives, and how its cookie travels.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleSessions {
    /// Unused this long, a session ends.
    pub idle_timeout: Duration,
    /// However busy, a session ends this long after sign-in.
    pub absolute_timeout: Duration,
    /// `Secure` on every session cookie, not only those of requests that came over TLS.
    pub secure_cookies: bool,
}

/// What one server lets its clients take (see the fields of [`Settings`] of the same names).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_concurrent_streams: u32,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub writes: WriteRate,
}

/// Writes per caller: `per_second` sustained (0: unlimited), `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRate {
    pub per_second: u32,
    pub burst: u32,
}

/// The sky net's sentence embeddings.
#[derive(Debug, Clone)]
pub struct EmbeddingTuning {
    pub enabled: bool,
    pub cache_root: PathBuf,
    pub threads: usize,
}

/// Service-specific knobs (each service reads only its own).
#[derive(Debug, Clone)]
pub struct Tuning {
    pub pairings_per_demand: usize,
    pub embedding: EmbeddingTuning,
    pub payout_latency: Duration,
    pub payout_failure_rate: f64,
    pub payout_max_attempts: u32,
    pub policy_cap_ceiling_fen: i64,
    pub registration_window_days: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_one_database_and_port_per_service() {
        let s = Settings::default();
        let names: Vec<_> = ServiceKind::ALL
            .iter()
            .map(|k| s.service(*k).database.name)
            .collect();
        assert_eq!(
            names,
            ["kc_demand", "kc_matching", "kc_subsidy", "kc_ledger"]
        );
        let mut ports: Vec<_> = ServiceKind::ALL.iter().map(|k| s.port(*k)).collect();
        ports.dedup();
        assert_eq!(ports.len(), 4);
        assert_eq!(s.bus().subject("fund.reserved"), "kc.fund.reserved");
        assert_eq!(s.bus().dead_letter_subject("matching"), "kc.dlq.matching");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn environment_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KC_SUBJECT_PREFIX", "t1");
            jail.set_env("KC_DEMAND_PORT", "6001");
            jail.set_env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");
            jail.set_env("KC_GATEWAY_PORT", "9090");
            jail.set_env("KC_FUND_URL", "http://ledger.internal:50054");
            jail.set_env("KC_METRICS_PORT", "9999");
            jail.set_env("KC_METRICS_SAMPLE_SECS", "0");
            let s = Settings::from_env().map_err(|e| e.to_string())?;
            assert_eq!(s.metrics_listen(), "127.0.0.1:9999".parse().unwrap());
            assert_eq!(
                s.service(ServiceKind::Matching).metrics_sample_every,
                Duration::from_secs(1),
                "at least a second between samples"
            );
            let gateway = s.gateway();
            assert_eq!(gateway.listen.port(), 9090);
            assert_eq!(gateway.fund_url, "http://ledger.internal:50054");
            assert_eq!(gateway.demand_url, "http://127.0.0.1:6001");
            assert_eq!(gateway.csrf_key, None);
            assert_eq!(s.subject_prefix, "t1");
            assert_eq!(s.demand_port, 6001);
            assert_eq!(s.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn limits_come_from_the_environment_and_reach_services_and_gateway() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KC_MAX_CONNECTIONS", "64");
            jail.set_env("KC_HANDSHAKE_TIMEOUT_SECS", "2");
            jail.set_env("KC_WRITES_PER_SECOND", "0");
            let s = Settings::from_env().map_err(|e| e.to_string())?;
            let limits = s.service(ServiceKind::Subsidy).limits;
            assert_eq!(limits.max_connections, 64);
            assert_eq!(limits.handshake_timeout, Duration::from_secs(2));
            assert_eq!(limits.writes.per_second, 0);
            assert_eq!(limits.request_timeout, Duration::from_secs(30));
            assert_eq!(s.gateway().limits.max_concurrent_requests, 256);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn the_gateway_csrf_key_comes_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KC_GATEWAY_CSRF_KEY", "shared-by-every-replica-0123456789");
            let s = Settings::from_env().map_err(|e| e.to_string())?;
            assert_eq!(
                s.gateway().csrf_key.as_deref(),
                Some("shared-by-every-replica-0123456789")
            );
            Ok(())
        });
    }
}
