//! Signing in through the real OpenID Connect provider in headless Chromium, the provider on
//! another site (`localhost`) than the gateway (`127.0.0.1`), as a real one is: the pending
//! sign-in cookie must come back on the provider's cross-site redirect (`SameSite=Lax`), and the
//! `SameSite=Strict` session cookie must be sent on the way to the person's pages, which a
//! redirect at the end of a chain that started at the provider would not do.

use crate::chromium::Browser;
use crate::oidc::WithProvider;
use crate::webdriver::{click, text, wait_for, wait_for_path};
use fantoccini::Locator;

#[tokio::test]
async fn a_person_signs_in_and_out_with_the_provider_in_a_browser() {
    let world = WithProvider::start("localhost").await;
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&format!("{}/console/login", world.gateway))
        .await
        .unwrap();
    click(c, "#sso").await;
    // The provider's own login and consent pages, on its own site.
    wait_for(c, "input[name=login]").await;
    assert_eq!(c.current_url().await.unwrap().host_str(), Some("localhost"));
    let field = |name: &'static str| async move {
        c.find(Locator::Css(&format!("input[name={name}]")))
            .await
            .unwrap()
    };
    field("login").await.send_keys("zhang.wei").await.unwrap();
    field("password")
        .await
        .send_keys("demo-only")
        .await
        .unwrap();
    click(c, "button[type=submit]").await;
    wait_for(c, "input[value=consent]").await;
    click(c, "button[type=submit]").await;

    // Back at the gateway, signed in, on the person's pages with the provider's name for them.
    wait_for_path(c, "/portal").await;
    assert_eq!(text(c, "#who").await, "zhang.wei");
    assert!(!text(c, "#role").await.is_empty());

    // Sign-out ends the session here and, confirmed at the provider, there; back to the login page.
    click(c, "#signout").await;
    wait_for(c, "button[name=logout][value=yes]").await;
    click(c, "button[name=logout][value=yes]").await;
    wait_for_path(c, "/console/login").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&world.gateway)
    );
    c.goto(&format!("{}/portal", world.gateway)).await.unwrap();
    wait_for_path(c, "/console/login").await;

    // Signing in again asks the provider for a password again: its session ended too.
    click(c, "#sso").await;
    wait_for(c, "input[name=login]").await;

    browser.stop().await;
    world.stack.stop().await;
}
