//! NATS JetStream: connecting and provisioning the event stream.

use crate::config::BusConfig;
use async_nats::jetstream::{self, Context as JetStream, stream};
use std::time::Duration;

/// Connects to NATS. The client keeps reconnecting for ever, so a service started while NATS
/// is down comes up and its relay publishes once NATS is back.
pub async fn connect(bus: &BusConfig, name: &str) -> anyhow::Result<JetStream> {
    let client = with_url_credentials(async_nats::ConnectOptions::new(), &bus.nats_url)?
        .name(name)
        // Replies to this service go to its own inbox subjects, which NATS lets only this
        // service's user subscribe to (deploy/nats/permissions.conf).
        .custom_inbox_prefix(format!("_INBOX_{name}"))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(3))
        .connect(bus.nats_url.as_str())
        .await?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client))
}

/// The client sends only the credentials set on its options, so a user and password written in
/// the URL (`nats://fund-ledger:secret@host:4222`, one NATS user per service) are moved there.
fn with_url_credentials(
    options: async_nats::ConnectOptions,
    nats_url: &str,
) -> anyhow::Result<async_nats::ConnectOptions> {
    let mut options = options;
    for server in nats_url.split(',') {
        let addr: async_nats::ServerAddr = server
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("KC_NATS_URL {server:?}: {e}"))?;
        if let (Some(user), Some(pass)) = (addr.username(), addr.password()) {
            options = options.user_and_password(user.to_string(), pass.to_string());
        }
    }
    Ok(options)
}

/// Fails fast when NATS cannot be reached: for `kechuang up`'s preflight.
pub async fn ping(nats_url: &str) -> anyhow::Result<()> {
    let options = with_url_credentials(async_nats::ConnectOptions::new(), nats_url)?;
    let client = tokio::time::timeout(Duration::from_secs(3), options.connect(nats_url))
        .await
        .map_err(|_| anyhow::anyhow!("timed out after 3 s"))??;
    anyhow::ensure!(
        client.server_info().jetstream,
        "the server at {nats_url} runs without JetStream (start it with -js)"
    );
    Ok(())
}

/// The stream's configuration: every subject under the prefix, on disk, de-duplicated.
pub fn stream_config(bus: &BusConfig) -> stream::Config {
    stream::Config {
        name: bus.stream_name.clone(),
        description: Some("kechuang domain events".into()),
        subjects: vec![format!("{}.>", bus.subject_prefix)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: bus.replicas,
        duplicate_window: bus.duplicate_window,
        ..Default::default()
    }
}

/// Creates the stream, or brings an existing one to the configured settings. Idempotent,
/// and safe when several services start at once.
pub async fn ensure_stream(js: &JetStream, bus: &BusConfig) -> anyhow::Result<()> {
    let config = stream_config(bus);
    let mut last_error = None;
    for _ in 0..5 {
        match js.create_or_update_stream(config.clone()).await {
            Ok(_) => return Ok(()),
            // Two services creating it at the same moment: the loser updates next round.
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow::anyhow!(
        "cannot create or update stream {}: {}",
        bus.stream_name,
        last_error.map(|e| e.to_string()).unwrap_or_default()
    ))
}
