use crate::helpers::*;
use fund_ledger::{api, ledger};
use kechuang_platform::Role;
use kechuang_platform::error::field_violations;
use kechuang_platform::testing::authed;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::fund::{
    CreateFundRequest, GetFundRequest, ListTransfersRequest, ReconcileRequest, TopUpRequest,
    TransferKind, TransferStatus,
};
use tonic::Code;

#[tokio::test]
async fn the_default_fund_is_seeded_once_and_starts_empty() {
    let l = Ledger::start().await;
    let fund = l.fund(DEFAULT_FUND).await;
    assert_eq!(fund.name, "湖北省科技成果转化补贴专项资金");
    assert_eq!(
        (
            fund.available_fen,
            fund.reserved_fen,
            fund.disbursed_fen,
            fund.total_fen
        ),
        (0, 0, 0, 0)
    );
    // A second start (another replica) seeds nothing more.
    let mut tx = l.svc.pool.begin().await.unwrap();
    ledger::seed_default_fund(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let created = l
        .svc
        .wait_for_event("fund.created", |e| e.aggregate_id == DEFAULT_FUND)
        .await;
    assert!(matches!(created.payload, Some(Payload::FundCreated(ref c)) if c.name == fund.name));
    assert_eq!(l.emitted("fund.created").await, 1);
    l.stop().await;
}

#[tokio::test]
async fn create_top_up_get_list_and_reconcile() {
    let l = Ledger::start().await;
    let fund = l.create_fund("武汉市技术交易补贴资金", 1_000).await;
    assert!(fund.id.starts_with("fund-"));
    assert_eq!(fund.low_balance_fen, 1_000);
    let after = l.top_up(&fund.id, 50_000, "财预〔2026〕1号").await;
    assert_eq!((after.available_fen, after.total_fen), (50_000, 50_000));
    let after = l.top_up(&fund.id, 20_000, "财预〔2026〕2号").await;
    assert_eq!(after.available_fen, 70_000);
    // The same reference again: the fund as it is, nothing moved.
    let again = l.top_up(&fund.id, 50_000, "财预〔2026〕1号").await;
    assert_eq!(again.available_fen, 70_000);
    assert_eq!(l.fund(&fund.id).await.total_fen, 70_000);

    let topped = l
        .svc
        .wait_for_event("fund.topped_up", |e| {
            matches!(&e.payload, Some(Payload::FundToppedUp(t)) if t.reference == "财预〔2026〕2号")
        })
        .await;
    let Some(Payload::FundToppedUp(t)) = topped.payload else {
        unreachable!()
    };
    assert_eq!((t.amount_fen, t.available_fen), (20_000, 70_000));
    assert_eq!(l.emitted("fund.topped_up").await, 2);

    // A reservation, so that the listing shows a pending transfer.
    let mut tx = l.svc.pool.begin().await.unwrap();
    ledger::reserve(&mut tx, &fund.id, "app-1", 5_000, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut client = l.client.clone();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_transfers(authed(
                ListTransfersRequest {
                    fund_id: fund.id.clone(),
                    page_size: 2,
                    page_token: token.clone(),
                },
                &l.auditor,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.transfers.len() <= 2);
        seen.extend(page.transfers);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let kinds: Vec<_> = seen.iter().map(|t| t.kind()).collect();
    assert_eq!(
        kinds,
        [
            TransferKind::TopUp,
            TransferKind::TopUp,
            TransferKind::Reserve
        ]
    );
    assert_eq!(seen[0].reference, "财预〔2026〕1号");
    assert_eq!(seen[0].debit_account, format!("{}:treasury", fund.id));
    assert_eq!(seen[0].credit_account, format!("{}:available", fund.id));
    assert_eq!(seen[2].status(), TransferStatus::Pending);
    assert_eq!(seen[2].reference, "app-1");

    let report = client
        .reconcile(authed(
            ReconcileRequest {
                fund_id: fund.id.clone(),
            },
            &l.auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.violations, Vec::<String>::new());
    assert_eq!(report.checks.len(), 8);
    assert_eq!(report.transfer_count, 3);
    l.stop().await;
}

#[tokio::test]
async fn create_fund_is_idempotent_on_request_id() {
    let l = Ledger::start().await;
    let request = CreateFundRequest {
        request_id: "req-7".into(),
        name: "襄阳市专项资金".into(),
        low_balance_fen: 0,
    };
    let mut client = l.client.clone();
    let first = client
        .create_fund(authed(request.clone(), &l.officer))
        .await
        .unwrap()
        .into_inner();
    let second = client
        .create_fund(authed(request.clone(), &l.officer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, second.id);
    let other = CreateFundRequest {
        name: "另一个".into(),
        ..request
    };
    let status = client
        .create_fund(authed(other, &l.officer))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&status)[0].0, "request_id");
    let funds: i64 = sqlx::query_scalar("SELECT count(*) FROM funds")
        .fetch_one(&l.svc.pool)
        .await
        .unwrap();
    assert_eq!(funds, 2, "the default fund and this one");
    assert_eq!(l.emitted("fund.created").await, 2);
    l.stop().await;
}

#[tokio::test]
async fn bad_inputs_name_their_fields_and_write_nothing() {
    let l = Ledger::start().await;
    let fund = l.create_fund("黄石市专项资金", 0).await;
    l.top_up(&fund.id, 1_000, "doc-1").await;
    let before = (
        l.transfer_count().await,
        l.emitted("fund.created").await,
        l.fund(&fund.id).await,
    );
    let mut c = l.client.clone();
    let t = &l.officer;
    let create = |name: &str, low: i64| CreateFundRequest {
        request_id: String::new(),
        name: name.into(),
        low_balance_fen: low,
    };
    let top = |fund_id: &str, amount_fen: i64, reference: &str| TopUpRequest {
        fund_id: fund_id.into(),
        amount_fen,
        reference: reference.into(),
    };
    let long = "长".repeat(201);
    let cases: Vec<(tonic::Status, Vec<&str>)> = vec![
        (
            c.create_fund(authed(create("", 0), t)).await.unwrap_err(),
            vec!["name"],
        ),
        (
            c.create_fund(authed(create("  ", -1), t))
                .await
                .unwrap_err(),
            vec!["name", "low_balance_fen"],
        ),
        (
            c.create_fund(authed(create(&long, 0), t))
                .await
                .unwrap_err(),
            vec!["name"],
        ),
        (
            c.top_up(authed(top(&fund.id, 0, "doc-2"), t))
                .await
                .unwrap_err(),
            vec!["amount_fen"],
        ),
        (
            c.top_up(authed(top(&fund.id, -5, "doc-2"), t))
                .await
                .unwrap_err(),
            vec!["amount_fen"],
        ),
        (
            c.top_up(authed(top(&fund.id, i64::MAX, "doc-2"), t))
                .await
                .unwrap_err(),
            vec!["amount_fen"],
        ),
        (
            c.top_up(authed(top(&fund.id, 10, ""), t))
                .await
                .unwrap_err(),
            vec!["reference"],
        ),
        (
            c.top_up(authed(top("", 0, ""), t)).await.unwrap_err(),
            vec!["fund_id", "amount_fen", "reference"],
        ),
        // The reference of doc-1 with another amount, or for another fund.
        (
            c.top_up(authed(top(&fund.id, 999, "doc-1"), t))
                .await
                .unwrap_err(),
            vec!["reference"],
        ),
        (
            c.top_up(authed(top(DEFAULT_FUND, 1_000, "doc-1"), t))
                .await
                .unwrap_err(),
            vec!["reference"],
        ),
        (
            c.get_fund(authed(
                GetFundRequest {
                    fund_id: String::new(),
                },
                t,
            ))
            .await
            .unwrap_err(),
            vec!["fund_id"],
        ),
        (
            c.list_transfers(authed(
                ListTransfersRequest {
                    fund_id: fund.id.clone(),
                    page_size: -1,
                    page_token: "garbage".into(),
                },
                t,
            ))
            .await
            .unwrap_err(),
            vec!["page_size", "page_token"],
        ),
        (
            c.reconcile(authed(
                ReconcileRequest {
                    fund_id: long.clone(),
                },
                t,
            ))
            .await
            .unwrap_err(),
            vec!["fund_id"],
        ),
    ];
    for (i, (status, fields)) in cases.iter().enumerate() {
        assert_eq!(status.code(), Code::InvalidArgument, "case {i}: {status:?}");
        let named: Vec<String> = field_violations(status).into_iter().map(|f| f.0).collect();
        assert_eq!(&named, fields, "case {i}");
    }
    let after = (
        l.transfer_count().await,
        l.emitted("fund.created").await,
        l.fund(&fund.id).await,
    );
    assert_eq!(before, after, "nothing was written");
    assert_eq!(l.fund(DEFAULT_FUND).await.total_fen, 0);
    l.stop().await;
}

#[tokio::test]
async fn unknown_funds_are_not_found() {
    let l = Ledger::start().await;
    let mut c = l.client.clone();
    let missing = "fund-nope".to_string();
    let codes = [
        c.get_fund(authed(
            GetFundRequest {
                fund_id: missing.clone(),
            },
            &l.auditor,
        ))
        .await
        .unwrap_err()
        .code(),
        c.top_up(authed(
            TopUpRequest {
                fund_id: missing.clone(),
                amount_fen: 5,
                reference: "r".into(),
            },
            &l.officer,
        ))
        .await
        .unwrap_err()
        .code(),
        c.list_transfers(authed(
            ListTransfersRequest {
                fund_id: missing.clone(),
                page_size: 0,
                page_token: String::new(),
            },
            &l.auditor,
        ))
        .await
        .unwrap_err()
        .code(),
        c.reconcile(authed(ReconcileRequest { fund_id: missing }, &l.auditor))
            .await
            .unwrap_err()
            .code(),
    ];
    assert_eq!(codes, [Code::NotFound; 4]);
    assert_eq!(l.transfer_count().await, 0);
    l.stop().await;
}

#[tokio::test]
async fn finance_writes_auditors_read_enterprises_nothing() {
    let l = Ledger::start().await;
    let mut c = l.client.clone();
    let token = |role| {
        l.svc.token(
            role,
            "someone",
            (role == Role::Enterprise).then_some("91420100MA4KX1234X"),
        )
    };
    let create = || CreateFundRequest {
        request_id: String::new(),
        name: "荆州".into(),
        low_balance_fen: 0,
    };
    let get = || GetFundRequest {
        fund_id: DEFAULT_FUND.into(),
    };
    let reconcile = || ReconcileRequest {
        fund_id: String::new(),
    };
    let list = || ListTransfersRequest {
        fund_id: DEFAULT_FUND.into(),
        page_size: 0,
        page_token: String::new(),
    };
    for (i, role) in [Role::FinanceOfficer, Role::FinanceApprover]
        .into_iter()
        .enumerate()
    {
        let t = token(role);
        c.create_fund(authed(create(), &t)).await.unwrap();
        let top = TopUpRequest {
            fund_id: DEFAULT_FUND.into(),
            amount_fen: 10,
            reference: format!("r{i}"),
        };
        c.top_up(authed(top, &t)).await.unwrap();
        c.get_fund(authed(get(), &t)).await.unwrap();
    }
    for role in [Role::Auditor, Role::Service] {
        let t = token(role);
        c.get_fund(authed(get(), &t)).await.unwrap();
        c.list_transfers(authed(list(), &t)).await.unwrap();
        c.reconcile(authed(reconcile(), &t)).await.unwrap();
        let denied = c.create_fund(authed(create(), &t)).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let top = TopUpRequest {
            fund_id: DEFAULT_FUND.into(),
            amount_fen: 10,
            reference: "x".into(),
        };
        assert_eq!(
            c.top_up(authed(top, &t)).await.unwrap_err().code(),
            Code::PermissionDenied
        );
    }
    for role in [Role::Enterprise, Role::TechManager, Role::Supplier] {
        let t = token(role);
        let codes = [
            c.create_fund(authed(create(), &t))
                .await
                .unwrap_err()
                .code(),
            c.get_fund(authed(get(), &t)).await.unwrap_err().code(),
            c.list_transfers(authed(list(), &t))
                .await
                .unwrap_err()
                .code(),
            c.reconcile(authed(reconcile(), &t))
                .await
                .unwrap_err()
                .code(),
        ];
        assert_eq!(codes, [Code::PermissionDenied; 4], "{role:?}");
    }
    let anonymous = c.get_fund(tonic::Request::new(get())).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(l.fund(DEFAULT_FUND).await.total_fen, 20);
    l.stop().await;
}

#[tokio::test]
async fn reconcile_reports_a_corrupted_balance_and_transfers_cannot_change() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 1_000_000, "doc-1").await;
    let mut tx = l.svc.pool.begin().await.unwrap();
    ledger::reserve(&mut tx, DEFAULT_FUND, "app-1", 300_000, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    l.assert_reconciles().await;

    // Transfers are facts: the database refuses to edit or delete them.
    for sql in [
        "UPDATE transfers SET amount_fen = amount_fen + 1",
        "DELETE FROM transfers",
    ] {
        let err = sqlx::query(sql).execute(&l.svc.pool).await.unwrap_err();
        assert!(err.to_string().contains("immutable"), "{err}");
    }

    // Someone edits a balance behind the ledger's back.
    sqlx::query(
        "UPDATE accounts SET credits_fen = credits_fen + 500 WHERE id = 'fund-default:available'",
    )
    .execute(&l.svc.pool)
    .await
    .unwrap();
    let report = l
        .client
        .clone()
        .reconcile(authed(
            ReconcileRequest {
                fund_id: String::new(),
            },
            &l.auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.contains("available account")),
        "{:?}",
        report.violations
    );
    assert!(
        report.violations.iter().any(|v| v.contains("topped up")),
        "{:?}",
        report.violations
    );
    let mut conn = l.svc.pool.acquire().await.unwrap();
    let direct = api::reconcile(&mut conn, Some(DEFAULT_FUND)).await.unwrap();
    assert_eq!(direct.violations, report.violations);
    drop(conn);
    l.stop().await;
}
