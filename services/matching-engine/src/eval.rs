//! Ranking metrics and the evaluation set's file format (`eval/*.jsonl`).
//!
//! Labels are graded 0–3: 3 solves the demand's problem, 2 substantially helps, 1 is related
//! but would not solve it, 0 is not relevant (hard negatives are labelled 0 explicitly;
//! anything unlabelled counts as 0). nDCG uses the grades (gain 2^g − 1); recall and MRR count
//! an achievement as relevant when its grade is at least `RELEVANT`.

use crate::docs::{AchievementDoc, DemandDoc};
use kechuang_proto::common::{ContractType, TransferMode};
use serde::Deserialize;
use std::collections::BTreeMap;

pub const RELEVANT: u8 = 2;

/// One line of `eval/achievements.jsonl`.
#[derive(Debug, Deserialize)]
pub struct EvalAchievement {
    pub id: String,
    pub institution: String,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    pub keywords: Vec<String>,
    pub chain: String,
    pub trl: i32,
    /// "转让", "许可", "作价投资", "合作开发".
    pub modes: Vec<String>,
    /// 万元; 0 = 面议.
    pub price_wan: f64,
    pub region: String,
}

/// One line of `eval/demands.jsonl`.
#[derive(Debug, Deserialize)]
pub struct EvalDemand {
    pub id: String,
    /// "dev" (may be looked at while building the term relations) or "test" (held out).
    pub split: String,
    /// "everyday" (shop-floor words sharing no term with the cure's title) or "ordinary";
    /// absent in the first set.
    #[serde(default)]
    pub wording: Option<String>,
    pub title: String,
    pub description: String,
    pub chain: String,
    /// "技术开发", "技术转让", "技术许可", "技术咨询", "技术服务".
    pub contract: String,
    pub budget_min_wan: f64,
    pub budget_max_wan: f64,
    pub region: String,
    /// achievement id → grade 0–3.
    pub labels: BTreeMap<String, u8>,
}

fn wan_to_fen(wan: f64) -> i64 {
    (wan * 1_000_000.0).round() as i64
}

fn transfer_mode(name: &str) -> Result<TransferMode, String> {
    Ok(match name {
        "转让" => TransferMode::Assignment,
        "许可" => TransferMode::License,
        "作价投资" => TransferMode::Equity,
        "合作开发" => TransferMode::JointDevelopment,
        other => return Err(format!("unknown transfer mode {other:?}")),
    })
}

fn contract_type(name: &str) -> Result<ContractType, String> {
    Ok(match name {
        "技术开发" => ContractType::Development,
        "技术转让" => ContractType::Transfer,
        "技术许可" => ContractType::License,
        "技术咨询" => ContractType::Consulting,
        "技术服务" => ContractType::Service,
        other => return Err(format!("unknown contract type {other:?}")),
    })
}

impl EvalAchievement {
    pub fn to_doc(&self) -> Result<AchievementDoc, String> {
        Ok(AchievementDoc {
            id: self.id.clone(),
            institution: self.institution.clone(),
            title: self.title.clone(),
            abstract_text: self.abstract_text.clone(),
            keywords: self.keywords.clone(),
            industry_chain: self.chain.clone(),
            trl: self.trl,
            transfer_modes: self
                .modes
                .iter()
                .map(|m| transfer_mode(m))
                .collect::<Result<_, _>>()?,
            asking_price_fen: wan_to_fen(self.price_wan),
            region_code: self.region.clone(),
        })
    }
}

impl EvalDemand {
    pub fn to_doc(&self) -> Result<DemandDoc, String> {
        Ok(DemandDoc {
            id: self.id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            industry_chain: self.chain.clone(),
            contract_type: contract_type(&self.contract)?,
            budget_min_fen: wan_to_fen(self.budget_min_wan),
            budget_max_fen: wan_to_fen(self.budget_max_wan),
            region_code: self.region.clone(),
        })
    }
}

/// Parses JSON lines, naming the line of the first bad record.
pub fn parse_jsonl<T: for<'de> Deserialize<'de>>(text: &str) -> Result<Vec<T>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

fn grade(labels: &BTreeMap<String, u8>, id: &str) -> u8 {
    labels.get(id).copied().unwrap_or(0)
}

fn gain(g: u8) -> f64 {
    (1u32 << g.min(8)) as f64 - 1.0
}

/// nDCG@k of a ranking against graded labels; 0 when nothing is relevant.
pub fn ndcg_at(ranked: &[String], labels: &BTreeMap<String, u8>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| gain(grade(labels, id)) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u8> = labels.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| gain(*g) / (i as f64 + 2.0).log2())
        .sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// Share of the relevant achievements (grade ≥ `RELEVANT`) found in the first k.
pub fn recall_at(ranked: &[String], labels: &BTreeMap<String, u8>, k: usize) -> f64 {
    let relevant = labels.values().filter(|g| **g >= RELEVANT).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|id| grade(labels, id) >= RELEVANT)
        .count();
    found as f64 / relevant as f64
}

/// 1 / rank of the first relevant achievement (grade ≥ `RELEVANT`); 0 if none is ranked.
pub fn reciprocal_rank(ranked: &[String], labels: &BTreeMap<String, u8>) -> f64 {
    ranked
        .iter()
        .position(|id| grade(labels, id) >= RELEVANT)
        .map_or(0.0, |p| 1.0 / (p as f64 + 1.0))
}

/// Reciprocal-rank fusion of several rankings (Cormack et al.: k = 60), best first, ties by id.
pub fn reciprocal_rank_fusion(rankings: &[Vec<String>], k: f64) -> Vec<String> {
    let mut fused: BTreeMap<&str, f64> = BTreeMap::new();
    for ranking in rankings {
        for (i, id) in ranking.iter().enumerate() {
            *fused.entry(id).or_default() += 1.0 / (k + i as f64 + 1.0);
        }
    }
    let mut out: Vec<(&str, f64)> = fused.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    out.into_iter().map(|(id, _)| id.to_string()).collect()
}

/// A 95 % interval of the mean of paired differences (a − b per demand), by the percentile
/// bootstrap over demands with a fixed seed, so a rerun prints the same interval.
pub fn paired_bootstrap(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> (f64, f64, f64) {
    assert_eq!(a.len(), b.len(), "paired samples");
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = diffs.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let mean = diffs.iter().sum::<f64>() / n as f64;
    // SplitMix64: a small, well-known generator; enough for resampling indices.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            (0..n)
                .map(|_| diffs[(next() % n as u64) as usize])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((means.len() - 1) as f64 * q).round() as usize];
    (mean, at(0.025), at(0.975))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement_between_rankings() {
        let a = ids(&["x", "y", "z"]);
        let b = ids(&["y", "w", "x"]);
        let fused = reciprocal_rank_fusion(&[a, b], 60.0);
        assert_eq!(fused[0], "y");
        assert_eq!(fused[1], "x");
        assert_eq!(fused.len(), 4);
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean_and_excludes_zero_for_a_clear_gain() {
        let a: Vec<f64> = (0..40).map(|i| 0.5 + (i % 5) as f64 * 0.05).collect();
        let b: Vec<f64> = a.iter().map(|x| x - 0.2).collect();
        let (mean, lo, hi) = paired_bootstrap(&a, &b, 2000, 7);
        assert!((mean - 0.2).abs() < 1e-9);
        assert!(lo <= mean && mean <= hi && lo > 0.0);
        // Noise around zero: the interval straddles it.
        let c: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let (_, lo, hi) = paired_bootstrap(&c, &vec![0.0; 40], 2000, 7);
        assert!(lo < 0.0 && hi > 0.0);
        assert_eq!(paired_bootstrap(&c, &vec![0.0; 40], 2000, 7).1, lo);
    }

    fn labels(pairs: &[(&str, u8)]) -> BTreeMap<String, u8> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ideal_ranking_has_ndcg_one_and_worse_ones_less() {
        let l = labels(&[("a", 3), ("b", 2), ("c", 0)]);
        assert!((ndcg_at(&ids(&["a", "b", "c"]), &l, 5) - 1.0).abs() < 1e-12);
        let swapped = ndcg_at(&ids(&["b", "a"]), &l, 5);
        assert!(swapped < 1.0 && swapped > 0.5);
        assert_eq!(ndcg_at(&ids(&["c", "x"]), &l, 5), 0.0);
    }

    #[test]
    fn recall_and_mrr_count_grades_from_two() {
        let l = labels(&[("a", 3), ("b", 2), ("m", 1)]);
        assert_eq!(recall_at(&ids(&["m", "a"]), &l, 10), 0.5);
        assert_eq!(reciprocal_rank(&ids(&["m", "x", "b"]), &l), 1.0 / 3.0);
        assert_eq!(reciprocal_rank(&ids(&["m"]), &l), 0.0);
    }

    #[test]
    fn records_convert_to_engine_documents() {
        let d: Vec<EvalDemand> = parse_jsonl(
            r#"{"id":"D1","split":"dev","title":"t","description":"d","chain":"北斗","contract":"技术许可","budget_min_wan":10,"budget_max_wan":80.5,"region":"420100","labels":{"A1":3}}"#,
        )
        .unwrap();
        let doc = d[0].to_doc().unwrap();
        assert_eq!(doc.budget_max_fen, 80_500_000);
        assert_eq!(doc.contract_type, ContractType::License);
        assert!(
            parse_jsonl::<EvalDemand>("{}")
                .unwrap_err()
                .contains("line 1")
        );
    }
}
