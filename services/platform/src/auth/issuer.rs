//! Issuing tokens, for development and tests only: `kechuang up` runs this issuer (a key pair
//! it creates once and keeps, its key set served over HTTP), `kechuang token`, the demo, the
//! bench and the tests sign with it. Production tokens come from the province's identity
//! provider; services verify both the same way, through a key set ([`super::keys`]).

use super::{Caller, TokenRules, unix_now};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// An EdDSA (Ed25519) token issuer.
pub struct Issuer {
    key: EncodingKey,
    jwk: Jwk,
    rules: TokenRules,
}

impl Issuer {
    /// A fresh random key.
    pub fn generate(rules: TokenRules) -> Self {
        Self::from_key(&SigningKey::from_bytes(&rand::random::<[u8; 32]>()), rules)
    }

    /// The issuer of a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem(pem: &str, rules: TokenRules) -> anyhow::Result<Self> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 private key in PKCS#8 PEM: {e}"))?;
        Ok(Self::from_key(&key, rules))
    }

    /// The issuer whose key is in `path`, created there (readable by its owner only) when
    /// there is none yet.
    pub fn load_or_create(path: &Path, rules: TokenRules) -> anyhow::Result<Self> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| anyhow::anyhow!("encoding a new issuer key: {e}"))?;
            crate::seal::write_private(path, pem.as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        let pem = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::from_pem(&pem, rules).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    fn from_key(signing: &SigningKey, rules: TokenRules) -> Self {
        let der = signing
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        let public = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let mut jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": public, "alg": "EdDSA", "use": "sig",
        }))
        .expect("an Ed25519 public key is a JWK");
        jwk.common.key_id = Some(
            jwk.thumbprint(ThumbprintHash::SHA256)
                .expect("an Ed25519 JWK has a thumbprint"),
        );
        let key = EncodingKey::from_ed_der(der.as_bytes());
        Self { key, jwk, rules }
    }

    /// The key's id (its RFC 7638 thumbprint), which every token names.
    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }

    pub fn rules(&self) -> &TokenRules {
        &self.rules
    }

    /// The public key set services verify this issuer's tokens with.
    pub fn jwks(&self) -> String {
        serde_json::to_string(&JwkSet {
            keys: vec![self.jwk.clone()],
        })
        .expect("a key set serialises")
    }

    /// A token for `caller`, valid for `ttl` from now.
    pub fn mint(&self, caller: &Caller, ttl: Duration) -> String {
        let now = unix_now();
        self.mint_at(caller, now, now + ttl.as_secs())
    }

    /// A token for `subject` in `role` (of `enterprise`, for an enterprise user).
    pub fn mint_for(
        &self,
        role: super::Role,
        subject: &str,
        enterprise: Option<&str>,
        ttl: Duration,
    ) -> String {
        let mut caller = Caller::new(role, subject);
        caller.enterprise_id = enterprise.map(str::to_string);
        self.mint(&caller, ttl)
    }

    /// A token with explicit issue and expiry times (seconds since the epoch).
    pub fn mint_at(&self, caller: &Caller, iat: u64, exp: u64) -> String {
        let mut claims = self.rules.claims.claims_of(caller);
        claims.insert("iss".into(), self.rules.issuer.clone().into());
        claims.insert("aud".into(), self.rules.audience.clone().into());
        claims.insert("iat".into(), iat.into());
        claims.insert("exp".into(), exp.into());
        self.sign(&claims)
    }

    /// Any claims, signed with this key: for tests that try what an attacker would.
    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid().to_string());
        jsonwebtoken::encode(&header, claims, &self.key).expect("EdDSA signing cannot fail")
    }
}
