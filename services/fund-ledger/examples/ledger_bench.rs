//! Reservations + posts per second, run by hand:
//!
//! ```text
//! cargo run --release -p fund-ledger --example ledger_bench
//! ```
//!
//! One operation = a reservation (its own transaction: lock the fund, write the pending
//! transfer, move available→reserved, append `kc.fund.reserved` to the outbox) followed by
//! its post (another transaction: reserved→disbursed, `kc.fund.posted`), as the event
//! handlers do them, minus NATS. Every movement of one fund is serialised by its row lock,
//! so one fund's rate is bounded by one commit after another; the last rows spread the same
//! work over several funds. Beside them: the same Postgres's single-row INSERT+COMMIT rate,
//! measured in the same run. `BENCH_OPS` scales the number of operations (default 2000).

use fund_ledger::domain::TransferKind;
use fund_ledger::ledger::{self, Reserved, Resolved};
use fund_ledger::{MIGRATOR, api};
use kechuang_platform::bench::{Figures, drive, postgres_insert_commit};
use kechuang_platform::config::DatabaseConfig;
use kechuang_platform::{Settings, db};
use sqlx::PgPool;

const AMOUNT_FEN: i64 = 100;

async fn reserve_and_post(pool: PgPool, fund_id: String, app: String) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let reserved = ledger::reserve(&mut tx, &fund_id, &app, AMOUNT_FEN, None).await?;
    tx.commit().await?;
    anyhow::ensure!(
        matches!(reserved, Reserved::Reserved { .. }),
        "{reserved:?}"
    );
    let mut tx = pool.begin().await?;
    let posted = ledger::resolve(&mut tx, TransferKind::Post, &app, None, None).await?;
    tx.commit().await?;
    anyhow::ensure!(matches!(posted, Resolved::Written { .. }), "{posted:?}");
    Ok(())
}

async fn run(
    pool: &PgPool,
    funds: usize,
    concurrency: usize,
    ops: usize,
) -> anyhow::Result<Figures> {
    let mut ids = Vec::new();
    for f in 0..funds {
        let id = format!("bench-{concurrency}-{funds}-{f}");
        let mut tx = pool.begin().await?;
        ledger::create_fund(&mut tx, &id, "压测资金", 0).await?;
        ledger::top_up(&mut tx, &id, AMOUNT_FEN * ops as i64, &format!("{id}-doc")).await?;
        tx.commit().await?;
        ids.push(id);
    }
    let label = if funds == 1 {
        "reserve+post, one fund".to_string()
    } else {
        format!("reserve+post, {funds} funds")
    };
    let pool = pool.clone();
    let prefix = label.clone();
    Ok(drive(&label, concurrency, ops, move |i| {
        let fund_id = ids[i % ids.len()].clone();
        reserve_and_post(pool.clone(), fund_id, format!("{prefix}-{concurrency}-{i}"))
    })
    .await)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ops: usize = std::env::var("BENCH_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let server_url = Settings::default().database_url;
    println!("{}", Figures::header());
    // The limit first, before the ledger's pool holds its connections: the server allows
    // only so many, and other work on this machine uses some.
    for concurrency in [1, 8, 64] {
        let f = postgres_insert_commit(&server_url, concurrency, ops).await?;
        println!("{}", f.row());
    }
    let name = format!(
        "kc_bench_ledger_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let cfg = DatabaseConfig {
        server_url: server_url.clone(),
        name: name.clone(),
        max_connections: 65,
    };
    let pool = db::connect(&cfg, &MIGRATOR).await?;
    for (funds, concurrency) in [(1, 1), (1, 8), (1, 64), (8, 8), (8, 64)] {
        let f = run(&pool, funds, concurrency, ops).await?;
        println!("{}", f.row());
    }
    let mut conn = pool.acquire().await?;
    let report = api::reconcile(&mut conn, None).await?;
    println!(
        "reconcile after the run: {} transfers, {} violation(s)",
        report.transfer_count,
        report.violations.len()
    );
    drop(conn);
    pool.close().await;
    let admin = PgPool::connect(&format!("{server_url}/postgres")).await?;
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&admin)
        .await?;
    Ok(())
}
