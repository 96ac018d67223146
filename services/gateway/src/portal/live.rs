//! New pairings, live: `/portal/live` relays matching's `WatchPairings` for the signed-in
//! enterprise as server-sent events, and `/portal/live.js` (same-origin, the portal's only
//! script) announces each one proposed after the page was rendered in the page's `#live`
//! region. Without script nothing is lost: a reload shows every pairing.

use super::require;
use crate::AppState;
use crate::api::types::Pairing;
use crate::pages::service_error;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kechuang_proto::matching as mpb;
use std::convert::Infallible;
use std::time::Duration;

pub const SCRIPT_PATH: &str = "/portal/live.js";

/// A stream ends after this long and the browser reconnects (EventSource does by itself),
/// so a session that ended meanwhile stops receiving within it.
const STREAM_FOR: Duration = Duration::from_secs(300);

const SCRIPT: &str = r#"// kechuang portal: announce pairings proposed while this page is open.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var since = Date.parse(live.getAttribute("data-since") || "") || 0;
  var page = document.getElementById("demand");
  var source = new EventSource("/portal/live");
  source.addEventListener("pairing", function (e) {
    var p = JSON.parse(e.data);
    if (Date.parse(p.create_time || "") <= since) return;
    if (page && page.getAttribute("data-demand") !== p.demand_id) return;
    var seen = live.querySelectorAll("[data-pairing]");
    for (var i = 0; i < seen.length; i++) if (seen[i].getAttribute("data-pairing") === p.id) return;
    var note = document.createElement("div");
    note.className = "flash live-pairing";
    note.setAttribute("data-pairing", p.id);
    note.appendChild(document.createTextNode("天网新推荐 New pairing: 第 " + p.rank + " 名 rank, 得分 score " + Number(p.score).toFixed(3) + " — "));
    var link = document.createElement("a");
    link.href = "/portal/demands/" + encodeURIComponent(p.demand_id);
    link.textContent = page ? "刷新查看并答复 reload to answer it" : "查看需求 view the demand";
    note.appendChild(link);
    live.appendChild(note);
  });
})();
"#;

pub async fn script() -> Response {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

pub async fn events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let e = match require(&state, &headers).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let watched = async {
        let request = mpb::WatchPairingsRequest {
            demand_id: String::new(),
            enterprise_id: e.id.clone(),
        };
        let mut matching = state.upstream.matching.clone();
        Ok::<_, ApiError>(
            matching
                .watch_pairings(authed(request, &e.session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    let stream = match watched {
        Ok(s) => s,
        Err(err) => return service_error(&e.session, err),
    };
    let events = stream
        // The service ending the stream, or failing, ends it here too; the browser retries.
        .take_while(|item| futures::future::ready(item.is_ok()))
        .filter_map(|item| async move {
            let p = Pairing::from(item.ok()?);
            let data = serde_json::to_string(&p).ok()?;
            Some(Ok::<_, Infallible>(
                Event::default().event("pairing").id(p.id).data(data),
            ))
        })
        .take_until(tokio::time::sleep(STREAM_FOR));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The `data-since` of a page's `#live` region: now, as the script compares it.
pub fn since() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
