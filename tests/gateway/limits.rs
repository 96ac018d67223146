//! The gateway's limits (issue 20, item 6) on a real gateway: a half-sent request head is
//! closed, connections over the maximum are closed while the probes answer on an open one,
//! requests over the bound in flight get 503 while `/healthz` answers, and a caller over its
//! write rate gets 429 with Retry-After while another caller does not.

use crate::support::{Stack, credit_code, exchange};
use kechuang_platform::Role;
use kechuang_platform::Settings;
use kechuang_platform::config::WriteRate;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A gateway of `settings` on a free port, with a session database of its own (its services
/// need not run: these limits act before any call to them).
async fn gateway(settings: Settings) -> (SocketAddr, Alone) {
    let own = kechuang_platform::testing::isolated_settings();
    let settings = Settings {
        gateway_port: 0,
        database_prefix: own.database_prefix,
        event_keys: own.event_keys,
        token_jwks_file: own.token_jwks_file,
        token_signing_key: own.token_signing_key,
        ..settings
    };
    let gateway = gateway::Gateway::build(settings.gateway())
        .await
        .expect("gateway starts");
    let addr = gateway.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(gateway.run_until_stopped(stop.clone()));
    (addr, Alone { stop, settings })
}

/// A running lone gateway, to stop and clean up after.
struct Alone {
    stop: CancellationToken,
    settings: Settings,
}

impl Alone {
    async fn cancel(self) {
        self.stop.cancel();
        kechuang_platform::testing::cleanup(&self.settings).await;
    }
}

/// Reads until the server closes `stream`; how long that took, or `None` if still open
/// after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// `GET path` on an open keep-alive connection; the status.
async fn get_on(stream: &mut TcpStream, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: gateway\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "the connection is open"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_after_the_timeout() {
    let (addr, stop) = gateway(Settings {
        handshake_timeout_secs: 1,
        ..Settings::default()
    })
    .await;
    // Less than the first 24 bytes, and a request line with half its headers.
    for half in [
        "GET /hea",
        "GET /healthz HTTP/1.1\r\nHost: gateway\r\nAccept: te",
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(half.as_bytes()).await.unwrap();
        let took = closed_within(&mut stream, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("{half:?}: still open after 20 s with a 1 s timeout"));
        assert!(
            took >= Duration::from_millis(500),
            "{half:?}: closed after {took:?}"
        );
    }
    // A whole request is answered.
    assert_eq!(exchange(addr, "GET", "/healthz", &[], "").await.status, 200);
    stop.cancel().await;
}

#[tokio::test]
async fn connections_beyond_the_maximum_are_closed_while_healthz_answers() {
    let (addr, stop) = gateway(Settings {
        max_connections: 3,
        handshake_timeout_secs: 120,
        ..Settings::default()
    })
    .await;
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut open, "/healthz").await, 200);
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    for stream in &mut held {
        let closed = closed_within(stream, Duration::from_millis(300)).await;
        assert!(closed.is_none(), "within the limit: open");
    }
    let mut excess = TcpStream::connect(addr).await.unwrap();
    let closed = closed_within(&mut excess, Duration::from_secs(20)).await;
    assert!(closed.is_some(), "a connection over the limit is closed");
    assert_eq!(get_on(&mut open, "/healthz").await, 200);
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get_on(&mut next, "/healthz").await, 200, "admitted again");
    stop.cancel().await;
}

/// A POST whose body never finishes: one request in flight for as long as it is held.
async fn hold_a_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "POST /api/v1/enterprises HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer t\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn at_the_limit_of_requests_in_flight_the_api_answers_503_and_the_probes_answer() {
    let (addr, stop) = gateway(Settings {
        max_concurrent_requests: 1,
        ..Settings::default()
    })
    .await;
    let held = hold_a_request(addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = exchange(addr, "GET", "/api/v1/applications", &[], "").await;
    assert_eq!(busy.status, 503, "{}", busy.body);
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert!(busy.body.contains("requests in flight"), "{}", busy.body);
    let console = exchange(addr, "GET", "/console/login", &[], "").await;
    assert_eq!(console.status, 503, "the console is inside the limit too");
    assert_eq!(exchange(addr, "GET", "/healthz", &[], "").await.status, 200);
    let ready = exchange(addr, "GET", "/readyz", &[], "").await;
    assert!(
        ready.body.contains("\"ready\""),
        "/readyz answers itself: {}",
        ready.body
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = exchange(addr, "GET", "/api/v1/applications", &[], "").await;
    assert_eq!(
        after.status, 401,
        "room again (and no token): {}",
        after.body
    );
    stop.cancel().await;
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_answered_503() {
    let (addr, stop) = gateway(Settings {
        request_timeout_secs: 1,
        ..Settings::default()
    })
    .await;
    let mut held = hold_a_request(addr).await;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(20), held.read_to_string(&mut answer))
        .await
        .expect("answered within 20 s with a 1 s timeout")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("no answer within 1 s"), "{answer}");
    stop.cancel().await;
}

#[tokio::test]
async fn a_caller_over_its_write_rate_gets_429_with_retry_after_and_others_do_not() {
    let stack = Stack::start_with_gateway(|config| {
        config.limits.writes = WriteRate {
            per_second: 1,
            burst: 2,
        };
    })
    .await;
    let register = |seed: &str| {
        json!({"name": format!("武汉{seed}科技有限公司"), "credit_code": credit_code(seed),
               "region_code": "420100", "industry_chain": "光电子信息"})
        .to_string()
    };
    let a = stack.token(Role::Enterprise, "财务·A", Some(&credit_code("1")));
    let b = stack.token(Role::Enterprise, "财务·B", Some(&credit_code("2")));
    let post = |token: &str, body: &str| {
        let headers = [
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".to_string(),
        ];
        let (body, url) = (body.to_string(), stack.gateway);
        async move { exchange(url, "POST", "/api/v1/enterprises", &headers, &body).await }
    };
    assert_eq!(post(&a, &register("1")).await.status, 200);
    assert_eq!(
        post(&a, &register("1")).await.status,
        409,
        "the second write: a conflict"
    );
    let refused = post(&a, &register("1")).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert!(
        refused.body.contains("RESOURCE_EXHAUSTED"),
        "{}",
        refused.body
    );
    // Reads are not writes; another caller has its own bucket.
    let (status, _) = stack
        .http(
            "GET",
            &format!("/api/v1/enterprises/{}", credit_code("1")),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(post(&b, &register("2")).await.status, 200);
    stack.stop().await;
}
