//! Micro-benchmark of the engine (run by hand, prints figures):
//! `cargo run --release -p matching-engine --example bench [-- N [POOL]]` (N achievements,
//! default 100000; POOL re-ranked candidates, default `Tuning::default()`).
//!
//! Latencies are wall-clock; `cpu` rows give the same calls' on-CPU time of the calling thread
//! (from /proc/thread-self/schedstat), which other processes on a shared machine do not inflate.
//!
//! Loads N generated achievements (sentences and keywords recombined from the evaluation set,
//! so term statistics look like real Chinese abstracts) in import-sized batches, then times
//! `match_demand` for the evaluation demands, alone and from 2 threads, and `match_achievement`
//! against 2,000 open demands.

use kechuang_platform::bench::{Figures, percentile};
use kechuang_proto::common::TransferMode;
use matching_engine::eval::{EvalAchievement, EvalDemand, parse_jsonl};
use matching_engine::{AchievementDoc, DemandDoc, Engine, Tuning};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// xorshift64*: a deterministic generator, so every run indexes the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const REGIONS: &[&str] = &[
    "420111", "420106", "420102", "420500", "420600", "420300", "421000", "420200", "110108",
    "310104", "320102", "440305", "330106", "430104", "610113",
];

fn generate(n: usize, source: &[EvalAchievement]) -> Vec<AchievementDoc> {
    let sentences: Vec<String> = source
        .iter()
        .flat_map(|a| a.abstract_text.split(['，', '。']))
        .filter(|s| s.chars().count() > 4)
        .map(str::to_string)
        .collect();
    let keywords: Vec<&str> = source
        .iter()
        .flat_map(|a| a.keywords.iter().map(String::as_str))
        .collect();
    let chains: Vec<&str> = source.iter().map(|a| a.chain.as_str()).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let kws: Vec<String> = (0..4).map(|_| rng.pick(&keywords).to_string()).collect();
            let abstract_text: Vec<&str> = (0..4 + rng.below(3))
                .map(|_| rng.pick(&sentences).as_str())
                .collect();
            AchievementDoc {
                id: format!("G{i:06}"),
                institution: "某高校".into(),
                title: format!("{}与{}技术", kws[0], kws[1]),
                abstract_text: abstract_text.join("，") + "。",
                keywords: kws,
                industry_chain: rng.pick(&chains).to_string(),
                trl: 1 + rng.below(9) as i32,
                transfer_modes: vec![*rng.pick(&[
                    TransferMode::Assignment,
                    TransferMode::License,
                    TransferMode::JointDevelopment,
                ])],
                asking_price_fen: (10 + rng.below(500)) as i64 * 1_000_000,
                region_code: rng.pick(REGIONS).to_string(),
            }
        })
        .collect()
}

fn figures(
    label: &str,
    concurrency: usize,
    mut samples: Vec<Duration>,
    elapsed: Duration,
) -> Figures {
    Figures {
        label: label.into(),
        concurrency,
        operations: samples.len(),
        errors: 0,
        elapsed,
        p50: percentile(&mut samples, 0.50),
        p99: percentile(&mut samples, 0.99),
    }
}

/// On-CPU time of the calling thread so far (Linux), zero where unavailable.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let source: Vec<EvalAchievement> =
        parse_jsonl(include_str!("../eval/achievements.jsonl")).map_err(anyhow::Error::msg)?;
    let demands: Vec<DemandDoc> = parse_jsonl::<EvalDemand>(include_str!("../eval/demands.jsonl"))
        .map_err(anyhow::Error::msg)?
        .iter()
        .map(|d| d.to_doc())
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut tuning = Tuning::default();
    if let Some(pool) = std::env::args().nth(2).and_then(|a| a.parse().ok()) {
        tuning.candidate_pool = pool;
    }
    let docs = generate(n, &source);
    let engine = Arc::new(Engine::with_tuning(tuning)?);

    // Load, in batches the size of a streamed import's chunks.
    let batch = 10_000;
    let started = Instant::now();
    let mut batch_times = Vec::new();
    for chunk in docs.chunks(batch) {
        let t = Instant::now();
        engine.add_achievements(chunk)?;
        batch_times.push(t.elapsed());
    }
    let load = figures(
        &format!("load {n} achievements ({batch}/batch)"),
        1,
        batch_times,
        started.elapsed(),
    );
    let eval_docs: Vec<AchievementDoc> = source
        .iter()
        .map(|a| a.to_doc())
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    engine.add_achievements(&eval_docs)?;
    println!("indexed: {} achievements", engine.achievement_count());

    // Warm up (jieba dictionary, caches), then time single demands.
    for d in &demands {
        engine.match_demand(d, 5);
    }
    let rounds = 20;
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..rounds {
        for d in &demands {
            let (t, c) = (Instant::now(), thread_cpu());
            let got = engine.match_demand(d, 5);
            samples.push(t.elapsed());
            cpu.push(thread_cpu().saturating_sub(c));
            assert!(!got.is_empty(), "no match for {}", d.id);
        }
    }
    let elapsed = started.elapsed();
    if std::env::var("KC_SLOWEST").is_ok() {
        let mut per: Vec<(Duration, &str)> = cpu
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, demands[i % demands.len()].id.as_str()))
            .collect();
        per.sort();
        eprintln!("slowest: {:?}", &per[per.len() - 12..]);
    }
    let single = figures("match_demand k=5, 1 thread", 1, samples, elapsed);
    let single_cpu = figures("  cpu time of the same calls", 1, cpu, elapsed);

    let mut samples = Vec::new();
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|w| {
                let (engine, demands) = (engine.clone(), &demands);
                s.spawn(move || {
                    let mut local = Vec::new();
                    for r in 0..rounds {
                        for (i, d) in demands.iter().enumerate() {
                            if (i + r) % 2 == w {
                                let t = Instant::now();
                                engine.match_demand(d, 5);
                                local.push(t.elapsed());
                            }
                        }
                    }
                    local
                })
            })
            .collect();
        for h in handles {
            samples.extend(h.join().expect("bench thread"));
        }
    });
    let parallel = figures("match_demand k=5, 2 threads", 2, samples, started.elapsed());

    let mut baseline = Vec::new();
    let started = Instant::now();
    for d in &demands {
        let t = Instant::now();
        engine.bm25_only(d, 5);
        baseline.push(t.elapsed());
    }
    let bm25 = figures(
        "bm25_only k=5 (baseline), 1 thread",
        1,
        baseline,
        started.elapsed(),
    );

    // Reverse: 2,000 open demands (the evaluation demands, many times over).
    for i in 0..2_000 {
        let mut d = demands[i % demands.len()].clone();
        d.id = format!("open-{i:04}");
        engine.add_open_demand(&d)?;
    }
    let mut samples = Vec::new();
    let mut cpu = Vec::new();
    let started = Instant::now();
    for a in eval_docs.iter().take(100) {
        let (t, c) = (Instant::now(), thread_cpu());
        engine.match_achievement(a, 10);
        samples.push(t.elapsed());
        cpu.push(thread_cpu().saturating_sub(c));
    }
    let elapsed = started.elapsed();
    let reverse = figures(
        "match_achievement vs 2000 open demands",
        1,
        samples,
        elapsed,
    );
    let reverse_cpu = figures("  cpu time of the same calls", 1, cpu, elapsed);

    println!("{}", Figures::header());
    for f in [
        &load,
        &single,
        &single_cpu,
        &parallel,
        &bm25,
        &reverse,
        &reverse_cpu,
    ] {
        println!("{}", f.row());
    }
    println!(
        "load throughput: {:.0} achievements/s ({:.1} s for {n})",
        n as f64 / load.elapsed.as_secs_f64(),
        load.elapsed.as_secs_f64()
    );
    Ok(())
}
