//! Runs the fund-ledger service alone (see `kechuang up` for all four in one process).

fn main() -> anyhow::Result<()> {
    kechuang_platform::launcher::run_one(
        kechuang_platform::ServiceKind::FundLedger,
        |config, shutdown| async move {
            let service = fund_ledger::build(config).await?;
            tracing::info!(addr = %service.local_addr(), "fund-ledger listening");
            service.run_until_stopped(shutdown).await
        },
    )
}
