//! The README's pictures of the console: a real platform loaded with a small demo (all its
//! subsidies approved and paid), a few fresh applications waiting in the queue, and Chromium
//! photographing the pages an approver sees.
//!
//! ```sh
//! cargo run -p gateway --example screenshots -- docs     # writes docs/console-*.png
//! ```

#[path = "../tests/it/chromium.rs"]
mod chromium;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use fantoccini::Locator;
use kechuang::demo::{self, Clients, DemoOptions, data::Scale};
use kechuang_platform::Role;
use std::path::PathBuf;
use std::time::Duration;
use support::{Stack, enterprise_pays};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs".into()));
    std::fs::create_dir_all(&dir)?;
    let stack = Stack::start().await;
    let settings = stack.platform.settings.clone();
    let clients = Clients::connect(|k| stack.platform.address(k)).await?;
    let options = DemoOptions {
        scale: Scale::parse("0.1").map_err(anyhow::Error::msg)?,
        seed: 42,
        concurrency: 8,
    };
    demo::run(&settings, clients, options).await?;

    // Fresh payments waiting for review; one already has the first of its two approvals.
    let (a, b, c, d) = tokio::join!(
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
            &[1_500_000]
        ),
        enterprise_pays(
            &stack,
            "GUAN00004",
            "管道沿线老有人偷挖，需要入侵预警",
            "光电子信息",
            &[650_000]
        ),
    );
    let _ = (b, c, d);
    let li = stack.token(Role::FinanceApprover, "审批人·李", None);
    let auditor = stack.token(Role::Auditor, "审计·孙", None);
    let (_, paid) = stack
        .http(
            "GET",
            "/api/v1/applications?status=disbursed&page_size=1",
            Some(&auditor),
            None,
        )
        .await;
    let paid = paid["applications"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let browser = chromium::Browser::start().await;
    let w = &browser.client;
    w.set_window_size(1440, 1280).await?;
    sign_in(w, &stack, &li).await?;
    let approve = format!("tr[data-application='{}'] button[name='approve']", a.1[0]);
    w.find(Locator::Css(&approve)).await?.click().await?;
    sign_out(w).await?;
    let zhao = stack.token(Role::FinanceApprover, "审批人·赵", None);
    sign_in(w, &stack, &zhao).await?;
    for (name, path) in [
        ("console-queue.png", "/console/queue".to_string()),
        ("console-fund.png", "/console/fund".to_string()),
        (
            "console-application.png",
            format!("/console/applications/{paid}"),
        ),
    ] {
        shoot(w, &stack, &dir, name, &path).await?;
    }
    // Demands are read by managers and auditors (demand-intake's rule), not by approvers.
    sign_out(w).await?;
    sign_in(w, &stack, &auditor).await?;
    shoot(w, &stack, &dir, "console-funnel.png", "/console/funnel").await?;
    browser.stop().await;
    stack.stop().await;
    Ok(())
}

async fn sign_in(w: &fantoccini::Client, stack: &Stack, token: &str) -> anyhow::Result<()> {
    w.goto(&stack.url("/console/login")).await?;
    w.find(Locator::Css("#token"))
        .await?
        .send_keys(token)
        .await?;
    w.find(Locator::Css("#signin")).await?.click().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !w.current_url().await?.path().ends_with("/console/queue") {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "sign-in did not reach the queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "signed in as {}",
        w.find(Locator::Css("#who")).await?.text().await?
    );
    Ok(())
}

async fn shoot(
    w: &fantoccini::Client,
    stack: &Stack,
    dir: &std::path::Path,
    name: &str,
    path: &str,
) -> anyhow::Result<()> {
    w.goto(&stack.url(path)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(dir.join(name), w.screenshot().await?)?;
    println!("wrote {}", dir.join(name).display());
    Ok(())
}

async fn sign_out(w: &fantoccini::Client) -> anyhow::Result<()> {
    w.find(Locator::Css("header form button"))
        .await?
        .click()
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !w.current_url().await?.path().ends_with("/console/login") {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "sign-out did not reach the login page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
