//! Runs the demand-intake service alone (see `kechuang up` for all four in one process).

/// A request is many small short-lived allocations: with mimalloc the bench used 7–13 % less
/// user CPU than with glibc's allocator (docs/benchmarks.md). Every kechuang binary says so.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    kechuang_platform::launcher::run_one(
        kechuang_platform::ServiceKind::DemandIntake,
        |config, shutdown| async move {
            let service = demand_intake::build(config).await?;
            tracing::info!(addr = %service.local_addr(), "demand-intake listening");
            service.run_until_stopped(shutdown).await
        },
    )
}
