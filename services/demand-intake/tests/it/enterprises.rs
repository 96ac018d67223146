use crate::helpers::*;
use kechuang_platform::Role;
use kechuang_platform::testing::authed;
use kechuang_proto::demand::{GetEnterpriseRequest, RegisterEnterpriseRequest};
use kechuang_proto::events::envelope::Payload;
use tonic::Code;

#[tokio::test]
async fn an_enterprise_registers_itself_once() {
    let mut g = start().await;
    let code = credit_code(1);
    let own = g.enterprise_token(&code);
    let enterprise = g
        .client
        .register_enterprise(authed(enterprise_request(1), &own))
        .await
        .unwrap()
        .into_inner();
    // The id is the credit code, so the enterprise's token names it before registration.
    assert_eq!(enterprise.id, code);
    assert_eq!(enterprise.credit_code, code);
    assert_eq!(enterprise.region_code, "420100");

    let event = g
        .svc
        .wait_for_event("enterprise.registered", |e| e.aggregate_id == code)
        .await;
    let Some(Payload::EnterpriseRegistered(p)) = event.payload else {
        panic!("payload {event:?}")
    };
    assert_eq!(
        (p.enterprise_id.as_str(), p.name.as_str()),
        (code.as_str(), enterprise.name.as_str())
    );

    let again = g
        .client
        .register_enterprise(authed(enterprise_request(1), &g.operator))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    assert_eq!(
        count(&g.svc.pool, "SELECT count(*) FROM enterprises").await,
        1
    );
    assert_eq!(outbox_count(&g.svc.pool, "enterprise.registered").await, 1);

    let got = g
        .client
        .get_enterprise(authed(
            GetEnterpriseRequest {
                enterprise_id: code.clone(),
            },
            &own,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, enterprise);

    // Demands refer to enterprises without a foreign key: the table keeps every enterprise.
    assert_rows_are_never_deleted(&g.svc.pool, "enterprises").await;
    assert_eq!(
        count(&g.svc.pool, "SELECT count(*) FROM enterprises").await,
        1
    );
    g.stop().await;
}

#[tokio::test]
async fn demands_are_never_deleted_so_their_history_always_has_them() {
    let mut g = start().await;
    let e = g.enterprise(45).await;
    let demand = g.demand(&e, "kept").await;
    // History lines refer to their demand without a foreign key: the table keeps every demand.
    assert_rows_are_never_deleted(&g.svc.pool, "demands").await;
    assert_eq!(g.get(&demand.id).await, demand);
    g.stop().await;
}

/// Both DELETE and TRUNCATE of `table` are refused.
async fn assert_rows_are_never_deleted(pool: &sqlx::PgPool, table: &'static str) {
    for statement in [
        format!("DELETE FROM {table}"),
        format!("TRUNCATE {table} CASCADE"),
    ] {
        let refused = sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(pool)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("never deleted"), "{refused}");
    }
}

fn wrong_check_character(code: &str) -> String {
    let mut code = code.to_string();
    let last = code.pop().unwrap();
    code.push(if last == '0' { '1' } else { '0' });
    code
}

#[tokio::test]
async fn bad_registrations_name_their_fields_and_write_nothing() {
    let mut g = start().await;
    let good = enterprise_request(2);
    let cases: Vec<(&str, RegisterEnterpriseRequest)> = vec![
        (
            "name",
            RegisterEnterpriseRequest {
                name: " ".into(),
                ..good.clone()
            },
        ),
        (
            "credit_code",
            RegisterEnterpriseRequest {
                credit_code: wrong_check_character(&good.credit_code),
                ..good.clone()
            },
        ),
        (
            "credit_code",
            RegisterEnterpriseRequest {
                credit_code: "91420100".into(),
                ..good.clone()
            },
        ),
        (
            "region_code",
            RegisterEnterpriseRequest {
                region_code: "990000".into(),
                ..good.clone()
            },
        ),
        (
            "industry_chain",
            RegisterEnterpriseRequest {
                industry_chain: "房地产".into(),
                ..good.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let status = g
            .client
            .register_enterprise(authed(request.clone(), &g.operator))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(fields(&status), vec![field], "{request:?}");
    }
    assert_eq!(
        count(&g.svc.pool, "SELECT count(*) FROM enterprises").await,
        0
    );
    assert_eq!(
        count(&g.svc.pool, "SELECT count(*) FROM outbox_written").await,
        0
    );
    g.stop().await;
}

#[tokio::test]
async fn who_may_register_and_read_enterprises() {
    let mut g = start().await;
    let a = credit_code(3);
    let b = g.enterprise(4).await;
    // An enterprise registers only the enterprise its token names.
    let status = g
        .client
        .register_enterprise(authed(enterprise_request(3), &g.enterprise_token(&b)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Auditors change nothing.
    let status = g
        .client
        .register_enterprise(authed(enterprise_request(3), &g.auditor))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Technology managers register the enterprises they visit.
    g.client
        .register_enterprise(authed(enterprise_request(3), &g.manager))
        .await
        .unwrap();

    // Another enterprise's record answers exactly like an unknown one.
    let get = |id: &str| GetEnterpriseRequest {
        enterprise_id: id.into(),
    };
    let other = g
        .client
        .get_enterprise(authed(get(&a), &g.enterprise_token(&b)))
        .await
        .unwrap_err();
    let unknown = g
        .client
        .get_enterprise(authed(get(&credit_code(99)), &g.enterprise_token(&b)))
        .await
        .unwrap_err();
    assert_eq!(
        (other.code(), unknown.code()),
        (Code::NotFound, Code::NotFound)
    );
    for token in [&g.auditor, &g.manager, &g.operator] {
        g.client
            .get_enterprise(authed(get(&a), token))
            .await
            .unwrap();
    }
    let supplier = g.svc.token(Role::Supplier, "hust", None);
    let status = g
        .client
        .get_enterprise(authed(get(&a), &supplier))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    g.stop().await;
}
