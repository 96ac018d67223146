//! The clustered topology without Docker: `deploy/cluster/run.sh` starts three clustered
//! nats-server processes with the repository's permissions, two `kechuang serve` replicas of
//! every service and one gateway, checks health (the gateway's /healthz and /readyz too), each
//! replica's /metrics (its consumers' lag read under its own NATS permissions) and
//! the stream at R3, SIGKILLs one NATS node and one replica of each service while `kechuang
//! demo` drives 200 demands through them, and checks the rest carries on: every demand's events delivered once, the books balanced, the ledger reconciled.
//! It exits non-zero on any failed check.

use kechuang_deploy_check::repo_root;
use std::process::Command;

#[test]
fn three_nats_nodes_and_two_replicas_per_service_survive_sigkills() {
    let output = Command::new("bash")
        .arg(repo_root().join("deploy/cluster/run.sh"))
        .current_dir(repo_root())
        .env("KC_CLUSTER_DEMO", "0.1")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "deploy/cluster/run.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("8 replicas SERVING"), "{stdout}");
    assert!(
        stdout.contains("8 replicas serve /metrics with outbox and consumer gauges"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gateway /healthz and /readyz answer 200"),
        "{stdout}"
    );
    assert!(stdout.contains("gateway still ready"), "{stdout}");
    assert!(stdout.contains("every service reconnected"), "{stdout}");
    assert!(stdout.contains("reconcile clean"), "{stdout}");
    assert!(
        stdout.lines().last().is_some_and(|l| l.ends_with("PASS")),
        "{stdout}"
    );
}
