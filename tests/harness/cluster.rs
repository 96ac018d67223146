//! The platform as separate OS processes: several replicas of every service sharing its
//! database and durable consumers, each on a port the OS picks, all with one test's private
//! databases, stream and subject prefix. Dropping the cluster kills every process it started
//! and drops the databases and the stream, even when the test panicked.
//!
//! Each replica logs JSON to its own file, with a line for every event its consumers applied
//! (target `kechuang::applied`, written after the commit): [`Cluster::applied`] reads from
//! them which replica applied which event.

use crate::Api;
use kechuang_platform::consumer::APPLIED_TARGET;
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
const RUST_LOG: &str = "warn,kechuang::applied=debug";

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
        crate::books::prepare_databases(&cluster.settings).await;
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
        Api::new(&self.settings, &live)
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

/// The (consumer, event id) pairs a replica applied, from its JSON log: the line the
/// consumer writes once an event's transaction has committed.
fn applied_events(log: &str) -> BTreeSet<(String, Uuid)> {
    log.lines()
        .filter(|line| line.contains(APPLIED_TARGET))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["target"] == APPLIED_TARGET)
        .filter_map(|entry| {
            let fields = &entry["fields"];
            Some((
                fields["consumer"].as_str()?.to_string(),
                Uuid::parse_str(fields["event_id"].as_str()?).ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::applied_events;

    #[test]
    fn only_committed_applications_count() {
        let (e1, e2) = (
            "01a20c6e-6871-766e-b203-056825fcfcc5",
            "01a20c6e-6ab1-7647-9847-619c29141e3e",
        );
        let applied = |event: &str| {
            format!(
                r#"{{"level":"DEBUG","fields":{{"message":"event applied","consumer":"c","event_id":"{event}"}},"target":"kechuang::applied"}}"#
            )
        };
        let log = [
            applied(e1),
            r#"{"level":"WARN","fields":{"message":"handler failed; will retry"},"target":"kechuang_platform::consumer"}"#.into(),
            applied(e2),
            "kechuang::applied but not json".into(),
        ]
        .join("\n");
        let expected = [e1, e2].map(|e| ("c".to_string(), e.parse().expect("uuid")));
        assert_eq!(applied_events(&log), expected.into());
    }
}
