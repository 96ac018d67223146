//! `kechuang up`: the four services in one process.

use kechuang::Platform;
use kechuang_platform::config::DEV_JWT_SECRET;
use kechuang_platform::{launcher, telemetry};

pub fn run() -> anyhow::Result<()> {
    let settings = launcher::load_settings()?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let _telemetry = telemetry::init(
            "kechuang",
            settings.otlp_endpoint.as_deref(),
            settings.log_format == "json",
        )?;
        if let Err(e) = launcher::preflight(&settings).await {
            eprintln!("kechuang up: cannot start.\n{e}");
            std::process::exit(2);
        }
        if settings.jwt_secret == DEV_JWT_SECRET {
            tracing::warn!("using the development JWT key; set KC_JWT_SECRET in production");
        }
        let shutdown = launcher::shutdown_on_signal();
        let platform = Platform::start(&settings).await?;
        for (kind, addr) in platform.addresses() {
            println!("{:<14} listening on {addr}", kind.name());
        }
        println!(
            "kechuang is up: stream {} ({}.>), databases {}*. Ctrl-C stops it.",
            settings.stream_name, settings.subject_prefix, settings.database_prefix
        );
        platform.run_until_stopped(shutdown).await?;
        println!("kechuang stopped cleanly");
        Ok(())
    })
}
