//! TEMPORARY stand-in with the matching engine's interface until `matching-engine` lands;
//! naive character-bigram overlap. Deleted at the merge.
#![allow(dead_code)]

use kechuang_proto::common::{ContractType, TransferMode};
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug, Clone)]
pub struct AchievementDoc {
    pub id: String,
    pub institution: String,
    pub title: String,
    pub abstract_text: String,
    pub keywords: Vec<String>,
    pub industry_chain: String,
    pub trl: i32,
    pub transfer_modes: Vec<TransferMode>,
    pub asking_price_fen: i64,
    pub region_code: String,
}
#[derive(Debug, Clone)]
pub struct DemandDoc {
    pub id: String,
    pub title: String,
    pub description: String,
    pub industry_chain: String,
    pub contract_type: ContractType,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub region_code: String,
}
#[derive(Debug, Clone)]
pub struct Match {
    pub achievement_id: String,
    pub score: f64,
    pub reasons: Vec<String>,
}
#[derive(Debug, Clone)]
pub struct DemandMatch {
    pub demand_id: String,
    pub matched: Match,
}

#[derive(Default)]
pub struct Engine {
    achievements: RwLock<HashMap<String, AchievementDoc>>,
    demands: RwLock<HashMap<String, DemandDoc>>,
}

fn bigrams(s: &str) -> std::collections::HashSet<(char, char)> {
    let c: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    c.windows(2).map(|w| (w[0], w[1])).collect()
}

fn score(d: &DemandDoc, a: &AchievementDoc) -> f64 {
    let q = bigrams(&format!("{}{}", d.title, d.description));
    let t = bigrams(&format!(
        "{}{}{}",
        a.title,
        a.abstract_text,
        a.keywords.join("")
    ));
    if q.is_empty() {
        return 0.0;
    }
    q.intersection(&t).count() as f64 / q.len() as f64
}

impl Engine {
    pub fn new() -> anyhow::Result<Engine> {
        Ok(Engine::default())
    }
    pub fn add_achievements(&self, docs: &[AchievementDoc]) -> anyhow::Result<()> {
        let mut m = self.achievements.write().unwrap();
        for d in docs {
            m.insert(d.id.clone(), d.clone());
        }
        Ok(())
    }
    pub fn achievement_count(&self) -> usize {
        self.achievements.read().unwrap().len()
    }
    pub fn match_demand(&self, demand: &DemandDoc, k: usize) -> Vec<Match> {
        let m = self.achievements.read().unwrap();
        let mut v: Vec<Match> = m
            .values()
            .map(|a| Match {
                achievement_id: a.id.clone(),
                score: score(demand, a),
                reasons: vec!["文本相近".into()],
            })
            .filter(|m| m.score > 0.2)
            .collect();
        v.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.achievement_id.cmp(&b.achievement_id))
        });
        v.truncate(k);
        v
    }
    pub fn bm25_only(&self, demand: &DemandDoc, k: usize) -> Vec<Match> {
        self.match_demand(demand, k)
    }
    pub fn add_open_demand(&self, demand: &DemandDoc) -> anyhow::Result<()> {
        self.demands
            .write()
            .unwrap()
            .insert(demand.id.clone(), demand.clone());
        Ok(())
    }
    pub fn remove_open_demand(&self, demand_id: &str) -> anyhow::Result<()> {
        self.demands.write().unwrap().remove(demand_id);
        Ok(())
    }
    pub fn match_achievement(&self, a: &AchievementDoc, limit: usize) -> Vec<DemandMatch> {
        let m = self.demands.read().unwrap();
        let mut v: Vec<DemandMatch> = m
            .values()
            .map(|d| DemandMatch {
                demand_id: d.id.clone(),
                matched: Match {
                    achievement_id: a.id.clone(),
                    score: score(d, a),
                    reasons: vec!["文本相近".into()],
                },
            })
            .filter(|m| m.matched.score > 0.2)
            .collect();
        v.sort_by(|a, b| b.matched.score.total_cmp(&a.matched.score));
        v.truncate(limit);
        v
    }
}
