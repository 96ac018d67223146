//! The platform as separate OS processes: several replicas of every service sharing its
//! database and durable consumers, each on a port the OS picks, all with one test's private
//! databases, stream and subject prefix. Dropping the cluster kills every process it started
//! and drops the databases and the stream, even when the test panicked.
//!
//! Each replica logs JSON to its own file, with the SQL its event handlers run (sqlx logs
//! statements at trace level, `kechuang_platform::db`) inside their `handle_event` spans:
//! [`Cluster::applied`] reads from them which replica applied which event.

use crate::Api;
use kechuang_platform::testing::cleanup;
use kechuang_platform::{ServiceKind, Settings};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Logs: warnings, plus every statement run while handling an event (in a `handle_event`
/// span, which names the consumer and the event).
const RUST_LOG: &str = "warn,[handle_event]=trace";

pub struct Cluster {
    pub settings: Settings,
    replicas: Vec<Replica>,
    logs: PathBuf,
    stopped: bool,
}

/// One process running one service.
struct Replica {
    kind: ServiceKind,
    /// 0 for the first replica of its service, 1 for the second, ...
    number: usize,
    addr: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
}

/// The events one replica applied: (consumer, event id).
#[derive(Debug)]
pub struct Applied {
    pub replica: String,
    pub service: ServiceKind,
    pub events: BTreeSet<(String, Uuid)>,
}

impl Replica {
    /// `matching-a`, `matching-b`, ...
    fn name(&self) -> String {
        replica_name(self.kind, self.number)
    }

    fn is_alive(&self) -> bool {
        self.child.is_some()
    }
}

impl Cluster {
    /// Starts `per_service` replicas of every service as processes of `binary` (which takes
    /// the service's name as its argument and reads `KC_*`, as `kechuang serve` does). The
    /// first replica of each service starts first (it creates the database and the stream),
    /// then the others join.
    pub async fn start(binary: &Path, settings: Settings, per_service: usize) -> Self {
        let logs = std::env::temp_dir().join(format!("kc-e2e-{}", settings.subject_prefix));
        std::fs::create_dir_all(&logs).expect("log directory");
        let mut cluster = Self {
            settings,
            replicas: Vec::new(),
            logs,
            stopped: false,
        };
        let env = environment(&cluster.settings);
        for number in 0..per_service {
            let first = cluster.replicas.len();
            for kind in ServiceKind::ALL {
                let log = cluster
                    .logs
                    .join(format!("{}.log", replica_name(kind, number)));
                let child = spawn(binary, kind, &env, &log);
                cluster.replicas.push(Replica {
                    kind,
                    number,
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    log,
                    child: Some(child),
                });
            }
            for replica in &mut cluster.replicas[first..] {
                replica.addr = listening(replica).await;
            }
        }
        cluster
    }

    /// Clients that take turns over the live replicas of each service.
    pub fn api(&self) -> Api {
        let live: Vec<_> = self
            .replicas
            .iter()
            .filter(|r| r.is_alive())
            .map(|r| (r.kind, r.number, r.addr))
            .collect();
        Api::new(&self.settings.jwt_secret, &live)
    }

    /// SIGKILLs replica `number` of `kind`: no shutdown, no drain, connections cut.
    pub fn kill(&mut self, kind: ServiceKind, number: usize) {
        let replica = self
            .replicas
            .iter_mut()
            .find(|r| r.kind == kind && r.number == number)
            .expect("a started replica");
        if let Some(mut child) = replica.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// Which events each replica applied, from its log: the handler's insert into
    /// `processed_events` that affected a row.
    pub fn applied(&self) -> Vec<Applied> {
        self.replicas
            .iter()
            .map(|r| Applied {
                replica: r.name(),
                service: r.kind,
                events: applied_events(&std::fs::read_to_string(&r.log).unwrap_or_default()),
            })
            .collect()
    }

    /// Kills every replica, drops the databases and the stream, removes the logs.
    pub async fn stop(mut self) {
        self.kill_all();
        cleanup(&self.settings).await;
        self.stopped = true;
        let _ = std::fs::remove_dir_all(&self.logs);
    }

    fn kill_all(&mut self) {
        for replica in &mut self.replicas {
            if let Some(mut child) = replica.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.kill_all();
        crate::cleanup_from_drop(&self.settings);
        eprintln!("cluster: replica logs kept in {}", self.logs.display());
    }
}

fn replica_name(kind: ServiceKind, number: usize) -> String {
    let letter = char::from(b'a' + u8::try_from(number).expect("few replicas"));
    format!("{}-{letter}", kind.name())
}

/// `KC_*` for every setting, so a replica reads exactly `settings` (ports 0: the OS picks).
fn environment(settings: &Settings) -> Vec<(String, String)> {
    let settings = Settings {
        log_format: "json".into(),
        demand_port: 0,
        matching_port: 0,
        subsidy_port: 0,
        fund_port: 0,
        ..settings.clone()
    };
    let serde_json::Value::Object(fields) = serde_json::to_value(&settings).expect("settings")
    else {
        panic!("settings serialise to an object");
    };
    fields
        .into_iter()
        .filter_map(|(key, value)| {
            let value = match value {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some((format!("KC_{}", key.to_uppercase()), value))
        })
        .collect()
}

fn spawn(binary: &Path, kind: ServiceKind, env: &[(String, String)], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut command = Command::new(binary);
    command.arg(kind.name());
    // Only what this test sets: nothing inherited from the shell running the tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("KC_") || key == "OTEL_EXPORTER_OTLP_ENDPOINT" {
            command.env_remove(key);
        }
    }
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", RUST_LOG)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// Waits for the replica's `<service> listening on <addr>` line.
async fn listening(replica: &mut Replica) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(60);
    let marker = format!("{} listening on ", replica.kind.name());
    loop {
        let text = std::fs::read_to_string(&replica.log).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .find_map(|line| line.strip_prefix(&marker))
            .and_then(|a| a.trim().parse().ok())
        {
            return addr;
        }
        let child = replica.child.as_mut().expect("started");
        if let Some(status) = child.try_wait().expect("child status") {
            panic!("{} exited ({status}):\n{text}", replica.name());
        }
        assert!(
            Instant::now() < deadline,
            "{} not listening after 60 s:\n{text}",
            replica.name()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The (consumer, event id) pairs a replica applied, from its JSON log: deliveries whose
/// insert into `processed_events` affected a row, less those whose handler then failed (its
/// transaction rolled back; the event is retried, maybe by another replica).
fn applied_events(log: &str) -> BTreeSet<(String, Uuid)> {
    let mut inserted = BTreeSet::new();
    let mut failed = BTreeSet::new();
    let entries = log
        .lines()
        .filter(|line| line.contains("handle_event"))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok());
    for entry in entries {
        let Some(delivery) = handled_delivery(&entry) else {
            continue;
        };
        let fields = &entry["fields"];
        let statement = format!("{} {}", fields["summary"], fields["db.statement"]);
        if statement.contains("INSERT INTO processed_events") && fields["rows_affected"] == 1 {
            inserted.insert(delivery);
        } else if fields["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("handler failed"))
        {
            failed.insert(delivery);
        }
    }
    inserted
        .difference(&failed)
        .map(|(consumer, event, _)| (consumer.clone(), *event))
        .collect()
}

/// (consumer, event id, delivery number) of the `handle_event` span a log entry was made in.
fn handled_delivery(entry: &serde_json::Value) -> Option<(String, Uuid, i64)> {
    let span = entry["spans"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "handle_event")?;
    Some((
        span["consumer"].as_str()?.to_string(),
        Uuid::parse_str(span["event_id"].as_str()?).ok()?,
        span["delivery"].as_i64()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::applied_events;

    fn line(event: &str, delivery: i64, fields: &str) -> String {
        format!(
            r#"{{"level":"TRACE","fields":{fields},"target":"sqlx::query","spans":[{{"consumer":"c","delivery":{delivery},"event_id":"{event}","name":"handle_event"}}]}}"#
        )
    }

    #[test]
    fn a_delivery_counts_when_its_insert_took_and_its_handler_did_not_fail() {
        let (e1, e2, e3) = (
            "01a20c6e-6871-766e-b203-056825fcfcc5",
            "01a20c6e-6ab1-7647-9847-619c29141e3e",
            "01a20c6e-66a5-7092-80aa-a7a86c815f38",
        );
        let insert = |rows: i64| {
            format!(
                r#"{{"summary":"INSERT INTO processed_events (consumer, …","db.statement":"INSERT INTO processed_events (consumer, event_id, event_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING","rows_affected":{rows}}}"#
            )
        };
        let failure = r#"{"message":"handler failed; will retry","error":"transient: deadlock"}"#;
        let log = [
            line(e1, 1, &insert(1)),
            line(e2, 1, &insert(1)),
            line(e2, 1, failure),
            line(e2, 2, &insert(1)),
            line(e3, 1, &insert(0)),
            "e3 not json handle_event".into(),
        ]
        .join("\n");
        let expected = [e1, e2].map(|e| ("c".to_string(), e.parse().expect("uuid")));
        assert_eq!(applied_events(&log), expected.into());
    }
}
