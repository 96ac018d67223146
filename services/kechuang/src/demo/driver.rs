//! The demo's run: the cast, the data set, and the flow phase by phase (the phases are in
//! `ground.rs`, `deals.rs` and `finance.rs`), then the report.

use super::clients::{Cast, Clients};
use super::data::{DataSet, Scale, generate};
use super::report::{Report, report};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kechuang_proto::subsidy as spb;
use std::time::{Duration, Instant};
use tonic::Code;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub scale: Scale,
    pub seed: u64,
    pub concurrency: usize,
}

/// Deterministic "coin" for actor choices: the same seed and index decide alike.
pub(super) fn chance(seed: u64, index: usize, salt: u64, percent: u64) -> bool {
    let mut x = seed
        ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x % 100 < percent
}

pub(crate) fn bar(multi: &MultiProgress, len: usize, label: &str) -> ProgressBar {
    let pb = multi.add(ProgressBar::new(len as u64));
    pb.set_style(
        ProgressStyle::with_template("{prefix:<22} [{bar:30}] {pos:>6}/{len:<6} {rate:>8} {msg}")
            .expect("template")
            // indicatif's own {per_sec} prints ten decimals.
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

/// Runs `f` over `items` with `n` in flight, ticking `pb`; returns the successes.
pub(super) async fn each<T, R, F, Fut>(items: Vec<T>, n: usize, pb: &ProgressBar, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<R>>>,
{
    let out: Vec<_> = futures::stream::iter(items)
        .map(|item| {
            let fut = f(item);
            async move {
                let r = fut.await;
                pb.inc(1);
                r
            }
        })
        .buffer_unordered(n)
        .collect()
        .await;
    let mut ok = Vec::new();
    let mut errors = 0;
    for r in out {
        match r {
            Ok(Some(v)) => ok.push(v),
            Ok(None) => {}
            Err(e) => {
                if errors == 0 {
                    pb.suspend(|| eprintln!("  {}: first error: {e:#}", pb.prefix()));
                }
                errors += 1;
            }
        }
    }
    pb.finish_with_message(if errors > 0 {
        format!("{errors} errors")
    } else {
        "done".into()
    });
    ok
}

/// Retries a call answered NOT_FOUND / UNAVAILABLE while an event is still on its way.
pub(super) async fn eventually<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut delay = Duration::from_millis(50);
    loop {
        match call().await {
            Err(s)
                if matches!(
                    s.code(),
                    Code::NotFound | Code::Unavailable | Code::FailedPrecondition
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Makes a call again after the delay the server asks for while it answers RESOURCE_EXHAUSTED:
/// the demo plays many people with one token per role, and one technology manager or approver
/// working through thousands of items goes over a caller's write rate (`KC_WRITES_PER_SECOND`).
pub(super) async fn paced<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    loop {
        match call().await {
            Err(s) if s.code() == Code::ResourceExhausted => {
                let delay = kechuang_platform::limits::retry_delay(&s)
                    .unwrap_or(Duration::from_millis(100));
                tokio::time::sleep(delay.max(Duration::from_millis(5))).await;
            }
            other => return other,
        }
    }
}

/// One run of the demo: who acts, on what, how many at once. Each phase is a method that
/// takes what the phase before produced.
#[derive(Clone, Copy)]
pub(super) struct Demo<'a> {
    pub clients: &'a Clients,
    pub cast: &'a Cast,
    pub data: &'a DataSet,
    pub seed: u64,
    /// Calls in flight at once.
    pub n: usize,
    pub multi: &'a MultiProgress,
}

pub async fn run(
    settings: &kechuang_platform::Settings,
    clients: Clients,
    options: DemoOptions,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let cast = Cast::new(settings)?;
    let data = generate(options.scale, options.seed);
    let multi = MultiProgress::new();
    println!(
        "kechuang demo: {} enterprises, {} demands, {} achievements, fund {} yuan (seed {})",
        data.enterprises.len(),
        data.demands.len(),
        data.achievements.len(),
        options.scale.fund_fen / 100,
        options.seed
    );
    let demo = Demo {
        clients: &clients,
        cast: &cast,
        data: &data,
        seed: options.seed,
        n: options.concurrency.max(1),
        multi: &multi,
    };
    demo.top_up(options.scale.fund_fen).await?;

    // The finance office puts Wuhan's own rule in force: one proposes, another approves.
    let wuhan = super::policy::wuhan_in_force(&clients, &cast).await?;
    let status = spb::PolicyStatus::try_from(wuhan.status).unwrap_or_default();
    println!(
        "policy {} v{}: proposed by {}, decided by {}: {}",
        wuhan.name,
        wuhan.version,
        wuhan.proposed_by,
        wuhan.decided_by,
        status.as_str_name()
    );

    // And the brokers' reward rule, with a fund of its own (5,000,000 yuan).
    let rewards =
        super::policy::broker_rewards_in_force(&clients, &cast, options.seed, 500_000_000).await?;
    println!(
        "policy {} v{} (broker rewards, fund {}): decided by {}",
        rewards.name, rewards.version, rewards.fund_id, rewards.decided_by
    );

    demo.import_achievements().await?;
    demo.register_enterprises().await;
    let submitted = demo.submit_demands().await;
    let verified = demo.verify_demands(submitted).await;
    let verified_here = verified.len();
    let matched = demo.receive_pairings(verified).await;
    let accepted = demo.answer_pairings(&matched).await;
    let signed = demo.sign_contracts(accepted).await;
    let (certified, refused) = demo.register_contracts(&signed).await;
    println!(
        "registration: {certified} contracts certified, {refused} refused, {} left waiting",
        signed.len() - certified - refused
    );
    let applications = demo.record_payments(signed).await;
    let mut ids: Vec<String> = applications.into_iter().flatten().collect();
    // The brokers' rewards the payments made, reviewed like subsidies.
    ids.extend(demo.reward_applications().await?);
    demo.review_applications(&ids).await;
    demo.settle(&ids).await?;
    report(
        &clients,
        &cast,
        data.enterprises.len(),
        data.demands.len(),
        (matched.len(), verified_here),
        started.elapsed(),
    )
    .await
}
