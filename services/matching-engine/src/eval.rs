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

#[cfg(test)]
mod tests {
    use super::*;

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
