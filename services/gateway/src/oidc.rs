//! The gateway as an OpenID Connect relying party (issue 21): the authorization code flow
//! with PKCE. The provider's metadata and keys are discovered on first use and again every
//! few minutes (a provider that starts after the gateway, or rotates its keys, is picked up).
//! A failed discovery is not remembered: the next sign-in tries again.
//!
//! Between the redirect to the provider and its answer, the state, nonce and PKCE verifier
//! live in a short-lived HttpOnly cookie HMAC-bound under the gateway's key (no table to
//! clean; a forged or altered cookie is refused). After sign-in a person is sent to their
//! role's pages, never to a URL the request names: there is nothing to redirect openly.

use crate::csrf::CsrfKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kechuang_platform::config::OidcClient;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// How long a person may take at the provider's login page.
pub const PENDING_FOR: Duration = Duration::from_secs(600);
/// Metadata and keys older than this are discovered again.
const REDISCOVER_AFTER: Duration = Duration::from_secs(300);

/// The one field of the provider's metadata `openidconnect` does not read: where RP-initiated
/// logout goes.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Logout {
    end_session_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for Logout {}

type Metadata = ProviderMetadata<
    Logout,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// What the browser keeps between leaving for the provider and coming back.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    /// Seconds since the epoch after which the cookie is refused.
    until: u64,
}

/// The provider as the gateway sees it.
pub struct Oidc {
    pub config: OidcClient,
    http: reqwest::Client,
    discovered: Mutex<Option<(Instant, Arc<Metadata>)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the identity provider cannot be reached or answered nonsense: {0}")]
    Provider(String),
    #[error("the sign-in expired or did not start here; start again")]
    Pending,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
}

/// The tokens of a finished sign-in.
pub struct SignedIn {
    pub access_token: String,
    pub subject: String,
    /// What the ID token calls the person (`name`, else `preferred_username`): the header
    /// shows it rather than the subject, which providers often make an opaque id.
    pub display_name: Option<String>,
    /// For renewing the access token before it expires, if the provider issued one.
    pub refresh_token: Option<String>,
}

/// The tokens of a renewal: a fresh access token, and a refresh token when the provider
/// rotates them (the old one is then spent).
pub struct Renewed {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Oidc {
    pub fn new(config: OidcClient) -> anyhow::Result<Self> {
        // Redirects are not followed: the provider's endpoints answer directly (SSRF guard).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        IssuerUrl::new(config.issuer.clone())
            .map_err(|e| anyhow::anyhow!("KC_GATEWAY_OIDC_ISSUER: {e}"))?;
        RedirectUrl::new(config.redirect_url.clone())
            .map_err(|e| anyhow::anyhow!("KC_GATEWAY_OIDC_REDIRECT_URL: {e}"))?;
        Ok(Self {
            config,
            http,
            discovered: Mutex::new(None),
        })
    }

    async fn metadata(&self) -> Result<Arc<Metadata>, Error> {
        let mut discovered = self.discovered.lock().await;
        if let Some((at, m)) = discovered.as_ref()
            && at.elapsed() < REDISCOVER_AFTER
        {
            return Ok(m.clone());
        }
        let m = Arc::new(self.discover().await?);
        *discovered = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    /// The provider's metadata and key set, read from `discovery_url` (the issuer unless the
    /// gateway reaches the provider by another name than browsers do, e.g. inside Docker);
    /// the metadata must name the configured issuer, which its tokens carry.
    async fn discover(&self) -> Result<Metadata, Error> {
        let base = self
            .config
            .discovery_url
            .as_deref()
            .unwrap_or(&self.config.issuer);
        let url = format!(
            "{}/.well-known/openid-configuration",
            base.trim_end_matches('/')
        );
        let metadata: Metadata = self.get_json(&url).await?;
        if metadata.issuer().as_str().trim_end_matches('/')
            != self.config.issuer.trim_end_matches('/')
        {
            return Err(Error::Provider(format!(
                "{url} names the issuer {}, not {}",
                metadata.issuer().as_str(),
                self.config.issuer
            )));
        }
        let jwks = self.get_json(metadata.jwks_uri().url().as_str()).await?;
        Ok(metadata.set_jwks(jwks))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Error> {
        let answer = self
            .http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::Provider(format!("{url}: {e}")))?;
        let body = answer
            .bytes()
            .await
            .map_err(|e| Error::Provider(format!("{url}: {e}")))?;
        serde_json::from_slice(&body).map_err(|e| Error::Provider(format!("{url}: {e}")))
    }

    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        Error,
    > {
        let m = self.metadata().await?;
        let redirect = RedirectUrl::new(self.config.redirect_url.clone())
            .map_err(|e| Error::Provider(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            (*m).clone(),
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL, and the cookie value that must come back with it.
    pub async fn start(&self, key: &CsrfKey) -> Result<(String, String), Error> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            until: now() + PENDING_FOR.as_secs(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&pending).expect("plain data"));
        let mac = key.token(&format!("oidc:{payload}"));
        Ok((url.to_string(), format!("{payload}.{mac}")))
    }

    /// Finishes a sign-in: `cookie` is what [`Oidc::start`] handed the browser, `state` and
    /// `code` what the provider sent it back with. The code is exchanged (with the PKCE
    /// verifier), the ID token verified (signature, issuer, audience, expiry, nonce, and the
    /// access token's hash); the access token is what the session calls the services with.
    pub async fn finish(
        &self,
        key: &CsrfKey,
        cookie: &str,
        state: &str,
        code: &str,
    ) -> Result<SignedIn, Error> {
        let pending = unseal(key, cookie).ok_or(Error::Pending)?;
        if !key.matches(&pending.state, state) {
            return Err(Error::Pending);
        }
        let client = self.client().await?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Error::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| Error::Refused(describe(&e)))?;
        let id_token = answer
            .id_token()
            .ok_or_else(|| Error::Refused("no ID token".into()))?;
        let verifier = client.id_token_verifier().set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
        ]);
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce))
            .map_err(|e| Error::Refused(format!("ID token: {e}")))?;
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| Error::Refused(e.to_string()))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| Error::Refused(e.to_string()))?;
            let actual = AccessTokenHash::from_token(answer.access_token(), alg, key)
                .map_err(|e| Error::Refused(e.to_string()))?;
            if actual != *expected {
                return Err(Error::Refused(
                    "the access token is not the ID token's".into(),
                ));
            }
        }
        let display_name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str())
            .or_else(|| claims.preferred_username().map(|u| u.as_str()))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        Ok(SignedIn {
            access_token: answer.access_token().secret().clone(),
            subject: claims.subject().to_string(),
            display_name,
            refresh_token: answer.refresh_token().map(|t| t.secret().clone()),
        })
    }

    /// Exchanges `refresh_token` for a fresh access token (the refresh token grant). The
    /// caller verifies the new token, as the services will, before the session uses it.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Renewed, Error> {
        let client = self.client().await?;
        let answer = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .map_err(|e| Error::Provider(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(|e| Error::Refused(describe(&e)))?;
        Ok(Renewed {
            access_token: answer.access_token().secret().clone(),
            refresh_token: answer.refresh_token().map(|t| t.secret().clone()),
        })
    }

    /// Where to send the browser to end its session at the provider too (RP-initiated
    /// logout), then back to `back`; none when the provider offers no such endpoint.
    pub async fn end_session_url(&self, back: &str) -> Option<String> {
        let m = self.metadata().await.ok()?;
        let end = m.additional_metadata().end_session_endpoint.as_ref()?;
        let mut url = reqwest::Url::parse(end).ok()?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("post_logout_redirect_uri", back);
        Some(url.to_string())
    }
}

/// The pending sign-in of a cookie this gateway made and that has not expired.
fn unseal(key: &CsrfKey, cookie: &str) -> Option<Pending> {
    let (payload, mac) = cookie.split_once('.')?;
    if !key.verify(&format!("oidc:{payload}"), mac) {
        return None;
    }
    let pending: Pending = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (pending.until >= now()).then_some(pending)
}

/// The provider's own words for a refused exchange (`invalid_grant` for a used code).
fn describe<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_cookie_is_refused_when_altered_expired_or_made_under_another_key() {
        let key = CsrfKey::random();
        let seal = |p: &Pending| {
            let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(p).unwrap());
            format!("{payload}.{}", key.token(&format!("oidc:{payload}")))
        };
        let pending = Pending {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            until: now() + 60,
        };
        let good = seal(&pending);
        assert_eq!(unseal(&key, &good).unwrap().verifier, "v");
        assert!(unseal(&CsrfKey::random(), &good).is_none());
        let (payload, mac) = good.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD
            .encode(br#"{"state":"x","nonce":"n","verifier":"v","until":9999999999}"#);
        assert!(unseal(&key, &format!("{other}.{mac}")).is_none());
        assert!(unseal(&key, payload).is_none());
        let expired = seal(&Pending {
            until: now() - 1,
            ..pending
        });
        assert!(unseal(&key, &expired).is_none());
    }
}
