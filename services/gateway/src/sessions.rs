//! The console's sessions (issue 20, item 5): an opaque cookie naming a row in the gateway's
//! own database, shared by its replicas. A session ends at sign-out, after the idle timeout,
//! at the absolute timeout, or when its token expires, whichever comes first; once ended it
//! cannot be resumed, whoever still holds the cookie.
//!
//! The cookie carries 32 random bytes. The table keeps their SHA-256 as the session's id, and
//! the person's bearer token sealed (ChaCha20-Poly1305) under a key derived from them: someone
//! who reads the table holds neither a cookie that resumes a session nor a token to call the
//! services with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, Utc};
use kechuang_platform::Caller;
use kechuang_platform::config::{ConsoleSessions, DatabaseConfig};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Ended and expired sessions are kept this long (a record of who signed in when), then swept.
const KEPT_AFTER_END: Duration = Duration::from_secs(30 * 24 * 3600);
/// A session's `last_seen_at` is written at most this often (or a quarter of the idle timeout,
/// if shorter): a page of the console makes a few requests, and the idle timeout is measured
/// in minutes.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

/// What the browser holds: 32 random bytes.
pub struct SessionSecret([u8; 32]);

impl SessionSecret {
    fn generate() -> Self {
        Self(rand::random())
    }

    /// The secret of a cookie value; `None` for anything that is not 32 bytes of base64url.
    pub fn parse(cookie: &str) -> Option<Self> {
        if cookie.len() != 43 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The cookie's value.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The session's id in the table (and what its CSRF tokens are bound to).
    pub fn id(&self) -> [u8; 32] {
        self.derive(b"kechuang console session id\0")
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.derive(b"kechuang console token key\0")))
    }

    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(purpose);
        digest.update(self.0);
        digest.finalize().into()
    }

    /// The token sealed: nonce, then ciphertext with its tag.
    fn seal(&self, token: &str) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher()
            .encrypt(&Nonce::from(nonce), token.as_bytes())
            .expect("sealing a token in memory cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The token of a sealed value, if this secret sealed it.
    fn open(&self, sealed: &[u8]) -> Option<String> {
        let (nonce, ciphertext) = sealed.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self
            .cipher()
            .decrypt(&Nonce::from(nonce), ciphertext)
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// What a sign-in through an identity provider brings besides the access token.
#[derive(Default)]
pub struct Particulars {
    /// The name the provider gives the person (`name`, else `preferred_username`).
    pub display_name: Option<String>,
    /// The provider's refresh token, to renew the access token before it expires.
    pub refresh_token: Option<String>,
}

/// A live session as [`Sessions::resume`] finds it.
pub struct Resumed {
    /// Who signed in (its token, if expired, no longer says).
    pub subject: String,
    /// Their access token, which may have expired if the session can renew it.
    pub token: String,
    pub display_name: Option<String>,
    pub refresh_token: Option<String>,
}

/// What [`Sessions::resume`] reads of a live session, its tokens still sealed.
#[derive(sqlx::FromRow)]
struct SessionRow {
    subject: String,
    sealed_token: Vec<u8>,
    display_name: Option<String>,
    sealed_refresh_token: Option<Vec<u8>>,
}

/// The console's sessions in the gateway's database.
#[derive(Clone)]
pub struct Sessions {
    pool: PgPool,
    policy: ConsoleSessions,
}

impl Sessions {
    /// Opens (and creates, and migrates) the gateway's database.
    pub async fn connect(
        database: &DatabaseConfig,
        policy: ConsoleSessions,
    ) -> anyhow::Result<Self> {
        let pool = kechuang_platform::db::connect_without_events(database, &MIGRATOR).await?;
        Ok(Self { pool, policy })
    }

    pub fn policy(&self) -> ConsoleSessions {
        self.policy
    }

    /// Signs `caller` in with `token` (verified by the caller of this, expiring at
    /// `token_expires`, seconds since the epoch): the secret for the browser's cookie.
    pub async fn begin(
        &self,
        caller: &Caller,
        token: &str,
        token_expires: u64,
    ) -> sqlx::Result<SessionSecret> {
        self.begin_with(caller, token, token_expires, &Particulars::default())
            .await
    }

    /// As [`Sessions::begin`], with what an identity provider said besides the token.
    pub async fn begin_with(
        &self,
        caller: &Caller,
        token: &str,
        token_expires: u64,
        particulars: &Particulars,
    ) -> sqlx::Result<SessionSecret> {
        let secret = SessionSecret::generate();
        let absolute = Utc::now() + self.policy.absolute_timeout;
        // A session that can renew its token lasts until its absolute timeout (idling out
        // before, as any); one that cannot ends with its token.
        let token_end = match particulars.refresh_token {
            Some(_) => absolute,
            None => DateTime::from_timestamp(token_expires as i64, 0).unwrap_or(absolute),
        };
        sqlx::query(
            "INSERT INTO console_sessions
                    (id, subject, role, sealed_token, expires_at, display_name, sealed_refresh_token)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(secret.id().as_slice())
        .bind(&caller.subject)
        .bind(caller.roles.to_string())
        .bind(secret.seal(token))
        .bind(absolute.min(token_end))
        .bind(particulars.display_name.as_deref())
        .bind(particulars.refresh_token.as_deref().map(|t| secret.seal(t)))
        .execute(&self.pool)
        .await?;
        Ok(secret)
    }

    /// The live session `secret` names, marking it used now; `None` when there is no such
    /// session or it has ended, idled out or expired.
    pub async fn resume(&self, secret: &SessionSecret) -> sqlx::Result<Option<Resumed>> {
        let idle = secs(self.policy.idle_timeout);
        // One statement checks liveness and refreshes `last_seen_at` (at most every
        // TOUCH_EVERY): no window between the check and the touch for a sign-out to fall in.
        let row: Option<SessionRow> = sqlx::query_as(
            "UPDATE console_sessions
                SET last_seen_at = CASE WHEN last_seen_at < now() - make_interval(secs => $3)
                                        THEN now() ELSE last_seen_at END
              WHERE id = $1 AND ended_at IS NULL AND expires_at > now()
                AND last_seen_at > now() - make_interval(secs => $2)
          RETURNING subject, sealed_token, display_name, sealed_refresh_token",
        )
        .bind(secret.id().as_slice())
        .bind(idle)
        .bind(secs(TOUCH_EVERY.min(self.policy.idle_timeout / 4)))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|row| {
            Some(Resumed {
                subject: row.subject,
                token: secret.open(&row.sealed_token)?,
                display_name: row.display_name,
                refresh_token: row.sealed_refresh_token.and_then(|r| secret.open(&r)),
            })
        }))
    }

    /// Puts a renewed access token (and the refresh token that came with it, when the
    /// provider rotates them) into the live session `secret` names; whether it was live.
    pub async fn renew(
        &self,
        secret: &SessionSecret,
        token: &str,
        refresh_token: Option<&str>,
    ) -> sqlx::Result<bool> {
        let renewed = sqlx::query(
            "UPDATE console_sessions
                SET sealed_token = $2, sealed_refresh_token = COALESCE($3, sealed_refresh_token)
              WHERE id = $1 AND ended_at IS NULL AND expires_at > now()",
        )
        .bind(secret.id().as_slice())
        .bind(secret.seal(token))
        .bind(refresh_token.map(|t| secret.seal(t)))
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Ends the session `secret` names (signing out); whether it was live.
    pub async fn end(&self, secret: &SessionSecret) -> sqlx::Result<bool> {
        let ended = sqlx::query(
            "UPDATE console_sessions SET ended_at = now(), ended_why = 'signed out'
              WHERE id = $1 AND ended_at IS NULL",
        )
        .bind(secret.id().as_slice())
        .execute(&self.pool)
        .await?;
        Ok(ended.rows_affected() == 1)
    }

    /// Ends every live session of `subject` (signing out everywhere, e.g. after a lost
    /// laptop); how many there were.
    pub async fn end_all_of(&self, subject: &str) -> sqlx::Result<u64> {
        let ended = sqlx::query(
            "UPDATE console_sessions SET ended_at = now(), ended_why = 'signed out everywhere'
              WHERE subject = $1 AND ended_at IS NULL",
        )
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(ended.rows_affected())
    }

    /// Deletes sessions that ended or expired more than [`KEPT_AFTER_END`] ago.
    pub async fn sweep(&self) -> sqlx::Result<u64> {
        let swept = sqlx::query(
            "DELETE FROM console_sessions
              WHERE COALESCE(LEAST(ended_at, expires_at), expires_at)
                    < now() - make_interval(secs => $1)",
        )
        .bind(secs(KEPT_AFTER_END))
        .execute(&self.pool)
        .await?;
        Ok(swept.rows_affected())
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_round_trips_and_nothing_else_parses() {
        let s = SessionSecret::generate();
        let parsed = SessionSecret::parse(&s.encode()).expect("own cookie");
        assert_eq!(parsed.id(), s.id());
        for bad in [
            "",
            "short",
            &"A".repeat(44),
            &"!".repeat(43),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
        ] {
            assert!(SessionSecret::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_token_opens_only_with_the_secret_that_sealed_it() {
        let (a, b) = (SessionSecret::generate(), SessionSecret::generate());
        let sealed = a.seal("header.claims.signature");
        assert_eq!(a.open(&sealed).as_deref(), Some("header.claims.signature"));
        assert_eq!(b.open(&sealed), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(a.open(&tampered), None);
        assert_eq!(a.open(&sealed[..5]), None);
        // The table holds neither the secret nor the token in the clear.
        assert!(!sealed.windows(6).any(|w| w == b"header"));
        assert_ne!(a.id(), a.0);
    }

    #[test]
    fn ids_differ_between_secrets_and_from_the_token_key() {
        let s = SessionSecret::generate();
        assert_ne!(s.id(), SessionSecret::generate().id());
        assert_ne!(s.id(), s.derive(b"kechuang console token key\0"));
    }
}
