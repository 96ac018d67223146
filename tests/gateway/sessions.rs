//! The console's server-side sessions (issue 20, item 5) on a real gateway and its own
//! Postgres database: the cookie is opaque and a pasted token is not a session; signing out
//! ends the session for whoever holds a copy of the cookie; idle and absolute timeouts and
//! the token's own expiry end it; `Secure` cookies over TLS or when configured; the table
//! holds neither cookies nor tokens. Signing in needs no service: the gateway reads the
//! token's role itself.

use crate::support::{Answer, exchange, sign_in};
use kechuang_platform::{GatewayConfig, Role, Settings};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A lone gateway with a session database of its own.
struct Console {
    addr: SocketAddr,
    settings: Settings,
    config: GatewayConfig,
    stop: CancellationToken,
}

impl Console {
    async fn start(configure: impl FnOnce(&mut GatewayConfig)) -> Self {
        let settings = kechuang_platform::testing::isolated_settings();
        let mut config = settings.gateway();
        config.listen = "127.0.0.1:0".parse().unwrap();
        configure(&mut config);
        let gateway = gateway::Gateway::build(config.clone())
            .await
            .expect("gateway starts");
        let addr = gateway.local_addr();
        let stop = CancellationToken::new();
        tokio::spawn(gateway.run_until_stopped(stop.clone()));
        Self {
            addr,
            settings,
            config,
            stop,
        }
    }

    fn token(&self, subject: &str, lifetime: Duration) -> String {
        self.settings.issuer().expect("the test issuer").mint_for(
            Role::FinanceApprover,
            subject,
            None,
            lifetime,
        )
    }

    /// A console page with `cookie` (name=value).
    async fn page(&self, cookie: &str) -> Answer {
        exchange(
            self.addr,
            "GET",
            "/console/audit",
            &[format!("Cookie: {cookie}")],
            "",
        )
        .await
    }

    /// Whether the session cookie `session` is signed in (a page, not the way to sign-in).
    async fn live(&self, session: &str) -> bool {
        let page = self.page(&format!("kc_session={session}")).await;
        page.header("location") != Some("/console/login")
    }

    /// POSTs the sign-out form `path` of `session`'s page (with its CSRF token).
    async fn sign_out(&self, session: &str, path: &str) -> Answer {
        let page = self.page(&format!("kc_session={session}")).await;
        let csrf = page
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a csrf field")
            .to_string();
        exchange(
            self.addr,
            "POST",
            path,
            &[
                format!("Cookie: kc_session={session}"),
                "Content-Type: application/x-www-form-urlencoded".into(),
            ],
            &format!("csrf={csrf}"),
        )
        .await
    }

    async fn database(&self) -> PgPool {
        PgPool::connect(&format!(
            "{}/{}",
            self.config.database.server_url, self.config.database.name
        ))
        .await
        .expect("the gateway's database")
    }

    async fn stop(self) {
        self.stop.cancel();
        kechuang_platform::testing::cleanup(&self.settings).await;
    }
}

/// Every `Set-Cookie` of an answer.
fn set_cookies(answer: &Answer) -> Vec<&str> {
    answer
        .head
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim())
        })
        .collect()
}

#[tokio::test]
async fn the_cookie_is_opaque_and_a_pasted_token_is_no_session() {
    let console = Console::start(|_| {}).await;
    let token = console.token("审批人·李", Duration::from_secs(600));
    let session = sign_in(console.addr, &token).await;
    assert_eq!(session.len(), 43, "32 random bytes, base64url: {session}");
    assert!(!session.contains('.') && !token.contains(&session));
    assert!(console.live(&session).await);
    let page = console.page(&format!("kc_session={session}")).await;
    assert!(page.body.contains("审批人·李"), "{}", page.body);

    // The bearer token itself in the cookie (as the console used to keep it) is nobody.
    for forged in [
        token.as_str(),
        "",
        "not-a-session",
        &"A".repeat(43),
        &session[..42],
    ] {
        assert!(!console.live(forged).await, "{forged:?} is a session");
    }

    // The table keeps neither the cookie nor the token readable.
    let db = console.database().await;
    let rows: Vec<(Vec<u8>, Vec<u8>, String)> =
        sqlx::query_as("SELECT id, sealed_token, subject FROM console_sessions")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let (id, sealed, subject) = &rows[0];
    assert_eq!(subject, "审批人·李");
    let cookie_bytes = session.as_bytes();
    for column in [id, sealed] {
        assert!(
            !column
                .windows(8)
                .any(|w| token.as_bytes().windows(8).any(|t| t == w))
        );
        assert!(
            !column
                .windows(8)
                .any(|w| cookie_bytes.windows(8).any(|t| t == w))
        );
    }
    // An insider who writes a row for a cookie of their own, with Li's sealed token copied
    // into it, gets no session: the token opens only with Li's cookie.
    let insider = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32])
    };
    let id = gateway::sessions::SessionSecret::parse(&insider)
        .expect("a well-formed cookie")
        .id();
    sqlx::query(
        "INSERT INTO console_sessions (id, subject, role, sealed_token, expires_at)
         SELECT $1, subject, role, sealed_token, expires_at FROM console_sessions",
    )
    .bind(id.as_slice())
    .execute(&db)
    .await
    .unwrap();
    assert!(!console.live(&insider).await, "a copied token opened");
    assert!(console.live(&session).await);
    db.close().await;
    console.stop().await;
}

#[tokio::test]
async fn signing_out_ends_the_session_for_every_copy_of_the_cookie() {
    let console = Console::start(|_| {}).await;
    let token = console.token("审批人·李", Duration::from_secs(600));
    let session = sign_in(console.addr, &token).await;
    let other_browser = sign_in(console.addr, &token).await;
    assert!(console.live(&session).await);

    let out = console.sign_out(&session, "/console/logout").await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/console/login"));
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("kc_session=;") && c.contains("Max-Age=0")),
        "{}",
        out.head
    );
    // A copy of the cookie kept (stolen, or the browser ignoring the drop) no longer works.
    assert!(!console.live(&session).await, "revoked at sign-out");
    assert!(console.live(&other_browser).await, "only this browser");
    let db = console.database().await;
    let ended: Vec<String> =
        sqlx::query_scalar("SELECT ended_why FROM console_sessions WHERE ended_at IS NOT NULL")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(ended, ["signed out"]);

    // A sign-out without the session's CSRF token is refused and ends nothing.
    let forged = exchange(
        console.addr,
        "POST",
        "/console/logout/everywhere",
        &[
            format!("Cookie: kc_session={other_browser}"),
            "Content-Type: application/x-www-form-urlencoded".into(),
        ],
        "csrf=forged",
    )
    .await;
    assert_eq!(forged.status, 403);
    assert!(console.live(&other_browser).await);

    // Everywhere: every session of the person, and nobody else's.
    let third = sign_in(console.addr, &token).await;
    let zhao = sign_in(
        console.addr,
        &console.token("审批人·赵", Duration::from_secs(600)),
    )
    .await;
    let out = console
        .sign_out(&other_browser, "/console/logout/everywhere")
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(!console.live(&other_browser).await);
    assert!(!console.live(&third).await);
    assert!(console.live(&zhao).await, "another person stays signed in");
    db.close().await;
    console.stop().await;
}

#[tokio::test]
async fn an_idle_session_ends_and_a_busy_one_ends_at_the_absolute_timeout() {
    let console = Console::start(|config| {
        config.sessions.idle_timeout = Duration::from_secs(2);
        config.sessions.absolute_timeout = Duration::from_secs(5);
    })
    .await;
    let token = console.token("审批人·李", Duration::from_secs(600));

    let idle = sign_in(console.addr, &token).await;
    let busy = sign_in(console.addr, &token).await;
    // Busy: used every half second, it outlives the idle timeout several times over.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(console.live(&busy).await, "busy at {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        !console.live(&idle).await,
        "unused for 3 s of a 2 s idle timeout"
    );

    // ...but not the absolute timeout, however busy.
    let mut ended_at = None;
    while started.elapsed() < Duration::from_secs(12) {
        if !console.live(&busy).await {
            ended_at = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ended_at = ended_at.expect("a busy session ends at the absolute timeout");
    assert!(
        ended_at >= Duration::from_secs(4),
        "ended after {ended_at:?}"
    );
    console.stop().await;
}

#[tokio::test]
async fn a_session_ends_with_its_token() {
    let console = Console::start(|_| {}).await;
    let short = console.token("审批人·李", Duration::from_secs(2));
    let session = sign_in(console.addr, &short).await;
    assert!(console.live(&session).await);
    // The session's own timeouts are 30 min / 8 h; the token's 2 s (plus the verifier's
    // leeway for clock skew) bound it.
    kechuang_platform::testing::eventually(Duration::from_secs(90), "the session ends", || async {
        !console.live(&session).await
    })
    .await;
    console.stop().await;
}

#[tokio::test]
async fn cookies_are_secure_over_tls_or_when_configured() {
    let plain = Console::start(|_| {}).await;
    let secure = Console::start(|config| config.sessions.secure_cookies = true).await;
    let form_of = |addr| async move { exchange(addr, "GET", "/console/login", &[], "").await };

    for (console, forwarded, expect_secure) in [
        (&plain, None, false),
        (&plain, Some("https"), true),
        (&plain, Some("http"), false),
        (&secure, None, true),
    ] {
        let form = form_of(console.addr).await;
        let nonce = form
            .header("set-cookie")
            .and_then(|c| c.strip_prefix("kc_login="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let csrf = form
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string();
        let mut headers = vec![
            format!("Cookie: kc_login={nonce}"),
            "Content-Type: application/x-www-form-urlencoded".to_string(),
        ];
        if let Some(proto) = forwarded {
            headers.push(format!("X-Forwarded-Proto: {proto}"));
        }
        let token = console.token("审批人·李", Duration::from_secs(600));
        let answer = exchange(
            console.addr,
            "POST",
            "/console/login",
            &headers,
            &format!("csrf={csrf}&token={token}"),
        )
        .await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        let cookies = set_cookies(&answer);
        let session = cookies
            .iter()
            .find(|c| c.contains("kc_session=") && !c.contains("Max-Age=0"))
            .unwrap_or_else(|| panic!("{cookies:?}"));
        assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
        if expect_secure {
            assert!(
                session.starts_with("__Host-kc_session=") && session.contains("; Secure"),
                "{forwarded:?}: {session}"
            );
            // The secure cookie resumes the session like the plain one.
            let value = session
                .strip_prefix("__Host-kc_session=")
                .and_then(|v| v.split(';').next())
                .unwrap();
            let page = console.page(&format!("__Host-kc_session={value}")).await;
            assert_ne!(page.header("location"), Some("/console/login"));
        } else {
            assert!(
                session.starts_with("kc_session=") && !session.contains("Secure"),
                "{forwarded:?}: {session}"
            );
        }
    }
    plain.stop().await;
    secure.stop().await;
}
