//! `kechuang up`'s development sign-in: with the development issuer handed to the gateway,
//! the login page lists one demo person per role, marked development only, and one click
//! signs that person in with a token the services accept; a form without the login page's
//! CSRF token is refused. (Beside an OpenID Connect provider it is off: tests/gateway/oidc.rs.)

use crate::oidc::a_browser;
use crate::support::*;
use kechuang_platform::config::DevIssuer;
use std::sync::Arc;

#[tokio::test]
async fn a_demo_person_signs_in_with_one_click_in_development() {
    let settings = kechuang_e2e::settings();
    let issuer = Arc::new(settings.issuer().expect("the test issuer"));
    let stack =
        Stack::start_with_settings(settings, |g| g.dev_issuer = Some(DevIssuer(issuer))).await;
    let (browser, page) = login_page(&stack).await;
    assert!(
        page.contains("id=\"dev-sign-in\"") && page.contains("开发用 Development only"),
        "{page}"
    );
    assert_eq!(
        page.matches("action=\"/console/login/dev\"").count(),
        8,
        "one person per role"
    );
    let (browser, location) = sign_in_as(&stack, &browser, &page, "finance_approver").await;
    assert_eq!(location, "/console/queue");
    // The queue asks the subsidy service with the minted token: it answers.
    let queue = browser
        .get(stack.url("/console/queue"))
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status(), 200);
    let page = queue.text().await.unwrap();
    assert!(page.contains("<span id=\"who\">审批人·钱</span>"), "{page}");
    assert!(page.contains("data-role=\"finance_approver\""), "{page}");

    // The registrar is offered too, and lands on the contracts waiting for registration.
    let (browser, page) = login_page(&stack).await;
    let (browser, location) = sign_in_as(&stack, &browser, &page, "registrar").await;
    assert_eq!(location, "/console/registrations");
    let page = browser
        .get(stack.url("/console/registrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("<span id=\"who\">登记员·周</span>"), "{page}");
    assert!(page.contains("id=\"to-register\""), "{page}");

    // So is a broker, who has no pages: the welcome page says how a deal comes to name them.
    let (browser, page) = login_page(&stack).await;
    let (browser, location) = sign_in_as(&stack, &browser, &page, "broker").await;
    assert_eq!(location, "/welcome");
    let page = browser.get(stack.url("/welcome")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<span id=\"who\">技术经纪人·郑</span>"),
        "{page}"
    );
    assert!(
        page.contains("id=\"broker-note\"") && page.contains("技术经纪人·郑"),
        "{page}"
    );
    stack.stop().await;
}

/// A fresh browser (no session) and the login page it was shown.
async fn login_page(stack: &Stack) -> (reqwest::Client, String) {
    let browser = a_browser(&Arc::new(reqwest::cookie::Jar::default()));
    let page = browser
        .get(stack.url("/console/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (browser, page)
}

/// Posts the login page's development form of `role` (its CSRF token and its person) with
/// `browser`: the browser, now signed in, and where the gateway sends the person.
async fn sign_in_as(
    stack: &Stack,
    browser: &reqwest::Client,
    login_page: &str,
    role: &str,
) -> (reqwest::Client, String) {
    let csrf = login_page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let person = login_page
        .split("<form")
        .find(|form| form.contains(&format!("id=\"dev-{role}\"")))
        .and_then(|form| form.split("name=\"person\" value=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("a {role} offered"))
        .to_string();
    let signed_in = browser
        .post(stack.url("/console/login/dev"))
        .form(&[("csrf", csrf.as_str()), ("person", person.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let location = signed_in.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    (browser.clone(), location)
}
