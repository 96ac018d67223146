//! Runs the gateway alone (`kechuang up` runs it with the four services in one process).

fn main() -> anyhow::Result<()> {
    let settings = kechuang_platform::launcher::load_settings()?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let _telemetry = kechuang_platform::telemetry::init(
            "gateway",
            settings.otlp_endpoint.as_deref(),
            settings.log_format == "json",
        )?;
        let shutdown = kechuang_platform::launcher::shutdown_on_signal();
        let gateway = gateway::Gateway::build(settings.gateway()).await?;
        println!(
            "gateway        console http://{}/console",
            gateway.local_addr()
        );
        gateway.run_until_stopped(shutdown).await
    })
}
