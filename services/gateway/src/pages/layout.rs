//! The page shell every group of pages shares (who is signed in, in which role, sign-out,
//! styles) and the labels people read.

use super::Session;
use chrono::{DateTime, FixedOffset, Utc};
use kechuang_platform::Role;
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::ApplicationStatus as A;
use maud::{DOCTYPE, Markup, PreEscaped, html};

const CSS: &str = r#"
*{box-sizing:border-box}body{margin:0;font:14px/1.5 "Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei","PingFang SC",system-ui,sans-serif;color:#1f2933;background:#f4f6f8}
header{background:#16324f;color:#fff;padding:0 24px;display:flex;align-items:center;gap:24px;height:52px}
header .brand{font-weight:700;font-size:16px;white-space:nowrap}header nav{display:flex;gap:4px;flex:1}
header nav a{color:#cfe0f1;text-decoration:none;padding:6px 12px;border-radius:4px}header nav a.on,header nav a:hover{background:#24507a;color:#fff}
header .who{display:flex;align-items:center;gap:10px;white-space:nowrap}header form{margin:0}
.role{display:inline-block;padding:1px 8px;border-radius:10px;background:#f0b429;color:#16324f;font-size:12px;font-weight:600}
main{padding:20px 24px;max-width:1280px;margin:0 auto}h1{font-size:20px;margin:4px 0 16px}h2{font-size:16px;margin:24px 0 8px}
.card{background:#fff;border:1px solid #d9e2ec;border-radius:6px;padding:14px 16px;margin-bottom:14px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid #e4e7eb;padding:7px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8;font-weight:600;font-size:13px;color:#486581}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:#7b8794;font-size:12px}.mono{font-family:ui-monospace,Menlo,monospace;font-size:12px}
dl.details{display:grid;grid-template-columns:auto 1fr;gap:0 10px;margin:0}dl.details dt{color:#52606d;font-size:12px}dl.details dd{margin:0}
body>footer{padding:8px 24px 24px}
.ok{color:#0f7b3f}.bad{color:#c5221f}.warn{background:#fff4e5;border:1px solid #f0b429;color:#8d5b00;padding:10px 14px;border-radius:6px;margin-bottom:14px}
.error{background:#fdecea;border:1px solid #e57373;color:#a31515;padding:10px 14px;border-radius:6px;margin-bottom:14px}
.flash{background:#e3f9e5;border:1px solid #57ae5b;color:#0e5814;padding:10px 14px;border-radius:6px;margin-bottom:14px}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#e4e7eb}.pill.pending_review{background:#fff3c4}.pill.disbursed{background:#c6f7e2}.pill.rejected,.pill.disbursement_failed,.pill.ineligible{background:#ffe3e3}.pill.waitlisted{background:#ffe8d9}.pill.superseded{background:#e4e7eb;color:#616e7c}.pill.submitted,.pill.proposed{background:#fff3c4}.pill.docking,.pill.accepted,.pill.contracted,.pill.completed{background:#c6f7e2}.pill.withdrawn,.pill.expired{background:#e4e7eb}
button,input[type=submit]{font:inherit;padding:4px 12px;border-radius:4px;border:1px solid #16324f;background:#16324f;color:#fff;cursor:pointer}
button.reject{background:#fff;color:#c5221f;border-color:#c5221f}button.quiet{background:transparent;border-color:#9fb3c8;color:#fff}
a.button{display:inline-block;padding:8px 16px;border-radius:4px;background:#16324f;color:#fff;text-decoration:none}
input[type=text],textarea{font:inherit;padding:4px 6px;border:1px solid #bcccdc;border-radius:4px;width:100%}
form.inline{display:flex;gap:6px;align-items:center;margin:4px 0}form.inline input[type=text]{width:150px}
.grid{display:grid;grid-template-columns:repeat(4,1fr);gap:14px}.stat .v{font-size:22px;font-weight:700;font-variant-numeric:tabular-nums}.stat .k{color:#486581}
ol.timeline{list-style:none;padding:0;margin:0;border-left:3px solid #9fb3c8}ol.timeline li{position:relative;padding:4px 0 12px 18px}
ol.timeline li:before{content:"";position:absolute;left:-8px;top:9px;width:13px;height:13px;border-radius:50%;background:#fff;border:3px solid #24507a}
ol.timeline li.done:before{background:#24507a}ol.timeline .when{color:#7b8794;font-size:12px;margin-right:8px}
.field{margin:0 0 12px}.field label{display:block;font-weight:600;margin-bottom:3px}.field .why{color:#c5221f;font-size:13px;margin-top:3px}
.field.invalid input,.field.invalid textarea,.field.invalid select{border-color:#c5221f;background:#fff8f8}
select,input[type=date],input[type=datetime-local],input[type=number]{font:inherit;padding:4px 6px;border:1px solid #bcccdc;border-radius:4px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:0 18px}ul.reasons{margin:4px 0;padding-left:18px}
ul.steps{margin:4px 0;padding-left:18px;font-size:12px;color:#52606d}.four-eyes{font-size:13px}a{color:#1d5fa3}
"#;

/// China time, as the finance office reads it.
pub fn local(t: DateTime<Utc>) -> String {
    let cst = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    t.with_timezone(&cst)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub fn local_opt(t: Option<DateTime<Utc>>) -> String {
    t.map(local).unwrap_or_else(|| "—".into())
}

/// The zone every time on the pages is shown in (Hubei's, China Standard Time).
pub const ZONE: &str = "UTC+8";

/// An enterprise by name, its credit code beneath; the code alone when the name is unknown.
pub fn enterprise(names: &std::collections::HashMap<String, String>, id: &str) -> Markup {
    html! {
        @match names.get(id) {
            Some(name) => { span.enterprise { (name) } br; span.mono.muted { (id) } }
            None => { span.mono { (id) } }
        }
    }
}

/// Every role of a person, as [`role_label`]s.
pub fn role_labels(roles: kechuang_platform::auth::Roles) -> String {
    roles.iter().map(role_label).collect::<Vec<_>>().join("、")
}

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Enterprise => "企业 enterprise",
        Role::TechManager => "技术经理人 tech manager",
        Role::Supplier => "高校院所 supplier",
        Role::FinanceOfficer => "财政专员 finance officer",
        Role::FinanceApprover => "审批人 approver",
        Role::Auditor => "审计 auditor",
        Role::Registrar => "登记员 registrar",
        Role::Broker => "技术经纪人 broker",
        Role::Service => "系统 service",
    }
}

/// The status's CSS class and its label.
pub fn application_status(status: i32) -> (&'static str, &'static str) {
    match A::try_from(status).unwrap_or(A::Unspecified) {
        A::PendingReview => ("pending_review", "待审批 pending review"),
        A::Approved => ("approved", "已批准 approved"),
        A::Rejected => ("rejected", "已驳回 rejected"),
        A::Ineligible => ("ineligible", "不符合 ineligible"),
        A::FundsReserved => ("funds_reserved", "资金已预留 funds reserved"),
        A::Waitlisted => ("waitlisted", "候补 waitlisted"),
        A::Disbursed => ("disbursed", "已拨付 disbursed"),
        A::DisbursementFailed => ("disbursement_failed", "拨付失败 failed"),
        A::AwaitingRegistration => ("awaiting_registration", "待合同登记 awaiting registration"),
        A::Unspecified => ("unspecified", "未知 unknown"),
    }
}

pub fn status_pill(status: i32) -> Markup {
    let (class, label) = application_status(status);
    html! { span class={"pill " (class)} { (label) } }
}

/// A demand's status: its CSS class and its label.
pub fn demand_status(status: i32) -> (&'static str, &'static str) {
    use kechuang_proto::demand::DemandStatus as D;
    match D::try_from(status).unwrap_or(D::Unspecified) {
        D::Submitted => ("submitted", "待审核 submitted"),
        D::Verified => ("verified", "已审核 verified"),
        D::Rejected => ("rejected", "已驳回 rejected"),
        D::Matching => ("matching", "已匹配 matching"),
        D::Docking => ("docking", "对接中 docking"),
        D::Contracted => ("contracted", "已签约 contracted"),
        D::Completed => ("completed", "已完成 completed"),
        D::Withdrawn => ("withdrawn", "已撤回 withdrawn"),
        D::Unspecified => ("unspecified", "未知 unknown"),
    }
}

pub fn demand_pill(status: i32) -> Markup {
    let (class, label) = demand_status(status);
    html! { span class={"pill " (class)} data-status=(class) { (label) } }
}

/// A pairing's status: its CSS class and its label.
pub fn pairing_status(status: i32) -> (&'static str, &'static str) {
    use kechuang_proto::matching::PairingStatus as P;
    match P::try_from(status).unwrap_or(P::Unspecified) {
        P::Proposed => ("proposed", "待答复 proposed"),
        P::Accepted => ("accepted", "已采纳 accepted"),
        P::Rejected => ("rejected", "已婉拒 declined"),
        P::Expired => ("expired", "已过期 expired"),
        P::Unspecified => ("unspecified", "未知 unknown"),
    }
}

pub fn contract_type(t: i32) -> &'static str {
    kechuang_vocabulary::contract_type_name(
        ContractType::try_from(t).unwrap_or(ContractType::Unspecified),
    )
}

/// One entry of a page group's navigation.
pub struct Link {
    pub href: &'static str,
    pub label: &'static str,
    /// The page being shown.
    pub on: bool,
}

/// Where a role's pages are, by name: the header's brand.
fn area(session: Option<&Session>) -> &'static str {
    match session.map(|s| super::home::home_for(s.caller.roles)) {
        Some("/console/queue") => "金网控制台 Console",
        Some("/console/registrations") => "技术合同登记 Registry",
        Some("/portal") => "企业门户 Portal",
        Some("/desk") => "地网工作台 Desk",
        Some("/supplier") => "成果发布 Supplier",
        _ => "科创供应链",
    }
}

pub fn shell(title: &str, session: Option<&Session>, links: &[Link], body: Markup) -> Markup {
    shell_with_script(title, session, links, None, body)
}

/// As [`shell`], with one same-origin script (the page's progressive enhancement; the
/// page's content security policy must allow exactly it).
pub fn shell_with_script(
    title: &str,
    session: Option<&Session>,
    links: &[Link],
    script: Option<&str>,
    body: Markup,
) -> Markup {
    let area = area(session);
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = session { meta name="csrf-token" content=(s.csrf); }
                title { (title) " · 科创供应链 " (area) }
                style { (PreEscaped(CSS)) }
                @if let Some(src) = script { script src=(src) defer {} }
            }
            body {
                header {
                    div.brand { "科创供应链 · " (area) }
                    @if let Some(s) = session {
                        nav aria-label="页面 Pages" {
                            @for l in links {
                                a class=[l.on.then_some("on")] href=(l.href) aria-current=[l.on.then_some("page")] { (l.label) }
                            }
                        }
                        div.who {
                            span #who { (s.who()) }
                            span.role #role data-role=(s.caller.roles.to_string()) { (role_labels(s.caller.roles)) }
                            form method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.quiet #signout type="submit" { "退出 Sign out" }
                            }
                            form method="post" action="/console/logout/everywhere" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.quiet #signout-everywhere type="submit" title="结束您在所有浏览器上的会话 End your sessions on every browser" { "全部退出 Everywhere" }
                            }
                        }
                    } @else {
                        nav {}
                    }
                }
                main { (body) }
                footer.muted { "时间均为北京时间 Times are China Standard Time (" (ZONE) ")" }
            }
        }
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
