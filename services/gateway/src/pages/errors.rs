//! Pages that say what went wrong: a refusal, a service's error, a missing page.

use super::Session;
use super::layout::shell;
use crate::status::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

/// A page that says what went wrong, with the HTTP status of the failure.
pub fn error_page(
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        div.error #error data-status=(status.as_u16()) {
            strong { "HTTP " (status.as_u16()) } " · " (message)
        }
        p { a href="/" { "返回首页 Back to your pages" } }
    };
    (status, shell(title, session, &[], body)).into_response()
}

/// A service's refusal or failure, shown as a page.
pub fn service_error(session: &Session, e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::FORBIDDEN => "无权操作 Not permitted",
        StatusCode::UNAUTHORIZED => "需要重新登录 Sign in again",
        StatusCode::NOT_FOUND => "未找到 Not found",
        StatusCode::CONFLICT => "状态冲突 Conflict",
        StatusCode::BAD_REQUEST => "输入有误 Bad input",
        _ => "服务错误 Service error",
    };
    let mut message = format!(
        "服务答复 The service answered {}: {}",
        e.body.code, e.body.error
    );
    for v in &e.body.field_violations {
        message.push_str(&format!(" [{}: {}]", v.field, v.description));
    }
    error_page(Some(session), e.status, title, &message)
}

/// A section that could not be loaded (e.g. the role may not read it): said in place.
pub fn refused(what: &str, e: &ApiError) -> Markup {
    html! {
        div.error data-status=(e.status.as_u16()) {
            (what) "：" (e.body.code) " · " (e.body.error)
        }
    }
}

pub async fn not_found() -> Response {
    error_page(
        None,
        StatusCode::NOT_FOUND,
        "未找到 Not found",
        "没有这个页面 No such page.",
    )
}
