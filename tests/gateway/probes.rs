//! What a deployment relies on: `/healthz` (liveness, no upstream call), `/readyz` (200 only
//! when the four services answer SERVING), and replicas sharing `KC_GATEWAY_CSRF_KEY`
//! accepting each other's forms.

use crate::support::{Stack, exchange, sign_in_across};
use kechuang_platform::{GatewayConfig, Role, ServiceKind, Settings};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A gateway of `config` on a free port, until the token is cancelled.
struct Running {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(mut config: GatewayConfig) -> Self {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let gateway = gateway::Gateway::build(config)
            .await
            .expect("gateway starts");
        let addr = gateway.local_addr();
        let stop = CancellationToken::new();
        let task = tokio::spawn(gateway.run_until_stopped(stop.clone()));
        Self { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the gateway stops")
            .expect("join")
            .expect("clean stop");
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let answer = exchange(addr, "GET", path, &[], "").await;
    (answer.status, answer.body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn healthz_is_alive_and_readyz_names_the_service_that_does_not_serve() {
    let stack = Stack::start().await;
    let (status, body) = get(stack.gateway, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = get(stack.gateway, "/readyz").await;
    let ready = json(&body);
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["ready"], true);
    for service in [
        "demand-intake",
        "matching",
        "subsidy",
        "fund-ledger",
        "console-sessions",
    ] {
        assert_eq!(ready["services"][service], "SERVING", "{ready}");
    }

    // A second gateway whose fund-ledger address has nobody behind it: alive, not ready.
    let mut config = stack.platform.settings.gateway();
    let url = |k| format!("http://{}", stack.platform.address(k));
    config.demand_url = url(ServiceKind::DemandIntake);
    config.matching_url = url(ServiceKind::Matching);
    config.subsidy_url = url(ServiceKind::Subsidy);
    let vacant = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    config.fund_url = format!("http://{vacant}");
    let lame = Running::start(config).await;
    let (status, body) = get(lame.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = get(lame.addr, "/readyz").await;
    let ready = json(&body);
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["not_serving"], serde_json::json!(["fund-ledger"]));
    assert_eq!(ready["services"]["matching"], "SERVING");
    assert_ne!(ready["services"]["fund-ledger"], "SERVING");
    lame.stop().await;
    stack.stop().await;
}

/// Whether `cookie` is a live session at `addr` (a console page, not the way to sign-in).
async fn signed_in(addr: SocketAddr, cookie: &str) -> bool {
    let page = exchange(
        addr,
        "GET",
        "/console/audit",
        &[format!("Cookie: kc_session={cookie}")],
        "",
    )
    .await;
    page.header("location") != Some("/console/login")
}

#[tokio::test]
async fn replicas_sharing_the_csrf_key_accept_each_others_forms() {
    // Signing in needs no service: the gateway reads the token's role itself.
    let settings = Settings {
        gateway_csrf_key: Some("a-key-shared-by-every-gateway-replica".into()),
        ..kechuang_platform::testing::isolated_settings()
    };
    let shared = settings.gateway();
    let token =
        kechuang_platform::testing::token(&settings, Role::FinanceApprover, "审批人·李", None);
    let a = Running::start(shared.clone()).await;
    let b = Running::start(shared.clone()).await;
    let own = Running::start(GatewayConfig {
        csrf_key: None,
        ..shared.clone()
    })
    .await;

    assert_eq!(sign_in_across(a.addr, a.addr, &token).await.0, 303);
    let (status, session) = sign_in_across(a.addr, b.addr, &token).await;
    assert_eq!(status, 303);
    // The session lives in the database the replicas share: either serves it.
    let session = session.expect("a session cookie");
    assert!(signed_in(a.addr, &session).await && signed_in(b.addr, &session).await);
    assert_eq!(sign_in_across(b.addr, a.addr, &token).await.0, 303);
    // Without the shared key (random per start) the other replica's form is refused.
    assert_eq!(sign_in_across(a.addr, own.addr, &token).await.0, 403);
    assert_eq!(sign_in_across(own.addr, own.addr, &token).await.0, 303);

    // A key too short to be a secret stops the gateway from starting.
    let short = gateway::Gateway::build(GatewayConfig {
        csrf_key: Some("change-me".into()),
        ..shared
    })
    .await
    .err()
    .expect("a short key is refused");
    assert!(short.to_string().contains("KC_GATEWAY_CSRF_KEY"), "{short}");

    for g in [a, b, own] {
        g.stop().await;
    }
    kechuang_platform::testing::cleanup(&settings).await;
}
