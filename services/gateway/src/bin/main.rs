//! Runs the gateway alone (`kechuang up` runs it with the four services in one process).

fn main() -> anyhow::Result<()> {
    gateway::serve(kechuang_platform::launcher::load_settings()?)
}
