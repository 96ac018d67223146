//! `kechuang bench`: on this machine and in one run, what the platform does beside the limits
//! it is measured against. It starts its own platform in this process (its own databases and
//! stream, dropped afterwards) and measures
//! - limits: Postgres single-row INSERT+COMMIT, UPDATE+COMMIT of one hot row and JetStream
//!   publish-with-ack per second;
//! - intake: SubmitDemand over gRPC, per second and p50/p99, beside its statement alone;
//! - matching: ImportAchievements into a catalog of N, then VerifyDemand until the demand's
//!   `kc.pairing.proposed` events are on NATS;
//! - approval: a reservation and its post on one hot fund, straight into the ledger; then
//!   ApproveApplication until its `kc.fund.posted` is on NATS (simulated bank at zero
//!   latency), and the ledger reconciled afterwards,
//!
//! each at several concurrencies, and prints every figure beside its limit and target.

mod approval;
mod embedding;
mod hot_fund;
mod intake;
mod limits;
mod matching;
mod report;
mod watch;

pub use report::{Goal, Limit, Machine, OpsInfo, Report, Row, RunInfo, Section};

use crate::Platform;
use crate::demo::Clients;
use crate::demo::data::{DataSet, Scale, generate};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kechuang_platform::auth::Role;
use kechuang_platform::auth::authed;
use kechuang_platform::testing::cleanup;
use kechuang_platform::{ServiceKind, Settings, launcher, outbox};
use kechuang_proto::demand as dpb;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Operations per measured run, by section, and the catalog's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub limits: usize,
    pub intake: usize,
    pub matching: usize,
    pub approval: usize,
    /// At least this many operations a client in the approval section's runs (0: exactly
    /// `approval`). A closed loop of 64 approvers doing 300 approvals between them is mostly
    /// ramp-up and drain: its rate would not be the saga's steady rate.
    pub approval_per_client: usize,
    pub achievements: usize,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        limits: 2_000,
        intake: 2_000,
        matching: 300,
        approval: 300,
        approval_per_client: 50,
        achievements: 100_000,
    };
    /// A smoke run: every section, small (as many operations as the default top concurrency).
    pub const QUICK: Sizes = Sizes {
        limits: 64,
        intake: 64,
        matching: 64,
        approval: 64,
        approval_per_client: 0,
        achievements: 2_000,
    };

    /// Operations in the approval section's run with `clients` approvers.
    pub fn approval_at(&self, clients: usize) -> usize {
        self.approval.max(self.approval_per_client * clients)
    }
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub sections: Vec<Section>,
    pub concurrency: Vec<usize>,
    pub sizes: Sizes,
}

/// `kechuang bench`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Achievements imported before the matching figures [default: 100000; --quick 2000].
    #[arg(long)]
    pub achievements: Option<usize>,
    /// Operations per measured run, every section [default: 2000 for limits and intake, 300
    /// for matching, 300 for approval but at least 50 an approver; --quick 64].
    #[arg(long)]
    pub ops: Option<usize>,
    /// Concurrent clients (connections, publishes in flight), one run per level.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: Vec<u16>,
    /// Small sizes: a smoke run of every section.
    #[arg(long)]
    pub quick: bool,
    /// Only these sections (the ratios need `limits`).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub only: Vec<Section>,
    /// Print the report as JSON (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Print the table as markdown.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
}

impl BenchArgs {
    pub fn options(&self) -> anyhow::Result<BenchOptions> {
        let mut sizes = if self.quick {
            Sizes::QUICK
        } else {
            Sizes::FULL
        };
        if let Some(ops) = self.ops {
            anyhow::ensure!(ops >= 1, "--ops must be at least 1");
            (sizes.limits, sizes.intake, sizes.matching, sizes.approval) = (ops, ops, ops, ops);
            sizes.approval_per_client = 0;
        }
        if let Some(n) = self.achievements {
            anyhow::ensure!(n >= 1, "--achievements must be at least 1");
            sizes.achievements = n;
        }
        let mut concurrency: Vec<usize> = self.concurrency.iter().map(|c| *c as usize).collect();
        concurrency.sort_unstable();
        concurrency.dedup();
        Ok(BenchOptions {
            sections: Section::ALL
                .into_iter()
                .filter(|s| self.only.is_empty() || self.only.contains(s))
                .collect(),
            concurrency,
            sizes,
        })
    }
}

/// The command: runs the bench and prints its report.
pub fn command(args: BenchArgs) -> anyhow::Result<()> {
    let options = args.options()?;
    let base = launcher::load_settings()?;
    launcher::runtime(&base)?.block_on(async {
        if let Err(e) = launcher::preflight(&base).await {
            eprintln!("kechuang bench: cannot start.\n{e}");
            std::process::exit(2);
        }
        let report = run(&base, &options).await?;
        if args.json {
            println!("{}", report.json());
        } else if args.markdown {
            print!("{}", report.markdown());
        } else {
            print!("{}", report.table());
        }
        Ok(())
    })
}

/// Settings for the bench's own platform: the servers of `base`, everything else private.
pub fn isolated(base: &Settings) -> Settings {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    kechuang_platform::testing::with_test_issuer(Settings {
        database_prefix: format!("kcb_{id}_"),
        stream_name: format!("KC_BENCH_{}", id.to_uppercase()),
        subject_prefix: format!("kcb{id}"),
        event_keys: Some(
            kechuang_platform::testing::test_event_keys(&format!("bench-{id}"))
                .display()
                .to_string(),
        ),
        demand_port: 0,
        matching_port: 0,
        subsidy_port: 0,
        fund_port: 0,
        // The simulated bank answers at once: what is measured is the platform.
        payout_latency_ms: 0,
        payout_failure_rate: 0.0,
        // The bench's few callers write as fast as the platform allows: that is what it
        // measures, so the per-caller write rate (a guard against one runaway client) is off.
        writes_per_second: 0,
        // Its own issuer, beside its event keys.
        token_jwks_url: None,
        ..base.clone()
    })
}

/// Runs the selected sections; the limits first, before the platform holds any connection.
pub async fn run(base: &Settings, options: &BenchOptions) -> anyhow::Result<Report> {
    let settings = isolated(base);
    let started = Instant::now();
    let started_at = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let load_before = load_average();
    let progress = MultiProgress::new();
    let levels = &options.concurrency;
    let sizes = options.sizes;
    let mut rows = Vec::new();
    if options.sections.contains(&Section::Limits) {
        rows.extend(limits_at_their_best(&settings, levels, sizes.limits, &progress).await?);
    }
    if options
        .sections
        .iter()
        .any(|s| matches!(s, Section::Intake | Section::Matching | Section::Approval))
    {
        // Whatever happens (Ctrl-C included), the bench's databases and stream go.
        let outcome = tokio::select! {
            r = on_platform(&settings, options, &progress) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        cleanup(&settings).await;
        rows.extend(outcome?);
    }
    let mut report = Report {
        started_at,
        elapsed_s: started.elapsed().as_secs_f64(),
        machine: machine(&settings, load_before).await,
        run: RunInfo {
            sections: options.sections.clone(),
            concurrency: levels.clone(),
            achievements: sizes.achievements,
            ops: OpsInfo {
                limits: sizes.limits,
                intake: sizes.intake,
                matching: sizes.matching,
                approval: sizes.approval,
                approval_per_client: sizes.approval_per_client,
            },
            database_prefix: settings.database_prefix.clone(),
            stream: settings.stream_name.clone(),
        },
        rows,
    };
    report.compare();
    Ok(report)
}

/// The limits, measured on a runtime of their own with a worker per core: with both servers
/// on this machine the platform runs on fewer ([`launcher::worker_threads`]), which made the
/// limits themselves slower (PG@1 about 3,000 a second instead of 3,100–3,600, PG@64 7,900–8,600
/// instead of 9,300–9,700), and a target is only as honest as its limit is high.
async fn limits_at_their_best(
    settings: &Settings,
    levels: &[usize],
    ops: usize,
    progress: &MultiProgress,
) -> anyhow::Result<Vec<Row>> {
    let (settings, levels, progress) = (settings.clone(), levels.to_vec(), progress.clone());
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(limits::measure(&settings, &levels, ops, &progress))
    })
    .await?
}

async fn on_platform(
    settings: &Settings,
    options: &BenchOptions,
    progress: &MultiProgress,
) -> anyhow::Result<Vec<Row>> {
    let spinner = ctx_spinner(progress, "starting the platform");
    let platform = Platform::start(settings).await?;
    let shutdown = CancellationToken::new();
    let addresses = platform.addresses();
    let clients = Clients::connect(|kind: ServiceKind| {
        addresses
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
            .expect("every service")
    })
    .await?;
    let js = kechuang_platform::bus::connect(&settings.bus(), "kechuang-bench").await?;
    spinner.finish_and_clear();
    let sizes = options.sizes;
    let pools = ServiceKind::ALL
        .map(|kind| platform.pool(kind).clone())
        .to_vec();
    let running = tokio::spawn(platform.run_until_stopped(shutdown.clone()));
    let ctx = Ctx {
        settings: settings.clone(),
        issuer: settings.issuer()?,
        clients,
        nats: js.client(),
        js,
        progress: progress.clone(),
        data: generate(
            Scale {
                enterprises: ENTERPRISES,
                demands: 1_000,
                achievements: sizes.achievements,
                fund_fen: 0,
            },
            42,
        ),
        pools,
        addresses,
    };
    let body = async {
        let mut rows = Vec::new();
        let sections = &options.sections;
        if sections.contains(&Section::Intake) || sections.contains(&Section::Matching) {
            ctx.register_enterprises().await?;
        }
        if sections.contains(&Section::Intake) {
            rows.extend(intake::measure(&ctx, &options.concurrency, sizes.intake).await?);
            ctx.settle("intake's events").await?;
        }
        if sections.contains(&Section::Matching) {
            rows.extend(matching::measure(&ctx, &options.concurrency, sizes.matching).await?);
            ctx.settle("matching's events").await?;
        }
        if sections.contains(&Section::Approval) {
            let ops = |clients| sizes.approval_at(clients);
            rows.extend(hot_fund::measure(&ctx, &options.concurrency, ops).await?);
            ctx.settle("the hot fund's events").await?;
            rows.extend(approval::measure(&ctx, &options.concurrency, ops).await?);
            ctx.reconcile().await?;
        }
        anyhow::Ok(rows)
    };
    let rows = body.await;
    drop(ctx);
    shutdown.cancel();
    running.await??;
    rows
}

/// Enterprises the intake and matching demands come from.
const ENTERPRISES: usize = 64;

/// What the sections share: the running platform, clients, tokens, the bus, the data set.
pub(crate) struct Ctx {
    pub settings: Settings,
    /// Each service's pool (to see its outbox).
    pub pools: Vec<sqlx::PgPool>,
    pub addresses: Vec<(ServiceKind, std::net::SocketAddr)>,
    pub clients: Clients,
    pub issuer: kechuang_platform::auth::Issuer,
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub progress: MultiProgress,
    pub data: DataSet,
}

impl Ctx {
    pub fn token(&self, role: Role, subject: &str, enterprise: Option<&str>) -> String {
        self.issuer.mint_for(
            role,
            subject,
            enterprise,
            kechuang_platform::auth::DEFAULT_MAX_LIFETIME,
        )
    }

    /// The pool of `kind`'s database.
    pub fn pool(&self, kind: ServiceKind) -> &sqlx::PgPool {
        let at = ServiceKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("every kind");
        &self.pools[at]
    }

    /// A connection of its own to `kind`.
    pub async fn connect(&self, kind: ServiceKind) -> anyhow::Result<tonic::transport::Channel> {
        let (_, addr) = self
            .addresses
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("every service listens");
        Ok(
            tonic::transport::Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        )
    }

    /// A bar counting `len` operations.
    pub fn bar(&self, len: usize, label: &str) -> ProgressBar {
        crate::demo::bar(&self.progress, len, label)
    }

    /// Technology managers register the data set's enterprises.
    async fn register_enterprises(&self) -> anyhow::Result<()> {
        let manager = self.token(Role::TechManager, "bench-manager", None);
        let pb = self.bar(self.data.enterprises.len(), "enterprises registered");
        for e in &self.data.enterprises {
            let request = dpb::RegisterEnterpriseRequest {
                name: e.name.clone(),
                credit_code: e.credit_code.clone(),
                region_code: e.region_code.clone(),
                industry_chain: e.chain.name.into(),
            };
            self.clients
                .demand
                .clone()
                .register_enterprise(authed(request, &manager))
                .await?;
            pb.inc(1);
        }
        pb.finish_and_clear();
        Ok(())
    }

    /// Runs the ledger's Reconcile over every fund: a bench that moved money wrongly fails.
    pub async fn reconcile(&self) -> anyhow::Result<()> {
        let mut conn = self.pool(ServiceKind::FundLedger).acquire().await?;
        let report = fund_ledger::api::reconcile(&mut conn, None).await?;
        anyhow::ensure!(
            report.violations.is_empty(),
            "the ledger does not reconcile after the bench: {:?}",
            report.violations
        );
        eprintln!(
            "reconcile after the bench: clean ({} transfers)",
            report.transfer_count
        );
        Ok(())
    }

    /// Waits until every outbox is published and every consumer has handled what it was
    /// sent, so that one section's tail does not run into the next one's figures.
    pub async fn settle(&self, what: &str) -> anyhow::Result<()> {
        let spinner = ctx_spinner(&self.progress, &format!("waiting for {what} to settle"));
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let mut unsent = 0;
            for pool in &self.pools {
                unsent += outbox::unsent_count(pool).await?;
            }
            let mut pending = 0;
            let stream = self.js.get_stream(&self.settings.stream_name).await?;
            let mut consumers = stream.consumers();
            while let Some(info) = futures::TryStreamExt::try_next(&mut consumers).await? {
                pending += info.num_pending + info.num_ack_pending as u64;
            }
            if unsent == 0 && pending == 0 {
                spinner.finish_and_clear();
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what} did not settle in 10 minutes: {unsent} events unsent, {pending} undelivered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn ctx_spinner(progress: &MultiProgress, message: &str) -> ProgressBar {
    let spinner = progress.add(ProgressBar::new_spinner());
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("template"));
    spinner.set_message(message.to_string());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// This machine and its servers.
async fn machine(settings: &Settings, load_before: Option<[f64; 3]>) -> Machine {
    let postgres = async {
        let pool = sqlx::PgPool::connect(&format!("{}/postgres", settings.database_url)).await?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&pool)
            .await?;
        pool.close().await;
        anyhow::Ok(version)
    };
    let nats = async {
        let client = kechuang_platform::bus::connect(&settings.bus(), "kechuang-bench")
            .await?
            .client();
        // The server's INFO has arrived once a round trip has.
        client.flush().await?;
        anyhow::Ok(client.server_info().version)
    };
    let cores = launcher::cores();
    Machine {
        cores,
        platform_workers: launcher::worker_threads(settings, cores),
        memory_gib: std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
            let kib: f64 = m
                .lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(kib / (1024.0 * 1024.0))
        }),
        postgres: postgres.await.unwrap_or_else(|e| format!("? ({e})")),
        nats: nats.await.unwrap_or_else(|e| format!("? ({e})")),
        load_before,
        load_after: load_average(),
    }
}

/// The 1, 5 and 15 minute load averages, where the system tells them.
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn sizes(args: &[&str]) -> Sizes {
        let cli = Cli::parse_from(std::iter::once("bench").chain(args.iter().copied()));
        cli.bench.options().unwrap().sizes
    }

    #[test]
    fn approval_runs_last_50_operations_an_approver_unless_ops_is_given() {
        let default = sizes(&[]);
        let runs: Vec<usize> = [1, 8, 64].map(|c| default.approval_at(c)).into();
        assert_eq!(runs, [300, 400, 3200]);
        let given = sizes(&["--ops", "1000"]);
        let runs: Vec<usize> = [1, 8, 64].map(|c| given.approval_at(c)).into();
        assert_eq!(runs, [1000, 1000, 1000]);
        assert_eq!(sizes(&["--quick"]).approval_at(64), 64);
    }
}
