//! Runs the matching service alone (see `kechuang up` for all four in one process).

fn main() -> anyhow::Result<()> {
    kechuang_platform::launcher::run_one(
        kechuang_platform::ServiceKind::Matching,
        |config, shutdown| async move {
            let service = matching::build(config).await?;
            tracing::info!(addr = %service.local_addr(), "matching listening");
            service.run_until_stopped(shutdown).await
        },
    )
}
