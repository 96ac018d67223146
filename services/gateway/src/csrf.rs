//! CSRF tokens for the console's forms: an HMAC of the session under a key only the gateway
//! knows. A page embeds the token; a POST without the token of its own session is refused
//! before anything reaches a service. (The session cookie is also `SameSite=Strict`.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

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
    }

    #[test]
    fn random_keys_differ() {
        let (a, b) = (CsrfKey::random(), CsrfKey::random());
        assert_ne!(a.token("s"), b.token("s"));
    }
}
