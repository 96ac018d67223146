//! Migrations that move data, run against a database that holds what the earlier schema wrote.

use kechuang_platform::ServiceKind;
use kechuang_platform::db;
use kechuang_platform::testing::{cleanup, isolated_settings};
use matching::MIGRATOR;
use sqlx::migrate::Migrator;

/// 0005: an accepted pairing takes its acceptance time from its answer (0004's outcomes), else
/// its last update; pairings not accepted have none.
#[tokio::test]
async fn accepted_pairings_learn_when_they_were_accepted() {
    let settings = isolated_settings();
    let cfg = settings.service(ServiceKind::Matching).database;
    let before = Migrator::with_migrations(MIGRATOR.migrations[..4].to_vec());
    let pool = db::connect(&cfg, &before).await.unwrap();
    for sql in [
        "INSERT INTO achievements (id, institution, title, abstract, keywords, industry_chain, trl, \
            transfer_modes, asking_price_fen, region_code) \
         VALUES ('a-1', '华中科技大学', '焊接', '摘要', '{}', '高端装备', 5, '{1}', 100, '420100')",
        "INSERT INTO demands (id, enterprise_id, status) VALUES ('d-1', 'e-1', 'open')",
        "INSERT INTO pairings (id, demand_id, achievement_id, enterprise_id, score, rank, reasons, \
            status, updated_at) \
         VALUES ('p-answered', 'd-1', 'a-1', 'e-1', 1, 1, '{}', 2, '2026-03-01T00:00:00Z')",
        "INSERT INTO achievements (id, institution, title, abstract, keywords, industry_chain, trl, \
            transfer_modes, asking_price_fen, region_code) \
         SELECT id, '武汉大学', '检测', '摘要', '{}', '高端装备', 5, '{1}', 100, '420100' \
         FROM (VALUES ('a-2'), ('a-3')) AS a(id)",
        "INSERT INTO pairings (id, demand_id, achievement_id, enterprise_id, score, rank, reasons, \
            status, updated_at) \
         VALUES ('p-older', 'd-1', 'a-2', 'e-1', 0.5, 2, '{}', 2, '2026-02-01T00:00:00Z'), \
                ('p-proposed', 'd-1', 'a-3', 'e-1', 0.2, 3, '{}', 1, '2026-02-01T00:00:00Z')",
        "INSERT INTO pairing_outcomes (pairing_id, demand_id, achievement_id, rank, score, accepted, \
            answered_at) VALUES ('p-answered', 'd-1', 'a-1', 1, 1, true, '2026-01-15T08:00:00Z')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let pool = db::connect(&cfg, &MIGRATOR).await.unwrap();
    let rows: Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT id, accepted_at FROM pairings ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let at = |s: &str| Some(s.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    assert_eq!(
        rows,
        [
            ("p-answered".into(), at("2026-01-15T08:00:00Z")),
            ("p-older".into(), at("2026-02-01T00:00:00Z")),
            ("p-proposed".into(), None),
        ]
    );
    pool.close().await;
    cleanup(&settings).await;
}

/// 0006: pairings and contracts written before facilitators were recorded get the demand's
/// verifier where matching knows it; the earlier schema never kept it, so they get '' (nobody
/// is invented), and the columns take what is written afterwards.
#[tokio::test]
async fn older_deals_have_no_facilitator_invented() {
    let settings = isolated_settings();
    let cfg = settings.service(ServiceKind::Matching).database;
    let before = Migrator::with_migrations(MIGRATOR.migrations[..5].to_vec());
    let pool = db::connect(&cfg, &before).await.unwrap();
    for sql in [
        "INSERT INTO achievements (id, institution, title, abstract, keywords, industry_chain, trl, \
            transfer_modes, asking_price_fen, region_code) \
         VALUES ('a-1', '华中科技大学', '焊接', '摘要', '{}', '高端装备', 5, '{1}', 100, '420100')",
        "INSERT INTO demands (id, enterprise_id, status, verified) VALUES ('d-1', 'e-1', 'contracted', true)",
        "INSERT INTO pairings (id, demand_id, achievement_id, enterprise_id, score, rank, reasons, \
            status, accepted_at) \
         VALUES ('p-1', 'd-1', 'a-1', 'e-1', 1, 1, '{}', 2, now())",
        "INSERT INTO contracts (id, pairing_id, demand_id, achievement_id, enterprise_id, supplier, \
            supplier_region_code, contract_no, contract_type, amount_fen, signed_at, region_code, \
            industry_chain) \
         VALUES ('c-1', 'p-1', 'd-1', 'a-1', 'e-1', '华中科技大学', '420100', 'HT-1', 2, 100, now(), \
            '420100', '高端装备')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let pool = db::connect(&cfg, &MIGRATOR).await.unwrap();
    let verifier: String = sqlx::query_scalar("SELECT verified_by FROM demands WHERE id = 'd-1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(verifier, "");
    for table in ["pairings", "contracts"] {
        let row: (String, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT facilitator, facilitator_role FROM {table}"
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(row, (String::new(), String::new()), "{table}");
    }
    // Only the two roles (or none) are stored.
    let bad = sqlx::query("UPDATE pairings SET facilitator = 'x', facilitator_role = 'auditor'")
        .execute(&pool)
        .await;
    assert!(bad.is_err(), "{bad:?}");
    pool.close().await;
    cleanup(&settings).await;
}
