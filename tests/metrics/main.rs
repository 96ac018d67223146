//! A real Prometheus scrapes the platform's metrics endpoint while one demand goes from
//! submission to subsidy (DESIGN.md's flow through the four real services), and PromQL finds
//! what happened: the calls by method and code, the outbox and consumer gauges, the fund's
//! balances, the payouts, the embedding backlog and a dead letter.
//!
//! Its own test binary: the recorder is one per process, and no other test's platform may
//! write the same series (the consumers' names are the same on every platform).

use kechuang_e2e::forger::{Forger, Forgery};
use kechuang_e2e::journey::welding::{self, SUBSIDY_FEN};
use kechuang_e2e::journey::{FUND, audit_once_settled, top_up};
use kechuang_e2e::prometheus::{self, JOB, Prometheus};
use kechuang_e2e::{TestPlatform, YUAN, authed, settings, wait_for};
use kechuang_platform::metrics::MetricsServer;
use kechuang_platform::{NewEvent, Settings};
use kechuang_proto::demand as dpb;
use kechuang_proto::events::FundReserved;
use kechuang_proto::events::envelope::Payload;
use tokio_util::sync::CancellationToken;

const TOP_UP_FEN: i64 = 1_000_000 * YUAN;
const SUBMIT: &str = "kechuang.demand.v1.DemandService/SubmitDemand";
const GET_DEMAND: &str = "kechuang.demand.v1.DemandService/GetDemand";
const TOP_UP: &str = "kechuang.fund.v1.FundService/TopUp";

#[tokio::test]
async fn prometheus_scrapes_what_the_platform_did() {
    // The endpoint first, as `kechuang up` binds it: the recorder is installed before the
    // services record anything.
    let metrics = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("the metrics endpoint");
    let target = metrics.local_addr();
    let stop_metrics = CancellationToken::new();
    let served = tokio::spawn(metrics.run_until_stopped(stop_metrics.clone()));
    let platform = TestPlatform::start_with(Settings {
        pairings_per_demand: 2,
        ..settings()
    })
    .await;
    let prometheus = Prometheus::scraping(target).await;

    // One demand to its subsidy: two payouts, both paid at the first attempt.
    let api = platform.api();
    top_up(&api, TOP_UP_FEN, "财预〔2026〕9号").await;
    welding::publish_catalog(&api).await;
    let contracted = welding::to_contract(&api, "MTR000001").await;
    welding::to_subsidy(&contracted).await;
    audit_once_settled(&api, |f| {
        f.reserved_fen == 0 && f.disbursed_fen == SUBSIDY_FEN
    })
    .await;
    // A call answered NOT_FOUND, and an unsigned "reservation" the subsidy service refuses.
    let enterprise = &contracted.journey.enterprise;
    let unknown = dpb::GetDemandRequest {
        demand_id: uuid::Uuid::now_v7().to_string(),
    };
    let refused = api.demands().get_demand(authed(unknown, enterprise)).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::NotFound);
    let forged = Payload::FundReserved(FundReserved {
        fund_id: FUND.into(),
        application_id: "no-such-application".into(),
        transfer_id: "forged".into(),
        amount_fen: 1,
        available_fen: 0,
    });
    Forger::connect(&platform.settings)
        .await
        .publish(NewEvent::new(FUND, 1, forged), Forgery::Unsigned)
        .await;

    // Each query until Prometheus has scraped what it expects (a scrape a second, gauges
    // sampled every second).
    let calls = |service: &str, method: &str, code: &str| {
        format!(
            r#"sum(kc_rpc_duration_seconds_count{{service="{service}",method="{method}",code="{code}"}})"#
        )
    };
    let balance = |account: &str| {
        format!(r#"kc_fund_balance_fen{{service="fund-ledger",fund="{FUND}",account="{account}"}}"#)
    };
    let median = format!(
        r#"histogram_quantile(0.5, sum by (le) (kc_rpc_duration_seconds_bucket{{method="{SUBMIT}"}}))"#
    );
    let expectations = [
        (format!(r#"up{{job="{JOB}"}}"#), expect(|v| v == 1.0)),
        (calls("demand-intake", SUBMIT, "OK"), expect(|v| v == 1.0)),
        (calls("demand-intake", GET_DEMAND, "NOT_FOUND"), expect(|v| v == 1.0)),
        (calls("fund-ledger", TOP_UP, "OK"), expect(|v| v == 1.0)),
        (median, expect(|v| v > 0.0 && v <= 30.0)),
        // Everything published: no backlog left in any of the four outboxes.
        ("count(kc_outbox_backlog == 0)".into(), expect(|v| v == 4.0)),
        ("count(kc_outbox_oldest_age_seconds == 0)".into(), expect(|v| v == 4.0)),
        // Every durable reports its lag, all of it worked off: three of demand-intake and of
        // matching, two of subsidy, one of the fund ledger.
        ("count(kc_consumer_ack_pending_messages == 0)".into(), expect(|v| v == 9.0)),
        ("count(kc_consumer_pending_messages == 0)".into(), expect(|v| v == 9.0)),
        (
            r#"kc_consumer_pending_messages{service="matching",consumer="matching-demand-verified"}"#
                .into(),
            expect(|v| v == 0.0),
        ),
        (balance("disbursed"), expect(|v| v == SUBSIDY_FEN as f64)),
        (balance("available"), expect(|v| v == (TOP_UP_FEN - SUBSIDY_FEN) as f64)),
        (balance("reserved"), expect(|v| v == 0.0)),
        (
            r#"sum(kc_payout_attempts_total{service="subsidy",result="paid"})"#.into(),
            expect(|v| v == 2.0),
        ),
        (r#"kc_embedding_backlog{service="matching"}"#.into(), expect(|v| v == 0.0)),
        (
            r#"kc_dead_letters_total{service="subsidy",consumer="subsidy-fund",reason="unauthentic"}"#
                .into(),
            expect(|v| v == 1.0),
        ),
    ];
    for (promql, holds) in expectations {
        let seen = wait_for(&promql, || async {
            prometheus.value(&promql).await.filter(|v| holds(*v))
        })
        .await;
        eprintln!("{promql} = {seen}");
    }
    // Nothing failed for good, and no forged or failed event other than the one above.
    assert_eq!(
        prometheus.value("sum(kc_payout_failures_total)").await,
        None
    );
    assert_eq!(
        prometheus.value("sum(kc_dead_letters_total)").await,
        Some(1.0)
    );
    dashboard_queries_answer(&prometheus).await;
    // The endpoint Prometheus scraped answers a plain GET too, in the text format.
    let (status, body) = prometheus::get(target, "/metrics")
        .await
        .expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE kc_rpc_duration_seconds histogram"),
        "{body}"
    );

    drop(prometheus);
    platform.stop().await;
    stop_metrics.cancel();
    served
        .await
        .expect("join")
        .expect("the endpoint stops cleanly");
}

/// Panels of the Grafana dashboard with nothing to show after this run: no gateway here, no
/// redelivery, no failed disbursement.
const QUIET_PANELS: [&str; 3] = [
    "Gateway requests by route and status",
    "Redeliveries",
    "Failed disbursements (24 h)",
];

/// Every query of the provisioned dashboard (deploy/grafana) is PromQL this Prometheus
/// accepts, and each panel but the quiet ones gets data (a rate needs a second scrape).
async fn dashboard_queries_answer(prometheus: &Prometheus) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/dashboards/kechuang.json"
    );
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().expect("a title");
        // `$service` is the dashboard's variable; All is `.*`.
        let queries: Vec<String> = panel["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .map(|t| t["expr"].as_str().expect("expr").replace("$service", ".*"))
            .collect();
        let answers = || async {
            let mut series = 0;
            for query in &queries {
                series += prometheus.query(query).await.len();
            }
            series
        };
        if QUIET_PANELS.contains(&title) {
            assert_eq!(answers().await, 0, "panel {title:?} has data");
        } else {
            wait_for(&format!("data in panel {title:?}"), || async {
                (answers().await > 0).then_some(())
            })
            .await;
        }
    }
}

/// What a query's value must satisfy (a function, so that the expectations form one array).
fn expect(holds: fn(f64) -> bool) -> fn(f64) -> bool {
    holds
}
