//! One service alone, exactly as `kechuang serve <service>` runs it: the replica process the
//! cluster tests start (a test can only name binaries of its own package).

/// A request is many small short-lived allocations: with mimalloc the bench used 7–13 % less
/// user CPU than with glibc's allocator (docs/benchmarks.md). Every kechuang binary says so.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kechuang_platform::ServiceKind;

fn main() -> anyhow::Result<()> {
    let name = std::env::args().nth(1).unwrap_or_default();
    let kind = ServiceKind::from_name(&name).ok_or_else(|| {
        anyhow::anyhow!("usage: kc-e2e-replica demand-intake|matching|subsidy|fund-ledger")
    })?;
    kechuang::serve(kind)
}
