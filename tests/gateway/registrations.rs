//! Technology-contract registration on the console over HTTP: a registrar sees the contracts
//! waiting with their deadlines, certifies one and refuses another through the page's forms,
//! a bad amount comes back named beside its field; other roles are refused the page. The
//! monthly figures page and its CSV add up to what was certified.
//!
//! Contracts reach the finance net as `kc.contract.signed`, published here with matching's
//! own key (the sky net's road to a contract is the journey test's, not this one's).

use crate::policies::{csrf, enc};
use crate::support::{Answer, Stack, YUAN, exchange, sign_in, wait_for};
use chrono::{Datelike, FixedOffset, Months, Utc};
use kechuang_e2e::authed;
use kechuang_e2e::forger::Forger;
use kechuang_platform::events::timestamp;
use kechuang_platform::{NewEvent, Role};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::{ContractSigned, envelope::Payload};
use kechuang_proto::subsidy::{
    CertifyContractRequest, ListRegistrationsRequest, Registration, RegistrationStatus,
};

const CONTRACT_FEN: i64 = 10_000_000 * YUAN;

/// A contract of 10,000,000 yuan signed an hour ago; its id.
async fn signed(forger: &Forger, region: &str, supplier_region: &str, chain: &str) -> String {
    let id = format!("c-{}", uuid::Uuid::new_v4().simple());
    forger
        .publish_with_stolen_key(NewEvent::new(
            &id,
            1,
            Payload::ContractSigned(ContractSigned {
                contract_id: id.clone(),
                pairing_id: format!("p-{id}"),
                demand_id: format!("d-{id}"),
                achievement_id: "a-1".into(),
                enterprise_id: format!("91{region}MA00001X"),
                supplier: format!("研究院{supplier_region}"),
                contract_no: format!("鄂技合字2026-{}", &id[2..10]),
                contract_type: ContractType::Transfer as i32,
                amount_fen: CONTRACT_FEN,
                signed_at: Some(timestamp(Utc::now() - chrono::Duration::hours(1))),
                region_code: region.into(),
                industry_chain: chain.into(),
                supplier_region_code: supplier_region.into(),
                ..Default::default()
            }),
        ))
        .await;
    id
}

/// The registrations of `status`, as the registration service lists them to a registrar.
async fn listed(stack: &Stack, status: RegistrationStatus) -> Vec<Registration> {
    let registrar = stack.token(Role::Registrar, "登记员·吴", None);
    stack
        .platform
        .api()
        .registrations()
        .list_registrations(authed(
            ListRegistrationsRequest {
                page_size: 100,
                page_token: String::new(),
                status: status as i32,
            },
            &registrar,
        ))
        .await
        .unwrap()
        .into_inner()
        .registrations
}

/// Waits until the finance net has recorded `ids`.
async fn waiting(stack: &Stack, ids: &[&str]) {
    wait_for("the contracts to wait for registration", || async {
        let list = listed(stack, RegistrationStatus::Waiting).await;
        ids.iter()
            .all(|id| list.iter().any(|r| r.contract_id == *id))
            .then_some(())
    })
    .await;
}

async fn get(stack: &Stack, session: &str, path: &str) -> Answer {
    exchange(
        stack.gateway,
        "GET",
        path,
        &[format!("Cookie: kc_session={session}")],
        "",
    )
    .await
}

async fn post(stack: &Stack, session: &str, path: &str, fields: &[(&str, &str)]) -> Answer {
    let body: Vec<String> = fields
        .iter()
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

async fn certify(
    stack: &Stack,
    session: &str,
    csrf: &str,
    id: &str,
    no: &str,
    t: ContractType,
    amount: &str,
) -> Answer {
    let t = (t as i32).to_string();
    post(
        stack,
        session,
        &format!("/console/registrations/{id}/certify"),
        &[
            ("csrf", csrf),
            ("registration_no", no),
            ("contract_type", &t),
            ("certified_amount", amount),
            ("note", "扣除设备费"),
        ],
    )
    .await
}

/// The `<tr>` of contract `id` on the registrations page, if listed.
fn row<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let start = page.find(&format!("<tr data-contract=\"{id}\""))?;
    let rest = &page[start..];
    Some(&rest[..rest.find("</tr>").unwrap_or(rest.len())])
}

#[tokio::test]
async fn a_registrar_certifies_and_refuses_on_the_page_and_bad_input_is_named() {
    let stack = Stack::start().await;
    let forger = Forger::connect(&stack.platform.settings).await;
    let first = signed(&forger, "420111", "420100", "高端装备").await;
    let second = signed(&forger, "420602", "420111", "北斗").await;
    let third = signed(&forger, "420100", "420600", "北斗").await;
    waiting(&stack, &[&first, &second, &third]).await;

    let zhou = sign_in(
        stack.gateway,
        &stack.token(Role::Registrar, "登记员·周", None),
    )
    .await;
    let home = get(&stack, &zhou, "/").await;
    assert_eq!(home.header("location"), Some("/console/registrations"));
    let page = get(&stack, &zhou, "/console/registrations").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for id in [&first, &second, &third] {
        let tr = row(&page.body, id).unwrap_or_else(|| panic!("{id} listed: {}", page.body));
        assert!(tr.contains("class=\"deadline\""), "{tr}");
        assert!(tr.contains("10,000,000.00 元"), "{tr}");
        assert!(
            tr.contains(&format!("action=\"/console/registrations/{id}/certify\"")),
            "{tr}"
        );
        assert!(
            tr.contains(&format!("action=\"/console/registrations/{id}/refuse\"")),
            "{tr}"
        );
        assert!(
            tr.contains(&format!("<label for=\"certified_amount-{id}\">")),
            "labelled fields: {tr}"
        );
    }
    let token = csrf(&page);

    // An amount that is not one: named by the gateway, the typed number kept.
    let answer = certify(
        &stack,
        &zhou,
        &token,
        &first,
        "2026420100000007",
        ContractType::Development,
        "六百万",
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let tr = row(&answer.body, &first).expect("the contract shown again");
    assert!(
        tr.contains("class=\"field invalid\" data-field=\"certified_amount\""),
        "{tr}"
    );
    assert!(
        tr.contains(&format!("id=\"certified_amount-{first}-error\"")),
        "{tr}"
    );
    assert!(tr.contains("value=\"2026420100000007\""), "kept: {tr}");
    assert!(
        !tr.contains("class=\"field invalid\" data-field=\"registration_no\""),
        "{tr}"
    );
    // More than the contract: named by the subsidy service, on the same field, and told in
    // yuan (the service says fen; the registrar typed yuan).
    let answer = certify(
        &stack,
        &zhou,
        &token,
        &first,
        "2026420100000007",
        ContractType::Development,
        "10,000,000.01",
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let tr = row(&answer.body, &first).expect("the contract shown again");
    assert!(
        tr.contains("class=\"field invalid\" data-field=\"certified_amount\"")
            && tr.contains("at most the contract amount, 10,000,000.00 元")
            && !tr.contains(" fen"),
        "{tr}"
    );
    // Nothing was certified by either.
    assert_eq!(listed(&stack, RegistrationStatus::Certified).await.len(), 0);

    for (id, no, t, amount) in [
        (
            &first,
            "2026420100000007",
            ContractType::Development,
            "6,000,000.00",
        ),
        (
            &second,
            "2026420600000008",
            ContractType::Transfer,
            "3000000.5",
        ),
    ] {
        let answer = certify(&stack, &zhou, &token, id, no, t, amount).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        assert_eq!(
            answer.header("location"),
            Some(format!("/console/registrations?done=certified&id={id}").as_str())
        );
    }
    // A refusal without a reason is named; with one it is recorded.
    let path = format!("/console/registrations/{third}/refuse");
    let answer = post(&stack, &zhou, &path, &[("csrf", &token), ("reason", " ")]).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let tr = row(&answer.body, &third).expect("the contract shown again");
    assert!(
        tr.contains("class=\"field invalid\" data-field=\"reason\""),
        "{tr}"
    );
    let answer = post(
        &stack,
        &zhou,
        &path,
        &[("csrf", &token), ("reason", "设备采购合同，不属于技术合同")],
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.body);

    // Decided: off the page, and recorded as the forms said.
    let page = get(&stack, &zhou, "/console/registrations?done=refused&id=x").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"flash\""), "{}", page.body);
    for id in [&first, &second, &third] {
        assert!(row(&page.body, id).is_none(), "{id} still listed");
    }
    let certified = listed(&stack, RegistrationStatus::Certified).await;
    let of = |id: &str| certified.iter().find(|r| r.contract_id == id).unwrap();
    assert_eq!(
        (
            of(&first).registration_no.as_str(),
            of(&first).contract_type,
            of(&first).certified_amount_fen,
            of(&first).registrar.as_str(),
        ),
        (
            "2026420100000007",
            ContractType::Development as i32,
            6_000_000 * YUAN,
            "登记员·周"
        )
    );
    assert_eq!(of(&second).certified_amount_fen, 3_000_000 * YUAN + 50);
    let refused = listed(&stack, RegistrationStatus::Refused).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].refusal_reason, "设备采购合同，不属于技术合同");

    // Not a registrar: refused the page and the forms, even with a valid CSRF token.
    let officer = sign_in(
        stack.gateway,
        &stack.token(Role::FinanceOfficer, "财政专员·王", None),
    )
    .await;
    let answer = get(&stack, &officer, "/console/registrations").await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let officer_csrf = csrf(&get(&stack, &officer, "/console/figures").await);
    let fourth = signed(&forger, "420100", "420100", "北斗").await;
    waiting(&stack, &[&fourth]).await;
    let answer = certify(
        &stack,
        &officer,
        &officer_csrf,
        &fourth,
        "2026420100000009",
        ContractType::Transfer,
        "1000",
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let enterprise = sign_in(
        stack.gateway,
        &stack.token(Role::Enterprise, "企业·张", Some("91420100MA00001X")),
    )
    .await;
    assert_eq!(
        get(&stack, &enterprise, "/console/registrations")
            .await
            .status,
        403
    );
    assert_eq!(listed(&stack, RegistrationStatus::Waiting).await.len(), 1);
    stack.stop().await;
}

/// `YYYY-MM` of `months_back` months before now, China time.
fn month(months_back: u32) -> String {
    let now = Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap());
    let d = now.checked_sub_months(Months::new(months_back)).unwrap();
    format!("{:04}-{:02}", d.year(), d.month())
}

#[tokio::test]
async fn the_monthly_figures_page_and_its_csv_add_up_to_what_was_certified() {
    let stack = Stack::start().await;
    let forger = Forger::connect(&stack.platform.settings).await;
    let contracts = [
        (
            "420111",
            "420100",
            "高端装备",
            ContractType::Development,
            6_000_000 * YUAN,
        ),
        (
            "420602",
            "420111",
            "北斗",
            ContractType::Transfer,
            3_000_000 * YUAN + 50,
        ),
        (
            "420102",
            "420600",
            "高端装备",
            ContractType::Transfer,
            1_234_567,
        ),
    ];
    let mut ids = Vec::new();
    for (region, supplier, chain, _, _) in contracts {
        ids.push(signed(&forger, region, supplier, chain).await);
    }
    let left_waiting = signed(&forger, "420100", "420100", "北斗").await;
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    waiting(&stack, &id_refs).await;
    waiting(&stack, &[&left_waiting]).await;
    let registrar = stack.token(Role::Registrar, "登记员·周", None);
    for (id, (_, _, _, t, fen)) in ids.iter().zip(contracts) {
        stack
            .platform
            .api()
            .registrations()
            .certify_contract(authed(
                CertifyContractRequest {
                    contract_id: id.clone(),
                    registration_no: format!("NO-{id}"),
                    contract_type: t as i32,
                    certified_amount_fen: fen,
                    note: String::new(),
                },
                &registrar,
            ))
            .await
            .unwrap();
    }
    let certified_fen: i64 = contracts.iter().map(|c| c.4).sum();

    // Certified now: this month, China time (last month too, should the month have turned).
    let range = format!("from={}&to={}", month(1), month(0));
    let auditor = sign_in(stack.gateway, &stack.token(Role::Auditor, "审计·孙", None)).await;
    let page = get(&stack, &auditor, &format!("/console/figures?{range}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"figures\""), "{}", page.body);
    let total = "9,012,346.17 元";
    assert_eq!(certified_fen, 901_234_617);
    assert!(
        page.body.contains(&format!(
            "<th class=\"num\" id=\"absorbed-total\">{total}</th>"
        )),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!(
            "<th class=\"num\" id=\"exported-total\">{total}</th>"
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("武汉市 420100") && page.body.contains("襄阳市 420600"));
    assert!(
        page.body.contains(&format!(
            "href=\"/console/figures.csv?{}",
            range.replace('&', "&amp;")
        )),
        "the CSV of the same range: {}",
        page.body
    );

    let answer = get(&stack, &auditor, &format!("/console/figures.csv?{range}")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert!(answer.body.starts_with('\u{feff}'), "a BOM for Excel");
    let mut reader =
        csv::Reader::from_reader(answer.body.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let fen = |text: &str| -> i64 {
        let (yuan, cents) = text.split_once('.').expect("two decimals");
        assert_eq!(cents.len(), 2, "{text}");
        yuan.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
    };
    let sum = |name: &str| -> i64 { records.iter().map(|r| fen(&r[column(name)])).sum() };
    assert_eq!(sum("absorbed_amount_yuan"), certified_fen);
    assert_eq!(sum("exported_amount_yuan"), certified_fen);
    let count = |name: &str| -> i64 {
        records
            .iter()
            .map(|r| r[column(name)].parse::<i64>().unwrap())
            .sum()
    };
    assert_eq!(
        (count("absorbed_contracts"), count("exported_contracts")),
        (3, 3),
        "the waiting contract is not counted"
    );
    // Per city: Wuhan absorbed the first and third, exported the first two; Xiangyang
    // absorbed the second and exported the third.
    let city_sum = |city: &str, name: &str| -> i64 {
        records
            .iter()
            .filter(|r| &r[column("city_code")] == city)
            .map(|r| fen(&r[column(name)]))
            .sum()
    };
    assert_eq!(
        city_sum("420100", "absorbed_amount_yuan"),
        6_000_000 * YUAN + 1_234_567
    );
    assert_eq!(
        city_sum("420100", "exported_amount_yuan"),
        9_000_000 * YUAN + 50
    );
    assert_eq!(
        city_sum("420600", "absorbed_amount_yuan"),
        3_000_000 * YUAN + 50
    );
    assert_eq!(city_sum("420600", "exported_amount_yuan"), 1_234_567);
    assert!(
        records
            .iter()
            .all(|r| &r[column("city_name")] == "武汉市" || &r[column("city_name")] == "襄阳市")
    );

    // A bad month is named beside its field; an enterprise may not read the figures.
    let answer = get(&stack, &auditor, "/console/figures?from=2026-13&to=2026-12").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer
            .body
            .contains("class=\"field invalid\" data-field=\"from_month\""),
        "{}",
        answer.body
    );
    let enterprise = sign_in(
        stack.gateway,
        &stack.token(Role::Enterprise, "企业·张", Some("91420100MA00001X")),
    )
    .await;
    assert_eq!(
        get(&stack, &enterprise, "/console/figures").await.status,
        403
    );
    assert_eq!(
        get(
            &stack,
            &enterprise,
            &format!("/console/figures.csv?{range}")
        )
        .await
        .status,
        403
    );
    stack.stop().await;
}
