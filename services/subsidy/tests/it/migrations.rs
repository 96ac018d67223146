//! Migrations that move data, run against a database that holds what the earlier schema wrote.

use kechuang_platform::ServiceKind;
use kechuang_platform::db;
use kechuang_platform::testing::{cleanup, isolated_settings};
use sqlx::migrate::Migrator;
use subsidy::MIGRATOR;

/// 0002: the seeded policy stays in force, decided by the seed; every version one officer
/// created alone before maker–checker goes back to PROPOSED.
#[tokio::test]
async fn policies_created_alone_go_back_to_proposed_and_the_seed_stays_in_force() {
    let settings = isolated_settings();
    let cfg = settings.service(ServiceKind::Subsidy).database;
    let before = Migrator::with_migrations(MIGRATOR.migrations[..1].to_vec());
    let pool = db::connect(&cfg, &before).await.unwrap();
    sqlx::query(
        "INSERT INTO policies (id, name, version, fund_id, tiers, per_contract_cap_fen, \
            per_enterprise_annual_cap_fen, contract_types, region_prefixes, industry_chains, \
            valid_from, four_eyes_threshold_fen, created_by) \
         SELECT id, name, version, 'fund-default', '[{\"from_cumulative_fen\":0,\"ratio_bps\":1000}]', \
            100000000, 100000000, '{}', '{42}', '{}', now(), 10000000, created_by \
         FROM (VALUES ('pol-hubei-tech-contract', '湖北', 1, 'seed'), \
                      ('pol-officer-v2', '湖北', 2, 'wang.fang'), \
                      ('pol-seed-named', '武汉', 1, 'seed')) AS p(id, name, version, created_by)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let pool = db::connect(&cfg, &MIGRATOR).await.unwrap();
    let windows: Vec<i32> = sqlx::query_scalar("SELECT claim_window_days FROM policies")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(windows, [365; 3], "0003: a year to claim, as before");
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, status, decided_by FROM policies ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let rows: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("pol-hubei-tech-contract", "IN_FORCE", "seed"),
            ("pol-officer-v2", "PROPOSED", ""),
            // An officer whose token says "seed" is still one officer alone.
            ("pol-seed-named", "PROPOSED", ""),
        ]
    );
    pool.close().await;
    cleanup(&settings).await;
}

/// 0005: a contract recorded before registration existed waits for it too, its deadline 30
/// days after its signing.
#[tokio::test]
async fn contracts_recorded_before_registration_wait_for_it() {
    let settings = isolated_settings();
    let cfg = settings.service(ServiceKind::Subsidy).database;
    let before = Migrator::with_migrations(MIGRATOR.migrations[..4].to_vec());
    let pool = db::connect(&cfg, &before).await.unwrap();
    sqlx::query(
        "INSERT INTO contracts (id, demand_id, pairing_id, enterprise_id, supplier, contract_no, \
            contract_type, amount_fen, signed_at, region_code, industry_chain) \
         VALUES ('c-old', 'd-1', 'p-1', 'e-1', '华中科技大学', 'HT-1', 2, 100000, \
            '2026-01-01T00:00:00Z', '420100', '高端装备')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let pool = db::connect(&cfg, &MIGRATOR).await.unwrap();
    let (status, deadline): (String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT status, deadline FROM registrations WHERE contract_id = 'c-old'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "WAITING");
    assert_eq!(deadline.to_rfc3339(), "2026-01-31T00:00:00+00:00");
    pool.close().await;
    cleanup(&settings).await;
}

/// 0007: a contract recorded before the supplier's region was kept has none ('': its
/// exported side in the monthly figures belongs to no city, see figures.rs).
#[tokio::test]
async fn contracts_recorded_before_0007_have_no_supplier_region() {
    let settings = isolated_settings();
    let cfg = settings.service(ServiceKind::Subsidy).database;
    let before = Migrator::with_migrations(
        MIGRATOR
            .migrations
            .iter()
            .filter(|m| m.version < 7)
            .cloned()
            .collect(),
    );
    let pool = db::connect(&cfg, &before).await.unwrap();
    sqlx::query(
        "INSERT INTO contracts (id, demand_id, pairing_id, enterprise_id, supplier, contract_no, \
            contract_type, amount_fen, signed_at, region_code, industry_chain) \
         VALUES ('c-old', 'd-1', 'p-1', 'e-1', '华中科技大学', 'HT-1', 2, 100000, \
            '2026-01-01T00:00:00Z', '420100', '高端装备')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let pool = db::connect(&cfg, &MIGRATOR).await.unwrap();
    let region: String =
        sqlx::query_scalar("SELECT supplier_region_code FROM contracts WHERE id = 'c-old'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(region, "");
    pool.close().await;
    cleanup(&settings).await;
}
