//! Topping the fund up on the console's dashboard over HTTP: an officer puts money in (the
//! same form sent twice books it once), a reused reference and a bad amount are refused with
//! the service's reason, and an auditor is offered no form and refused a forged one.

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
