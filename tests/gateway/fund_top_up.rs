//! Creating a fund and topping one up on the console's dashboard over HTTP: an officer creates
//! a fund (the same form sent twice makes one) and puts money in (the same form sent twice
//! books it once), a reused reference, a bad amount and a nameless fund are refused with the
//! service's reason, and an auditor is offered neither form and refused forged ones.

use crate::forms::Browser;
use crate::policies::{csrf, enc};
use crate::support::{Answer, Stack, exchange, sign_in};
use kechuang_platform::Role;

async fn dashboard(stack: &Stack, session: &str) -> Answer {
    let answer = exchange(
        stack.gateway,
        "GET",
        "/console/fund",
        &[format!("Cookie: kc_session={session}")],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}

async fn top_up(stack: &Stack, session: &str, csrf: &str, amount: &str, reference: &str) -> Answer {
    let body = [
        ("csrf", csrf),
        ("fund", "fund-default"),
        ("amount", amount),
        ("reference", reference),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", enc(v)))
    .collect::<Vec<_>>()
    .join("&");
    exchange(
        stack.gateway,
        "POST",
        "/console/fund/top-up",
        &[
            format!("Cookie: kc_session={session}"),
            "Content-Type: application/x-www-form-urlencoded".into(),
        ],
        &body,
    )
    .await
}

#[tokio::test]
async fn an_officer_tops_the_fund_up_on_the_dashboard_and_an_auditor_cannot() {
    let stack = Stack::start().await;
    let officer = sign_in(
        stack.gateway,
        &stack.token(Role::FinanceOfficer, "财政专员·王", None),
    )
    .await;
    let page = dashboard(&stack, &officer).await;
    assert!(page.body.contains("id=\"top-up\""), "{}", page.body);
    assert!(
        page.body.contains("<label for=\"top-up-amount\">"),
        "labelled fields"
    );
    let token = csrf(&page);

    // Twice, as a person who clicked twice: booked once.
    for _ in 0..2 {
        let answer = top_up(&stack, &officer, &token, "1,000,000.50", "财预〔2026〕9号").await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        assert_eq!(
            answer.header("location"),
            Some("/console/fund?fund=fund-default&done=topped-up")
        );
    }
    let page = dashboard(&stack, &officer).await;
    assert!(
        page.body
            .contains("<div class=\"v\" id=\"available\">1,000,000.50 元</div>"),
        "{}",
        page.body
    );

    // The same reference for another amount, and an amount that is not one: refused, saying why.
    let answer = top_up(&stack, &officer, &token, "5", "财预〔2026〕9号").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("reference"), "{}", answer.body);
    let answer = top_up(&stack, &officer, &token, "一百万", "财预〔2026〕10号").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("amount_fen"), "{}", answer.body);

    // The auditor reads the dashboard without the form; a forged one is refused by the ledger.
    let auditor = sign_in(stack.gateway, &stack.token(Role::Auditor, "审计·孙", None)).await;
    let page = dashboard(&stack, &auditor).await;
    assert!(
        !page.body.contains("id=\"top-up\""),
        "no form for an auditor"
    );
    let answer = top_up(&stack, &auditor, &csrf(&page), "100", "forged").await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let page = dashboard(&stack, &officer).await;
    assert!(page.body.contains("1,000,000.50 元"), "unchanged");

    stack.stop().await;
}

/// The new-fund form's request id, drawn when the page was shown.
fn new_fund_request_id(page: &Answer) -> String {
    page.body
        .split("id=\"new-fund\"")
        .nth(1)
        .and_then(|form| form.split("name=\"request_id\" value=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("a request id in the new-fund form")
        .to_string()
}

async fn create_fund(
    browser: &Browser,
    csrf: &str,
    request_id: &str,
    name: &str,
    low_balance: &str,
) -> Answer {
    let fields = [
        ("csrf", csrf),
        ("request_id", request_id),
        ("name", name),
        ("low_balance", low_balance),
    ];
    browser.post("/console/fund/create", &fields).await
}

#[tokio::test]
async fn an_officer_creates_a_fund_once_on_the_dashboard_and_an_auditor_cannot() {
    let stack = Stack::start().await;
    let officer = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::FinanceOfficer, "财政专员·王", None),
    )
    .await;
    let page = officer.get("/console/fund").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"new-fund\""), "{}", page.body);
    assert!(
        page.body.contains("<label for=\"new-fund-name\">"),
        "labelled fields"
    );
    let (token, request_id) = (csrf(&page), new_fund_request_id(&page));

    // Twice, as a person who clicked twice: one fund.
    let mut created = Vec::new();
    for _ in 0..2 {
        let answer = create_fund(
            &officer,
            &token,
            &request_id,
            "湖北省技术经纪人奖励资金",
            "100,000",
        )
        .await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        created.push(answer.header("location").unwrap().to_string());
    }
    assert_eq!(
        created[0], created[1],
        "the same form sent twice is one fund"
    );
    let location = &created[0];
    assert!(
        location.starts_with("/console/fund?fund=fund-") && location.ends_with("&done=created"),
        "{location}"
    );
    let fund_id =
        location["/console/fund?fund=".len()..location.len() - "&done=created".len()].to_string();

    // Its dashboard: named, empty, below its warning line, ready for a top-up.
    let page = officer.get(location).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("data-done=\"created\""), "{}", page.body);
    assert!(
        page.body.contains("湖北省技术经纪人奖励资金"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<div class=\"v\" id=\"available\">0.00 元</div>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"low-balance\""), "{}", page.body);
    assert!(
        page.body.contains("100,000.00 元"),
        "the warning line, in yuan"
    );

    // A fund needs a name, and the warning line must be an amount: refused, saying which.
    let another = new_fund_request_id(&page);
    let answer = create_fund(&officer, &token, &another, " ", "").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("[name:"), "{}", answer.body);
    let answer = create_fund(&officer, &token, &another, "资金", "十万").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("low_balance_fen"), "{}", answer.body);

    // The auditor reads the dashboard without the form; a forged one is refused by the ledger.
    let auditor =
        Browser::sign_in(stack.gateway, &stack.token(Role::Auditor, "审计·孙", None)).await;
    let page = auditor.get("/console/fund").await;
    assert!(
        !page.body.contains("id=\"new-fund\""),
        "no form for an auditor"
    );
    let answer = create_fund(&auditor, &csrf(&page), "forged-1", "伪造基金", "").await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    // The new fund is still the only one made, and still empty.
    let page = officer.get(&format!("/console/fund?fund={fund_id}")).await;
    assert!(
        page.body
            .contains("<div class=\"v\" id=\"available\">0.00 元</div>"),
        "{}",
        page.body
    );
    stack.stop().await;
}
