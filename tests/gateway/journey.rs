//! Issue 21's "done when": one demand, end to end, in headless Chromium, every person signed
//! in through the real OpenID Connect provider (panva's `oidc-provider`, see
//! tests/gateway/tools/oidc-provider.mjs) with the roles, enterprise and institution its tokens carry,
//! in front of the real services (gRPC, NATS, Postgres) that trust only the provider's keys.
//!
//! A supplier publishes the achievement in /supplier; a finance officer tops the fund up on the
//! console's dashboard; the enterprise registers and submits its demand in /portal; the
//! technology manager verifies it in /desk; the enterprise accepts the sky net's pairing, signs
//! the contract and records the payment; two approvers approve the subsidy in the console (four
//! eyes); and the enterprise sees it disbursed in /portal. Nothing is done behind the browser's
//! back: every step is a page a person clicks through. Then the services are shown refusing a
//! token signed with the old shared development secret (HS256), whatever it claims.

use crate::chromium::Browser;
use crate::oidc::{DEFAULT_ACCESS_TOKEN_TTL, WithProvider};
use crate::portal_browser::{WELD_DEMAND, submit_weld_demand};
use crate::support::*;
use crate::webdriver::{choose, click, exists, fill, submit_click, text, wait_for, wait_for_path};
use fantoccini::{Client, Locator};
use kechuang_e2e::authed;
use kechuang_platform::ServiceKind;
use kechuang_proto::demand::{self as dpb, demand_service_client::DemandServiceClient};
use kechuang_proto::fund::{self as fpb, fund_service_client::FundServiceClient};
use kechuang_proto::matching::{self as mpb, catalog_service_client::CatalogServiceClient};
use kechuang_proto::subsidy::{self as spb, subsidy_service_client::SubsidyServiceClient};
use serde_json::json;
use std::time::{Duration, Instant};

/// Someone who signs in: their login at the provider, the name it gives them, their pages.
struct Person {
    login: &'static str,
    name: &'static str,
    home: &'static str,
}

const SUPPLIER: Person = Person {
    login: "chen.supplier",
    name: "成果转化办·陈",
    home: "/supplier",
};
const OFFICER: Person = Person {
    login: "wang.officer",
    name: "财政专员·王",
    home: "/console/queue",
};
const ENTERPRISE: Person = Person {
    login: "zheng.enterprise",
    name: "企业财务·郑",
    home: "/portal",
};
const MANAGER: Person = Person {
    login: "zhou.manager",
    name: "技术经理人·周",
    home: "/desk",
};
const REGISTRAR: Person = Person {
    login: "wu.registrar",
    name: "登记员·吴",
    home: "/console/registrations",
};
const FIRST_APPROVER: Person = Person {
    login: "li.approver",
    name: "审批人·李",
    home: "/console/queue",
};
const SECOND_APPROVER: Person = Person {
    login: "zhao.approver",
    name: "审批人·赵",
    home: "/console/queue",
};

/// The provider's people: each one's name, and the claims their tokens carry where kechuang
/// reads them (`roles`, `enterprise_id`, `institution_id`).
fn people(enterprise: &str) -> serde_json::Value {
    let person = |p: &Person, claims: serde_json::Value| {
        let mut claims = claims;
        claims["name"] = p.name.into();
        (p.login.to_string(), claims)
    };
    serde_json::Value::Object(
        [
            person(
                &SUPPLIER,
                json!({"roles": ["supplier"], "institution_id": "华中科技大学"}),
            ),
            person(&OFFICER, json!({"roles": ["finance_officer"]})),
            person(
                &ENTERPRISE,
                json!({"roles": ["enterprise"], "enterprise_id": enterprise}),
            ),
            person(&MANAGER, json!({"roles": ["tech_manager"]})),
            person(&REGISTRAR, json!({"roles": ["registrar"]})),
            person(&FIRST_APPROVER, json!({"roles": ["finance_approver"]})),
            person(&SECOND_APPROVER, json!({"roles": ["finance_approver"]})),
        ]
        .into_iter()
        .collect(),
    )
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// Signs `who` in as a person does: the login page's provider button, the provider's own
/// login page (and its consent page, when it asks), back at the gateway on their pages, whose
/// header names them as the provider does.
async fn sign_in_as(c: &Client, world: &WithProvider, who: &Person) {
    c.goto(&format!("{}/console/login", world.gateway))
        .await
        .unwrap();
    click(c, "#sso").await;
    wait_for(c, "input[name=login]").await;
    fill(c, "input[name=login]", who.login).await;
    fill(c, "input[name=password]", "demo-only").await;
    submit_click(c, "button[type=submit]").await;
    // The provider asks for consent to each new grant; a page at a time until the gateway's.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = c.current_url().await.unwrap();
        if url.as_str().starts_with(&world.gateway) && url.path() == who.home {
            break;
        }
        if exists(c, "input[value=consent]").await {
            submit_click(c, "button[type=submit]").await;
            continue;
        }
        assert!(
            Instant::now() < deadline,
            "{}: at {url}, never at {}",
            who.login,
            who.home
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        text(c, "#who").await,
        who.name,
        "the header names who signed in"
    );
}

/// Signs out here and, confirmed on the provider's page, there: the next person signs in
/// with their own password, as on a shared office computer.
async fn sign_out(c: &Client) {
    click(c, "#signout").await;
    wait_for(c, "button[name=logout][value=yes]").await;
    click(c, "button[name=logout][value=yes]").await;
    wait_for_path(c, "/console/login").await;
}

/// Reloads `url` until `ready` holds for the page (events take their time between
/// services; a person reloads too), at most a minute.
async fn reload_until<F, Fut>(c: &Client, url: &str, what: &str, ready: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        c.goto(url).await.unwrap();
        if ready().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never shown at {url}: {}",
            text(c, "main").await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn attr(c: &Client, css: &str, name: &str) -> Option<String> {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .attr(name)
        .await
        .unwrap()
}

#[tokio::test]
async fn one_demand_from_portal_to_disbursed_subsidy_everyone_signed_in_through_the_provider() {
    let enterprise = credit_code("JRNY00001");
    let world = WithProvider::start_with_people(
        "localhost",
        &enterprise,
        people(&enterprise),
        DEFAULT_ACCESS_TOKEN_TTL,
    )
    .await;
    let gateway = |path: &str| format!("{}{path}", world.gateway);
    let browser = Browser::start().await;
    let w = &browser.client;

    // The supplier publishes the achievement the demand will need.
    sign_in_as(w, &world, &SUPPLIER).await;
    assert_eq!(text(w, "#role").await, "高校院所 supplier");
    submit_click(w, "nav a[href='/supplier/achievements']").await;
    fill(w, "#title", "激光-电弧复合焊接工艺参数自适应调控").await;
    fill(w, "#institution", "华中科技大学").await;
    fill(
        w,
        "#abstract",
        "针对焊缝气孔、未熔合等缺陷，提出激光-电弧复合焊接工艺参数在线自适应调控方法，显著降低返修率。",
    )
    .await;
    fill(w, "#keywords", "激光焊接、气孔、返修率").await;
    choose(w, "#industry_chain", "高端装备").await;
    fill(w, "#trl", "7").await;
    click(w, "label[for=mode_assignment]").await;
    fill(w, "#asking_price", "800000").await;
    fill(w, "#region_code", "420111").await;
    submit_click(w, "#save").await;
    assert!(text(w, "#flash").await.contains("Registered"));
    assert!(text(w, "#achievements").await.contains("激光-电弧复合焊接"));
    sign_out(w).await;

    // The finance officer puts the treasury's allocation into the fund on the dashboard.
    sign_in_as(w, &world, &OFFICER).await;
    assert_eq!(text(w, "#role").await, "财政专员 finance officer");
    submit_click(w, "nav a[href='/console/fund']").await;
    fill(w, "#top-up-amount", "5000000").await;
    fill(w, "#top-up-reference", "财预〔2026〕8号").await;
    submit_click(w, "#top-up-submit").await;
    assert_eq!(
        attr(w, "#flash", "data-done").await.as_deref(),
        Some("topped-up")
    );
    assert_eq!(text(w, "#available").await, "5,000,000.00 元");
    sign_out(w).await;

    // The enterprise registers itself and submits its demand.
    sign_in_as(w, &world, &ENTERPRISE).await;
    assert_eq!(text(w, "#role").await, "企业 enterprise");
    fill(w, "#name", "武汉郑氏汽车零部件有限公司").await;
    fill(w, "#region_code", "420100").await;
    choose(w, "#industry_chain", "高端装备").await;
    submit_click(w, "#register-submit").await;
    assert!(text(w, "#enterprise-name").await.contains("郑氏"));
    assert!(
        text(w, "main").await.contains(&enterprise),
        "the token's enterprise"
    );
    submit_click(w, "nav a[href='/portal/demands/new']").await;
    let title = WELD_DEMAND;
    submit_weld_demand(w).await;
    assert!(
        text(w, "#flash").await.contains("Submitted"),
        "{}",
        w.source().await.unwrap()
    );
    assert_eq!(
        attr(w, "#demand", "data-status").await.as_deref(),
        Some("submitted")
    );
    let demand_page = path(w).await;
    let demand_id = demand_page
        .trim_start_matches("/portal/demands/")
        .to_string();
    sign_out(w).await;

    // The technology manager verifies it at the desk.
    sign_in_as(w, &world, &MANAGER).await;
    assert_eq!(text(w, "#role").await, "技术经理人 tech manager");
    let row = format!("tr[data-demand='{demand_id}']");
    assert!(
        text(w, &row).await.contains(title),
        "the demand waits at the desk"
    );
    fill(
        w,
        &format!("[id='note-{demand_id}']"),
        "已实地走访，需求明确",
    )
    .await;
    submit_click(w, &format!("{row} button[name='verify']")).await;
    assert_eq!(
        attr(w, "#flash", "data-done").await.as_deref(),
        Some("verified")
    );
    assert!(!exists(w, &row).await, "verified: no longer waiting");
    sign_out(w).await;

    // The enterprise: the sky net's pairing arrives (a reload shows it); it accepts it.
    sign_in_as(w, &world, &ENTERPRISE).await;
    reload_until(w, &gateway(&demand_page), "a pairing", || async {
        exists(w, "tr[data-pairing]").await
    })
    .await;
    let pairing = attr(w, "tr[data-pairing]", "data-pairing").await.unwrap();
    let row = format!("tr[data-pairing='{pairing}']");
    assert!(
        text(w, &row).await.contains("激光-电弧复合焊接"),
        "paired with the supplier's achievement: {}",
        text(w, &row).await
    );
    assert!(
        !text(w, &format!("{row} ul.reasons")).await.is_empty(),
        "the pairing's reasons"
    );
    submit_click(w, &format!("{row} button[name='accept']")).await;
    assert!(text(w, "#flash").await.contains("Accepted"));

    // Signs the contract, records the payment (the finance net hears of the contract by an
    // event: until it has, the payment form says so, and a person tries again).
    submit_click(w, &format!("{row} a.sign")).await;
    fill(w, "#contract_no", "鄂技合字2026-J001").await;
    fill(w, "#amount", "2000000").await;
    submit_click(w, "#sign-contract").await;
    assert!(text(w, "#flash").await.contains("Signed"));
    // The demand hears of the contract by an event too.
    reload_until(
        w,
        &gateway(&demand_page),
        "the demand contracted",
        || async { attr(w, "#demand", "data-status").await.as_deref() == Some("contracted") },
    )
    .await;
    let pay = attr(w, &format!("{row} a.pay"), "href").await.unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        w.goto(&gateway(&pay)).await.unwrap();
        fill(w, "#amount", "2000000").await;
        fill(w, "#bank_reference", "ICBC-JOURNEY-1").await;
        submit_click(w, "#record-payment").await;
        if path(w).await == "/portal/subsidies" {
            break;
        }
        assert!(
            Instant::now() < until,
            "payment refused: {}",
            text(w, "main").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(text(w, "#flash").await.contains("Payment recorded"));
    let application = attr(w, "#applications tbody tr", "data-application")
        .await
        .expect("the payment's application");
    let mine = format!("#applications tr[data-application='{application}']");
    // The contract is not registered yet: the application waits, and says so.
    assert_eq!(
        attr(w, &mine, "data-status").await.as_deref(),
        Some("awaiting_registration")
    );
    assert!(text(w, &mine).await.contains("等待技术合同认定登记"));
    sign_out(w).await;

    // The registrar certifies the whole contract as technical on their page.
    sign_in_as(w, &world, &REGISTRAR).await;
    assert_eq!(text(w, "#role").await, "登记员 registrar");
    let contract = attr(w, "#to-register tbody tr[data-contract]", "data-contract")
        .await
        .expect("the contract waits for registration");
    assert!(text(w, "#to-register").await.contains("鄂技合字2026-J001"));
    fill(
        w,
        &format!("#registration_no-{contract}"),
        "2026420100009001",
    )
    .await;
    fill(w, &format!("#certified_amount-{contract}"), "2000000").await;
    submit_click(
        w,
        &format!("form.certify[data-contract='{contract}'] button[name='certify']"),
    )
    .await;
    assert_eq!(
        attr(w, "#flash", "data-done").await.as_deref(),
        Some("certified")
    );
    sign_out(w).await;

    // Two approvers: 200,000 yuan is above the four-eyes threshold.
    let queued = format!("tr[data-application='{application}']");
    sign_in_as(w, &world, &FIRST_APPROVER).await;
    assert_eq!(text(w, "#role").await, "审批人 approver");
    assert_eq!(
        attr(w, &format!("{queued} .four-eyes"), "data-required")
            .await
            .as_deref(),
        Some("2")
    );
    assert!(
        text(w, &format!("{queued} .enterprise"))
            .await
            .contains("郑氏")
    );
    submit_click(w, &format!("{queued} button[name='approve']")).await;
    let flash = text(w, "#flash").await;
    assert!(flash.contains("等待第二位审批人"), "{flash}");
    assert!(
        !exists(w, &format!("{queued} button[name='approve']")).await,
        "no second vote for the same person"
    );
    sign_out(w).await;

    sign_in_as(w, &world, &SECOND_APPROVER).await;
    assert!(
        text(w, &format!("{queued} .four-eyes"))
            .await
            .contains(FIRST_APPROVER.login),
        "the first approval, by whom"
    );
    submit_click(w, &format!("{queued} button[name='approve']")).await;
    assert!(text(w, "#flash").await.contains("审批完成"));
    assert!(
        !exists(w, &queued).await,
        "approved: no longer in the queue"
    );
    // The dashboard shows the money leave the fund.
    reload_until(w, &gateway("/console/fund"), "the disbursement", || async {
        text(w, "#disbursed").await == "200,000.00 元"
    })
    .await;
    assert_eq!(text(w, "#available").await, "4,800,000.00 元");
    assert!(text(w, "#reconcile").await.contains("reconciles"));
    sign_out(w).await;

    // The enterprise sees its subsidy disbursed, and its demand completed.
    sign_in_as(w, &world, &ENTERPRISE).await;
    submit_click(w, "nav a[href='/portal/subsidies']").await;
    reload_until(
        w,
        &gateway("/portal/subsidies"),
        "the subsidy disbursed",
        || async { attr(w, &mine, "data-status").await.as_deref() == Some("disbursed") },
    )
    .await;
    assert!(text(w, &mine).await.contains("已拨付 disbursed"));
    assert!(
        text(w, &format!("{mine} .subsidy"))
            .await
            .contains("200,000.00 元")
    );
    reload_until(
        w,
        &gateway(&demand_page),
        "the demand completed",
        || async { attr(w, "#demand", "data-status").await.as_deref() == Some("completed") },
    )
    .await;
    sign_out(w).await;
    browser.stop().await;

    the_old_shared_secret_opens_nothing(&world).await;
    world.stack.stop().await;
}

/// A token signed with the development secret every service once shared (HS256) is refused
/// by every service and by the gateway's API, though it names the provider as its issuer,
/// kechuang as its audience and an approver as its holder: only the provider's keys count.
async fn the_old_shared_secret_opens_nothing(world: &WithProvider) {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": "forger", "roles": ["finance_approver", "finance_officer"],
        "iss": world.issuer, "aud": "kechuang", "iat": now, "exp": now + 600,
    });
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(
            b"kechuang-development-secret-do-not-use-in-production",
        ),
    )
    .unwrap();
    let platform = &world.stack.platform;
    let refused = |what: &str, outcome: Result<(), tonic::Status>| {
        let status = outcome.expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{what}: {status:?}"
        );
        assert!(status.message().contains("HS256"), "{what}: {status:?}");
    };
    let mut demand = DemandServiceClient::new(platform.channel(ServiceKind::DemandIntake).await);
    let request = dpb::GetDemandRequest {
        demand_id: "any".into(),
    };
    refused(
        "demand-intake",
        demand.get_demand(authed(request, &hs256)).await.map(drop),
    );
    let mut catalog = CatalogServiceClient::new(platform.channel(ServiceKind::Matching).await);
    let request = mpb::GetAchievementRequest {
        achievement_id: "any".into(),
    };
    refused(
        "matching",
        catalog
            .get_achievement(authed(request, &hs256))
            .await
            .map(drop),
    );
    let mut subsidy = SubsidyServiceClient::new(platform.channel(ServiceKind::Subsidy).await);
    let request = spb::ListApplicationsRequest::default();
    refused(
        "subsidy",
        subsidy
            .list_applications(authed(request, &hs256))
            .await
            .map(drop),
    );
    let mut fund = FundServiceClient::new(platform.channel(ServiceKind::FundLedger).await);
    let request = fpb::TopUpRequest {
        fund_id: kechuang_vocabulary::DEFAULT_FUND_ID.into(),
        amount_fen: 100,
        reference: "forged".into(),
    };
    refused(
        "fund-ledger",
        fund.top_up(authed(request, &hs256)).await.map(drop),
    );
    let (status, _) = world
        .stack
        .http("GET", "/api/v1/applications", Some(&hs256), None)
        .await;
    assert_eq!(status, 401, "the gateway's API");
}
