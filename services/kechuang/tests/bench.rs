//! `kechuang bench --quick --json` end to end against the real servers: every section reports
//! its figures with sane values (counts, not times: no test asserts a speed), each compared
//! with its limit and target, and the bench's databases and stream are gone afterwards.

use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kechuang");

fn rows<'a>(report: &'a Value, section: &str) -> Vec<&'a Value> {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["section"] == section)
        .collect()
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number, got {v}"))
}

#[tokio::test]
async fn a_quick_bench_reports_every_figure_beside_its_limit_and_cleans_up() {
    let output = Command::new(BIN)
        .args(["bench", "--quick", "--json"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));

    for row in report["rows"].as_array().unwrap() {
        assert!(row["operations"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
        assert!(number(&row["per_second"]) > 0.0, "{row}");
        if !row["p50_ms"].is_null() {
            let (p50, p99) = (number(&row["p50_ms"]), number(&row["p99_ms"]));
            // A saga's relay may publish its event before the caller has the answer: that hop
            // counts 0, and so may its median.
            let hop = row["measure"]
                .as_str()
                .unwrap()
                .trim_start()
                .starts_with("hop:");
            let least = if hop { 0.0 <= p50 } else { 0.0 < p50 };
            assert!(least && p50 <= p99, "{row}");
        }
    }
    let limits = rows(&report, "limits");
    for limit in [
        "postgres_insert_commit",
        "postgres_update_commit",
        "jetstream_publish_ack",
    ] {
        let levels: Vec<u64> = limits
            .iter()
            .filter(|r| r["limit"] == limit)
            .map(|r| r["concurrency"].as_u64().unwrap())
            .collect();
        assert_eq!(levels, [1, 8, 64], "{limit}");
    }
    let intake = rows(&report, "intake");
    let of = |measure: &str| -> Vec<&Value> {
        intake
            .iter()
            .copied()
            .filter(|r| r["measure"].as_str().unwrap().trim_start() == measure)
            .collect()
    };
    let submits = of("SubmitDemand (gRPC)");
    assert_eq!(submits.len(), 3);
    assert_eq!(intake.len(), 9, "three rows a level: {intake:?}");
    // The gRPC floor beside each level, with no target of its own.
    for row in of("Health/Check (gRPC floor)") {
        assert!(row["target"].is_null(), "{row}");
    }
    // SubmitDemand's statement alone beside each level: compared with the limit, no target.
    let statements = of("its statement alone (no gRPC)");
    assert_eq!(statements.len(), 3, "{intake:?}");
    for row in &statements {
        assert_eq!(row["operations"], 64, "{row}");
        assert_eq!(row["vs_limit"]["limit"], "postgres_insert_commit");
        assert_eq!(row["vs_limit"]["concurrency"], row["concurrency"]);
        assert!(row["target"].is_null(), "{row}");
    }
    for row in &submits {
        assert_eq!(row["vs_limit"]["limit"], "postgres_insert_commit");
        assert_eq!(row["vs_limit"]["concurrency"], row["concurrency"]);
        assert!(number(&row["vs_limit"]["ratio"]) > 0.0, "{row}");
        assert!(row["target"]["met"].is_boolean(), "{row}");
        assert!(
            row["target"]["goal"]
                .as_str()
                .unwrap()
                .starts_with("≥ 0.50")
        );
    }
    // The embedding model's own rate, measured before the import, is a limit of its own.
    let model: Vec<&Value> = limits
        .iter()
        .filter(|r| r["limit"] == "embedding_model")
        .copied()
        .collect();
    assert_eq!(model.len(), 1, "{limits:?}");
    assert!(number(&model[0]["per_second"]) > 0.0, "{:?}", model[0]);
    let matching = rows(&report, "matching");
    assert_eq!(
        matching.len(),
        6,
        "import, published, background embedding, three levels"
    );
    assert_eq!(report["run"]["achievements"], 2000);
    for row in &matching[..2] {
        assert_eq!(row["operations"], 2000, "the whole catalog: {row}");
        assert!(row["p50_ms"].is_null());
    }
    assert_eq!(matching[1]["vs_limit"]["limit"], "jetstream_publish_ack");
    assert_eq!(matching[2]["vs_limit"]["limit"], "embedding_model");
    assert!(
        number(&matching[2]["vs_limit"]["ratio"]) > 0.0,
        "{}",
        matching[2]
    );
    let approval = rows(&report, "approval");
    let (ledger, saga): (Vec<&Value>, Vec<&Value>) = approval
        .iter()
        .partition(|r| r["measure"] == "reserve + post, one fund");
    // Under each saga run, one row per hop: figures without a target of their own.
    let (hops, saga): (Vec<&Value>, Vec<&Value>) = saga.into_iter().partition(|r| {
        r["measure"]
            .as_str()
            .unwrap()
            .trim_start()
            .starts_with("hop:")
    });
    assert_eq!(hops.len(), 3 * 5, "five hops at each level: {hops:?}");
    for row in &hops {
        assert_eq!(
            row["operations"], 64,
            "every application's events seen: {row}"
        );
        assert!(row["target"].is_null(), "{row}");
    }
    for row in matching[3..].iter().chain(&saga) {
        assert_eq!(row["operations"], 64, "{row}");
        let target = &row["target"];
        assert!(number(&target["value"]) > 0.0, "{row}");
    }
    assert_eq!(matching[3]["target"]["goal"], "p99 < 250 ms");
    assert_eq!(saga.len(), 3, "{approval:?}");
    assert_eq!(saga[0]["target"]["goal"], "p99 < 200 ms");
    assert_eq!(
        saga[2]["target"]["goal"], "p99 < 200 ms at ≥ 600 a second",
        "64 approvers are held to the rate too"
    );
    // The ledger alone on one fund, beside one hot row's UPDATE+COMMIT at the same level.
    assert_eq!(ledger.len(), 3, "{approval:?}");
    for row in &ledger {
        assert_eq!(row["vs_limit"]["limit"], "postgres_update_commit", "{row}");
        assert_eq!(row["vs_limit"]["concurrency"], row["concurrency"]);
        assert!(number(&row["vs_limit"]["ratio"]) > 0.0, "{row}");
        assert!(row["target"].is_null(), "{row}");
    }
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(!report["machine"]["nats"].as_str().unwrap().is_empty());

    // Nothing left behind.
    let prefix = report["run"]["database_prefix"].as_str().unwrap();
    assert!(prefix.starts_with("kcb_"), "{prefix}");
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE starts_with(datname, $1)")
            .bind(prefix)
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(left, 0, "databases {prefix}* remain");
    let js = async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await.unwrap());
    let stream = report["run"]["stream"].as_str().unwrap();
    assert!(
        js.get_stream(stream).await.is_err(),
        "stream {stream} remains"
    );
}

#[test]
fn bad_options_are_refused_with_the_option_named() {
    for (args, names) in [
        (&["bench", "--only", "everything"][..], "--only"),
        (&["bench", "--concurrency", "0"][..], "--concurrency"),
        (&["bench", "--ops", "0"][..], "--ops"),
        (&["bench", "--achievements", "0"][..], "--achievements"),
        (&["bench", "--json", "--markdown"][..], "--markdown"),
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}
