//! The steps the browser tests take through WebDriver: read, type, submit and wait.

use fantoccini::{Client, Locator};
use std::time::{Duration, Instant};

/// The text of the element `css` (panics naming it when absent).
pub async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

pub async fn exists(c: &Client, css: &str) -> bool {
    !c.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

/// Types `value` into the input `css`, replacing what was there.
pub async fn fill(c: &Client, css: &str, value: &str) {
    let input = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

/// Clicks what submits a form and waits for the next page to replace this one (WebDriver may
/// return from the click before the navigation is done).
pub async fn submit_click(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while old.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "{css}: no new page");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Clicks `css` (a link or a button), without waiting for what follows.
pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Chooses the option `value` of the select `css`.
pub async fn choose(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap();
}

/// Waits until the page has an element `css` (the page's source in the panic if never).
pub async fn wait_for(c: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while c
        .find_all(Locator::Css(css))
        .await
        .map_or(true, |found| found.is_empty())
    {
        if Instant::now() > deadline {
            let url = c.current_url().await.unwrap();
            let page = c.source().await.unwrap_or_default();
            panic!("at {url}, no {css}: {page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the browser is at the path `want` (of whichever site).
pub async fn wait_for_path(c: &Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = c.current_url().await.unwrap();
        if url.path() == want {
            return;
        }
        assert!(Instant::now() < deadline, "at {url}, never at {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs `token` in on the login page (the development paste form).
pub async fn sign_in_with_token(c: &Client, login_url: &str, token: &str) {
    c.goto(login_url).await.unwrap();
    fill(c, "#token", token).await;
    submit_click(c, "#signin").await;
}
