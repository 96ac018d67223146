//! The console's navigation on the shared page shell ([`crate::pages::layout`]).

use super::Session;
use crate::pages::layout::{Link, shell};
pub use crate::pages::layout::{
    ZONE, application_status, contract_type, enterprise, local, local_opt, role_label, role_labels,
    status_pill,
};
use axum::response::{IntoResponse, Response};
use kechuang_platform::Role;
use maud::Markup;

/// The navigation's pages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Queue,
    Policies,
    Fund,
    Funnel,
    Audit,
    Registrations,
    Figures,
    None,
}

/// The navigation shows the pages the person's roles open: the finance office's, the
/// registrar's, and the monthly figures for both.
pub fn page(title: &str, session: Option<&Session>, nav: Nav, body: Markup) -> Markup {
    let link = |target: Nav, href, label| Link {
        href,
        label,
        on: nav == target,
    };
    let may = |roles: &[Role]| session.is_none_or(|s| s.caller.has_any(roles));
    let mut links = Vec::new();
    if may(super::ROLES) {
        links.extend([
            link(Nav::Queue, "/console/queue", "审批队列 Queue"),
            link(Nav::Policies, "/console/policies", "政策包 Policies"),
            link(Nav::Fund, "/console/fund", "资金看板 Fund"),
            link(Nav::Funnel, "/console/funnel", "供需漏斗 Funnel"),
            link(Nav::Audit, "/console/audit", "审计 Audit"),
        ]);
    }
    if may(super::REGISTRARS) {
        links.push(link(
            Nav::Registrations,
            "/console/registrations",
            "合同登记 Registrations",
        ));
    }
    if may(super::FIGURE_READERS) {
        links.push(link(
            Nav::Figures,
            "/console/figures",
            "登记月报 Monthly figures",
        ));
    }
    shell(title, session, &links, body)
}

/// A console page as the response.
pub fn page_response(session: &Session, title: &str, nav: Nav, body: Markup) -> Response {
    page(title, Some(session), nav, body).into_response()
}
