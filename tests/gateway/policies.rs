//! The console's policy page over HTTP: an officer proposes, the same person (signed in as an
//! approver) cannot decide, another approver puts it in force or rejects it.

use crate::support::{Answer, Stack, exchange, sign_in};
use kechuang_e2e::authed;
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::subsidy::policy_service_client::PolicyServiceClient;
use kechuang_proto::subsidy::{ListPoliciesRequest, PolicyKind, PolicyStatus};

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn get(stack: &Stack, session: &str) -> Answer {
    let answer = exchange(
        stack.gateway,
        "GET",
        "/console/policies",
        &[format!("Cookie: kc_session={session}")],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}

pub fn csrf(page: &Answer) -> String {
    page.body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_string()
}

async fn post(stack: &Stack, session: &str, path: &str, fields: &[(&str, &str)]) -> Answer {
    let csrf = csrf(&get(stack, session).await);
    let body: Vec<String> = std::iter::once(("csrf", csrf.as_str()))
        .chain(fields.iter().copied())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    exchange(
        stack.gateway,
        "POST",
        path,
        &[
            format!("Cookie: kc_session={session}"),
            "Content-Type: application/x-www-form-urlencoded".into(),
        ],
        &body.join("&"),
    )
    .await
}

/// The policy id a redirect after an action names.
fn done(answer: &Answer, what: &str) -> String {
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = answer.header("location").expect("a redirect");
    let prefix = format!("/console/policies?done={what}&id=");
    location
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{location}"))
        .to_string()
}

fn proposal<'a>(name: &'a str, request_id: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("request_id", request_id),
        ("name", name),
        ("fund_id", "fund-default"),
        ("tiers", "0 15\n1000000 10"),
        ("per_contract_cap_yuan", "500,000"),
        ("per_enterprise_annual_cap_yuan", "1,000,000"),
        ("four_eyes_threshold_yuan", "100000"),
        ("ct_transfer", "on"),
        ("region_prefixes", "4201"),
        ("valid_from", "2026-01-01"),
        ("claim_window_days", "180"),
    ]
}

/// The row of `id` in the table `table` of the page.
fn row_in(page: &Answer, table: &str, id: &str) -> bool {
    let section = page
        .body
        .split(&format!("id=\"{table}\""))
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .unwrap_or_default();
    section.contains(&format!("data-policy=\"{id}\""))
}

#[tokio::test]
async fn an_officer_proposes_and_only_another_approver_decides() {
    let stack = Stack::start().await;
    let wang = sign_in(
        stack.gateway,
        &stack.token(Role::FinanceOfficer, "财政专员·王", None),
    )
    .await;
    let wang_approving = sign_in(
        stack.gateway,
        &stack.token(Role::FinanceApprover, "财政专员·王", None),
    )
    .await;
    let li = sign_in(
        stack.gateway,
        &stack.token(Role::FinanceApprover, "审批人·李", None),
    )
    .await;

    let page = get(&stack, &wang).await;
    assert!(
        page.body.contains("id=\"propose\""),
        "an officer may propose"
    );
    let proposed = post(
        &stack,
        &wang,
        "/console/policies",
        &proposal("武汉市首购首用补贴", "console-test-1"),
    )
    .await;
    let id = done(&proposed, "proposed");
    let page = get(&stack, &li).await;
    assert!(row_in(&page, "proposals", &id), "waiting for review");
    assert!(
        !page.body.contains("id=\"propose\""),
        "an approver does not propose"
    );

    // The proposer gets no decision forms; forging one is refused by the subsidy service.
    let own = get(&stack, &wang_approving).await;
    assert!(
        !own.body
            .contains(&format!("/console/policies/{id}/approve"))
    );
    let forged = post(
        &stack,
        &wang_approving,
        &format!("/console/policies/{id}/approve"),
        &[("note", "自己批准")],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.body.contains("PERMISSION_DENIED"), "{}", forged.body);

    // Another approver puts it in force.
    assert!(
        page.body
            .contains(&format!("/console/policies/{id}/approve"))
    );
    let approved = post(
        &stack,
        &li,
        &format!("/console/policies/{id}/approve"),
        &[("note", "复核同意")],
    )
    .await;
    assert_eq!(done(&approved, "approved"), id);
    let page = get(&stack, &li).await;
    assert!(row_in(&page, "in-force", &id), "in force");
    assert!(
        page.body.contains("claim within 180 天"),
        "the claim window is shown"
    );
    assert!(!row_in(&page, "proposals", &id));

    // A second proposal is rejected with a reason and lands in the history.
    let second = post(
        &stack,
        &wang,
        "/console/policies",
        &proposal("武汉市首购首用补贴", "console-test-2"),
    )
    .await;
    let second = done(&second, "proposed");
    let rejected = post(
        &stack,
        &li,
        &format!("/console/policies/{second}/reject"),
        &[("reason", "与第一版重复")],
    )
    .await;
    assert_eq!(done(&rejected, "rejected"), second);
    let page = get(&stack, &wang).await;
    assert!(row_in(&page, "history", &second));
    assert!(row_in(&page, "in-force", &id), "the first stays in force");

    // A brokers' reward rule is proposed on the same form, and the service keeps its kind.
    let mut reward = proposal("湖北省技术经纪人促成奖励", "console-test-4");
    reward.push(("kind", "broker_reward"));
    let reward = done(
        &post(&stack, &wang, "/console/policies", &reward).await,
        "proposed",
    );
    let mut policies = PolicyServiceClient::new(stack.platform.channel(ServiceKind::Subsidy).await);
    let listed = policies
        .list_policies(authed(
            ListPoliciesRequest {
                page_size: 100,
                page_token: String::new(),
                status: PolicyStatus::Proposed as i32,
            },
            &stack.token(Role::Auditor, "审计·孙", None),
        ))
        .await
        .unwrap()
        .into_inner();
    let kept = listed.policies.iter().find(|p| p.id == reward).unwrap();
    assert_eq!(kept.kind, PolicyKind::BrokerReward as i32);
    let page = get(&stack, &li).await;
    assert!(page.body.contains("经纪人奖励 broker reward"));

    // An unreadable form names its fields before any service is asked.
    let mut bad = proposal("坏表单", "console-test-3");
    bad[4] = ("per_contract_cap_yuan", "很多");
    let refused = post(&stack, &wang, "/console/policies", &bad).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("per_contract_cap_fen"),
        "{}",
        refused.body
    );
    stack.stop().await;
}
