//! 开发用 Development sign-in for `kechuang up`: pick a demo person, and the development
//! issuer (whose key set the services trust in development) mints their token. Offered only
//! when `kechuang up` hands the gateway that issuer, which it does only while the issuer is
//! in charge of tokens (no `KC_TOKEN_JWKS_URL` of a real provider) and no OpenID Connect
//! provider is configured; the gateway also refuses it beside a provider.

use super::layout::role_label;
use super::login::{check_login_form, login_page, sign_in_with};
use crate::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kechuang_platform::{Caller, Role};
use maud::{Markup, html};
use serde::Deserialize;
use std::time::Duration;

/// A demo person: their name (the token's subject), role and, for an enterprise user, the
/// enterprise's credit code; a supplier's institution.
struct Person {
    subject: &'static str,
    role: Role,
    enterprise: Option<&'static str>,
    institution: Option<&'static str>,
}

/// One per role people hold (`service` is no person's).
const PEOPLE: [Person; 8] = [
    Person {
        subject: "企业·张经理",
        role: Role::Enterprise,
        enterprise: Some("91420100DEMA00001B"),
        institution: None,
    },
    Person {
        subject: "技术经理人·李",
        role: Role::TechManager,
        enterprise: None,
        institution: None,
    },
    Person {
        subject: "高校院所·王",
        role: Role::Supplier,
        enterprise: None,
        institution: Some("demo-institute"),
    },
    Person {
        subject: "财政专员·赵",
        role: Role::FinanceOfficer,
        enterprise: None,
        institution: None,
    },
    Person {
        subject: "审批人·钱",
        role: Role::FinanceApprover,
        enterprise: None,
        institution: None,
    },
    Person {
        subject: "审计·孙",
        role: Role::Auditor,
        enterprise: None,
        institution: None,
    },
    Person {
        subject: "登记员·周",
        role: Role::Registrar,
        enterprise: None,
        institution: None,
    },
    Person {
        subject: "技术经纪人·郑",
        role: Role::Broker,
        enterprise: None,
        institution: None,
    },
];

/// A development token lives one working day, like a session.
const TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);

/// The login page's list of demo people, one button each (the login form's CSRF token).
pub fn people(csrf: &str) -> Markup {
    html! {
        section #dev-sign-in {
            h2 { "开发用 Development only: 选择演示人员 sign in as a demo person" }
            p.muted { "令牌由 kechuang up 的开发签发方签发；配置身份提供方后此处关闭。Tokens come from kechuang up's development issuer; this is off once an identity provider is configured." }
            @for (i, p) in PEOPLE.iter().enumerate() {
                form method="post" action="/console/login/dev" style="display:inline-block;margin:0 .5em .5em 0" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="person" value=(i);
                    button id={"dev-" (p.role.as_str())} type="submit" { (p.subject) " · " (role_label(p.role)) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct DevForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    person: usize,
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<DevForm>,
) -> Response {
    let (Some(issuer), None) = (&state.dev_issuer, &state.oidc) else {
        return login_page(
            &state,
            Some("没有开发登录。There is no development sign-in here."),
            StatusCode::NOT_FOUND,
        );
    };
    if let Err(page) = check_login_form(&state, &headers, &f.csrf) {
        return *page;
    }
    let Some(p) = PEOPLE.get(f.person) else {
        return login_page(
            &state,
            Some("没有这个人。No such person."),
            StatusCode::BAD_REQUEST,
        );
    };
    let mut caller = Caller::new(p.role, p.subject);
    caller.enterprise_id = p.enterprise.map(String::from);
    caller.institution_id = p.institution.map(String::from);
    let token = issuer.mint(&caller, TOKEN_TTL);
    tracing::warn!(subject = p.subject, "development sign-in");
    sign_in_with(&state, &headers, &token).await
}
