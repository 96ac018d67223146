//! `kechuang up` (the four services and the gateway in one process, optionally with the demo) and
//! `kechuang demo` (against a running platform).

use kechuang::Platform;
use kechuang::demo::{self, Clients, DemoOptions};
use kechuang_platform::metrics::MetricsServer;
use kechuang_platform::{ServiceKind, Settings, launcher, seal, telemetry};
use std::net::SocketAddr;

pub fn run(demo_options: Option<DemoOptions>) -> anyhow::Result<()> {
    let mut settings = launcher::load_settings()?;
    let development_keys = settings.event_keys.is_none();
    if development_keys {
        let dir = Settings::development_event_keys();
        seal::generate(&dir, &ServiceKind::names())?;
        settings.event_keys = Some(dir.display().to_string());
    }
    launcher::runtime(&settings)?.block_on(async {
        let _telemetry = telemetry::init(
            "kechuang",
            settings.otlp_endpoint.as_deref(),
            settings.log_format == "json",
        )?;
        if let Err(e) = launcher::preflight(&settings).await {
            eprintln!("kechuang up: cannot start.\n{e}");
            std::process::exit(2);
        }
        let shutdown = launcher::shutdown_on_signal();
        let dev_issuer_in_charge =
            crate::dev_issuer::take_charge(&mut settings, shutdown.clone()).await?;
        if let Some(jwks) = &dev_issuer_in_charge {
            tracing::warn!(
                jwks,
                key = %Settings::development_issuer_key().display(),
                "tokens come from the development issuer; set KC_TOKEN_JWKS_URL and KC_TOKEN_ISSUER to your identity provider's in production"
            );
        }
        if development_keys {
            tracing::warn!(
                dir = settings.event_keys.as_deref().unwrap_or_default(),
                "using development event keys; set KC_EVENT_KEYS in production"
            );
        }
        // One endpoint for the whole process, bound first: every series says its `service`.
        let metrics = MetricsServer::bind(settings.metrics_listen()).await?;
        let platform = Platform::start(&settings).await?;
        for (kind, addr) in platform.addresses() {
            println!("{:<14} listening on {addr}", kind.name());
        }
        let mut gateway_config = platform.gateway_config(&settings);
        // The development sign-in (pick a demo person): only while the development issuer is
        // in charge of tokens and no OpenID Connect provider signs people in.
        if dev_issuer_in_charge.is_some() && gateway_config.oidc.is_none() {
            gateway_config.dev_issuer = Some(kechuang_platform::config::DevIssuer(
                std::sync::Arc::new(settings.issuer()?),
            ));
            tracing::warn!("the console offers a development sign-in (demo people); configure an identity provider in production");
        }
        let gateway = gateway::Gateway::build(gateway_config).await?;
        println!(
            "{:<14} console http://{addr}/console  API http://{addr}/api/v1  OpenAPI http://{addr}/openapi.json",
            "gateway",
            addr = gateway.local_addr()
        );
        println!(
            "{:<14} {} (every service's, labelled by service)",
            "metrics",
            metrics.url()
        );
        println!(
            "kechuang is up: stream {} ({}.>), databases {}*. Ctrl-C stops it.",
            settings.stream_name, settings.subject_prefix, settings.database_prefix
        );
        if let Some(options) = demo_options {
            let addresses = platform.addresses();
            let settings = settings.clone();
            tokio::spawn(async move {
                let addr = |k| {
                    addresses
                        .iter()
                        .find(|(kind, _)| *kind == k)
                        .map(|(_, a)| *a)
                        .expect("every service")
                };
                let outcome = match Clients::connect(addr).await {
                    Ok(clients) => demo::run(&settings, clients, options).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => println!("demo loaded; the platform keeps running (Ctrl-C stops it)"),
                    Err(e) => eprintln!("demo failed: {e:#}"),
                }
            });
        }
        tokio::try_join!(
            platform.run_until_stopped(shutdown.clone()),
            gateway.run_until_stopped(shutdown.clone()),
            metrics.run_until_stopped(shutdown)
        )?;
        println!("kechuang stopped cleanly");
        Ok(())
    })
}

pub fn demo(options: DemoOptions) -> anyhow::Result<()> {
    let settings = launcher::load_settings()?;
    launcher::runtime(&settings)?.block_on(async {
        let addr = |kind| SocketAddr::new(settings.host, settings.port(kind));
        let clients = Clients::connect(addr).await?;
        let report = demo::run(&settings, clients, options).await?;
        anyhow::ensure!(
            report.violations.is_empty(),
            "the ledger does not reconcile"
        );
        anyhow::ensure!(
            report.audit.intact,
            "the audit trail does not verify: {}",
            report.audit.problem
        );
        Ok(())
    })
}
