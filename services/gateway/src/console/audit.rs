//! The audit trail (审计): every finance action, oldest first, and the hash chain's check.

use super::layout::page_response;
use super::layout::{Nav, ZONE, local, local_opt};
use super::{refused, require_session};
use crate::AppState;
use crate::api::types::time;
use crate::pages::layout::urlencode;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use kechuang_proto::subsidy as spb;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    page_token: Option<String>,
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let token = session.token.as_str();
    let check = async {
        let r = state
            .upstream
            .subsidy
            .clone()
            .verify_audit_trail(authed(spb::VerifyAuditTrailRequest {}, token)?)
            .await?;
        Ok::<_, ApiError>(r.into_inner())
    };
    let entries = async {
        let request = spb::ListAuditEntriesRequest {
            page_size: 100,
            page_token: q.page_token.clone().unwrap_or_default(),
        };
        let r = state
            .upstream
            .subsidy
            .clone()
            .list_audit_entries(authed(request, token)?)
            .await?;
        Ok::<_, ApiError>(r.into_inner())
    };
    let (check, entries) = futures::join!(check, entries);
    let body = html! {
        h1 { "审计 Audit trail" }
        @match &check {
            Err(e) => { (refused("无法校验 Cannot verify the trail", e)) }
            Ok(r) if r.intact => {
                div.flash #chain data-intact="true" {
                    "✔ 哈希链完整 The hash chain is intact: " (r.entry_count) " 条记录 entries, 每条的哈希与前一条相连 each linked to the one before"
                    @if r.anchored_sequence > 0 {
                        span #anchored data-sequence=(r.anchored_sequence) { "；至第 " (r.anchored_sequence) " 条与消息总线上的锚点一致 and up to entry " (r.anchored_sequence) " it is the trail anchored on the bus" }
                    }
                }
            }
            Ok(r) => {
                div.error #chain data-intact="false" {
                    "✘ 审计链不可信 The audit trail cannot be trusted"
                    @if r.first_broken_sequence > 0 { " (entry " (r.first_broken_sequence) ")" }
                    ": " (r.problem)
                }
            }
        }
        @match &entries {
            Err(e) => { (refused("无法读取审计记录 Cannot list the audit trail", e)) }
            Ok(page) => {
                table #audit {
                    thead { tr { th.num { "#" } th { "时间 Time (" (ZONE) ")" } th { "操作人 Actor" } th { "动作 Action" } th { "对象 Target" } th { "详情 Details" } th { "哈希 Hash" } } }
                    tbody {
                        @for e in &page.entries {
                            tr {
                                td.num { (e.sequence) }
                                td { (local_opt(time(e.time))) }
                                td { (e.actor) br; span.muted { (e.role) } }
                                td.mono { (e.action) }
                                td.mono {
                                    @if e.action.starts_with("application.") { a href={"/console/applications/" (urlencode(&e.target_id))} { (e.target_id) } } @else { (e.target_id) }
                                }
                                td style="max-width:420px" { (super::audit_details::details(&e.details)) }
                                td.mono title=(e.hash) { (short(&e.hash)) "… ← " (short(&e.prev_hash)) "…" }
                            }
                        }
                        @if page.entries.is_empty() { tr { td colspan="7" .muted { "没有记录 No entries" } } }
                    }
                }
                @if !page.next_page_token.is_empty() {
                    p { a href={"/console/audit?page_token=" (page.next_page_token)} { "下一页 Next page →" } }
                }
            }
        }
        p.muted { "更新于 Updated " (local(Utc::now())) " " (ZONE) }
    };
    page_response(&session, "审计 Audit", Nav::Audit, body)
}
