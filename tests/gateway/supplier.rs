//! The suppliers' pages (/supplier) over plain HTTP against the real services: register (a bad
//! field shown beside its input), edit, withdraw with a reason; CSRF refusals; another
//! supplier sees none of it and cannot withdraw or edit it; the open demands paired with my
//! achievements, with their reasons; other roles refused. Imports: `supplier_import`.

use crate::forms::{Browser, around};
use crate::support::*;
use kechuang_e2e::authed;
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::demand::{self as dpb, demand_service_client::DemandServiceClient};
use serde_json::json;

pub const HEADER: &str = "title,institution,abstract,keywords,industry_chain,trl,transfer_modes,asking_price,region_code";

/// An enterprise registers and submits `title` over the HTTP API; a manager verifies it.
pub async fn verified_demand(
    stack: &Stack,
    seed: &str,
    title: &str,
    description: &str,
    chain: &str,
) -> String {
    let id = credit_code(seed);
    let token = stack.token(Role::Enterprise, &format!("财务·{seed}"), Some(&id));
    let t = Some(token.as_str());
    let (status, e) = stack
        .http("POST", "/api/v1/enterprises", t, Some(&json!({"name": format!("武汉{seed}科技有限公司"), "credit_code": id, "region_code": "420100", "industry_chain": chain}).to_string()))
        .await;
    assert_eq!(status, 200, "{e}");
    let deadline = (chrono::Utc::now() + chrono::Duration::days(90)).to_rfc3339();
    let (status, demand) = stack
        .http("POST", "/api/v1/demands", t, Some(&json!({
            "request_id": format!("demand-{seed}"), "enterprise_id": id, "title": title,
            "description": description, "industry_chain": chain, "contract_type": "transfer",
            "budget_min_fen": 100_000 * YUAN, "budget_max_fen": 3_000_000 * YUAN,
            "region_code": "420100", "deadline": deadline,
        }).to_string()))
        .await;
    assert_eq!(status, 200, "{demand}");
    let demand_id = demand["id"].as_str().unwrap().to_string();
    let manager = stack.token(Role::TechManager, "技术经理人·周", None);
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
    demand_id
}

pub fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[tokio::test]
async fn a_supplier_registers_edits_withdraws_and_sees_matching_demands() {
    let stack = Stack::start().await;
    let addr = stack.gateway;
    let chen = Browser::sign_in(addr, &stack.token(Role::Supplier, "成果转化办·陈", None)).await;
    let li = Browser::sign_in(addr, &stack.token(Role::Supplier, "成果转化办·李", None)).await;

    // Suppliers land on /supplier; the header says who and in which role.
    let home = chen.get("/").await;
    assert_eq!(
        (home.status, home.header("location")),
        (303, Some("/supplier"))
    );
    let page = chen.get("/supplier").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("成果转化办·陈") && page.body.contains("高校院所 supplier"));
    assert!(page.body.contains("id=\"empty\""));

    // A bad region code is shown beside its input, and what was typed is kept.
    let csrf = chen.csrf("/supplier/achievements").await;
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("request_id", "ach-form-1"),
        ("title", "激光-电弧复合焊接工艺参数自适应调控"),
        ("institution", "华中科技大学"),
        (
            "abstract",
            "针对焊缝气孔、未熔合等缺陷，在线自适应调控激光功率与电弧电流，显著降低返修率。",
        ),
        ("keywords", "激光焊接、气孔、自适应"),
        ("industry_chain", "高端装备"),
        ("trl", "7"),
        ("mode_license", "on"),
        ("asking_price", "800000"),
        ("region_code", "42A"),
    ];
    let bad = chen.post("/supplier/achievements", &fields).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let region = around(&bad.body, "data-field=\"region_code\"");
    assert!(
        region.contains("region_code-error") && region.contains("aria-invalid=\"true\""),
        "{region}"
    );
    assert!(!around(&bad.body, "data-field=\"title\"").contains("aria-invalid"));
    assert!(
        bad.body
            .contains("value=\"激光-电弧复合焊接工艺参数自适应调控\"")
    );
    // A form without the session's CSRF token is refused before matching is asked.
    fields[10].1 = "420111";
    let mut forged = fields.clone();
    forged[0].1 = "forged";
    assert_eq!(
        chen.post("/supplier/achievements", &forged).await.status,
        403
    );
    assert_eq!(
        chen.post("/supplier/achievements", &fields[1..])
            .await
            .status,
        403
    );
    let done = chen.post("/supplier/achievements", &fields).await;
    assert_eq!(
        (done.status, done.header("location")),
        (303, Some("/supplier?done=registered"))
    );
    // Submitting the same form again registers once.
    assert_eq!(
        chen.post("/supplier/achievements", &fields).await.status,
        303
    );
    let mine = chen.get("/supplier").await.body;
    assert_eq!(count(&mine, "data-achievement="), 1, "{mine}");
    let welding = crate::forms::attr_after(&mine, "data-achievement=\"").unwrap();

    // Another supplier sees none of it and cannot withdraw it (not found, as an unknown one).
    let theirs = li.get("/supplier").await.body;
    assert!(!theirs.contains(&welding) && theirs.contains("id=\"empty\""));
    let li_csrf = li.csrf("/supplier").await;
    let refused = li
        .post(
            &format!("/supplier/achievements/{welding}/withdraw"),
            &[("csrf", &li_csrf), ("reason", "试试")],
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert!(
        !chen
            .get("/supplier")
            .await
            .body
            .contains("已撤回 withdrawn")
    );

    // Reverse matching: a verified demand the sky net pairs with the welding achievement.
    let title = "焊装线焊缝经常出现气孔，返修率高";
    verified_demand(
        &stack,
        "GYD000001",
        title,
        "焊缝气孔多、返修率高，希望引进激光焊接工艺参数自适应调控技术。",
        "高端装备",
    )
    .await;
    let matches = wait_for("the demand paired with my achievement", || async {
        let page = chen
            .get(&format!("/supplier/demands?achievement_id={welding}"))
            .await;
        (page.status == 200 && page.body.contains(title)).then_some(page.body)
    })
    .await;
    let card = around(&matches, &format!("data-achievement=\"{welding}\""));
    assert!(
        card.contains("class=\"reasons\"") && card.contains("<li>"),
        "{card}"
    );
    assert!(
        !li.get("/supplier/demands").await.body.contains(title),
        "another supplier's matches"
    );

    // Edit: the new text becomes a new achievement, the old one is withdrawn with why.
    let form = chen
        .get(&format!("/supplier/achievements/{welding}/edit"))
        .await;
    assert!(
        form.body
            .contains("value=\"激光-电弧复合焊接工艺参数自适应调控\""),
        "{}",
        form.body
    );
    assert!(form.body.contains(
        "id=\"mode_license\" type=\"checkbox\" name=\"mode_license\" value=\"on\" checked"
    ));
    let mut edited = fields.clone();
    edited[1].1 = "ach-form-edit";
    edited[2].1 = "激光-电弧复合焊接工艺参数自适应调控（第二版）";
    assert_eq!(
        li.get(&format!("/supplier/achievements/{welding}/edit"))
            .await
            .status,
        404,
        "another's edit form"
    );
    let refused = li
        .post(
            &format!("/supplier/achievements/{welding}/edit"),
            &[&[("csrf", li_csrf.as_str())], &edited[1..]].concat(),
        )
        .await;
    assert_eq!(refused.status, 404, "another's edit: {}", refused.body);
    let saved = chen
        .post(&format!("/supplier/achievements/{welding}/edit"), &edited)
        .await;
    assert_eq!(
        (saved.status, saved.header("location")),
        (303, Some("/supplier?done=edited")),
        "{}",
        saved.body
    );
    let mine = chen.get("/supplier").await.body;
    assert!(mine.contains("（第二版）"));
    let old = around(&mine, &format!("data-achievement=\"{welding}\""));
    assert!(
        old.contains("已撤回 withdrawn") && old.contains("superseded"),
        "{old}"
    );

    // Withdraw with a reason: none is refused beside the field.
    let csrf = chen.csrf("/supplier").await;
    let newest = crate::forms::attr_after(&mine, "data-achievement=\"").unwrap();
    let no_reason = chen
        .post(
            &format!("/supplier/achievements/{newest}/withdraw"),
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(no_reason.status, 400, "{}", no_reason.body);
    let row = around(&no_reason.body, &format!("data-achievement=\"{newest}\""));
    assert!(
        row.contains(&format!("id=\"reason-{newest}-error\""))
            && row.contains("aria-invalid=\"true\""),
        "{row}"
    );
    let w = chen
        .post(
            &format!("/supplier/achievements/{newest}/withdraw"),
            &[("csrf", &csrf), ("reason", "已转让给合作企业")],
        )
        .await;
    assert_eq!(w.status, 303, "{}", w.body);
    assert!(
        around(
            &chen.get("/supplier").await.body,
            &format!("data-achievement=\"{newest}\"")
        )
        .contains("已转让给合作企业")
    );

    let enterprise = Browser::sign_in(
        addr,
        &stack.token(Role::Enterprise, "财务·王", Some(&credit_code("GYD000002"))),
    )
    .await;
    let other = enterprise.get("/supplier").await;
    assert_eq!(other.status, 403);
    assert!(other.body.contains("/portal"));
    assert_eq!(chen.get("/portal").await.status, 403);
    stack.stop().await;
}
