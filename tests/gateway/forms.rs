//! Driving the server-rendered pages over plain HTTP, as a browser without script would: a
//! session cookie, GETs, and form POSTs carrying the page's CSRF token.

use crate::support::{Answer, exchange, sign_in};
use std::net::SocketAddr;

/// A signed-in person's browser.
pub struct Browser {
    pub addr: SocketAddr,
    pub cookie: String,
}

impl Browser {
    pub async fn sign_in(addr: SocketAddr, token: &str) -> Self {
        Self {
            addr,
            cookie: sign_in(addr, token).await,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let cookie = format!("Cookie: kc_session={}", self.cookie);
        exchange(self.addr, "GET", path, &[cookie], "").await
    }

    /// A form POST of `fields` (percent-encoded here).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let headers = [
            format!("Cookie: kc_session={}", self.cookie),
            "Content-Type: application/x-www-form-urlencoded".to_string(),
        ];
        exchange(self.addr, "POST", path, &headers, &body).await
    }

    /// The CSRF token the session's pages carry (from `path`'s page).
    pub async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        attr_after(&page.body, "name=\"csrf-token\" content=\"").expect("a csrf meta tag")
    }
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text up to the next `"` after the first `prefix` in `html`.
pub fn attr_after(html: &str, prefix: &str) -> Option<String> {
    let rest = html.split(prefix).nth(1)?;
    Some(rest.split('"').next()?.to_string())
}

/// The HTML of the element that starts at the first `marker` (e.g. `data-field="title"`),
/// up to the end of its `</div>` (enough for a field and its message).
pub fn around<'a>(html: &'a str, marker: &str) -> &'a str {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the page"));
    let rest = &html[start..];
    let end = rest
        .find("</div></div>")
        .map_or(rest.len().min(2000), |e| e + 12);
    &rest[..end]
}
