//! The console's navigation on the shared page shell ([`crate::pages::layout`]).

use super::Session;
use crate::pages::layout::{Link, shell};
pub use crate::pages::layout::{
    ZONE, application_status, contract_type, enterprise, local, local_opt, role_label, role_labels,
    status_pill,
};
use axum::response::{IntoResponse, Response};
use maud::Markup;

/// The navigation's pages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Queue,
    Policies,
    Fund,
    Funnel,
    Audit,
    None,
}

pub fn page(title: &str, session: Option<&Session>, nav: Nav, body: Markup) -> Markup {
    let link = |target: Nav, href, label| Link {
        href,
        label,
        on: nav == target,
    };
    let links = [
        link(Nav::Queue, "/console/queue", "审批队列 Queue"),
        link(Nav::Policies, "/console/policies", "政策包 Policies"),
        link(Nav::Fund, "/console/fund", "资金看板 Fund"),
        link(Nav::Funnel, "/console/funnel", "供需漏斗 Funnel"),
        link(Nav::Audit, "/console/audit", "审计 Audit"),
    ];
    shell(title, session, &links, body)
}

/// A console page as the response.
pub fn page_response(session: &Session, title: &str, nav: Nav, body: Markup) -> Response {
    page(title, Some(session), nav, body).into_response()
}
