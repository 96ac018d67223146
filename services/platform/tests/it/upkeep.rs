use crate::helpers::*;
use kechuang_platform::upkeep;
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};

async fn plan(conn: &mut PgConnection, ids: &str) -> String {
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN EXECUTE lookup('{ids}')"
    )))
    .fetch_all(conn)
    .await
    .unwrap();
    lines.join("\n")
}

/// A statement prepared while its table was small (a fresh deployment's first minutes) keeps scanning the whole table as it grows;
/// the service's upkeep analyzes the grown table, and the statement is planned again with the
/// index. Then, with nothing changed, it leaves the table alone.
#[tokio::test]
async fn a_grown_table_is_analyzed_and_its_prepared_statements_planned_again() {
    let (pool, db_name) = test_db().await;
    sqlx::query("CREATE TABLE lookups (id UUID PRIMARY KEY, note TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let fill = |rows: i32| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO lookups SELECT gen_random_uuid(), repeat('x', 100) \
                 FROM generate_series(1, $1)",
            )
            .bind(rows)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    // The planner counted a page of rows (as when a service's statements are first prepared).
    fill(40).await;
    sqlx::query("ANALYZE lookups").execute(&pool).await.unwrap();
    let url = format!("{PG}/{db_name}");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("PREPARE lookup(uuid[]) AS SELECT note FROM lookups WHERE id = ANY($1)")
        .execute(&mut conn)
        .await
        .unwrap();
    let ids = "{00000000-0000-0000-0000-000000000001}";
    let small = plan(&mut conn, ids).await;
    assert!(small.contains("Seq Scan on lookups"), "{small}");

    fill(20_000).await;
    let grown = plan(&mut conn, ids).await;
    assert!(
        grown.contains("Seq Scan on lookups"),
        "still the small table's plan: {grown}"
    );

    // Postgres reports a session's row counts about once a second.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let analyzed = upkeep::tend(&pool).await.unwrap();
        if analyzed.iter().any(|t| t == "lookups") {
            break;
        }
        assert!(Instant::now() < deadline, "lookups never analyzed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'lookups'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!((19_000.0..=21_000.0).contains(&rows), "{rows}");
    let replanned = plan(&mut conn, ids).await;
    assert!(
        replanned.contains("lookups_pkey") && !replanned.contains("Seq Scan"),
        "{replanned}"
    );

    // Counted right now: nothing more to do however often it looks.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for _ in 0..3 {
        let again = upkeep::tend(&pool).await.unwrap();
        assert!(!again.iter().any(|t| t == "lookups"), "{again:?}");
    }

    conn.close().await.unwrap();
    drop_db(pool, &db_name).await;
}
