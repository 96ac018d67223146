//! CSRF tokens for the console's forms: an HMAC of the session under a key only the gateway
//! knows. A page embeds the token; a POST without the token of its own session is refused
//! before anything reaches a service. (The session cookie is also `SameSite=Strict`.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Shortest configured secret accepted.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    /// A fresh key: forms rendered before a restart are refused after it, which is the point.
    pub fn random() -> Self {
        Self(rand::random())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key of a configured secret (`KC_GATEWAY_CSRF_KEY`), the same in every replica that
    /// is given it. A short secret is refused: it could be guessed, and forms forged with it.
    pub fn from_secret(secret: &str) -> anyhow::Result<Self> {
        if secret.len() < MIN_SECRET_LEN {
            anyhow::bail!(
                "KC_GATEWAY_CSRF_KEY has {} bytes, fewer than {MIN_SECRET_LEN}; use e.g. `openssl rand -base64 32`, or unset it for a random key per start",
                secret.len()
            );
        }
        let mut digest = Sha256::new();
        digest.update(b"kechuang-console-csrf-key\0");
        digest.update(secret.as_bytes());
        Ok(Self(digest.finalize().into()))
    }

    /// The configured key, or a random one when there is none.
    pub fn configured(secret: Option<&str>) -> anyhow::Result<Self> {
        secret.map_or_else(|| Ok(Self::random()), Self::from_secret)
    }

    fn mac(&self, session: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"kechuang-console-csrf\0");
        mac.update(session.as_bytes());
        mac
    }

    /// The token forms of `session` carry.
    pub fn token(&self, session: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(session).finalize().into_bytes())
    }

    /// Whether `presented` is `expected`, a token this key made (compared in constant time).
    pub fn matches(&self, expected: &str, presented: &str) -> bool {
        let (a, b) = (expected.as_bytes(), presented.trim().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Whether `presented` is `session`'s token (compared in constant time).
    pub fn verify(&self, session: &str, presented: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(presented.trim()) {
            Ok(bytes) => self.mac(session).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_for_its_own_session_and_key() {
        let key = CsrfKey::from_bytes([7; 32]);
        let t = key.token("session-a");
        assert!(key.verify("session-a", &t));
        assert!(!key.verify("session-b", &t));
        assert!(!CsrfKey::from_bytes([8; 32]).verify("session-a", &t));
        assert!(!key.verify("session-a", ""));
        assert!(!key.verify("session-a", "not base64 !!"));
        let mut forged = t.clone().into_bytes();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        assert!(!key.verify("session-a", &String::from_utf8(forged).unwrap()));
        assert!(key.matches(&t, &t));
        assert!(!key.matches(&t, &key.token("session-b")));
        assert!(!key.matches(&t, &t[..t.len() - 1]));
        assert!(!key.matches(&t, ""));
    }

    #[test]
    fn replicas_given_one_secret_accept_each_others_tokens() {
        let secret = "one-secret-for-every-replica-0123456789";
        let (a, b) = (
            CsrfKey::configured(Some(secret)).unwrap(),
            CsrfKey::configured(Some(secret)).unwrap(),
        );
        assert!(b.verify("session-a", &a.token("session-a")));
        let other = CsrfKey::from_secret("another-secret-for-other-replicas-42").unwrap();
        assert!(!other.verify("session-a", &a.token("session-a")));
        // Unset: random per start, as before.
        let (r1, r2) = (
            CsrfKey::configured(None).unwrap(),
            CsrfKey::configured(None).unwrap(),
        );
        assert!(!r2.verify("s", &r1.token("s")));
    }

    #[test]
    fn a_short_secret_is_refused() {
        for short in ["", "change-me", &"x".repeat(MIN_SECRET_LEN - 1)] {
            let e = CsrfKey::from_secret(short).err().expect("refused");
            assert!(e.to_string().contains("KC_GATEWAY_CSRF_KEY"), "{e}");
        }
        assert!(CsrfKey::from_secret(&"x".repeat(MIN_SECRET_LEN)).is_ok());
    }

    #[test]
    fn random_keys_differ() {
        let (a, b) = (CsrfKey::random(), CsrfKey::random());
        assert_ne!(a.token("s"), b.token("s"));
    }
}
