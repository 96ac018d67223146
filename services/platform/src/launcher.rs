//! Starting services from a binary: settings from the environment, telemetry, the metrics
//! endpoint, a preflight that names what is missing, and shutdown on Ctrl-C or SIGTERM.

use crate::config::{ServiceConfig, ServiceKind, Settings};
use crate::metrics::MetricsServer;
use crate::{bus, db, telemetry};
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// The async runtime a kechuang process runs on, with [`worker_threads`] threads.
pub fn runtime(settings: &Settings) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(settings, cores()))
        .enable_all()
        .build()
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `KC_WORKER_THREADS` if set; otherwise every core, except that a process whose Postgres or
/// NATS runs on the same machine leaves them one. Measured on two cores with both servers
/// local (docs/benchmarks.md): one worker instead of two made SubmitDemand 15–40 %
/// faster at 1 and 8 clients and did no worse for matching and approval; the servers, not
/// the process, are the busier half of every write, and a second worker competed with them
/// for the cores and woke across them.
pub fn worker_threads(settings: &Settings, cores: usize) -> usize {
    if let Some(n) = settings.worker_threads {
        return n.max(1);
    }
    let servers_here = is_local(&settings.database_url) || is_local(&settings.nats_url);
    if servers_here {
        cores.saturating_sub(1).max(1)
    } else {
        cores.max(1)
    }
}

/// Whether `url` names this machine (loopback or `localhost`); anything unreadable is not.
fn is_local(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

pub fn load_settings() -> anyhow::Result<Settings> {
    Settings::from_env().map_err(|e| anyhow::anyhow!("configuration: {e}"))
}

/// Checks that Postgres and NATS answer, and says how to start whichever does not.
pub async fn preflight(settings: &Settings) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    if let Err(e) = db::ping(&settings.database_url).await {
        problems.push(format!(
            "PostgreSQL is not reachable at {} ({e}).\n  Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n  or point KC_DATABASE_URL at your server.",
            settings.database_url
        ));
    }
    if let Err(e) = bus::ping(&settings.nats_url).await {
        problems.push(format!(
            "NATS with JetStream is not reachable at {} ({e}).\n  Start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server\n  or point KC_NATS_URL at your server.",
            settings.nats_url
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(problems.join("\n")))
    }
}

/// A token cancelled by Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}

/// The body of a single-service binary.
pub fn run_one<F, Fut>(kind: ServiceKind, serve: F) -> anyhow::Result<()>
where
    F: FnOnce(ServiceConfig, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings = load_settings()?;
    settings
        .check_production_secrets()
        .map_err(|e| anyhow::anyhow!("{}: {e}", kind.name()))?;
    runtime(&settings)?.block_on(async {
        let _telemetry = telemetry::init(
            kind.name(),
            settings.otlp_endpoint.as_deref(),
            settings.log_format == "json",
        )?;
        preflight(&settings).await?;
        let shutdown = shutdown_on_signal();
        // Bound before the service starts: what it records from its first moment is kept.
        let metrics = MetricsServer::bind(settings.metrics_listen()).await?;
        println!("{} metrics on {}", kind.name(), metrics.url());
        tokio::try_join!(
            serve(settings.service(kind), shutdown.clone()),
            metrics.run_until_stopped(shutdown)
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(database_url: &str, nats_url: &str, worker_threads: Option<usize>) -> Settings {
        Settings {
            database_url: database_url.into(),
            nats_url: nats_url.into(),
            worker_threads,
            ..Settings::default()
        }
    }

    #[test]
    fn servers_on_this_machine_are_left_a_core() {
        let local = settings(
            "postgres://postgres@127.0.0.1:5432",
            "nats://db.internal:4222",
            None,
        );
        assert_eq!(worker_threads(&local, 2), 1);
        assert_eq!(worker_threads(&local, 8), 7);
        assert_eq!(worker_threads(&local, 1), 1);
        let named = settings("postgres://pg.internal", "nats://localhost:4222", None);
        assert_eq!(worker_threads(&named, 4), 3);
        let v6 = settings("postgres://postgres@[::1]:5432", "nats://nats:4222", None);
        assert_eq!(worker_threads(&v6, 4), 3);
    }

    #[test]
    fn remote_servers_get_every_core() {
        let remote = settings("postgres://kc@pg.internal:5432", "nats://nats-1:4222", None);
        assert_eq!(worker_threads(&remote, 2), 2);
        assert_eq!(worker_threads(&remote, 16), 16);
        let unreadable = settings("not a url", "also not", None);
        assert_eq!(worker_threads(&unreadable, 4), 4);
    }

    #[test]
    fn the_setting_wins() {
        let local = settings("postgres://127.0.0.1", "nats://127.0.0.1", Some(4));
        assert_eq!(worker_threads(&local, 2), 4);
        let zero = settings("postgres://pg", "nats://nats", Some(0));
        assert_eq!(worker_threads(&zero, 8), 1);
    }
}
