//! Learning from outcomes: what enterprises did with the pairings they were shown. Every answer
//! (accepted or declined, at the rank the enterprise saw) and every contract signed is a label
//! the engine was never tuned on. Reported, never applied: new term relations are proposed for
//! a manager to review, and production ranking changes only through a reviewed commit.

use crate::analysis;
use crate::relations::TermRelations;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Every pairing with the rank it was answered at (else its current rank), its answer and
/// whether a contract followed: `(demand_id, rank, accepted, contracted)`. Read from the
/// matching service's database (`kc_matching`) by `evaluate --from-db`.
pub const OUTCOMES_SQL: &str = "SELECT p.demand_id, COALESCE(o.rank, p.rank), o.accepted, \
     o.contracted_at IS NOT NULL FROM pairings p LEFT JOIN pairing_outcomes o ON o.pairing_id = p.id";

/// The accepted pairings' texts: `(demand_id, demand text, chain, achievement text, keywords)`.
pub const ACCEPTED_SQL: &str = "SELECT d.id, d.title || '。' || d.description, d.industry_chain, \
     a.title || ' ' || array_to_string(a.keywords, ' ') || ' ' || a.abstract, a.keywords \
     FROM pairing_outcomes o JOIN demands d ON d.id = o.demand_id \
     JOIN achievements a ON a.id = o.achievement_id WHERE o.accepted";

/// One pairing as the outcomes see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub demand_id: String,
    /// The rank the enterprise saw when it answered (the current rank if it has not).
    pub rank: i32,
    /// `Some(true)` accepted, `Some(false)` declined, `None` not answered.
    pub answer: Option<bool>,
    pub contracted: bool,
}

impl From<(String, i32, Option<bool>, bool)> for Outcome {
    /// A row of [`OUTCOMES_SQL`].
    fn from((demand_id, rank, answer, contracted): (String, i32, Option<bool>, bool)) -> Self {
        Outcome {
            demand_id,
            rank,
            answer,
            contracted,
        }
    }
}

/// What happened to the pairings shown at one rank.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AtRank {
    pub rank: i32,
    pub proposed: usize,
    pub answered: usize,
    pub accepted: usize,
    pub contracted: usize,
}

impl AtRank {
    /// Accepted among the answered; 0 when none was answered.
    pub fn acceptance(&self) -> f64 {
        if self.answered == 0 {
            0.0
        } else {
            self.accepted as f64 / self.answered as f64
        }
    }
}

/// The outcomes rank by rank, best rank first.
pub fn by_rank(outcomes: &[Outcome]) -> Vec<AtRank> {
    let mut ranks: BTreeMap<i32, AtRank> = BTreeMap::new();
    for o in outcomes {
        let r = ranks.entry(o.rank).or_insert_with(|| AtRank {
            rank: o.rank,
            ..AtRank::default()
        });
        r.proposed += 1;
        if let Some(accepted) = o.answer {
            r.answered += 1;
            r.accepted += usize::from(accepted);
        }
        r.contracted += usize::from(o.contracted);
    }
    ranks.into_values().collect()
}

/// Demands whose enterprise answered at least one pairing.
pub fn answered_demands(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| o.answer.is_some())
        .map(|o| o.demand_id.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

/// Mean reciprocal rank of the best accepted pairing, over the demands whose enterprise
/// answered at least one pairing (a demand with answers but no acceptance counts 0); `None`
/// when no demand has an answer yet.
pub fn accepted_mrr(outcomes: &[Outcome]) -> Option<f64> {
    let mut best: HashMap<&str, Option<i32>> = HashMap::new();
    for o in outcomes.iter().filter(|o| o.answer.is_some()) {
        let slot = best.entry(&o.demand_id).or_insert(None);
        if o.answer == Some(true) && slot.is_none_or(|r| o.rank < r) {
            *slot = Some(o.rank);
        }
    }
    if best.is_empty() {
        return None;
    }
    let sum: f64 = best
        .values()
        .map(|r| r.map_or(0.0, |r| 1.0 / f64::from(r.max(1))))
        .sum();
    Some(sum / best.len() as f64)
}

/// An accepted pairing's texts, for proposing relations.
#[derive(Clone, Debug)]
pub struct AcceptedPair {
    pub demand_id: String,
    pub demand_text: String,
    pub industry_chain: String,
    pub achievement_text: String,
    pub achievement_keywords: Vec<String>,
}

/// A relation the accepted pairings suggest: a word enterprises use → a keyword of what they
/// accepted, which the shipped relations do not hold yet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proposal {
    pub trigger: String,
    pub target: String,
    /// Distinct demands whose accepted pairing shows it.
    pub support: usize,
}

/// Relations proposed by at least `min_support` demands: a demand word the achievement does not
/// use, paired with an achievement keyword the demand does not use, neither already linked by
/// the shipped relations for that demand. Most supported first.
pub fn propose_relations(
    pairs: &[AcceptedPair],
    relations: &TermRelations,
    min_support: usize,
) -> Vec<Proposal> {
    let mut analyzer = analysis::analyzer();
    let mut support: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    for p in pairs {
        let achievement = p.achievement_text.to_lowercase();
        let demand = p.demand_text.to_lowercase();
        let linked: BTreeSet<(String, String)> = relations
            .expand(&p.demand_text, &p.industry_chain)
            .into_iter()
            .map(|e| (e.trigger, e.target))
            .collect();
        let words: BTreeSet<String> = analysis::terms(&mut analyzer, &p.demand_text)
            .into_iter()
            .filter(|t| !achievement.contains(t.as_str()))
            .collect();
        for keyword in &p.achievement_keywords {
            let target = keyword.trim().to_lowercase();
            if target.is_empty() || demand.contains(&target) {
                continue;
            }
            for word in &words {
                let key = (word.clone(), target.clone());
                if !linked.contains(&key) {
                    support.entry(key).or_default().insert(&p.demand_id);
                }
            }
        }
    }
    let mut out: Vec<Proposal> = support
        .into_iter()
        .filter(|(_, demands)| demands.len() >= min_support)
        .map(|((trigger, target), demands)| Proposal {
            trigger,
            target,
            support: demands.len(),
        })
        .collect();
    out.sort_by(|a, b| b.support.cmp(&a.support).then_with(|| a.cmp(b)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(demand: &str, rank: i32, answer: Option<bool>, contracted: bool) -> Outcome {
        Outcome {
            demand_id: demand.into(),
            rank,
            answer,
            contracted,
        }
    }

    #[test]
    fn outcomes_are_counted_at_the_rank_they_were_seen() {
        let all = [
            o("d1", 1, Some(true), true),
            o("d1", 2, Some(false), false),
            o("d2", 1, Some(false), false),
            o("d2", 2, None, false),
        ];
        let ranks = by_rank(&all);
        assert_eq!(ranks.len(), 2);
        assert_eq!(
            (
                ranks[0].proposed,
                ranks[0].answered,
                ranks[0].accepted,
                ranks[0].contracted
            ),
            (2, 2, 1, 1)
        );
        assert_eq!(ranks[0].acceptance(), 0.5);
        assert_eq!((ranks[1].answered, ranks[1].accepted), (1, 0));
    }

    #[test]
    fn mrr_takes_each_demands_best_accepted_rank_and_counts_refusals_as_zero() {
        assert_eq!(accepted_mrr(&[o("d1", 2, None, false)]), None);
        let all = [
            o("d1", 3, Some(true), false),
            o("d1", 2, Some(true), false),
            o("d2", 1, Some(false), false),
        ];
        assert_eq!(accepted_mrr(&all), Some((0.5 + 0.0) / 2.0));
    }

    #[test]
    fn relations_are_proposed_only_with_enough_support_and_not_twice() {
        let pair = |id: &str, demand: &str| AcceptedPair {
            demand_id: id.into(),
            demand_text: demand.into(),
            industry_chain: "节能环保".into(),
            achievement_text: "气凝胶绝热毡用于高温管线保温".into(),
            achievement_keywords: vec!["气凝胶".into(), "绝热毡".into()],
        };
        let relations = TermRelations::parse("烫手\t气凝胶\t0.8\n").unwrap();
        let pairs = [
            pair("d1", "管子外面烫手，热量跑掉"),
            pair("d2", "车间管子烫手，燃气费高"),
            pair("d2", "车间管子烫手，燃气费高"),
        ];
        let got = propose_relations(&pairs, &relations, 2);
        // 烫手 → 气凝胶 is shipped already; 烫手 → 绝热毡 is new, seen for two demands.
        assert!(got.contains(&Proposal {
            trigger: "烫手".into(),
            target: "绝热毡".into(),
            support: 2,
        }));
        assert!(
            !got.iter()
                .any(|p| p.trigger == "烫手" && p.target == "气凝胶")
        );
        // Said by one demand only (the same demand twice counts once).
        assert!(!got.iter().any(|p| p.trigger == "燃气费"));
    }
}
