//! Signing in through a real OpenID Connect provider: panva's `oidc-provider` from npm (see
//! tests/gateway/tools/oidc-provider.mjs), run by node, which the services trust (its key set, issuer
//! and audience) and the gateway signs people in with. An HTTP client plays the browser: it
//! follows the redirects and posts the provider's login and consent forms.

use crate::support::*;
use kechuang_platform::config::OidcClient;
use reqwest::redirect::Policy;
use serde_json::json;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// How long the provider's access tokens last unless a test says otherwise.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(600);
const TOOLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/gateway/tools");
/// Where the test installs the provider (and .ci/run too).
const PREFIX: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/oidc-provider");

fn pinned() -> String {
    std::fs::read_to_string(Path::new(TOOLS).join("oidc-provider.version"))
        .unwrap()
        .trim()
        .to_string()
}

/// The pinned `oidc-provider`'s entry file, installed with npm when missing.
fn provider_module() -> PathBuf {
    // The tests of this binary run in parallel: one installs, the others wait for it (two npm
    // installs into one prefix leave a broken one).
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let want = pinned();
    let package = Path::new(PREFIX).join("node_modules/oidc-provider");
    let installed = || {
        let text = std::fs::read_to_string(package.join("package.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(v["version"].as_str()? == want)
    };
    if installed() != Some(true) {
        eprintln!("installing oidc-provider {want} into {PREFIX}");
        let npm = Command::new("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                PREFIX,
            ])
            .arg(format!("oidc-provider@{want}"))
            .status();
        assert!(
            matches!(npm, Ok(s) if s.success()),
            "npm install oidc-provider@{want} --prefix {PREFIX} failed (node and npm are needed for this test; .ci/run installs it)"
        );
    }
    assert_eq!(installed(), Some(true), "oidc-provider {want} installed");
    package.join("lib/index.js")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The provider's node process, stopped on drop.
struct Provider(Child);

impl Provider {
    /// Waits (at most 90 s: node starts slowly on a loaded machine) until the provider serves
    /// its discovery document; false if the process exited first.
    async fn answers(&mut self, issuer: &str) -> bool {
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let served = reqwest::get(&discovery)
                .await
                .is_ok_and(|r| r.status().is_success());
            if served {
                return true;
            }
            if let Ok(Some(status)) = self.0.try_wait() {
                eprintln!("the OIDC provider at {issuer} exited at start: {status}");
                return false;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the OIDC provider at {issuer} did not answer within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The form of a provider's page: its action and fields (hidden ones, plus login and
/// password when it asks for them).
fn form_of(page: &str, login: &str) -> (String, Vec<(String, String)>) {
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a form")
        .replace("&amp;", "&");
    let mut fields = Vec::new();
    for input in page.split("<input").skip(1) {
        let attr = |name: &str| {
            input
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(str::to_string)
        };
        match (attr("name"), attr("value")) {
            (Some(n), _) if n == "login" => fields.push((n, login.to_string())),
            (Some(n), _) if n == "password" => fields.push((n, "demo-only".into())),
            (Some(n), Some(v)) => fields.push((n, v)),
            _ => {}
        }
    }
    (action, fields)
}

/// Signs `login` in at the provider, starting from the gateway's `/login/oidc`: the URL of
/// the callback the provider sends the browser back to (not yet visited).
async fn at_provider(browser: &reqwest::Client, gateway: &str, login: &str) -> String {
    let mut url = format!("{gateway}/login/oidc");
    let mut response = browser.get(&url).send().await.unwrap();
    for _ in 0..20 {
        let status = response.status();
        if status.is_redirection() {
            let next = response.headers()["location"].to_str().unwrap().to_string();
            url = reqwest::Url::parse(&url)
                .unwrap()
                .join(&next)
                .unwrap()
                .to_string();
            if url.starts_with(&format!("{gateway}/login/callback")) {
                return url;
            }
            response = browser.get(&url).send().await.unwrap();
        } else {
            assert_eq!(status, 200, "{url}");
            let page = response.text().await.unwrap();
            let (action, fields) = form_of(&page, login);
            url = reqwest::Url::parse(&url)
                .unwrap()
                .join(&action)
                .unwrap()
                .to_string();
            response = browser.post(&url).form(&fields).send().await.unwrap();
        }
    }
    panic!("the provider never sent the browser back");
}

fn session_cookie_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("kc_session="))
        .and_then(|c| c.split(';').next())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A running provider and, in front of the services that trust it, a gateway that signs
/// people in with it; the provider is reached as `provider_host` (`localhost` puts it on
/// another site than the gateway's `127.0.0.1`, as a real provider is).
pub struct WithProvider {
    pub stack: Stack,
    pub issuer: String,
    pub gateway: String,
    pub enterprise: String,
    _provider: Provider,
}

impl WithProvider {
    pub async fn start(provider_host: &str) -> Self {
        let enterprise = credit_code("KCDL00001");
        let people = json!({
            "zhang.wei": {"roles": ["enterprise"], "enterprise_id": enterprise},
            "li.na": {"roles": ["finance_approver"]},
        });
        Self::start_with_people(provider_host, &enterprise, people, DEFAULT_ACCESS_TOKEN_TTL).await
    }

    /// As [`WithProvider::start`], the provider knowing `people` (login → their `name` and
    /// the claims their access tokens carry), `enterprise` the one a test's enterprise user
    /// acts for, access tokens lasting `access_token_ttl`.
    pub async fn start_with_people(
        provider_host: &str,
        enterprise: &str,
        people: serde_json::Value,
        access_token_ttl: Duration,
    ) -> Self {
        let module = provider_module();
        let gateway_port = free_port();
        let gateway = format!("http://127.0.0.1:{gateway_port}");
        let enterprise = enterprise.to_string();
        // A port found free can be taken before node binds it (the tests run side by side):
        // a provider that exits at start is started again on another port.
        let mut started = None;
        for _attempt in 0..3 {
            let provider_port = free_port();
            let issuer = format!("http://{provider_host}:{provider_port}");
            let mut provider = Provider(
                Command::new("node")
                    .arg(Path::new(TOOLS).join("oidc-provider.mjs"))
                    .env("OIDC_PROVIDER_MODULE", &module)
                    .env("HOST", provider_host)
                    .env("PORT", provider_port.to_string())
                    .env("REDIRECT_URI", format!("{gateway}/login/callback"))
                    .env("POST_LOGOUT_URI", format!("{gateway}/console/login"))
                    .env("PEOPLE", people.to_string())
                    .env("ACCESS_TOKEN_TTL", access_token_ttl.as_secs().to_string())
                    .spawn()
                    .expect("node runs"),
            );
            if provider.answers(&issuer).await {
                started = Some((provider, issuer));
                break;
            }
        }
        let (provider, issuer) = started.expect("the OIDC provider started within three tries");

        // The services trust the provider's tokens, and only those.
        let mut settings = kechuang_e2e::settings();
        settings.token_issuer = issuer.clone();
        settings.token_audience = "kechuang".into();
        settings.token_jwks_url = Some(format!("{issuer}/jwks"));
        settings.token_jwks_file = None;
        settings.token_roles_claim = "roles".into();
        let dev_issuer = kechuang_platform::config::DevIssuer(std::sync::Arc::new(
            settings.issuer().expect("the test issuer"),
        ));
        let stack = Stack::start_with_settings(settings, |g| {
            // Handed over by mistake: the gateway still offers no development sign-in.
            g.dev_issuer = Some(dev_issuer);
            g.listen = SocketAddr::from(([127, 0, 0, 1], gateway_port));
            g.oidc = Some(OidcClient {
                issuer: issuer.clone(),
                discovery_url: None,
                client_id: "kechuang-gateway".into(),
                client_secret: Some("test-only-secret".into()),
                redirect_url: format!("{gateway}/login/callback"),
                scopes: vec!["profile".into()],
                provider_name: "测试身份提供方".into(),
            });
        })
        .await;
        Self {
            stack,
            issuer,
            gateway,
            enterprise,
            _provider: provider,
        }
    }
}

#[tokio::test]
async fn people_sign_in_through_a_real_openid_connect_provider() {
    let WithProvider {
        stack,
        issuer,
        gateway,
        enterprise,
        _provider,
    } = WithProvider::start("127.0.0.1").await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = a_browser(&jar);

    // The login page offers the provider, and pasting a token is off.
    let login = browser
        .get(format!("{gateway}/console/login"))
        .send()
        .await
        .unwrap();
    let page = login.text().await.unwrap();
    assert!(
        page.contains("href=\"/login/oidc\"") && page.contains("测试身份提供方"),
        "{page}"
    );
    assert!(
        !page.contains("name=\"token\""),
        "no pasted tokens beside a provider"
    );

    let callback = at_provider(&browser, &gateway, "zhang.wei").await;
    let pending = cookie_in(&jar, &callback, "kc_oidc").expect("a pending sign-in cookie");

    // A tampered state is refused, and starts nothing.
    let tampered = callback.replace("state=", "state=x");
    let answer = browser.get(&tampered).send().await.unwrap();
    assert_eq!(answer.status(), 403);
    assert!(session_cookie_of(&answer).is_none());

    // The provider's refusal shows its error code and nothing else the query says.
    let answer = browser
        .get(format!(
            "{gateway}/login/callback?error=access_denied&error_description=call%20400-EVIL"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let page = answer.text().await.unwrap();
    assert!(
        page.contains("(access_denied)") && !page.contains("EVIL"),
        "{page}"
    );

    // The callback starts a session, and sends the person to their role's pages.
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["refresh"], "0;url=/portal");
    assert!(session_cookie_of(&answer).is_some(), "a session cookie");

    // The portal shows the person and role the provider named, and a write through the
    // gateway to the demand service succeeds with the provider's access token.
    let portal = browser
        .get(format!("{gateway}/portal"))
        .send()
        .await
        .unwrap();
    assert_eq!(portal.status(), 200);
    let page = portal.text().await.unwrap();
    assert!(page.contains("<span id=\"who\">zhang.wei</span>"), "{page}");
    assert!(page.contains("data-role=\"enterprise\""), "{page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let registered = browser
        .post(format!("{gateway}/portal/enterprise"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "统一身份测试企业"),
            ("region_code", "420100"),
            ("industry_chain", kechuang_vocabulary::INDUSTRY_CHAINS[0]),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 303, "{:?}", registered.text().await);
    let page = browser
        .get(format!("{gateway}/portal"))
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains("统一身份测试企业") && page.contains(&enterprise),
        "{page}"
    );

    // The same code again (with the pending cookie a thief would also need) is refused.
    let replay = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let answer = replay
        .get(&callback)
        .header("cookie", format!("kc_oidc={pending}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    assert!(session_cookie_of(&answer).is_none());

    // Signing out ends the session, and sends the browser to end the provider's too.
    let out = browser
        .post(format!("{gateway}/console/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let refresh = out.headers()["refresh"].to_str().unwrap().to_string();
    assert!(
        refresh.starts_with(&format!("0;url={issuer}/session/end")),
        "{refresh}"
    );
    let after = browser
        .get(format!("{gateway}/portal"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "signed out");

    // Another person (another browser: the provider still knows the first), another role,
    // another home.
    let browser = a_browser(&std::sync::Arc::new(reqwest::cookie::Jar::default()));
    let callback = at_provider(&browser, &gateway, "li.na").await;
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.headers()["refresh"], "0;url=/console/queue");
    let queue = browser
        .get(format!("{gateway}/console/queue"))
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status(), 200);
    let page = queue.text().await.unwrap();
    assert!(page.contains("<span id=\"who\">li.na</span>"), "{page}");

    stack.stop().await;
}

/// A client that keeps cookies in `jar` and follows no redirect by itself.
pub fn a_browser(jar: &std::sync::Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The value of cookie `name` the jar would send to `url`.
fn cookie_in(jar: &reqwest::cookie::Jar, url: &str, name: &str) -> Option<String> {
    use reqwest::cookie::CookieStore;
    let header = jar.cookies(&reqwest::Url::parse(url).ok()?)?;
    header
        .to_str()
        .ok()?
        .split("; ")
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(str::to_string)
}

/// The CSRF token of a page's forms.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a form with a CSRF token")
        .to_string()
}

#[tokio::test]
async fn the_header_names_the_person_and_a_session_outlives_its_access_token_by_refreshing() {
    let enterprise = credit_code("KCRF00001");
    let people = json!({
        "u-7f3a9c": {"name": "企业财务·吴", "roles": ["enterprise"], "enterprise_id": enterprise},
    });
    // Access tokens as short-lived as a test can wait out; waits go past a token's expiry
    // and the 5 s the services allow for clocks that differ, after which no service takes it.
    let lifetime = Duration::from_secs(2);
    let past_a_token = lifetime + Duration::from_secs(7);
    let world = WithProvider::start_with_people("127.0.0.1", &enterprise, people, lifetime).await;
    let gateway = world.gateway.clone();
    let browser = a_browser(&std::sync::Arc::new(reqwest::cookie::Jar::default()));
    let callback = at_provider(&browser, &gateway, "u-7f3a9c").await;
    let signed_in = std::time::Instant::now();
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.headers()["refresh"], "0;url=/portal");

    // The header says who in the provider's words (`name`), not by the opaque subject.
    let portal = |what: &'static str| {
        let browser = browser.clone();
        let url = format!("{gateway}/portal");
        async move {
            let answer = browser.get(&url).send().await.unwrap();
            assert_eq!(answer.status(), 200, "{what}: still signed in");
            answer.text().await.unwrap()
        }
    };
    let page = portal("just signed in").await;
    assert!(
        page.contains("<span id=\"who\">企业财务·吴</span>"),
        "{page}"
    );
    assert!(!page.contains("u-7f3a9c"), "the subject is not shown");

    // Past the first access token's expiry (the session would have ended with it), the
    // session goes on with one the refresh token fetched, which the services accept.
    tokio::time::sleep_until((signed_in + past_a_token).into()).await;
    let page = portal("after the first token expired").await;
    assert!(page.contains("企业财务·吴"), "{page}");
    let registered = browser
        .post(format!("{gateway}/portal/enterprise"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("name", "续期测试企业"),
            ("region_code", "420100"),
            ("industry_chain", kechuang_vocabulary::INDUSTRY_CHAINS[0]),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 303, "{:?}", registered.text().await);

    // Again, with the refresh token the provider rotated last time.
    tokio::time::sleep(past_a_token).await;
    let page = portal("after the second token expired").await;
    assert!(page.contains("续期测试企业"), "{page}");

    world.stack.stop().await;
}
