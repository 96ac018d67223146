//! What a run must leave behind, read from the services' databases and the stream: every
//! event published once and handled once by each consumer of it ([`Books::exactly_once`]),
//! and rows counting exactly what the flow implies ([`Books::tally`]).

use async_nats::jetstream::{self, Context as JetStream, consumer};
use futures::TryStreamExt;
use kechuang_platform::testing::stream_envelopes;
use kechuang_platform::{ServiceKind, Settings};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

mod tally;
pub use tally::Tally;

/// Read access to one platform's databases and stream.
pub struct Books {
    settings: Settings,
    pools: Vec<(ServiceKind, PgPool)>,
    jetstream: JetStream,
}

/// One durable consumer after the run.
#[derive(Debug)]
pub struct Delivery {
    pub consumer: String,
    pub service: ServiceKind,
    /// The events it handled: exactly those its filter selects, each once.
    pub events: BTreeSet<Uuid>,
}

/// Creates and migrates every service database and has each record the outbox rows written
/// from then on ([`kechuang_platform::testing::tap_outbox`]): the relays delete rows once
/// published, and [`Books::exactly_once`] compares what was written with the stream. Run it
/// before the services start: one writes an event as it starts (the default fund), and its
/// relay could publish and delete it before a tap installed later saw it.
pub async fn prepare_databases(settings: &Settings) {
    for kind in ServiceKind::ALL {
        let db = settings.service(kind).database;
        let pool = kechuang_platform::db::connect(&db, kechuang::migrator(kind))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.name));
        kechuang_platform::testing::tap_outbox(&pool).await;
        pool.close().await;
    }
}

impl Books {
    pub async fn open(settings: &Settings) -> Self {
        let mut pools = Vec::new();
        for kind in ServiceKind::ALL {
            let db = settings.service(kind).database;
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(&format!("{}/{}", db.server_url, db.name))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", db.name));
            pools.push((kind, pool));
        }
        let client = async_nats::connect(&settings.nats_url).await.expect("NATS");
        Self {
            settings: settings.clone(),
            pools,
            jetstream: jetstream::new(client),
        }
    }

    pub fn pool(&self, kind: ServiceKind) -> &PgPool {
        self.pools
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p)
            .expect("a pool per service")
    }

    /// Waits until every outbox is drained and every consumer has caught up, then checks that
    /// the stream holds each event written to an outbox exactly once (no dead letters), and
    /// that each durable consumer processed exactly the events its filter selects, once each.
    pub async fn exactly_once(&self) -> Vec<Delivery> {
        let written = self.settled().await;
        let stream_ids: Vec<Uuid> = stream_envelopes(
            &self.jetstream,
            &self.settings.stream_name,
            &self.settings.subject_prefix,
        )
        .await
        .iter()
        .map(|e| Uuid::parse_str(&e.event_id).expect("event ids are UUIDs"))
        .collect();
        let unique: BTreeSet<Uuid> = stream_ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            stream_ids.len(),
            "an event is in the stream twice"
        );
        let outbox: BTreeSet<Uuid> = written.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            unique, outbox,
            "the stream holds exactly what the outboxes wrote"
        );
        let stored = self.stream_messages().await;
        assert_eq!(
            stored,
            written.len() as u64,
            "nothing else in the stream (dead letters)"
        );

        let consumers = self.consumers().await;
        assert!(!consumers.is_empty(), "no consumer on the stream");
        let mut deliveries = Vec::new();
        for info in consumers {
            let service = owner(&info.name);
            let expected: BTreeSet<Uuid> = written
                .iter()
                .filter(|(_, event_type)| {
                    let subject = format!("{}.{event_type}", self.settings.subject_prefix);
                    subject_matches(&info.config.filter_subject, &subject)
                        && acts_on(&info.name, event_type)
                })
                .map(|(id, _)| *id)
                .collect();
            let rows: Vec<(Uuid, i64)> = sqlx::query_as(
                "SELECT event_id, count(*) FROM processed_events WHERE consumer = $1 \
                 GROUP BY event_id",
            )
            .bind(&info.name)
            .fetch_all(self.pool(service))
            .await
            .expect("processed events");
            let twice: Vec<_> = rows.iter().filter(|(_, n)| *n != 1).collect();
            assert!(twice.is_empty(), "{}: handled twice: {twice:?}", info.name);
            let events: BTreeSet<Uuid> = rows.into_iter().map(|(id, _)| id).collect();
            assert_eq!(
                events, expected,
                "{} handled exactly the events of {}",
                info.name, info.config.filter_subject
            );
            deliveries.push(Delivery {
                consumer: info.name,
                service,
                events,
            });
        }
        deliveries
    }

    /// Every event written to an outbox (id, type), once the outboxes are drained and every
    /// consumer has acknowledged everything it was given.
    async fn settled(&self) -> Vec<(Uuid, String)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut unsent = 0;
            for (_, pool) in &self.pools {
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
                    .fetch_one(pool)
                    .await
                    .expect("outbox");
                unsent += n;
            }
            // Audit entries the subsidy service has yet to link: each linking pass writes an
            // event (its anchor, `kc.audit.anchored`), so the books are not settled before.
            let (_, subsidy) = self
                .pools
                .iter()
                .find(|(kind, _)| *kind == ServiceKind::Subsidy)
                .expect("the subsidy database");
            let unlinked: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_queue")
                .fetch_one(subsidy)
                .await
                .expect("audit queue");
            let busy: Vec<String> = self
                .consumers()
                .await
                .into_iter()
                .filter(|c| c.num_pending > 0 || c.num_ack_pending > 0)
                .map(|c| c.name)
                .collect();
            if unsent == 0 && unlinked == 0 && busy.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not settled after 60 s: {unsent} unsent, {unlinked} audit entries unlinked, \
                 consumers busy: {busy:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut written = Vec::new();
        for (_, pool) in &self.pools {
            let rows: Vec<(Uuid, String)> =
                sqlx::query_as("SELECT event_id, event_type FROM outbox_written ORDER BY id")
                    .fetch_all(pool)
                    .await
                    .expect("outbox");
            written.extend(rows);
        }
        written
    }

    /// How many events the services have written so far (every write of the platform writes
    /// at least one): equal before and after a call means the call stored nothing.
    pub async fn events_written(&self) -> i64 {
        let mut total = 0;
        for (_, pool) in &self.pools {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_written")
                .fetch_one(pool)
                .await
                .expect("outbox");
            total += n;
        }
        total
    }

    /// Waits until the platform is quiet: outboxes drained, consumers caught up.
    pub async fn quiesce(&self) {
        self.settled().await;
    }

    async fn consumers(&self) -> Vec<consumer::Info> {
        let stream = self
            .jetstream
            .get_stream(&self.settings.stream_name)
            .await
            .expect("the stream");
        stream
            .consumers()
            .try_collect()
            .await
            .expect("consumer infos")
    }

    async fn stream_messages(&self) -> u64 {
        let mut stream = self
            .jetstream
            .get_stream(&self.settings.stream_name)
            .await
            .expect("the stream");
        stream.info().await.expect("stream info").state.messages
    }

    pub async fn close(self) {
        for (_, pool) in self.pools {
            pool.close().await;
        }
    }
}

/// The service a durable consumer belongs to: its name starts with the service's.
fn owner(consumer: &str) -> ServiceKind {
    ServiceKind::ALL
        .into_iter()
        .filter(|k| consumer.starts_with(&format!("{}-", k.name())))
        .max_by_key(|k| k.name().len())
        .unwrap_or_else(|| panic!("consumer {consumer} of no service"))
}

/// NATS subject matching: `*` is one token, `>` the rest.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for pattern in filter.split('.') {
        match (pattern, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// Whether the consumer `durable` acts on (and so records) events of `event_type`: the
/// handlers behind a wildcard filter acknowledge the types they ignore unrecorded.
fn acts_on(durable: &str, event_type: &str) -> bool {
    match durable {
        "subsidy-fund" => subsidy::events::FUND_ANSWERS.contains(&event_type),
        "fund-ledger-subsidy" => fund_ledger::events::MONEY_MOVES.contains(&event_type),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn nats_wildcards() {
        assert!(subject_matches("t1.pairing.*", "t1.pairing.proposed"));
        assert!(!subject_matches("t1.pairing.*", "t1.pairing.proposed.x"));
        assert!(!subject_matches("t1.pairing.*", "t1.contract.signed"));
        assert!(subject_matches("t1.contract.signed", "t1.contract.signed"));
        assert!(subject_matches("t1.>", "t1.fund.posted"));
        assert!(!subject_matches("t1.>", "t1"));
        assert!(!subject_matches("t1.fund", "t1.fund.posted"));
    }
}
