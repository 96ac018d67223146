//! The console in headless Chromium (Debian's chromium and chromedriver, driven over
//! WebDriver): two approvers approve a four-eyes application and the dashboard shows it
//! disbursed; an auditor sees no approve button and a forged POST is refused, first by the
//! gateway's CSRF check, then by the subsidy service itself.
//!
//! Set `KC_GATEWAY_SCREENSHOTS=<dir>` to save the queue and the dashboard as PNG files.

use crate::chromium::Browser;
use crate::support::*;
use crate::webdriver::{exists, sign_in_with_token, submit_click, text};
use fantoccini::{Client, Locator};
use kechuang_e2e::authed;
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::subsidy::{self as spb, subsidy_service_client::SubsidyServiceClient};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

async fn sign_in(c: &Client, stack: &Stack, token: &str) {
    sign_in_with_token(c, &stack.url("/console/login"), token).await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/queue")
    );
}

async fn sign_out(c: &Client) {
    submit_click(c, "#signout").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/login")
    );
}

async fn approve(c: &Client, application: &str) {
    let button = format!("tr[data-application='{application}'] button[name='approve']");
    submit_click(c, &button).await;
}

async fn screenshot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("KC_GATEWAY_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }
}

/// Submits a form the page never offered (as a forger would), with or without the CSRF token.
async fn forge_approval(c: &Client, application: &str, with_csrf: bool) {
    let script = r#"
        const [id, withCsrf] = arguments;
        const form = document.createElement('form');
        form.method = 'post';
        form.action = '/console/applications/' + encodeURIComponent(id) + '/approve';
        if (withCsrf) {
            const csrf = document.createElement('input');
            csrf.type = 'hidden'; csrf.name = 'csrf';
            csrf.value = document.querySelector('meta[name=csrf-token]').content;
            form.appendChild(csrf);
        }
        document.body.appendChild(form);
        form.submit();
    "#;
    c.execute(script, vec![json!(application), json!(with_csrf)])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exists(c, "#error").await {
        assert!(Instant::now() < deadline, "no answer to the forged POST");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn approvers_approve_in_the_browser_and_an_auditor_cannot() {
    let stack = Stack::start().await;
    prepare(&stack, 5_000_000).await;
    // A: 2,000,000 paid → 200,000 subsidy, above the four-eyes threshold. B stays pending for
    // the auditor. C: one approver is enough.
    let (a, b, c) = tokio::join!(
        enterprise_pays(
            &stack,
            "WELD00001",
            "汽车焊装线焊缝经常出现气孔，返修率高",
            "高端装备",
            &[2_000_000]
        ),
        enterprise_pays(
            &stack,
            "BEDU00002",
            "桥梁边坡形变监测需要毫米级北斗定位",
            "北斗",
            &[300_000]
        ),
        enterprise_pays(
            &stack,
            "BEDU00003",
            "矿区边坡位移监测预警需要北斗高精度定位",
            "北斗",
            &[800_000]
        ),
    );
    let (a, b, c) = (a.1[0].clone(), b.1[0].clone(), c.1[0].clone());
    let browser = Browser::start().await;
    let w = &browser.client;

    // The first approver sees all three, with who still must approve.
    let li = stack.token(Role::FinanceApprover, "审批人·李", None);
    sign_in(w, &stack, &li).await;
    assert_eq!(text(w, "#role").await, "审批人 approver");
    for id in [&a, &b, &c] {
        assert!(
            exists(w, &format!("tr[data-application='{id}']")).await,
            "{id} in the queue"
        );
    }
    let row_a = format!("tr[data-application='{a}']");
    assert_eq!(
        w.find(Locator::Css(&format!("{row_a} .four-eyes")))
            .await
            .unwrap()
            .attr("data-required")
            .await
            .unwrap()
            .as_deref(),
        Some("2")
    );
    assert!(
        text(w, &format!("{row_a} .subsidy"))
            .await
            .contains("200,000.00 元")
    );
    assert!(
        text(w, &row_a).await.contains("2,000,000.00 元"),
        "the paid amount"
    );
    assert!(
        text(w, &format!("{row_a} .enterprise"))
            .await
            .contains("武汉WELD00001科技有限公司"),
        "the enterprise by name, not only its credit code"
    );
    screenshot(w, "console-queue.png").await;

    approve(w, &a).await;
    let flash = text(w, "#flash").await;
    assert!(flash.contains("等待第二位审批人"), "{flash}");
    assert!(
        text(w, &format!("{row_a} .four-eyes"))
            .await
            .contains("审批人·李")
    );
    assert!(
        text(w, &format!("{row_a} .still"))
            .await
            .contains("still needs 1 more approver")
    );
    assert!(
        !exists(w, &format!("{row_a} button[name='approve']")).await,
        "no second vote for the same person"
    );
    assert!(exists(w, &format!("{row_a} .waiting")).await);
    approve(w, &c).await;
    assert!(text(w, "#flash").await.contains("审批完成"));
    sign_out(w).await;

    // The second approver completes the four eyes.
    let zhao = stack.token(Role::FinanceApprover, "审批人·赵", None);
    sign_in(w, &stack, &zhao).await;
    approve(w, &a).await;
    assert!(text(w, "#flash").await.contains("审批完成"));
    assert!(!exists(w, &row_a).await, "approved: no longer in the queue");

    // The dashboard shows the money paid out.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        w.goto(&stack.url("/console/fund")).await.unwrap();
        if text(w, "#disbursed").await == "280,000.00 元" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not disbursed on the dashboard: {}",
            text(w, "#disbursed").await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(text(w, "#available").await, "4,720,000.00 元");
    assert!(exists(w, &format!("#latest tr[data-application='{a}']")).await);
    assert!(text(w, "#chart-chain").await.contains("高端装备"));
    assert!(text(w, "#reconcile").await.contains("reconciles"));
    screenshot(w, "console-fund.png").await;

    // The application's page: its timeline and the two ledger transfers behind it.
    w.goto(&stack.url(&format!("/console/applications/{a}")))
        .await
        .unwrap();
    let timeline = text(w, "#timeline").await;
    for step in [
        "合同签订",
        "批准 Approved by 审批人·李",
        "批准 Approved by 审批人·赵",
        "预留 reserve",
        "拨付 post",
        "已拨付 Disbursed",
    ] {
        assert!(timeline.contains(step), "{step} missing from {timeline}");
    }
    assert_eq!(
        w.find_all(Locator::Css("#transfers tbody tr"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        text(w, "#enterprise")
            .await
            .contains("武汉WELD00001科技有限公司")
    );
    sign_out(w).await;

    // The auditor reads, and nothing more.
    let sun = stack.token(Role::Auditor, "审计·孙", None);
    sign_in(w, &stack, &sun).await;
    assert_eq!(
        w.find(Locator::Css("#role"))
            .await
            .unwrap()
            .attr("data-role")
            .await
            .unwrap()
            .as_deref(),
        Some("auditor")
    );
    assert!(exists(w, &format!("tr[data-application='{b}'] .readonly")).await);
    assert!(
        !exists(w, "button[name='approve']").await,
        "no approve button for an auditor"
    );
    forge_approval(w, &b, false).await;
    let refusal = w.find(Locator::Css("#error")).await.unwrap();
    assert_eq!(
        refusal.attr("data-status").await.unwrap().as_deref(),
        Some("403")
    );
    assert!(refusal.text().await.unwrap().contains("CSRF"));
    w.goto(&stack.url("/console/queue")).await.unwrap();
    forge_approval(w, &b, true).await;
    let refusal = w.find(Locator::Css("#error")).await.unwrap();
    assert_eq!(
        refusal.attr("data-status").await.unwrap().as_deref(),
        Some("403")
    );
    let said = refusal.text().await.unwrap();
    assert!(
        said.contains("PERMISSION_DENIED") && said.contains("auditor"),
        "the service's refusal: {said}"
    );
    let mut subsidy = SubsidyServiceClient::new(stack.platform.channel(ServiceKind::Subsidy).await);
    let still = subsidy
        .get_application(authed(spb::GetApplicationRequest { id: b.clone() }, &sun))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (still.status, still.approvals.len()),
        (spb::ApplicationStatus::PendingReview as i32, 0)
    );

    // The funnel shows what the three enterprises did with their pairings, rank by rank.
    w.goto(&stack.url("/console/funnel")).await.unwrap();
    assert_eq!(text(w, "#accepted-total").await, "3");
    assert!(exists(w, "#acceptance tr[data-rank='1']").await);
    // Districts by name, not only by code.
    let wuhan = text(w, "#regions tr[data-region='420100']").await;
    assert!(wuhan.contains("武汉市"), "{wuhan}");

    // The audit trail's chain holds, and the bus vouches for it: its anchor is published by
    // the relay just after the entries are linked, so the page may need a moment to show it.
    let mut anchored = false;
    for _ in 0..40 {
        w.goto(&stack.url("/console/audit")).await.unwrap();
        if exists(w, "#anchored").await {
            anchored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        anchored,
        "the page says how far the anchor on the bus vouches"
    );
    let anchored_up_to: i64 = w
        .find(Locator::Css("#anchored"))
        .await
        .unwrap()
        .attr("data-sequence")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(anchored_up_to > 0);
    assert_eq!(
        w.find(Locator::Css("#chain"))
            .await
            .unwrap()
            .attr("data-intact")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert!(text(w, "#audit").await.contains("application.approved"));
    // Details for people: labelled, in yuan, with the raw JSON behind a summary.
    let approved_amount = text(w, "#audit dd[data-key='amount_fen']").await;
    assert!(approved_amount.ends_with(" 元"), "{approved_amount}");

    browser.stop().await;
    stack.stop().await;
}
