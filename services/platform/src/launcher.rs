//! Starting services from a binary: settings from the environment, telemetry, a preflight
//! that names what is missing, and shutdown on Ctrl-C or SIGTERM.

use crate::config::{ServiceConfig, ServiceKind, Settings};
use crate::{bus, db, telemetry};
use std::future::Future;
use tokio_util::sync::CancellationToken;

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
    tokio::runtime::Runtime::new()?.block_on(async {
        let _telemetry = telemetry::init(
            kind.name(),
            settings.otlp_endpoint.as_deref(),
            settings.log_format == "json",
        )?;
        preflight(&settings).await?;
        let shutdown = shutdown_on_signal();
        serve(settings.service(kind), shutdown).await
    })
}
