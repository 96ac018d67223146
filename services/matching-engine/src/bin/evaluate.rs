//! Prints nDCG@5, recall@10 and MRR of BM25 alone and of the re-ranked engine on the committed
//! evaluation set, for the dev half and the held-out test half.
//!
//! `cargo run --release -p matching-engine --bin evaluate [-- --details dev|test]`
//! (`--details` lists each demand's top 5 with their labels; `--grid` searches the retrieval
//! knobs on the dev half only and prints the best settings.)

use anyhow::Context;
use matching_engine::eval::{
    EvalAchievement, EvalDemand, ndcg_at, parse_jsonl, recall_at, reciprocal_rank,
};
use matching_engine::{Engine, Match, Tuning};
use std::path::Path;

#[derive(Default)]
struct Sums {
    n: usize,
    ndcg5: f64,
    recall10: f64,
    mrr: f64,
}

impl Sums {
    fn add(&mut self, ranked: &[String], d: &EvalDemand) {
        self.n += 1;
        self.ndcg5 += ndcg_at(ranked, &d.labels, 5);
        self.recall10 += recall_at(ranked, &d.labels, 10);
        self.mrr += reciprocal_rank(ranked, &d.labels);
    }

    fn row(&self, label: &str) -> String {
        let n = self.n.max(1) as f64;
        format!(
            "{label:<34} {:>3} {:>8.3} {:>10.3} {:>7.3}",
            self.n,
            self.ndcg5 / n,
            self.recall10 / n,
            self.mrr / n
        )
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let details = args
        .iter()
        .position(|a| a == "--details")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval");
    let achievements: Vec<EvalAchievement> =
        parse_jsonl(&std::fs::read_to_string(dir.join("achievements.jsonl"))?)
            .map_err(anyhow::Error::msg)
            .context("eval/achievements.jsonl")?;
    let demands: Vec<EvalDemand> =
        parse_jsonl(&std::fs::read_to_string(dir.join("demands.jsonl"))?)
            .map_err(anyhow::Error::msg)
            .context("eval/demands.jsonl")?;
    let docs = achievements
        .iter()
        .map(|a| a.to_doc())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let titles: std::collections::HashMap<&str, &str> = achievements
        .iter()
        .map(|a| (a.id.as_str(), a.title.as_str()))
        .collect();
    if args.iter().any(|a| a == "--grid") {
        return grid(&docs, &demands);
    }
    let engine = Engine::new()?;
    engine.add_achievements(&docs)?;
    println!(
        "evaluation set: {} achievements, {} demands",
        engine.achievement_count(),
        demands.len()
    );
    println!(
        "{:<34} {:>3} {:>8} {:>10} {:>7}",
        "split / ranker", "n", "nDCG@5", "recall@10", "MRR"
    );
    for split in ["dev", "test"] {
        let (mut bm25, mut engine_sums) = (Sums::default(), Sums::default());
        for d in demands.iter().filter(|d| d.split == split) {
            let doc = d.to_doc().map_err(anyhow::Error::msg)?;
            let base = ids(&engine.bm25_only(&doc, 10));
            let matched = engine.match_demand(&doc, 10);
            let ranked = ids(&matched);
            bm25.add(&base, d);
            engine_sums.add(&ranked, d);
            if details.as_deref() == Some(split) {
                println!(
                    "\n{} {}  nDCG@5 bm25 {:.2} → engine {:.2}",
                    d.id,
                    d.title,
                    ndcg_at(&base, &d.labels, 5),
                    ndcg_at(&ranked, &d.labels, 5)
                );
                for m in matched.iter().take(5) {
                    let g = d.labels.get(&m.achievement_id).copied();
                    println!(
                        "  {} {:.3} [{}] {}\n      {}",
                        m.achievement_id,
                        m.score,
                        g.map_or("-".into(), |g| g.to_string()),
                        titles.get(m.achievement_id.as_str()).unwrap_or(&""),
                        m.reasons.join("；")
                    );
                }
                let missed: Vec<String> = d
                    .labels
                    .iter()
                    .filter(|(id, g)| **g >= 2 && !ranked.iter().take(5).any(|r| r == *id))
                    .map(|(id, g)| format!("{id}[{g}]"))
                    .collect();
                if !missed.is_empty() {
                    println!("  missed in top 5: {}", missed.join(" "));
                }
            }
        }
        println!("{}", bm25.row(&format!("{split}  BM25 only")));
        println!(
            "{}",
            engine_sums.row(&format!("{split}  engine (expanded+reranked)"))
        );
    }
    Ok(())
}

/// Dev-only search over the retrieval knobs; the held-out half is never scored here.
fn grid(docs: &[matching_engine::AchievementDoc], demands: &[EvalDemand]) -> anyhow::Result<()> {
    let dev: Vec<(&EvalDemand, matching_engine::DemandDoc)> = demands
        .iter()
        .filter(|d| d.split == "dev")
        .map(|d| d.to_doc().map(|doc| (d, doc)))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut results = Vec::new();
    for head_boost in [1.0, 2.0, 3.0] {
        for candidate_pool in [50, 100, 200] {
            for expansion_weight in [0.4, 0.8, 1.2] {
                for bigram_weight in [0.0, 0.15, 0.3, 0.6] {
                    let tuning = Tuning {
                        head_boost,
                        candidate_pool,
                        expansion_weight,
                        bigram_weight,
                        ..Tuning::default()
                    };
                    let engine = Engine::with_tuning(tuning)?;
                    engine.add_achievements(docs)?;
                    let mut sums = Sums::default();
                    for (d, doc) in &dev {
                        sums.add(&ids(&engine.match_demand(doc, 10)), d);
                    }
                    results.push((sums.ndcg5 / sums.n as f64, sums.mrr / sums.n as f64, tuning));
                }
            }
        }
    }
    results.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    for (ndcg, mrr, t) in results.iter().take(15) {
        println!("dev nDCG@5 {ndcg:.3} MRR {mrr:.3}  {t:?}");
    }
    let default = results.iter().find(|r| r.2 == Tuning::default());
    if let Some((ndcg, mrr, _)) = default {
        println!("default: dev nDCG@5 {ndcg:.3} MRR {mrr:.3}");
    }
    Ok(())
}

fn ids(matches: &[Match]) -> Vec<String> {
    matches.iter().map(|m| m.achievement_id.clone()).collect()
}
