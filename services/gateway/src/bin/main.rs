//! Runs the gateway alone (`kechuang up` runs it with the four services in one process).

/// A request is many small short-lived allocations: with mimalloc the bench used 7–13 % less
/// user CPU than with glibc's allocator (docs/benchmarks.md). Every kechuang binary says so.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    gateway::serve(kechuang_platform::launcher::load_settings()?)
}
