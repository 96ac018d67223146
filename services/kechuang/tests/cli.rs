//! The `kechuang` binary itself: `up` starts, serves health, and stops cleanly on Ctrl-C;
//! it refuses to start without NATS and says how to fix it; `token` mints a usable JWT.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const BIN: &str = env!("CARGO_BIN_EXE_kechuang");

fn isolated(cmd: &mut Command) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    cmd.env("KC_DATABASE_PREFIX", format!("kcc_{id}_"))
        .env("KC_STREAM_NAME", format!("C_{}", id.to_uppercase()))
        .env("KC_SUBJECT_PREFIX", format!("c{id}"))
        .env("KC_DEMAND_PORT", "0")
        .env("KC_MATCHING_PORT", "0")
        .env("KC_SUBSIDY_PORT", "0")
        .env("KC_FUND_PORT", "0")
        .env("KC_GATEWAY_PORT", "0")
        .env("KC_METRICS_PORT", "0")
        .env("KC_METRICS_SAMPLE_SECS", "1")
        // `up`'s development event keys go to a scratch state directory.
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join(format!("kechuang-cli-{id}")),
        )
        .env_remove("KC_EVENT_KEYS")
        .env("RUST_LOG", "warn");
    id
}

#[test]
fn serve_refuses_to_start_without_the_identity_providers_keys_and_token_caps_the_lifetime() {
    for service in ["subsidy", "gateway"] {
        let mut cmd = Command::new(BIN);
        isolated(&mut cmd);
        let refused = cmd
            .env_remove("KC_TOKEN_JWKS_URL")
            .env_remove("KC_TOKEN_JWKS_FILE")
            .args(["serve", service])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("KC_TOKEN_JWKS_URL"), "{service}: {stderr}");
    }
    let mut cmd = Command::new(BIN);
    isolated(&mut cmd);
    let refused = cmd
        .args(["token", "--role", "auditor", "--hours", "13"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--hours must be 1 to 12"));
}

#[test]
fn serve_refuses_to_start_without_event_keys_and_event_keys_writes_a_set() {
    let mut cmd = Command::new(BIN);
    isolated(&mut cmd);
    let refused = cmd
        .env("KC_TOKEN_JWKS_FILE", "/nonexistent/jwks.json")
        .args(["serve", "fund-ledger"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("KC_EVENT_KEYS") && stderr.contains("kechuang event-keys"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let written = Command::new(BIN)
        .arg("event-keys")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(written.status.success(), "{written:?}");
    for service in ["demand-intake", "matching", "subsidy", "fund-ledger"] {
        for file in [format!("{service}.key.pem"), format!("{service}.pub.pem")] {
            let text = std::fs::read_to_string(dir.path().join(&file)).unwrap();
            assert!(text.starts_with("-----BEGIN"), "{file}: {text}");
        }
    }
    // A second run keeps what is there.
    let before = std::fs::read(dir.path().join("matching.key.pem")).unwrap();
    let again = Command::new(BIN)
        .arg("event-keys")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("kept"));
    assert_eq!(
        std::fs::read(dir.path().join("matching.key.pem")).unwrap(),
        before
    );
}

#[tokio::test]
async fn up_starts_every_service_and_stops_cleanly_on_ctrl_c() {
    let mut cmd = Command::new(BIN);
    let id = isolated(&mut cmd);
    let mut child = cmd
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addresses = Vec::new();
    let mut gateway = None;
    let mut metrics = None;
    let mut demand = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("kechuang up prints where it listens");
        if let Some((name, addr)) = line.split_once("listening on ") {
            addresses.push(addr.trim().to_string());
            if name.trim() == "demand-intake" {
                demand = Some(addr.trim().to_string());
            }
        }
        if let Some(rest) = line.strip_prefix("gateway") {
            let url = rest.split_whitespace().nth(1).expect("the console's URL");
            gateway = url
                .strip_prefix("http://")
                .and_then(|u| u.strip_suffix("/console"))
                .map(String::from);
        }
        if let Some(rest) = line.strip_prefix("metrics") {
            let url = rest.split_whitespace().next().expect("the metrics URL");
            metrics = url
                .strip_prefix("http://")
                .and_then(|u| u.strip_suffix("/metrics"))
                .map(String::from);
        }
        if line.starts_with("kechuang is up") {
            break;
        }
    }
    assert_eq!(addresses.len(), 4, "{addresses:?}");
    let gateway = gateway.expect("kechuang up prints the gateway's console URL");
    assert_eq!(http_status(&gateway, "/openapi.json"), 200);
    assert_eq!(
        http_status(&gateway, "/console/queue"),
        303,
        "to the login page"
    );
    for addr in &addresses {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{addr}");
    }
    // Tokens of the development issuer (`kechuang token`, the same state directory) are
    // verified through the key set `up` serves: a call with one is answered.
    let demand_addr = demand.expect("kechuang up prints demand-intake's address");
    let token = Command::new(BIN)
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join(format!("kechuang-cli-{id}")),
        )
        .args(["token", "--role", "auditor", "--subject", "sun"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{demand_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut demands =
        kechuang_proto::demand::demand_service_client::DemandServiceClient::new(channel);
    let mut request = tonic::Request::new(kechuang_proto::demand::ListDemandsRequest {
        page_size: 1,
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token.trim()).parse().unwrap(),
    );
    let listed = demands.list_demands(request).await;
    assert!(listed.is_ok(), "{listed:?}");
    // One endpoint for the process: the health checks just made, timed per service, and each
    // service's outbox sampled.
    let metrics = metrics.expect("kechuang up prints the metrics URL");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http_get(&metrics, "/metrics");
        assert_eq!(status, 200);
        let all_there = ["demand-intake", "matching", "subsidy", "fund-ledger"]
            .iter()
            .all(|service| {
                body.contains(&format!("kc_outbox_backlog{{service=\"{service}\"}}"))
                    && body.lines().any(|l| {
                        l.starts_with("kc_rpc_duration_seconds_count{")
                            && l.contains(&format!("service=\"{service}\""))
                            && l.contains("method=\"grpc.health.v1.Health/Check\"")
                            && l.contains("code=\"OK\"")
                    })
            });
        if all_there {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics lacks a series:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kechuang up did not stop within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l == "kechuang stopped cleanly"),
        "{rest:?}"
    );
    for addr in addresses.iter().chain([&gateway, &metrics]) {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} still listening"
        );
    }
    cleanup(&id).await;
}

/// The status of a plain HTTP/1.1 GET.
fn http_status(addr: &str, path: &str) -> u16 {
    http_get(addr, path).0
}

/// The status and body of a plain HTTP/1.1 GET.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

#[test]
fn up_without_nats_says_so_and_how_to_start_it() {
    let mut cmd = Command::new(BIN);
    isolated(&mut cmd);
    let output = cmd
        .arg("up")
        .env("KC_NATS_URL", "nats://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("NATS with JetStream is not reachable at nats://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("nats-server"), "{stderr}");
    assert!(!stderr.contains("PostgreSQL is not reachable"), "{stderr}");
}

#[test]
fn token_mints_a_jwt_for_the_role() {
    // The development issuer's key is created on first use, under the state directory.
    let state = std::env::temp_dir().join(format!(
        "kechuang-cli-token-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let token = |args: &[&str]| {
        Command::new(BIN)
            .env("XDG_STATE_HOME", &state)
            .env_remove("KC_TOKEN_SIGNING_KEY")
            .arg("token")
            .args(args)
            .output()
            .unwrap()
    };
    let output = token(&["--role", "finance_approver", "--subject", "zhang.wei"]);
    assert!(output.status.success(), "{output:?}");
    let minted = String::from_utf8(output.stdout).unwrap();
    let issuer = kechuang_platform::auth::Issuer::load_or_create(
        &state.join("kechuang/dev-issuer/issuer.key.pem"),
        kechuang_platform::auth::TokenRules::default(),
    )
    .unwrap();
    let caller = kechuang_platform::auth::Authenticator::trusting(&issuer)
        .verify(minted.trim())
        .unwrap();
    assert!(caller.has(kechuang_platform::Role::FinanceApprover));
    assert_eq!(caller.subject, "zhang.wei");
    // The next token comes from the same key.
    let again = token(&["--role", "auditor"]);
    let again = String::from_utf8(again.stdout).unwrap();
    assert!(
        kechuang_platform::auth::Authenticator::trusting(&issuer)
            .verify(again.trim())
            .is_ok()
    );

    assert!(!token(&["--role", "enterprise"]).status.success());
    assert!(!token(&["--role", "root"]).status.success());
    std::fs::remove_dir_all(&state).unwrap();
}

async fn cleanup(id: &str) {
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap();
    for suffix in ["demand", "matching", "subsidy", "ledger", "gateway"] {
        let sql = format!("DROP DATABASE IF EXISTS \"kcc_{id}_{suffix}\" WITH (FORCE)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    let js = async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await.unwrap());
    let _ = js.delete_stream(format!("C_{}", id.to_uppercase())).await;
}
