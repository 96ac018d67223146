//! Migrations that move data, run against a database that holds what the earlier schema wrote.

use demand_intake::MIGRATOR;
use kechuang_platform::ServiceKind;
use kechuang_platform::db;
use kechuang_platform::testing::{cleanup, isolated_settings};
use sqlx::migrate::Migrator;
use uuid::Uuid;

/// 0005 moves each demand's submission line onto the demand (`submitted_by`) and keeps every
/// later move as a row.
#[tokio::test]
async fn the_submission_line_moves_onto_the_demand_and_later_moves_stay() {
    let settings = isolated_settings();
    let cfg = settings.service(ServiceKind::DemandIntake).database;
    let before = Migrator::with_migrations(MIGRATOR.migrations[..4].to_vec());
    let pool = db::connect(&cfg, &before).await.unwrap();
    let (submitted, verified) = (Uuid::now_v7(), Uuid::now_v7());
    for sql in [
        "INSERT INTO enterprises (id, name, credit_code, region_code, industry_chain, registered_by) \
         VALUES ('91420100MA4KX1234A', '武汉光谷激光', '91420100MA4KX1234A', '420100', '光电子信息', 'admin')",
        "INSERT INTO demands (id, enterprise_id, title, description, industry_chain, contract_type, \
            budget_min_fen, budget_max_fen, region_code, deadline, status, version, correlation_id) \
         SELECT id, '91420100MA4KX1234A', '标题', '描述', '光电子信息', 1, 0, 10, '420100', \
            now() + interval '30 days', status, version, 'c' \
         FROM (VALUES ($1::uuid, 'submitted', 1), ($2::uuid, 'verified', 2)) AS d(id, status, version)",
        "INSERT INTO demand_status_changes (demand_id, from_status, to_status, actor) \
         VALUES ($1, NULL, 'submitted', 'li.ming'), ($2, NULL, 'submitted', 'wang.fang'), \
            ($2, 'submitted', 'verified', 'manager.zhao')",
    ] {
        sqlx::query(sql)
            .bind(submitted)
            .bind(verified)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let pool = db::connect(&cfg, &MIGRATOR).await.unwrap();
    let submitters: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, submitted_by FROM demands ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        submitters,
        [
            (submitted, "li.ming".into()),
            (verified, "wang.fang".into())
        ]
    );
    let moves: Vec<(Uuid, Option<String>, String, String)> = sqlx::query_as(
        "SELECT demand_id, from_status, to_status, actor FROM demand_status_changes",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        moves,
        [(
            verified,
            Some("submitted".into()),
            "verified".into(),
            "manager.zhao".into()
        )]
    );
    pool.close().await;
    cleanup(&settings).await;
}
