//! The identity provider's key set fetched over HTTP from a real server on loopback: tokens of
//! its key verify; after the provider rotates its key, tokens of the new key verify once the
//! set is fetched again (a token naming an unknown key asks for that) and the retired key's
//! fail; a flood of tokens naming unknown keys fetches the set only a few times.

use kechuang_platform::auth::{Authenticator, Issuer, TokenRules, TrustedKeys};
use kechuang_platform::testing::eventually;
use kechuang_platform::{Caller, Role};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP server answering every request with the current key set; it counts requests.
struct KeySetServer {
    url: String,
    jwks: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl KeySetServer {
    async fn start(jwks: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/certs", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(jwks));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (jwks.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let body = served.lock().unwrap().clone();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { url, jwks, fetches }
    }

    fn serve(&self, jwks: String) {
        *self.jwks.lock().unwrap() = jwks;
    }
}

fn token(issuer: &Issuer, subject: &str) -> String {
    issuer.mint(
        &Caller::new(Role::Auditor, subject),
        Duration::from_secs(600),
    )
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it_and_floods_fetch_little() {
    let old = Issuer::generate(TokenRules::default());
    let new = Issuer::generate(TokenRules::default());
    let server = KeySetServer::start(old.jwks()).await;
    let keys = TrustedKeys::fetched(&server.url).await.expect("fetched");
    let auth = Authenticator::new(keys, TokenRules::default());
    assert_eq!(auth.verify(&token(&old, "a")).unwrap().subject, "a");
    let err = auth.verify(&token(&new, "b")).unwrap_err().to_string();
    assert!(err.contains("does not list"), "{err}");

    // The provider rotates: only the new key is listed now.
    server.serve(new.jwks());
    eventually(
        Duration::from_secs(40),
        "the new key is fetched",
        || async { auth.verify(&token(&new, "b")).is_ok() },
    )
    .await;
    assert!(
        auth.verify(&token(&old, "retired")).is_err(),
        "the retired key's new tokens are refused"
    );

    // A flood of tokens naming keys nobody lists: the set is fetched again at most every
    // 10 s, not once per token.
    let before = server.fetches.load(Ordering::SeqCst);
    for i in 0..200 {
        let stranger = Issuer::generate(TokenRules::default());
        assert!(auth.verify(&token(&stranger, &format!("s{i}"))).is_err());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fetched = server.fetches.load(Ordering::SeqCst) - before;
    assert!(fetched <= 2, "{fetched} fetches for 200 unknown keys");
}

#[tokio::test]
async fn a_key_set_without_a_signing_key_is_refused() {
    // A set holding only a symmetric key (an HS256 secret) verifies nothing: refused.
    let dir = std::env::temp_dir().join(format!("kc-jwks-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(
        &file,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"s"}]}"#,
    )
    .unwrap();
    let err = TrustedKeys::from_file(&file).err().expect("refused");
    assert!(
        err.to_string().contains("no EdDSA, ES256 or RS256"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
