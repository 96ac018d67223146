//! `kechuang dlq` end to end: the built binary, pointed by `KC_*` at a test's own stream,
//! lists, shows, replays and purges what a real consumer dead-lettered.

use kechuang_platform::consumer::{Consumer, ConsumerSpec, EventHandler, HandlerError};
use kechuang_platform::dead_letters::DeadLetters;
use kechuang_platform::testing::{
    cleanup, event_keys_of, eventually, isolated_settings, sealed_headers, signers,
};
use kechuang_platform::{NewEvent, ServiceKind, Settings, bus, db};
use kechuang_proto::events::{Envelope, FundLowBalance, envelope::Payload};
use prost::Message;
use sqlx::PgConnection;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_kechuang");
const DURABLE: &str = "fund-ledger-funds";

/// Fails for good on the funds it is told are broken; counts what it handles.
struct Funds {
    broken: Mutex<HashSet<String>>,
    handled: AtomicUsize,
}

impl EventHandler for Funds {
    async fn handle(&self, event: &Envelope, _tx: &mut PgConnection) -> Result<(), HandlerError> {
        if self.broken.lock().unwrap().contains(&event.aggregate_id) {
            return Err(HandlerError::Permanent(format!(
                "fund {} is not open",
                event.aggregate_id
            )));
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Runs `kechuang dlq <args>` against `settings`' stream: (succeeded, stdout, stderr).
async fn dlq(settings: &Settings, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(BIN)
        .arg("dlq")
        .args(args)
        .env("KC_NATS_URL", &settings.nats_url)
        .env("KC_STREAM_NAME", &settings.stream_name)
        .env("KC_SUBJECT_PREFIX", &settings.subject_prefix)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn low_balance(fund: &str) -> Envelope {
    NewEvent::new(
        fund,
        1,
        Payload::FundLowBalance(FundLowBalance {
            fund_id: fund.into(),
            available_fen: 42,
            low_balance_fen: 100,
        }),
    )
    .into_envelope("fund-ledger", chrono::Utc::now())
}

static NO_MIGRATIONS: LazyLock<sqlx::migrate::Migrator> =
    LazyLock::new(|| sqlx::migrate::Migrator::with_migrations(Vec::new()));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_lists_shows_replays_and_purges_what_a_consumer_dead_lettered() {
    let settings = isolated_settings();
    let config = settings.service(ServiceKind::FundLedger);
    let pool = db::connect(&config.database, &NO_MIGRATIONS).await.unwrap();
    let js = bus::connect(&config.bus, "dlq-test").await.unwrap();
    bus::ensure_stream(&js, &config.bus).await.unwrap();
    let (late, poison) = (low_balance("fund-late"), low_balance("fund-poison"));
    let signer = &signers(&settings)["fund-ledger"];
    for event in [&late, &poison] {
        let body = event.encode_to_vec();
        js.publish_with_headers(
            config.bus.subject(&event.event_type),
            sealed_headers(signer, &body),
            body.into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let funds = Arc::new(Funds {
        broken: Mutex::new(["fund-late".into(), "fund-poison".into()].into()),
        handled: AtomicUsize::new(0),
    });
    let stop = CancellationToken::new();
    let consumer = Consumer::new(
        pool.clone(),
        js.clone(),
        config.bus.clone(),
        "fund-ledger",
        ConsumerSpec::new(DURABLE, "fund.*"),
        funds.clone(),
        Arc::new(event_keys_of(&settings, "fund-ledger")),
    );
    let task = tokio::spawn(consumer.run(stop.clone()));
    let letters = DeadLetters::new(js.clone(), config.bus.clone());
    let waiting = || async { letters.list(None, 0, 10).await.unwrap().letters };
    eventually(Duration::from_secs(30), "two dead letters", || async {
        waiting().await.len() == 2
    })
    .await;
    let ids: Vec<String> = waiting().await.iter().map(|l| l.id.to_string()).collect();
    let (late_id, poison_id) = (ids[0].as_str(), ids[1].as_str());

    // list: a table of both, and the count.
    let (ok, out, err) = dlq(&settings, &["list"]).await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("ERROR"),
        "{out}"
    );
    for (line, id, event) in [(lines[1], late_id, &late), (lines[2], poison_id, &poison)] {
        assert!(line.starts_with(id), "{out}");
        assert!(line.contains(&event.event_id), "{out}");
        assert!(
            line.contains(DURABLE) && line.contains("fund-ledger "),
            "{out}"
        );
        assert!(
            line.contains(&config.bus.subject("fund.low_balance")),
            "{out}"
        );
        assert!(
            line.contains("permanent: fund fund-") && line.contains(" 1 "),
            "{out}"
        );
    }
    assert_eq!(lines[3], "2 shown, no more");
    let (ok, out, _) = dlq(
        &settings,
        &["list", "--limit", "1", "--service", "fund-ledger"],
    )
    .await;
    assert!(ok);
    assert!(
        out.contains(&late.event_id) && !out.contains(&poison.event_id),
        "{out}"
    );
    assert!(out.ends_with(&format!(
        "1 shown, 1 more: kechuang dlq list --service fund-ledger --after {late_id}\n"
    )));

    // show: the dead letter and its event, decoded.
    let (ok, out, _) = dlq(&settings, &["show", late_id]).await;
    assert!(ok);
    let field = |name: &str, value: &str| format!("  {name:<15} {value}\n");
    for expected in [
        format!("dead letter {late_id}\n"),
        field("consumer", DURABLE),
        field("error", "permanent: fund fund-late is not open"),
        field("deliveries", "1"),
        field("id", &late.event_id),
        field("type", "fund.low_balance"),
        "fund-late (version 1)".into(),
        "FundLowBalance(".into(),
        "available_fen: 42".into(),
        "Kc-Signature: ".into(),
    ] {
        assert!(out.contains(&expected), "{expected:?} not in:\n{out}");
    }

    // replay one: fixed since, it is handled once and leaves the list.
    funds.broken.lock().unwrap().remove("fund-late");
    let (ok, out, err) = dlq(&settings, &["replay", late_id]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!(
            "replayed dead letter {late_id} (event {}) to consumer {DURABLE} as stream message ",
            late.event_id
        )),
        "{out}"
    );
    eventually(Duration::from_secs(30), "the replay handled", || async {
        funds.handled.load(Ordering::SeqCst) == 1
    })
    .await;
    let (_, out, _) = dlq(&settings, &["list"]).await;
    assert!(!out.contains(&late.event_id) && out.contains(&poison.event_id));

    // replay --all: the poison fails again and is back under a new id, saying so.
    let (ok, out, _) = dlq(&settings, &["replay", "--all"]).await;
    assert!(ok);
    assert_eq!(out, "replayed 1 dead letter\n");
    eventually(Duration::from_secs(30), "the poison back", || async {
        waiting().await.iter().any(|l| l.replay_of.is_some())
    })
    .await;
    let again = waiting().await.remove(0).id.to_string();
    let (_, out, _) = dlq(&settings, &["show", &again]).await;
    assert!(
        out.contains(&field("replay of", &format!("dead letter {poison_id}"))),
        "{out}"
    );

    // purge one, then all: nothing left, and each says what it did.
    let (ok, out, _) = dlq(&settings, &["purge", &again]).await;
    assert!(ok);
    assert_eq!(
        out,
        format!(
            "purged dead letter {again} (event {}, consumer {DURABLE})\n",
            poison.event_id
        )
    );
    let (ok, out, _) = dlq(&settings, &["purge", "--all", "--service", "fund-ledger"]).await;
    assert!(ok);
    assert_eq!(out, "purged 0 dead letters of fund-ledger\n");
    let (ok, out, _) = dlq(&settings, &["list"]).await;
    assert!(ok);
    assert_eq!(out, "no dead letters\n");
    let (_, out, _) = dlq(&settings, &["list", "--service", "subsidy", "--after", "3"]).await;
    assert_eq!(out, "no dead letters of subsidy after 3\n");
    assert_eq!(
        funds.handled.load(Ordering::SeqCst),
        1,
        "handled exactly once"
    );

    // What cannot be done says why, and fails.
    let (ok, _, err) = dlq(&settings, &["show", late_id]).await;
    assert!(
        !ok && err.contains(&format!("no dead letter {late_id}")),
        "{err}"
    );
    let (ok, _, err) = dlq(&settings, &["replay"]).await;
    assert!(!ok && err.contains("<ID>"), "{err}");
    let (ok, _, err) = dlq(&settings, &["list", "--service", "ledger"]).await;
    assert!(!ok && err.contains("fund-ledger"), "{err}");

    stop.cancel();
    task.await.unwrap();
    pool.close().await;
    cleanup(&settings).await;
}
