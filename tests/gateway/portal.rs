//! The portal (/portal) and the desk (/desk) over plain HTTP against the real services: an
//! enterprise registers, submits a demand (a bad field is shown beside its input), a manager
//! verifies it at the desk, the enterprise accepts a pairing, signs, pays and sees its
//! subsidy application; CSRF refusals, another role refused, another enterprise's demand
//! invisible, the live pairing stream, the portal's script policy.

use crate::forms::{Browser, around, attr_after};
use crate::support::*;
use kechuang_platform::Role;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn deadline() -> String {
    (chrono::Utc::now() + chrono::Duration::days(60))
        .format("%Y-%m-%d")
        .to_string()
}

/// Where `/` sends this person.
async fn home(b: &Browser) -> String {
    let answer = b.get("/").await;
    assert_eq!(answer.status, 303);
    answer.header("location").unwrap().to_string()
}

/// The first `pairing` event of the live stream, read raw (the stream stays open).
async fn first_live_event(b: &Browser) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    let request = format!(
        "GET /portal/live HTTP/1.1\r\nHost: {}\r\nCookie: kc_session={}\r\nAccept: text/event-stream\r\n\r\n",
        b.addr, b.cookie
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "the stream closed: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            // One whole event: its data line ends.
            let data = text.split("data: ").nth(1);
            if text.contains("event: pairing") && data.is_some_and(|d| d.contains('\n')) {
                return text.to_string();
            }
        }
    };
    let text = tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .expect("a pairing event within 15 s");
    let (head, events) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), events.to_string())
}

#[tokio::test]
async fn an_enterprise_and_a_manager_work_through_their_pages() {
    let stack = Stack::start().await;
    prepare(&stack, 5_000_000).await;
    let id = credit_code("PRTAL0001");
    let ent = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::Enterprise, "财务·钱", Some(&id)),
    )
    .await;
    assert_eq!(home(&ent).await, "/portal");

    // Not registered yet: the profile offers registration; the portal's script policy.
    let profile = ent.get("/portal").await;
    assert_eq!(profile.status, 200);
    assert!(profile.body.contains("id=\"register\""), "{}", profile.body);
    let csp = profile
        .header("content-security-policy")
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(
        !csp.split(';')
            .any(|d| d.contains("script-src") && d.contains("unsafe-inline"))
    );
    assert!(profile.body.contains("<script src=\"/portal/live.js\""));
    assert!(!profile.body.contains("<script>"), "no inline script");
    let script = ent.get("/portal/live.js").await;
    assert_eq!(script.status, 200);
    assert!(
        script
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.body.contains("EventSource(\"/portal/live\")"));

    let csrf = ent.csrf("/portal").await;
    let registered = ent
        .post(
            "/portal/enterprise",
            &[
                ("csrf", &csrf),
                ("name", "武汉钱氏焊接科技有限公司"),
                ("region_code", "420100"),
                ("industry_chain", "高端装备"),
            ],
        )
        .await;
    assert_eq!(
        (registered.status, registered.header("location")),
        (303, Some("/portal?done=registered"))
    );
    assert!(
        ent.get("/portal")
            .await
            .body
            .contains("武汉钱氏焊接科技有限公司")
    );

    // A demand with a budget upside down: the service's violation beside the field it names.
    let title = "汽车焊装线焊缝经常出现气孔，返修率高";
    let dl = deadline();
    let demand = |min: &'static str, csrf: String| {
        let (dl, ent) = (dl.clone(), &ent);
        async move {
            let fields = [
                ("csrf", csrf.as_str()),
                ("request_id", "portal-demand-1"),
                ("title", title),
                (
                    "description",
                    "焊缝气孔多，返修率高，希望引进成熟的焊接工艺参数自适应调控技术。",
                ),
                ("industry_chain", "高端装备"),
                ("contract_type", "2"),
                ("budget_min", min),
                ("budget_max", "3000000"),
                ("region_code", "420100"),
                ("deadline", dl.as_str()),
            ];
            ent.post("/portal/demands", &fields).await
        }
    };
    let bad = demand("9000000", csrf.clone()).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let field = around(&bad.body, "data-field=\"budget_max\"");
    assert!(
        field.contains("aria-invalid=\"true\"") && field.contains("budget_max-error"),
        "{field}"
    );
    assert!(
        field.contains("class=\"why\""),
        "the reason beside the field: {field}"
    );
    assert!(bad.body.contains(title), "what was typed is kept");
    // Without the session's CSRF token nothing reaches the service.
    let forged = demand("100000", "forged".into()).await;
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("CSRF"));
    let listed = ent.get("/portal/demands").await;
    assert!(
        listed.body.contains("id=\"empty\""),
        "nothing was submitted"
    );

    let good = demand("100000", csrf.clone()).await;
    assert_eq!(good.status, 303, "{}", good.body);
    let location = good.header("location").unwrap().to_string();
    let demand_id = location
        .trim_start_matches("/portal/demands/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let page = ent.get(&location).await;
    assert!(
        page.body.contains("data-status=\"submitted\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"timeline\""));
    // Not verified yet: the sky net has not heard of it, and the page says so (not an error).
    assert!(
        page.body.contains("id=\"no-pairings\"")
            && page.body.contains("once a technology manager has verified")
            && !page.body.contains("Cannot list pairings"),
        "{}",
        page.body
    );
    assert!(
        ent.get("/portal/demands")
            .await
            .body
            .contains(&format!("data-demand=\"{demand_id}\""))
    );

    // The manager's desk: the demand waits; a forged verification is refused; a real one goes.
    let manager = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::TechManager, "技术经理人·周", None),
    )
    .await;
    assert_eq!(home(&manager).await, "/desk");
    let desk = manager.get("/desk").await;
    assert!(
        desk.body
            .contains(&format!("tr data-demand=\"{demand_id}\"")),
        "{}",
        desk.body
    );
    let refused = manager
        .post(
            &format!("/desk/demands/{demand_id}/verify"),
            &[("note", "x")],
        )
        .await;
    assert_eq!(refused.status, 403);
    let mcsrf = manager.csrf("/desk").await;
    let verified = manager
        .post(
            &format!("/desk/demands/{demand_id}/verify"),
            &[("csrf", &mcsrf), ("note", "需求明确")],
        )
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);
    assert!(
        !manager
            .get("/desk")
            .await
            .body
            .contains(&format!("data-demand=\"{demand_id}\""))
    );
    // A manager is refused the portal with a page saying why.
    let not_theirs = manager.get("/portal").await;
    assert_eq!(not_theirs.status, 403);
    assert!(not_theirs.body.contains("/desk"), "{}", not_theirs.body);

    // Pairings arrive with their reasons; the live stream carries them too.
    let page_of = format!("/portal/demands/{demand_id}");
    let page = wait_for("pairings on the demand page", || async {
        let p = ent.get(&page_of).await;
        p.body.contains("data-pairing=").then_some(p)
    })
    .await;
    let pairing = attr_after(&page.body, "tr data-pairing=\"").unwrap();
    let row = around(&page.body, &format!("tr data-pairing=\"{pairing}\""));
    assert!(
        row.contains("class=\"reasons\"") && row.contains("<li>"),
        "reasons shown: {row}"
    );
    assert!(
        row.contains("激光-电弧复合焊接"),
        "the achievement named: {row}"
    );
    let (head, events) = first_live_event(&ent).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    assert!(events.contains(&pairing), "{events}");

    // Accept naming a broker (oneself is refused, the matching service saying why), sign (a
    // bad amount first), pay, and see the application.
    assert!(
        page.body.contains(&format!(
            "id=\"broker-{pairing}\" type=\"text\" name=\"broker\""
        )),
        "the accept form asks for a broker: {}",
        page.body
    );
    let oneself = ent
        .post(
            &format!("/portal/pairings/{pairing}/respond"),
            &[
                ("csrf", &csrf),
                ("answer", "accept"),
                ("broker", " 财务·钱 "),
            ],
        )
        .await;
    assert_eq!(oneself.status, 400, "{}", oneself.body);
    assert!(oneself.body.contains("[broker: "), "{}", oneself.body);
    let accepted = ent
        .post(
            &format!("/portal/pairings/{pairing}/respond"),
            &[
                ("csrf", &csrf),
                ("answer", "accept"),
                ("broker", "经纪人·刘"),
            ],
        )
        .await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let page = ent.get(&page_of).await;
    assert!(
        page.body
            .contains(&format!("/portal/pairings/{pairing}/contract")),
        "{}",
        page.body
    );
    // The one accepted pairing shows its broker as the facilitator.
    assert!(
        page.body
            .contains("data-facilitator=\"经纪人·刘\" data-facilitator-role=\"broker\""),
        "{}",
        page.body
    );
    let sign = |amount: &'static str| {
        let (csrf, pairing) = (csrf.clone(), pairing.clone());
        let ent = &ent;
        async move {
            let fields = [
                ("csrf", csrf.as_str()),
                ("request_id", "portal-contract-1"),
                ("contract_no", "鄂技合字2026-P001"),
                ("contract_type", "2"),
                ("amount", amount),
                ("signed_at", ""),
            ];
            ent.post(&format!("/portal/pairings/{pairing}/contract"), &fields)
                .await
        }
    };
    let bad = sign("两百万").await;
    assert_eq!(bad.status, 400);
    assert!(around(&bad.body, "data-field=\"amount\"").contains("amount-error"));
    let signed = sign("2000000").await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let page = ent.get(&page_of).await;
    let contract = attr_after(&page.body, "data-contract=\"").expect("the contract on the page");
    let paid = wait_for("the finance net to know the contract", || async {
        let a = ent
            .post(
                &format!("/portal/contracts/{contract}/payment"),
                &[
                    ("csrf", &csrf),
                    ("amount", "2000000"),
                    ("paid_at", ""),
                    ("bank_reference", "ICBC-PORTAL-1"),
                ],
            )
            .await;
        (a.status == 303).then_some(a)
    })
    .await;
    let to = paid.header("location").unwrap();
    assert!(to.starts_with("/portal/subsidies?done=paid&id="), "{to}");
    let subsidies = ent.get("/portal/subsidies").await;
    let app = attr_after(&subsidies.body, "tr data-application=\"").expect("the application");
    let row = around(&subsidies.body, &format!("tr data-application=\"{app}\""));
    assert!(row.contains("2,000,000.00 元"), "the paid amount: {row}");
    assert!(
        subsidies.body.contains("class=\"steps computation\"")
            && subsidies.body.contains("鄂技合字2026-P001")
    );

    // Another enterprise sees none of it; the same page answers like an unknown demand.
    let other_id = credit_code("PRTAL0002");
    let other = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::Enterprise, "财务·孙", Some(&other_id)),
    )
    .await;
    assert_eq!(other.get(&page_of).await.status, 404);
    assert_eq!(
        other.get("/portal/demands/no-such-demand").await.status,
        404
    );
    assert!(!other.get("/portal/demands").await.body.contains(&demand_id));
    assert!(!other.get("/portal/subsidies").await.body.contains(&app));
    assert_eq!(other.get("/desk").await.status, 403);
    assert_eq!(other.get("/console/queue").await.status, 403);

    // The desk registers an enterprise (a bad credit code named first) and counts the district.
    let bad = manager
        .post(
            "/desk/enterprises",
            &[
                ("csrf", &mcsrf),
                ("name", "武汉走访科技有限公司"),
                ("credit_code", "123"),
                ("region_code", "420100"),
                ("industry_chain", "北斗"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        around(&bad.body, "data-field=\"credit_code\"").contains("credit_code-error"),
        "{}",
        bad.body
    );
    let visited = credit_code("DEK000001");
    let ok = manager
        .post(
            "/desk/enterprises",
            &[
                ("csrf", &mcsrf),
                ("name", "武汉走访科技有限公司"),
                ("credit_code", &visited),
                ("region_code", "420100"),
                ("industry_chain", "北斗"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let mine = manager.get("/desk/enterprises").await.body;
    assert!(mine.contains(&format!("data-enterprise=\"{visited}\"")));
    assert!(
        !mine.contains(&format!("data-enterprise=\"{id}\"")),
        "registered by the enterprise itself"
    );
    let funnel = manager.get("/desk/funnel").await.body;
    assert!(funnel.contains("data-region=\"420100\""), "{funnel}");
    assert!(funnel.contains("id=\"district-demands\">1<"), "{funnel}");

    stack.stop().await;
}

#[tokio::test]
async fn each_role_is_sent_to_its_pages() {
    let stack = Stack::start().await;
    let supplier = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::Supplier, "成果转化办·陈", None),
    )
    .await;
    assert_eq!(home(&supplier).await, "/supplier");
    let service = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::Service, "matching-bot", None),
    )
    .await;
    assert_eq!(home(&service).await, "/welcome");
    let welcome = service.get("/welcome").await;
    assert!(welcome.body.contains("data-role=\"service\"") && welcome.body.contains("HTTP API"));
    assert_eq!(supplier.get("/portal").await.status, 403);
    let approver = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::FinanceApprover, "审批人·李", None),
    )
    .await;
    assert_eq!(home(&approver).await, "/console/queue");
    // `/console` leads each person to their own console page through `/`: a registrar's is
    // the registrations, not the approvers' queue.
    let console = approver.get("/console").await;
    assert_eq!(
        (console.status, console.header("location")),
        (303, Some("/"))
    );
    let registrar = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::Registrar, "登记员·吴", None),
    )
    .await;
    assert_eq!(home(&registrar).await, "/console/registrations");
    let refused = approver.get("/desk").await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("无权访问 Not your page") && refused.body.contains("tech_manager")
    );
    // The header says who, in which role, with a sign-out button.
    let ent = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::Enterprise, "财务·吴", Some(&credit_code("RLE000001"))),
    )
    .await;
    let page = ent.get("/portal/demands").await.body;
    assert!(
        page.contains("财务·吴")
            && page.contains("data-role=\"enterprise\"")
            && page.contains("id=\"signout\"")
    );
    // Signed out: back to the login page.
    let anonymous = crate::support::exchange(stack.gateway, "GET", "/portal", &[], "").await;
    assert_eq!(
        (anonymous.status, anonymous.header("location")),
        (303, Some("/console/login"))
    );
    stack.stop().await;
}
