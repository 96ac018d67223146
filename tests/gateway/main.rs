//! The gateway over a real platform: the HTTP API, the console in headless Chromium, and
//! schemathesis against `/openapi.json`.

mod api;
mod browser;
mod chromium;
mod dev_sign_in;
mod forms;
mod fund_top_up;
mod journey;
mod limits;
mod oidc;
mod oidc_browser;
mod policies;
mod portal;
mod portal_browser;
mod probes;
mod registrations;
mod schemathesis;
mod sessions;
mod supplier;
mod supplier_browser;
mod supplier_import;
mod support;
mod webdriver;
