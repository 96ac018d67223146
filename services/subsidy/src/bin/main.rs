//! Runs the subsidy service alone (see `kechuang up` for all four in one process).

fn main() -> anyhow::Result<()> {
    kechuang_platform::launcher::run_one(
        kechuang_platform::ServiceKind::Subsidy,
        |config, shutdown| async move {
            let service = subsidy::build(config).await?;
            tracing::info!(addr = %service.local_addr(), "subsidy listening");
            service.run_until_stopped(shutdown).await
        },
    )
}
