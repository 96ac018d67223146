//! The suppliers' pages in headless Chromium: a supplier signs in, registers an achievement
//! through the form, uploads a CSV of two more, and sees the demand the sky net paired with
//! one of them, with its reasons.

use crate::chromium::Browser;
use crate::supplier::{HEADER, verified_demand};
use crate::support::*;
use crate::webdriver::{fill, submit_click, text};
use fantoccini::Locator;
use kechuang_platform::Role;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_supplier_registers_uploads_and_sees_a_matching_demand_in_the_browser() {
    let stack = Stack::start().await;
    let browser = Browser::start().await;
    let w = &browser.client;
    w.goto(&stack.url("/console/login")).await.unwrap();
    fill(
        w,
        "#token",
        &stack.token(Role::Supplier, "成果转化办·吴", None),
    )
    .await;
    submit_click(w, "#signin").await;
    assert_eq!(w.current_url().await.unwrap().path(), "/supplier");
    assert_eq!(text(w, "#role").await, "高校院所 supplier");

    // One achievement through the form (labels, a select, a checkbox).
    w.goto(&stack.url("/supplier/achievements")).await.unwrap();
    fill(w, "#title", "钢渣微粉高性能混凝土掺合料").await;
    fill(w, "#institution", "武汉理工大学").await;
    fill(
        w,
        "#abstract",
        "以钢渣微粉替代部分水泥，提高混凝土后期强度，降低成本与碳排放。",
    )
    .await;
    fill(w, "#keywords", "钢渣、混凝土掺合料").await;
    w.find(Locator::Css("#industry_chain"))
        .await
        .unwrap()
        .select_by_value("新材料")
        .await
        .unwrap();
    fill(w, "#trl", "7").await;
    w.find(Locator::Css("label[for=mode_assignment]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(w, "#asking_price", "600000").await;
    fill(w, "#region_code", "420111").await;
    submit_click(w, "#save").await;
    assert!(text(w, "#flash").await.contains("Registered"));
    assert!(
        text(w, "#achievements")
            .await
            .contains("钢渣微粉高性能混凝土掺合料")
    );

    // Two more from a CSV file chosen in the file input.
    let csv = format!(
        "{HEADER}\n分布式光纤振动传感管线防挖掘预警,华中科技大学,利用通信光纤感知沿线振动，识别人工挖掘与机械施工并定位报警。,\"光纤传感,防挖掘,管线安全\",节能环保,7,许可,500000,420111\n\
         农产品冷链温湿度追溯,华中农业大学,冷链全程温湿度记录与追溯。,\"冷链,追溯\",现代农业与食品,6,合作开发,200000,420111\n"
    );
    let file =
        std::env::temp_dir().join(format!("kc-import-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, csv).unwrap();
    w.goto(&stack.url("/supplier/import")).await.unwrap();
    w.find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    submit_click(w, "#upload").await;
    assert!(
        text(w, "#imported").await.contains("Imported 2"),
        "{}",
        w.source().await.unwrap()
    );
    let _ = std::fs::remove_file(&file);

    // A pipeline operator's demand, verified: it is paired with the fibre-sensing achievement.
    let title = "输油管道沿线老有人偷挖，第三方施工破坏频发";
    verified_demand(
        &stack,
        "GYB000001",
        title,
        "管道沿线经常有人偷挖或野蛮施工，希望能提前发现并报警。",
        "节能环保",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        w.goto(&stack.url("/supplier/demands")).await.unwrap();
        if w.source().await.unwrap().contains(title) {
            break;
        }
        assert!(Instant::now() < deadline, "no matching demand shown");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let card = text(w, ".match").await;
    assert!(card.contains("分布式光纤振动传感管线防挖掘预警"), "{card}");
    assert!(
        !w.find_all(Locator::Css(".match ul.reasons li"))
            .await
            .unwrap()
            .is_empty()
    );
    browser.stop().await;
    stack.stop().await;
}
