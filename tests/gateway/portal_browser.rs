//! The portal and the desk in headless Chromium: the enterprise submits a demand in /portal,
//! the manager verifies it in /desk, the enterprise sees its pairings (announced live by the
//! portal's script, then on reload), accepts one, signs a contract, records a payment and
//! sees its subsidy application.

use crate::chromium::Browser;
use crate::support::*;
use crate::webdriver::{choose, exists, fill, sign_in_with_token, submit_click, text};
use fantoccini::{Client, Locator};
use kechuang_platform::Role;
use kechuang_proto::common::ContractType;
use std::time::{Duration, Instant};

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// The title of the demand the browser tests submit.
pub const WELD_DEMAND: &str = "焊装线焊缝经常出现气孔，返修率高";

/// Fills the portal's demand form (open on `w`) with the welding demand and submits it.
pub async fn submit_weld_demand(w: &Client) {
    fill(w, "#title", WELD_DEMAND).await;
    fill(
        w,
        "#description",
        "焊缝气孔多、返修率高，希望引进激光焊接工艺参数自适应调控技术。",
    )
    .await;
    choose(w, "#industry_chain", "高端装备").await;
    fill(w, "#budget_min", "100000").await;
    fill(w, "#budget_max", "3000000").await;
    fill(w, "#region_code", "420100").await;
    // A date input takes the digits in the browser's locale order.
    let deadline = (chrono::Utc::now() + chrono::Duration::days(60))
        .format("%m%d%Y")
        .to_string();
    fill(w, "#deadline", &deadline).await;
    submit_click(w, "#submit-demand").await;
}

async fn sign_in(c: &Client, stack: &Stack, token: &str) {
    sign_in_with_token(c, &stack.url("/console/login"), token).await;
}

#[tokio::test]
async fn an_enterprise_goes_from_demand_to_subsidy_in_the_browser() {
    let stack = Stack::start().await;
    prepare(&stack, 5_000_000).await;
    let id = credit_code("BRWR00001");
    let browser = Browser::start().await;
    let w = &browser.client;

    // The enterprise signs in, lands on its portal, registers and submits a demand.
    sign_in(
        w,
        &stack,
        &stack.token(Role::Enterprise, "财务·郑", Some(&id)),
    )
    .await;
    assert_eq!(path(w).await, "/portal");
    assert_eq!(text(w, "#role").await, "企业 enterprise");
    fill(w, "#name", "武汉郑氏汽车零部件有限公司").await;
    fill(w, "#region_code", "420100").await;
    choose(w, "#industry_chain", "高端装备").await;
    submit_click(w, "#register-submit").await;
    assert!(text(w, "#enterprise-name").await.contains("郑氏"));
    w.goto(&stack.url("/portal/demands/new")).await.unwrap();
    submit_weld_demand(w).await;
    assert!(
        text(w, "#flash").await.contains("Submitted"),
        "{}",
        w.source().await.unwrap()
    );
    let demand_page = path(w).await;
    let demand_id = demand_page
        .trim_start_matches("/portal/demands/")
        .to_string();
    submit_click(w, "#signout").await;

    // The manager verifies it at the desk.
    sign_in(
        w,
        &stack,
        &stack.token(Role::TechManager, "技术经理人·周", None),
    )
    .await;
    assert_eq!(path(w).await, "/desk");
    submit_click(
        w,
        &format!("tr[data-demand='{demand_id}'] button[name='verify']"),
    )
    .await;
    assert_eq!(
        w.find(Locator::Css("#flash"))
            .await
            .unwrap()
            .attr("data-done")
            .await
            .unwrap()
            .as_deref(),
        Some("verified")
    );
    submit_click(w, "#signout").await;

    // The enterprise: its pairings are announced live, then shown on reload; it accepts one.
    sign_in(
        w,
        &stack,
        &stack.token(Role::Enterprise, "财务·郑", Some(&id)),
    )
    .await;
    w.goto(&stack.url(&demand_page)).await.unwrap();
    // Pairings come once matching has heard of the verification: the page's script announces
    // them; a reload (every 5 s here, as a person without script would) shows them too.
    let until = Instant::now() + Duration::from_secs(60);
    let mut reloaded = Instant::now();
    while !exists(w, "tr[data-pairing]").await {
        assert!(Instant::now() < until, "no pairing on the demand page");
        if exists(w, "#live .live-pairing").await || reloaded.elapsed() > Duration::from_secs(5) {
            w.goto(&stack.url(&demand_page)).await.unwrap();
            reloaded = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = w.find(Locator::Css("tr[data-pairing]")).await.unwrap();
    let pairing = first.attr("data-pairing").await.unwrap().unwrap();
    let row = format!("tr[data-pairing='{pairing}']");
    assert!(
        !text(w, &format!("{row} ul.reasons")).await.is_empty(),
        "the pairing's reasons"
    );
    submit_click(w, &format!("{row} button[name='accept']")).await;
    assert!(text(w, "#flash").await.contains("Accepted"));

    // Signs the contract, records a payment.
    submit_click(w, &format!("{row} a.sign")).await;
    fill(w, "#contract_no", "鄂技合字2026-B001").await;
    fill(w, "#amount", "2000000").await;
    submit_click(w, "#sign-contract").await;
    assert!(text(w, "#flash").await.contains("Signed"));
    let pay = w
        .find(Locator::Css(&format!("{row} a.pay")))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        w.goto(&stack.url(&pay)).await.unwrap();
        fill(w, "#amount", "2000000").await;
        fill(w, "#bank_reference", "ICBC-BROWSER-1").await;
        submit_click(w, "#record-payment").await;
        if path(w).await == "/portal/subsidies" {
            break;
        }
        // The finance net hears of the contract by an event: it may need a moment.
        assert!(
            Instant::now() < until,
            "payment refused: {}",
            text(w, "main").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The subsidy application waits for the contract's registration, and says so.
    assert!(text(w, "#flash").await.contains("Payment recorded"));
    let waiting = text(w, "#applications tbody tr").await;
    assert!(
        waiting.contains("待合同登记") && waiting.contains("等待技术合同认定登记"),
        "{waiting}"
    );
    // A registrar certifies the whole contract as technical; the application is judged.
    let contract_id = waiting_contract(&stack, "鄂技合字2026-B001").await;
    certify_whole(
        &stack,
        &contract_id,
        ContractType::Transfer,
        2_000_000 * 100,
    )
    .await;
    w.refresh().await.unwrap();
    let app = text(w, "#applications tbody tr").await;
    assert!(
        app.contains("2,000,000.00 元") && app.contains("鄂技合字2026-B001"),
        "{app}"
    );
    assert!(
        exists(w, "#applications ul.computation li").await,
        "the computation is shown"
    );
    assert!(
        text(w, "#applications .subsidy")
            .await
            .contains("200,000.00 元"),
        "10 % of what was paid"
    );

    browser.stop().await;
    stack.stop().await;
}
