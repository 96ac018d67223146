//! The README's pictures of every role's pages: a real platform loaded with a small demo (all
//! its subsidies approved and paid), a few fresh applications waiting in the queue, one demand
//! waiting for verification, and Chromium photographing what an approver, an auditor, an
//! enterprise, a technology manager and a supplier see.
//!
//! ```sh
//! cargo run -p kechuang-e2e --example screenshots -- docs     # writes docs/{console,portal,desk,supplier}-*.png
//! ```

#[path = "chromium.rs"]
mod chromium;
#[path = "support.rs"]
#[allow(dead_code)]
mod support;
#[path = "webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use fantoccini::Locator;
use kechuang::demo::{self, Clients, DemoOptions, data::Scale};
use kechuang_platform::Role;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use support::{Stack, credit_code, enterprise_pays};

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
    sign_in(w, &stack, &li, "/console/queue").await?;
    let approve = format!("tr[data-application='{}'] button[name='approve']", a.1[0]);
    w.goto(&stack.url("/console/queue")).await?;
    webdriver::submit_click(w, &approve).await;
    sign_out(w).await?;
    let zhao = stack.token(Role::FinanceApprover, "审批人·赵", None);
    sign_in(w, &stack, &zhao, "/console/queue").await?;
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
    sign_in(w, &stack, &auditor, "/console/queue").await?;
    shoot(w, &stack, &dir, "console-funnel.png", "/console/funnel").await?;
    sign_out(w).await?;
    enterprise_pages(w, &stack, &dir).await?;
    desk_pages(w, &stack, &dir).await?;
    supplier_pages(w, &stack, &dir).await?;
    browser.stop().await;
    stack.stop().await;
    Ok(())
}

/// The enterprise of the first fresh application: its profile, its demands (one more submitted
/// now, for the desk), one demand's timeline with its pairings, its subsidies.
async fn enterprise_pages(
    w: &fantoccini::Client,
    stack: &Stack,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let weld = credit_code("WELD00001");
    let token = stack.token(Role::Enterprise, "财务·WELD00001", Some(&weld));
    let deadline = (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339();
    let demand = json!({
        "request_id": "demand-WELD00001-coating", "enterprise_id": weld,
        "title": "焊装线涂胶工位需要视觉检测，漏涂断胶靠人工抽检",
        "description": "涂胶轨迹长约3米，节拍60秒，希望在线识别断胶、漏涂并报警。",
        "industry_chain": "高端装备", "contract_type": "development",
        "budget_min_fen": 20_000_000, "budget_max_fen": 80_000_000,
        "region_code": "420100", "deadline": deadline,
    });
    let (status, body) = stack
        .http(
            "POST",
            "/api/v1/demands",
            Some(&token),
            Some(&demand.to_string()),
        )
        .await;
    anyhow::ensure!(status == 200, "the demand for the desk: {body}");
    sign_in(w, stack, &token, "/portal").await?;
    shoot(w, stack, dir, "portal-profile.png", "/portal").await?;
    shoot(w, stack, dir, "portal-demands.png", "/portal/demands").await?;
    // The demand that was paired, contracted and paid: its timeline and pairings.
    let first = w
        .find(Locator::LinkText("汽车焊装线焊缝经常出现气孔，返修率高"))
        .await?
        .attr("href")
        .await?
        .unwrap_or_default();
    shoot(w, stack, dir, "portal-demand.png", &first).await?;
    shoot(w, stack, dir, "portal-subsidies.png", "/portal/subsidies").await?;
    sign_out(w).await
}

/// A technology manager: the demands waiting for verification, the enterprises, the funnel;
/// then verifies the waiting demand.
async fn desk_pages(
    w: &fantoccini::Client,
    stack: &Stack,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let zhou = stack.token(Role::TechManager, "技术经理人·周", None);
    sign_in(w, stack, &zhou, "/desk").await?;
    shoot(w, stack, dir, "desk-verify.png", "/desk").await?;
    shoot(w, stack, dir, "desk-enterprises.png", "/desk/enterprises").await?;
    shoot(w, stack, dir, "desk-funnel.png", "/desk/funnel").await?;
    // Verified now, the coating demand is open for the supplier's new achievement below.
    w.goto(&stack.url("/desk")).await?;
    webdriver::submit_click(w, "button[name='verify']").await;
    sign_out(w).await
}

/// A supplier registers one achievement through the form (it fits the coating demand), then:
/// its achievements, the import page, the open demands its achievements were paired with.
async fn supplier_pages(
    w: &fantoccini::Client,
    stack: &Stack,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let wu = stack.token(Role::Supplier, "成果转化办·吴", None);
    sign_in(w, stack, &wu, "/supplier").await?;
    w.goto(&stack.url("/supplier/achievements")).await?;
    for (field, value) in [
        ("#title", "涂胶质量在线视觉检测系统"),
        ("#institution", "华中科技大学"),
        (
            "#abstract",
            "基于3D线激光与深度学习，在线检测涂胶轨迹的断胶、漏涂与胶宽偏差并实时报警，适用于汽车焊装、总装涂胶工位，节拍60秒以内。",
        ),
        ("#keywords", "涂胶检测、断胶、漏涂、机器视觉"),
        ("#trl", "7"),
        ("#asking_price", "800000"),
        ("#region_code", "420111"),
    ] {
        w.find(Locator::Css(field)).await?.send_keys(value).await?;
    }
    w.find(Locator::Css("#industry_chain"))
        .await?
        .select_by_value("高端装备")
        .await?;
    w.find(Locator::Css("label[for=mode_license]"))
        .await?
        .click()
        .await?;
    webdriver::submit_click(w, "#save").await;
    webdriver::wait_for(w, "#flash").await;
    shoot(w, stack, dir, "supplier-achievements.png", "/supplier").await?;
    shoot(w, stack, dir, "supplier-import.png", "/supplier/import").await?;
    // The sky net pushes a new achievement to the open demands it fits once it has read it:
    // wait for the first pairing (or photograph the empty page after half a minute).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        w.goto(&stack.url("/supplier/demands")).await?;
        let paired = w.find_all(Locator::Css(".match")).await?;
        if !paired.is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    shoot(w, stack, dir, "supplier-demands.png", "/supplier/demands").await?;
    sign_out(w).await
}

async fn sign_in(
    w: &fantoccini::Client,
    stack: &Stack,
    token: &str,
    home: &str,
) -> anyhow::Result<()> {
    webdriver::sign_in_with_token(w, &stack.url("/console/login"), token).await;
    webdriver::wait_for_path(w, home).await;
    webdriver::wait_for(w, "#who").await;
    println!("signed in as {}", webdriver::text(w, "#who").await);
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
    webdriver::submit_click(w, "header form[action='/console/logout'] button").await;
    webdriver::wait_for_path(w, "/console/login").await;
    Ok(())
}
