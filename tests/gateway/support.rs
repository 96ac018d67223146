//! A real platform (four services, Postgres, NATS) plus the gateway on a free port, a tiny
//! HTTP client, and the enterprise's road to a subsidy application through the HTTP API.

pub use kechuang_e2e::wait_for;
use kechuang_e2e::{TestPlatform, authed};
use kechuang_platform::{GatewayConfig, Role, ServiceKind};
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::demand::{self as dpb, demand_service_client::DemandServiceClient};
use kechuang_proto::fund::{self as fpb, fund_service_client::FundServiceClient};
use kechuang_proto::matching::{self as mpb, catalog_service_client::CatalogServiceClient};
use kechuang_proto::subsidy::{
    self as spb, registration_service_client::RegistrationServiceClient,
};
use kechuang_vocabulary::credit_code_check_char;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const YUAN: i64 = 100;

pub struct Stack {
    pub platform: TestPlatform,
    pub gateway: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with_gateway(|_| {}).await
    }

    /// As [`Stack::start`], with the gateway's configuration changed by `configure`.
    pub async fn start_with_gateway(configure: impl FnOnce(&mut GatewayConfig)) -> Self {
        Self::start_with_settings(kechuang_e2e::settings(), configure).await
    }

    /// As [`Stack::start_with_gateway`], the services started with `settings`.
    pub async fn start_with_settings(
        mut settings: kechuang_platform::Settings,
        configure: impl FnOnce(&mut GatewayConfig),
    ) -> Self {
        settings.payout_latency_ms = 0;
        let platform = TestPlatform::start_with(settings).await;
        let mut config = platform.settings.gateway();
        configure(&mut config);
        let url = |k| format!("http://{}", platform.address(k));
        config.demand_url = url(ServiceKind::DemandIntake);
        config.matching_url = url(ServiceKind::Matching);
        config.subsidy_url = url(ServiceKind::Subsidy);
        config.fund_url = url(ServiceKind::FundLedger);
        let gateway = gateway::Gateway::build(config)
            .await
            .expect("gateway starts");
        let addr = gateway.local_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
        Self {
            platform,
            gateway: addr,
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway)
    }

    pub fn token(&self, role: Role, subject: &str, enterprise: Option<&str>) -> String {
        self.platform.token(role, subject, enterprise)
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the gateway stops")
                .expect("join")
                .expect("clean stop");
        }
        self.platform.stop().await;
    }

    pub async fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        http(self.gateway, method, path, token, body).await
    }
}

/// One HTTP/1.1 request (Connection: close); the status and the body as JSON (Null if not).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut headers = Vec::new();
    if let Some(t) = token {
        headers.push(format!("Authorization: Bearer {t}"));
    }
    if method == "POST" {
        headers.push("Content-Type: application/json".to_string());
    }
    let answer = exchange(addr, method, path, &headers, body.unwrap_or("")).await;
    (
        answer.status,
        serde_json::from_str(&answer.body).unwrap_or(Value::Null),
    )
}

/// An HTTP answer: status, head (status line and headers) and body as text.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of the first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// The login form of `from` (its nonce cookie and CSRF field), submitted to `to`: the status,
/// and the session cookie when signed in.
pub async fn sign_in_across(
    from: SocketAddr,
    to: SocketAddr,
    token: &str,
) -> (u16, Option<String>) {
    let form = exchange(from, "GET", "/console/login", &[], "").await;
    assert_eq!(form.status, 200);
    let nonce = form
        .header("set-cookie")
        .and_then(|c| c.strip_prefix("kc_login="))
        .and_then(|c| c.split(';').next())
        .expect("a login nonce cookie");
    let csrf = form
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field");
    // Base64url and a JWT: nothing to percent-encode.
    let answer = exchange(
        to,
        "POST",
        "/console/login",
        &[
            format!("Cookie: kc_login={nonce}"),
            "Content-Type: application/x-www-form-urlencoded".into(),
        ],
        &format!("csrf={csrf}&token={token}"),
    )
    .await;
    if answer.status == 303 {
        // Each role to its own pages (the portal and desk tests check which).
        let to = answer.header("location").unwrap_or_default();
        assert!(
            [
                "/console/queue",
                "/console/registrations",
                "/portal",
                "/desk",
                "/supplier",
                "/welcome"
            ]
            .contains(&to),
            "signed in, sent to {to}"
        );
    }
    let session = answer
        .head
        .lines()
        .filter_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .find_map(|c| c.strip_prefix("kc_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    (answer.status, session)
}

/// Signs `token` in at `addr`: the session cookie's value.
pub async fn sign_in(addr: SocketAddr, token: &str) -> String {
    let (status, session) = sign_in_across(addr, addr, token).await;
    assert_eq!(status, 303, "signed in");
    session.expect("a session cookie")
}

/// One HTTP/1.1 request with `headers` ("Name: value"; Content-Length is added for a POST).
pub async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: &str,
) -> Answer {
    exchange_bytes(addr, method, path, headers, body.as_bytes()).await
}

/// As [`exchange`], with a body of bytes (a multipart upload of a binary file).
pub async fn exchange_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: &[u8],
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the gateway");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    if method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut raw_request = request.into_bytes();
    raw_request.extend_from_slice(body);
    // A server refusing the body (413) answers and closes before reading it all: the rest of
    // the write then fails (broken pipe, reset), and its answer is still there to read.
    if let Err(e) = stream.write_all(&raw_request).await {
        assert!(closed_early(&e), "writing the request: {e}");
    }
    let mut raw = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            // The reset that follows an answer to a half-read request ends the answer.
            Err(e) if closed_early(&e) && !raw.is_empty() => break,
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    Answer {
        status,
        head: head.to_string(),
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

pub fn credit_code(seed: &str) -> String {
    let body = format!("91420100{seed:0>9}");
    let check = credit_code_check_char(&body)
        .unwrap_or_else(|| panic!("{seed}: GB 32100 has no I, O, S, V or Z"));
    format!("{body}{check}")
}

/// The treasury tops the seeded fund up and a supplier publishes an achievement.
pub async fn prepare(stack: &Stack, top_up_yuan: i64) {
    let officer = stack.token(Role::FinanceOfficer, "财政专员·王", None);
    let supplier = stack.token(Role::Supplier, "成果转化办·陈", None);
    let mut fund = FundServiceClient::new(stack.platform.channel(ServiceKind::FundLedger).await);
    fund.top_up(authed(
        fpb::TopUpRequest {
            fund_id: "fund-default".into(),
            amount_fen: top_up_yuan * YUAN,
            reference: "财预〔2026〕8号".into(),
        },
        &officer,
    ))
    .await
    .unwrap();
    let mut catalog =
        CatalogServiceClient::new(stack.platform.channel(ServiceKind::Matching).await);
    for (title, text, keywords, chain) in [
        (
            "激光-电弧复合焊接工艺参数自适应调控",
            "针对焊缝气孔、未熔合等缺陷，提出激光-电弧复合焊接工艺参数在线自适应调控方法，显著降低返修率。",
            ["激光焊接", "气孔"],
            "高端装备",
        ),
        (
            "北斗高精度定位与形变监测",
            "基于北斗高精度定位的桥梁与边坡形变实时监测，毫米级精度。",
            ["北斗定位", "形变监测"],
            "北斗",
        ),
    ] {
        catalog
            .register_achievement(authed(
                mpb::RegisterAchievementRequest {
                    request_id: format!("ach-{title}"),
                    institution: "华中科技大学".into(),
                    title: title.into(),
                    r#abstract: text.into(),
                    keywords: keywords.iter().map(|k| k.to_string()).collect(),
                    industry_chain: chain.into(),
                    trl: 7,
                    transfer_modes: vec![TransferMode::Assignment as i32],
                    asking_price_fen: 800_000 * YUAN,
                    region_code: "420111".into(),
                    validate_only: false,
                },
                &supplier,
            ))
            .await
            .unwrap();
    }
}

/// An enterprise's whole road over the HTTP API: it registers, posts a demand (a manager
/// verifies it over gRPC), accepts the best pairing, signs, and pays `payments` (yuan) in
/// instalments. Returns the enterprise's token and the application ids.
pub async fn enterprise_pays(
    stack: &Stack,
    seed: &str,
    title: &str,
    chain: &str,
    payments: &[i64],
) -> (String, Vec<String>) {
    let id = credit_code(seed);
    let token = stack.token(Role::Enterprise, &format!("财务·{seed}"), Some(&id));
    let manager = stack.token(Role::TechManager, "技术经理人·周", None);
    let t = Some(token.as_str());
    let (status, e) = stack
        .http("POST", "/api/v1/enterprises", t, Some(&json!({"name": format!("武汉{seed}科技有限公司"), "credit_code": id, "region_code": "420100", "industry_chain": chain}).to_string()))
        .await;
    assert_eq!(status, 200, "{e}");
    let deadline = (chrono::Utc::now() + chrono::Duration::days(90)).to_rfc3339();
    let (status, demand) = stack
        .http("POST", "/api/v1/demands", t, Some(&json!({
            "request_id": format!("demand-{seed}"), "enterprise_id": id, "title": title,
            "description": format!("{title}，希望引进成熟技术并在省内应用。"), "industry_chain": chain,
            "contract_type": "transfer", "budget_min_fen": 100_000 * YUAN, "budget_max_fen": 3_000_000 * YUAN,
            "region_code": "420100", "deadline": deadline,
        }).to_string()))
        .await;
    assert_eq!(status, 200, "{demand}");
    let demand_id = demand["id"].as_str().unwrap().to_string();
    let mut demands =
        DemandServiceClient::new(stack.platform.channel(ServiceKind::DemandIntake).await);
    demands
        .verify_demand(authed(
            dpb::VerifyDemandRequest {
                demand_id: demand_id.clone(),
                approve: true,
                note: "需求明确".into(),
            },
            &manager,
        ))
        .await
        .unwrap();
    let pairing = wait_for("pairings", || async {
        let (status, page) = stack
            .http(
                "GET",
                &format!("/api/v1/demands/{demand_id}/pairings"),
                t,
                None,
            )
            .await;
        (status == 200)
            .then(|| page["pairings"].as_array().and_then(|p| p.first().cloned()))
            .flatten()
    })
    .await;
    let pairing_id = pairing["id"].as_str().unwrap().to_string();
    let (status, p) = stack
        .http(
            "POST",
            &format!("/api/v1/pairings/{pairing_id}/respond"),
            t,
            Some(r#"{"accept":true,"broker":" 经纪人·刘 "}"#),
        )
        .await;
    assert_eq!(
        (status, p["status"].as_str()),
        (200, Some("accepted")),
        "{p}"
    );
    // The broker named is the deal's facilitator, on the pairing and then on its contract.
    assert_eq!(
        (p["facilitator"].as_str(), p["facilitator_role"].as_str()),
        (Some("经纪人·刘"), Some("broker")),
        "{p}"
    );
    // Signed now, after the acceptance; paid after the signing (time is evidence).
    let signed_at = chrono::Utc::now().to_rfc3339();
    let total: i64 = payments.iter().sum();
    let contract = wait_for("the contract", || async {
        let (status, c) = stack
            .http("POST", "/api/v1/contracts", t, Some(&json!({
                "request_id": format!("contract-{seed}"), "pairing_id": pairing_id, "contract_no": format!("鄂技合字2026-{seed}"),
                "contract_type": "transfer", "amount_fen": total * YUAN, "signed_at": signed_at,
            }).to_string()))
            .await;
        (status == 200).then_some(c)
    })
    .await;
    assert_eq!(
        contract["facilitator"].as_str(),
        Some("经纪人·刘"),
        "{contract}"
    );
    let contract_id = contract["id"].as_str().unwrap().to_string();
    certify_whole(stack, &contract_id, ContractType::Transfer, total * YUAN).await;
    let mut applications = Vec::new();
    for (k, amount) in payments.iter().enumerate() {
        let paid_at = chrono::Utc::now().to_rfc3339();
        let body = json!({"contract_id": contract_id, "amount_fen": amount * YUAN, "paid_at": paid_at, "bank_reference": format!("ICBC-{seed}-{k}")}).to_string();
        // The finance net hears of the contract through an event: it may need a moment.
        let payment = wait_for("the contract to reach the finance net", || async {
            let (status, p) = stack.http("POST", "/api/v1/payments", t, Some(&body)).await;
            (status == 200).then_some(p)
        })
        .await;
        applications.push(payment["application_id"].as_str().unwrap().to_string());
    }
    (token, applications)
}

/// A registrar certifies the contract (over gRPC) as `contract_type`, all of `amount_fen`
/// technical, once the finance net has heard of it: its payments are judged at once.
pub async fn certify_whole(
    stack: &Stack,
    contract_id: &str,
    contract_type: ContractType,
    amount_fen: i64,
) {
    let registrar = stack.token(Role::Registrar, "登记员·吴", None);
    let registrations =
        RegistrationServiceClient::new(stack.platform.channel(ServiceKind::Subsidy).await);
    let request = spb::CertifyContractRequest {
        contract_id: contract_id.into(),
        registration_no: format!("REG-{contract_id}"),
        contract_type: contract_type as i32,
        certified_amount_fen: amount_fen,
        note: String::new(),
    };
    wait_for("the contract to reach the registrar", || {
        let (mut registrations, request) = (registrations.clone(), request.clone());
        let registrar = registrar.clone();
        async move {
            registrations
                .certify_contract(authed(request, &registrar))
                .await
                .ok()
        }
    })
    .await;
}

/// The id of the contract numbered `contract_no`, once it waits for registration.
pub async fn waiting_contract(stack: &Stack, contract_no: &str) -> String {
    let registrar = stack.token(Role::Registrar, "登记员·吴", None);
    let registrations =
        RegistrationServiceClient::new(stack.platform.channel(ServiceKind::Subsidy).await);
    wait_for("the contract to wait for registration", || {
        let (mut registrations, registrar) = (registrations.clone(), registrar.clone());
        async move {
            let list = registrations
                .list_registrations(authed(
                    spb::ListRegistrationsRequest {
                        page_size: 100,
                        page_token: String::new(),
                        status: spb::RegistrationStatus::Waiting as i32,
                    },
                    &registrar,
                ))
                .await
                .ok()?
                .into_inner();
            list.registrations
                .into_iter()
                .find(|r| r.contract_no == contract_no)
                .map(|r| r.contract_id)
        }
    })
    .await
}

/// Whether `e` is the peer closing a connection it stopped reading.
fn closed_early(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}
