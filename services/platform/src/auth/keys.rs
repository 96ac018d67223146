//! The public keys tokens are verified with: the issuer's JSON Web Key Set, read from a file
//! or fetched from the issuer's JWKS URL and kept fresh. No service holds a key that can sign
//! a token. Only asymmetric algorithms are accepted (EdDSA, ES256, RS256): a symmetric key in
//! a key set is ignored, so a token signed with a shared secret (HS256) never verifies.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The algorithms a token may be signed with.
pub const ACCEPTED: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// How often a fetched key set is read again, rotation or not.
const REFRESH_EVERY: Duration = Duration::from_secs(300);
/// A token naming an unknown key fetches the set again, but not more often than this: a
/// flood of tokens with made-up key ids must not become a flood of requests to the issuer.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(10);
/// A key set larger than this is not a key set.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// How long a service waits at start for the issuer's keys before it gives up.
const FIRST_FETCH_WITHIN: Duration = Duration::from_secs(60);

struct TrustedKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The keys of one key set that kechuang can use.
#[derive(Default)]
pub struct KeyTable(Vec<TrustedKey>);

impl KeyTable {
    /// The usable signing keys of a JWKS document (RFC 7517).
    pub fn from_jwks(json: &str) -> Result<Self, String> {
        let set: JwkSet =
            serde_json::from_str(json).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
                continue;
            }
            let inferred = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Algorithm::EdDSA
                }
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                // Symmetric keys (HS*) and curves we do not accept.
                _ => continue,
            };
            let algorithm = match jwk.common.key_algorithm {
                None => inferred,
                Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                Some(KeyAlgorithm::ES256) => Algorithm::ES256,
                Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(_) => continue,
            };
            if algorithm != inferred {
                continue;
            }
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("a key of the set: {e}"))?;
            keys.push(TrustedKey {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            });
        }
        if keys.is_empty() {
            return Err("the key set holds no EdDSA, ES256 or RS256 signing key".into());
        }
        Ok(Self(keys))
    }

    /// The key a token's header names: by `kid`, or the only key of its algorithm when the
    /// token names none.
    fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<&DecodingKey> {
        let mut fitting = self.0.iter().filter(|k| k.algorithm == algorithm);
        match kid {
            Some(kid) => fitting
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| &k.key),
            None => {
                let only = fitting.next()?;
                fitting.next().is_none().then_some(&only.key)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where the key set comes from, and what refreshing it needs.
struct Remote {
    url: String,
    client: reqwest::Client,
    wake: Arc<Notify>,
}

/// The keys tokens are verified with, shared by every request of a process.
pub struct TrustedKeys {
    table: RwLock<Arc<KeyTable>>,
    remote: Option<Remote>,
}

impl TrustedKeys {
    /// A key set that never changes (a file, or a test's issuer).
    pub fn fixed(table: KeyTable) -> Arc<Self> {
        Arc::new(Self {
            table: RwLock::new(Arc::new(table)),
            remote: None,
        })
    }

    /// The key set in the file `path` (`KC_TOKEN_JWKS_FILE`).
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Arc<Self>> {
        let json = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the token key set {}: {e}", path.display())
        })?;
        let table =
            KeyTable::from_jwks(&json).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Self::fixed(table))
    }

    /// The key set at `url` (`KC_TOKEN_JWKS_URL`): fetched now (retrying for up to a minute,
    /// the issuer may be starting too), then again every five minutes and whenever a token
    /// names a key the set does not hold (a rotation), by a task that ends with the keys.
    pub async fn fetched(url: &str) -> anyhow::Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let started = Instant::now();
        let table = loop {
            match fetch(&client, url).await {
                Ok(table) => break table,
                Err(e) if started.elapsed() >= FIRST_FETCH_WITHIN => {
                    anyhow::bail!("cannot fetch the token issuer's keys from {url}: {e}")
                }
                Err(e) => {
                    tracing::warn!(url, error = %e, "token issuer's keys not there yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let keys = Arc::new(Self {
            table: RwLock::new(Arc::new(table)),
            remote: Some(Remote {
                url: url.to_string(),
                client,
                wake: Arc::new(Notify::new()),
            }),
        });
        tokio::spawn(refresh(Arc::downgrade(&keys)));
        Ok(keys)
    }

    /// The key for a token's `kid` and algorithm; when there is none, a fetched set is asked
    /// to look again (the answer for this token stays no).
    pub fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<DecodingKey> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner()).clone();
        let found = table.find(kid, algorithm).cloned();
        if found.is_none()
            && let Some(remote) = &self.remote
        {
            remote.wake.notify_one();
        }
        found
    }

    fn replace(&self, table: KeyTable) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }
}

/// Fetches the set every [`REFRESH_EVERY`], or sooner when woken, at most every
/// [`REFETCH_AT_MOST_EVERY`]; a failed fetch keeps the keys it has.
async fn refresh(keys: Weak<TrustedKeys>) {
    let mut last = Instant::now();
    loop {
        // Only the notification is held while waiting, not the keys: dropped by everyone
        // else, they go, and this task with them.
        let wake = {
            let Some(k) = keys.upgrade() else { return };
            let Some(remote) = &k.remote else { return };
            remote.wake.clone()
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
        }
        let wait = REFETCH_AT_MOST_EVERY.saturating_sub(last.elapsed());
        tokio::time::sleep(wait).await;
        let Some(k) = keys.upgrade() else { return };
        let Some(remote) = &k.remote else { return };
        last = Instant::now();
        match fetch(&remote.client, &remote.url).await {
            Ok(table) => {
                tracing::debug!(url = remote.url, keys = table.len(), "token keys refreshed");
                k.replace(table);
            }
            Err(e) => {
                tracing::warn!(url = remote.url, error = %e, "cannot refresh the token keys; keeping the ones held")
            }
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<KeyTable, String> {
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
    }
    KeyTable::from_jwks(&String::from_utf8_lossy(&body))
}
