//! Monthly registration figures over gRPC: certified contracts per month (China time) and
//! city, absorbed by the enterprise's city and exported by the supplier's, by type and chain;
//! refused and waiting contracts nowhere; who may read them; bad months named.
//!
//! Contracts are certified through the API (a registration can only be decided within its
//! window, i.e. now); the test then moves each certification's time to the month it needs,
//! as if it had been certified then.

use crate::helpers::*;
use chrono::{DateTime, Utc};
use kechuang_platform::Role;
use kechuang_platform::error::field_violations;
use kechuang_platform::events::timestamp;
use kechuang_platform::testing::{TestService, authed};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::ContractSigned;
use kechuang_proto::subsidy::registration_service_client::RegistrationServiceClient;
use kechuang_proto::subsidy::{
    CertifyContractRequest, GetMonthlyFiguresRequest, MonthlyFigure, MonthlyFigures,
    RefuseRegistrationRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

const WAN: i64 = 10_000 * YUAN;

async fn registrations(svc: &TestService) -> RegistrationServiceClient<Channel> {
    RegistrationServiceClient::new(svc.channel().await)
}

/// A contract of 1,000 万 yuan signed yesterday by an enterprise in `region` with a supplier
/// in `supplier_region`.
async fn signed(svc: &TestService, region: &str, supplier_region: &str, chain: &str) -> String {
    let contract_id = format!("c-{}", uuid::Uuid::new_v4().simple());
    publish_contract(
        svc,
        ContractSigned {
            contract_id: contract_id.clone(),
            pairing_id: format!("p-{contract_id}"),
            demand_id: format!("d-{contract_id}"),
            achievement_id: "a-1".into(),
            enterprise_id: format!("e-{region}"),
            supplier: format!("研究院-{supplier_region}"),
            contract_no: format!("HT-{contract_id}"),
            contract_type: ContractType::Transfer as i32,
            amount_fen: 1_000 * WAN,
            signed_at: Some(timestamp(Utc::now() - chrono::Duration::days(1))),
            region_code: region.into(),
            industry_chain: chain.into(),
            supplier_region_code: supplier_region.into(),
            ..Default::default()
        },
    )
    .await;
    contract_id
}

/// Certifies `contract_id` as `t` for `amount_fen`, then dates the certification `at`.
async fn certified(
    svc: &TestService,
    contract_id: &str,
    t: ContractType,
    amount_fen: i64,
    at: &str,
) {
    let registrar = svc.token(Role::Registrar, "登记员·周", None);
    registrations(svc)
        .await
        .certify_contract(authed(
            CertifyContractRequest {
                contract_id: contract_id.into(),
                registration_no: format!("NO-{contract_id}"),
                contract_type: t as i32,
                certified_amount_fen: amount_fen,
                note: String::new(),
            },
            &registrar,
        ))
        .await
        .unwrap();
    let at: DateTime<Utc> = at.parse().unwrap();
    sqlx::query("UPDATE registrations SET decided_at = $2 WHERE contract_id = $1")
        .bind(contract_id)
        .bind(at)
        .execute(&svc.pool)
        .await
        .unwrap();
}

async fn figures(
    svc: &TestService,
    token: &str,
    from: &str,
    to: &str,
    prefix: &str,
) -> Result<MonthlyFigures, Status> {
    registrations(svc)
        .await
        .get_monthly_figures(authed(
            GetMonthlyFiguresRequest {
                from_month: from.into(),
                to_month: to.into(),
                region_prefix: prefix.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

/// A row as (month, city, name, type, chain, absorbed n, absorbed fen, exported n, exported fen).
type Shown = (
    String,
    String,
    String,
    ContractType,
    String,
    i64,
    i64,
    i64,
    i64,
);

fn shown(rows: &[MonthlyFigure]) -> Vec<Shown> {
    rows.iter()
        .map(|r| {
            (
                r.month.clone(),
                r.city_code.clone(),
                r.city_name.clone(),
                ContractType::try_from(r.contract_type).unwrap(),
                r.industry_chain.clone(),
                r.absorbed_contracts,
                r.absorbed_amount_fen,
                r.exported_contracts,
                r.exported_amount_fen,
            )
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn row(
    month: &str,
    city: &str,
    name: &str,
    t: ContractType,
    chain: &str,
    absorbed: (i64, i64),
    exported: (i64, i64),
) -> Shown {
    (
        month.into(),
        city.into(),
        name.into(),
        t,
        chain.into(),
        absorbed.0,
        absorbed.1,
        exported.0,
        exported.1,
    )
}

#[tokio::test]
async fn figures_add_up_certified_contracts_by_month_and_city_and_leave_out_the_rest() {
    use ContractType::{Development, Transfer};
    let svc = start().await;
    // Wuhan (4201) and Xiangyang (4206), districts of both.
    let a = signed(&svc, "420111", "420100", "高端装备").await;
    let b = signed(&svc, "420602", "420111", "北斗").await;
    let c = signed(&svc, "420102", "420600", "高端装备").await;
    let d = signed(&svc, "420100", "420100", "高端装备").await;
    let refused = signed(&svc, "420100", "420600", "高端装备").await;
    let _waiting = signed(&svc, "420100", "420600", "北斗").await;
    let december = signed(&svc, "420600", "420100", "北斗").await;

    certified(&svc, &a, Development, 600 * WAN, "2026-10-15T02:00:00Z").await;
    // 00:30 on 1 November in China: November.
    certified(&svc, &b, Transfer, 300 * WAN, "2026-10-31T16:30:00Z").await;
    certified(&svc, &c, Transfer, 200 * WAN, "2026-11-20T08:00:00Z").await;
    // 23:59:59 on 31 October in China: October.
    certified(&svc, &d, Development, 100 * WAN, "2026-10-31T15:59:59Z").await;
    certified(&svc, &december, Transfer, 50 * WAN, "2026-12-01T00:00:00Z").await;
    registrations(&svc)
        .await
        .refuse_registration(authed(
            RefuseRegistrationRequest {
                contract_id: refused.clone(),
                reason: "设备采购，不是技术合同".into(),
            },
            &svc.token(Role::Registrar, "登记员·周", None),
        ))
        .await
        .unwrap();

    let auditor = svc.token(Role::Auditor, "审计·孙", None);
    let report = figures(&svc, &auditor, "2026-10", "2026-11", "")
        .await
        .unwrap();
    assert_eq!(
        (report.from_month.as_str(), report.to_month.as_str()),
        ("2026-10", "2026-11")
    );
    assert_eq!(
        shown(&report.rows),
        [
            // a and d: both sides in Wuhan.
            row(
                "2026-10",
                "420100",
                "武汉市",
                Development,
                "高端装备",
                (2, 700 * WAN),
                (2, 700 * WAN)
            ),
            // b: exported by Wuhan, absorbed by Xiangyang.
            row(
                "2026-11",
                "420100",
                "武汉市",
                Transfer,
                "北斗",
                (0, 0),
                (1, 300 * WAN)
            ),
            // c: absorbed by Wuhan, exported by Xiangyang.
            row(
                "2026-11",
                "420100",
                "武汉市",
                Transfer,
                "高端装备",
                (1, 200 * WAN),
                (0, 0)
            ),
            row(
                "2026-11",
                "420600",
                "襄阳市",
                Transfer,
                "北斗",
                (1, 300 * WAN),
                (0, 0)
            ),
            row(
                "2026-11",
                "420600",
                "襄阳市",
                Transfer,
                "高端装备",
                (0, 0),
                (1, 200 * WAN)
            ),
        ]
    );
    // Each side adds up to the certified amounts of the contracts certified in the range;
    // the refused, the waiting and December's are in neither.
    let certified_sum: i64 = sqlx::query_scalar(
        "SELECT sum(certified_amount_fen)::BIGINT FROM registrations WHERE status = 'CERTIFIED' \
         AND contract_id = ANY($1)",
    )
    .bind(vec![a.clone(), b.clone(), c.clone(), d.clone()])
    .fetch_one(&svc.pool)
    .await
    .unwrap();
    let absorbed: i64 = report.rows.iter().map(|r| r.absorbed_amount_fen).sum();
    let exported: i64 = report.rows.iter().map(|r| r.exported_amount_fen).sum();
    assert_eq!((absorbed, exported), (certified_sum, certified_sum));
    assert_eq!(certified_sum, 1_200 * WAN);
    let contracts: i64 = report.rows.iter().map(|r| r.absorbed_contracts).sum();
    assert_eq!(
        contracts, 4,
        "the refused and the waiting contract are not counted"
    );

    // One city: Xiangyang's rows only.
    let xiangyang = figures(&svc, &auditor, "2026-10", "2026-11", "4206")
        .await
        .unwrap();
    assert_eq!(xiangyang.region_prefix, "4206");
    assert_eq!(shown(&xiangyang.rows), shown(&report.rows[3..]));

    // December alone; a contract recorded before the supplier's region was kept is exported
    // by no known city.
    sqlx::query("UPDATE contracts SET supplier_region_code = '' WHERE id = $1")
        .bind(&december)
        .execute(&svc.pool)
        .await
        .unwrap();
    let dec = figures(&svc, &auditor, "2026-12", "2026-12", "")
        .await
        .unwrap();
    assert_eq!(
        shown(&dec.rows),
        [
            row("2026-12", "", "", Transfer, "北斗", (0, 0), (1, 50 * WAN)),
            row(
                "2026-12",
                "420600",
                "襄阳市",
                Transfer,
                "北斗",
                (1, 50 * WAN),
                (0, 0)
            ),
        ]
    );
    // A month without certifications has no rows.
    let empty = figures(&svc, &auditor, "2026-09", "2026-09", "")
        .await
        .unwrap();
    assert!(empty.rows.is_empty(), "{empty:?}");
    svc.stop().await;
}

#[tokio::test]
async fn registrars_finance_and_auditors_read_the_figures_and_nobody_else() {
    let svc = start().await;
    for role in [
        Role::Registrar,
        Role::FinanceOfficer,
        Role::FinanceApprover,
        Role::Auditor,
    ] {
        let token = svc.token(role, "reader", None);
        figures(&svc, &token, "2026-01", "2026-12", "")
            .await
            .unwrap_or_else(|e| panic!("{role:?}: {e:?}"));
    }
    for role in [Role::Enterprise, Role::Supplier, Role::TechManager] {
        let enterprise = (role == Role::Enterprise).then_some("e-420100");
        let token = svc.token(role, "someone", enterprise);
        let status = figures(&svc, &token, "2026-01", "2026-12", "")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{role:?}");
    }
    let status = registrations(&svc)
        .await
        .get_monthly_figures(GetMonthlyFiguresRequest {
            from_month: "2026-01".into(),
            to_month: "2026-01".into(),
            region_prefix: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    svc.stop().await;
}

#[tokio::test]
async fn bad_months_and_prefixes_are_named() {
    let svc = start().await;
    let registrar = svc.token(Role::Registrar, "登记员·周", None);
    for (from, to, prefix, fields) in [
        ("2026-13", "2026-12", "", vec!["from_month"]),
        ("2026-01", "", "", vec!["to_month"]),
        ("2026/01", "2026-1", "", vec!["from_month", "to_month"]),
        ("2026-11", "2026-10", "", vec!["to_month"]),
        // 37 months.
        ("2026-01", "2029-01", "", vec!["to_month"]),
        ("2026-01", "2026-02", "4", vec!["region_prefix"]),
        ("2026-01", "2026-02", "4201%", vec!["region_prefix"]),
    ] {
        let status = figures(&svc, &registrar, from, to, prefix)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{from} {to} {prefix}");
        let named: Vec<String> = field_violations(&status)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(named, fields, "{from} {to} {prefix}: {status:?}");
    }
    // 36 months, both counted: fine.
    figures(&svc, &registrar, "2026-01", "2028-12", "42")
        .await
        .unwrap();
    svc.stop().await;
}
