//! The re-ranking score of one (demand, achievement) pair, and the choice of the top k.
//!
//! `score = relevance × fit`.
//!
//! - `relevance` in [0, 1) says how well the achievement's content answers the demand:
//!   `1 − exp(−x / TAU)` over the evidence `x`. Without meaning vectors `x` is the lexical
//!   evidence alone, `text + CONCEPT_WEIGHT · min(concept, CONCEPT_CAP)`; with them it is
//!   `blend.lexical · lexical + blend.meaning · strength(cosine)`, where the strength of the
//!   demand's and the achievement's sentence embeddings is their cosine above `blend.floor`,
//!   in units of `blend.span` (see [`Blend`]). `text` is the
//!   BM25 score of the expanded query (demand terms plus curated method terms) divided by the
//!   query's own weight (Σ weight·idf of its terms), so demands of any length score on one
//!   scale; and `concept` is the summed weight of the curated methods found verbatim in the
//!   achievement ("激光-电弧复合焊接" as a phrase, not only its characters scattered about).
//! - `fit` multiplies small factors for the structured fit: chain, price, maturity, region,
//!   contract. Each stays close to 1: structure refines the order of relevant achievements; it
//!   cannot make an irrelevant one relevant (relevance 0 stays 0).
//!
//! On top of the score, `select_top_k` guarantees that the most relevant achievement is never
//! pushed out of the top k by structured misfits alone (say, asking more than the budget): it
//! keeps its score and takes the last place, and its reasons say why.

use crate::fit::{ChainFit, ContractFit, PriceFit, RegionFit, StructuredFit};
use kechuang_proto::common::ContractType;

/// Scale of the relevance curve: text + concept of 1.0 gives relevance 0.63.
pub const TAU: f64 = 1.0;
/// How much one verbatim curated method counts, relative to normalised BM25.
pub const CONCEPT_WEIGHT: f64 = 0.5;
pub const CONCEPT_CAP: f64 = 2.0;

pub const CHAIN_SAME: f64 = 1.10;
pub const CHAIN_RELATED: f64 = 1.0;
pub const CHAIN_DIFFERENT: f64 = 0.85;
pub const PRICE_WITHIN: f64 = 1.04;
/// At most this much is taken off for a price above the budget (reached at 100 % over).
pub const PRICE_ABOVE_MAX_PENALTY: f64 = 0.12;
pub const TRL_MATURE: f64 = 1.04;
pub const TRL_EARLY: f64 = 0.93;
pub const TRL_EARLY_FOR_DEVELOPMENT: f64 = 0.98;
pub const REGION_SAME_CITY: f64 = 1.04;
pub const REGION_SAME_PROVINCE: f64 = 1.02;
pub const CONTRACT_COMPATIBLE: f64 = 1.04;
pub const CONTRACT_INCOMPATIBLE: f64 = 0.92;

/// What the score of one pair is computed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairFeatures {
    /// BM25 of the expanded query over the achievement ÷ the query's own weight; ≥ 0.
    pub text: f64,
    /// Σ weight of the curated method terms found verbatim in the achievement; ≥ 0.
    pub concept: f64,
    /// Cosine similarity of the demand's and the achievement's sentence embeddings, where both
    /// have one.
    pub meaning: Option<f64>,
    pub fit: StructuredFit,
}

/// How words and meaning make up relevance when both are known. Chosen on the dev half of the
/// blind evaluation set (`evaluate --grid`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blend {
    /// Weight of the lexical evidence (BM25 and curated methods).
    pub lexical: f64,
    /// Weight of the meaning evidence.
    pub meaning: f64,
    /// Cosine below which two texts are taken as unrelated (e5's cosines of unrelated Chinese
    /// texts sit around 0.75–0.8, not at 0).
    pub floor: f64,
    /// Cosine above the floor that counts as one unit of evidence.
    pub span: f64,
    /// Meaning evidence a pair needs when it shares no word with the demand: below it, the
    /// pair is not proposed at all (e5 puts unrelated Chinese texts at cosines up to ~0.86).
    pub alone: f64,
}

impl Default for Blend {
    fn default() -> Self {
        // The middle of the best plateau of `evaluate --grid` on the blind set's dev half
        // (0.873 nDCG@5 there; its neighbours within 0.002).
        Blend {
            lexical: 0.03,
            meaning: 0.5,
            floor: 0.83,
            span: 0.06,
            alone: 1.0,
        }
    }
}

impl Blend {
    /// The meaning evidence of a cosine: 0 at or below the floor, then linear, capped.
    pub fn strength(&self, cosine: f64) -> f64 {
        if !cosine.is_finite() || self.span <= 0.0 {
            return 0.0;
        }
        ((cosine - self.floor) / self.span).clamp(0.0, MEANING_CAP)
    }
}

/// At most this much meaning evidence: a near-duplicate text cannot outweigh everything else.
pub const MEANING_CAP: f64 = 4.0;

/// Whether a pair may be proposed at all: it shares words with the demand, or it is close
/// enough in meaning on its own.
pub fn admissible(f: &PairFeatures, blend: &Blend) -> bool {
    lexical(f.text, f.concept) > 0.0
        || f.meaning
            .is_some_and(|cosine| blend.strength(cosine) >= blend.alone)
}

/// The lexical evidence of a pair: normalised BM25 plus the capped curated-method bonus.
pub fn lexical(text: f64, concept: f64) -> f64 {
    sanitize(text) + CONCEPT_WEIGHT * sanitize(concept).min(CONCEPT_CAP)
}

/// Relevance from words alone (the engine without meaning vectors).
pub fn relevance(text: f64, concept: f64) -> f64 {
    saturate(lexical(text, concept))
}

/// Relevance of a pair from all the evidence it has.
pub fn pair_relevance(f: &PairFeatures, blend: &Blend) -> f64 {
    let words = lexical(f.text, f.concept);
    match f.meaning {
        None => saturate(words),
        Some(cosine) => saturate(
            sanitize(blend.lexical) * words + sanitize(blend.meaning) * blend.strength(cosine),
        ),
    }
}

fn saturate(x: f64) -> f64 {
    1.0 - (-x / TAU).exp()
}

fn sanitize(x: f64) -> f64 {
    if x.is_finite() { x.max(0.0) } else { 0.0 }
}

pub fn chain_factor(c: ChainFit) -> f64 {
    match c {
        ChainFit::Same => CHAIN_SAME,
        ChainFit::Related | ChainFit::Unknown => CHAIN_RELATED,
        ChainFit::Different => CHAIN_DIFFERENT,
    }
}

pub fn price_factor(p: PriceFit) -> f64 {
    match p {
        PriceFit::Within => PRICE_WITHIN,
        PriceFit::Open => 1.0,
        PriceFit::Above { over } => 1.0 - PRICE_ABOVE_MAX_PENALTY * sanitize(over).min(1.0),
    }
}

pub fn trl_factor(trl: i32, contract_type: ContractType) -> f64 {
    match trl {
        7..=9 => TRL_MATURE,
        4..=6 => 1.0,
        1..=3 if contract_type == ContractType::Development => TRL_EARLY_FOR_DEVELOPMENT,
        1..=3 => TRL_EARLY,
        _ => 1.0,
    }
}

pub fn region_factor(r: RegionFit) -> f64 {
    match r {
        RegionFit::SameCity => REGION_SAME_CITY,
        RegionFit::SameProvince => REGION_SAME_PROVINCE,
        RegionFit::Elsewhere | RegionFit::Unknown => 1.0,
    }
}

pub fn contract_factor(c: ContractFit) -> f64 {
    match c {
        ContractFit::Compatible => CONTRACT_COMPATIBLE,
        ContractFit::Incompatible => CONTRACT_INCOMPATIBLE,
        ContractFit::Unknown => 1.0,
    }
}

pub fn fit_factor(f: &StructuredFit) -> f64 {
    chain_factor(f.chain)
        * price_factor(f.price)
        * trl_factor(f.trl, f.contract_type)
        * region_factor(f.region)
        * contract_factor(f.contract)
}

/// The score of one pair: deterministic, finite, ≥ 0.
pub fn score(f: &PairFeatures, blend: &Blend) -> f64 {
    pair_relevance(f, blend) * fit_factor(&f.fit)
}

/// One scored candidate, for choosing the top k.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored<T> {
    pub id: String,
    pub relevance: f64,
    pub score: f64,
    pub item: T,
}

/// The best `k` by score (ties by id), except that the most relevant candidate (ties by score,
/// then id) always stays: if structured misfits pushed it below the k-th place, it takes the
/// k-th place. Returns each chosen candidate with `true` if it was kept that way.
pub fn select_top_k<T>(mut candidates: Vec<Scored<T>>, k: usize) -> Vec<(Scored<T>, bool)> {
    if k == 0 || candidates.is_empty() {
        return Vec::new();
    }
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    let most_relevant = (0..candidates.len())
        .max_by(|&i, &j| {
            let (a, b) = (&candidates[i], &candidates[j]);
            a.relevance
                .total_cmp(&b.relevance)
                .then_with(|| a.score.total_cmp(&b.score))
                .then_with(|| b.id.cmp(&a.id))
        })
        .unwrap_or(0);
    let rescued = if most_relevant >= k && candidates[most_relevant].relevance > 0.0 {
        Some(candidates.swap_remove(most_relevant))
    } else {
        None
    };
    candidates.truncate(k);
    let mut chosen: Vec<(Scored<T>, bool)> = candidates.into_iter().map(|c| (c, false)).collect();
    if let Some(r) = rescued {
        chosen.truncate(k - 1);
        chosen.push((r, true));
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fit() -> StructuredFit {
        StructuredFit {
            chain: ChainFit::Same,
            price: PriceFit::Within,
            trl: 7,
            region: RegionFit::SameProvince,
            contract: ContractFit::Compatible,
            contract_type: ContractType::Transfer,
        }
    }

    fn features(text: f64) -> PairFeatures {
        PairFeatures {
            text,
            concept: 0.0,
            meaning: None,
            fit: fit(),
        }
    }

    #[test]
    fn relevance_grows_with_text_and_verbatim_methods_and_saturates() {
        assert_eq!(relevance(0.0, 0.0), 0.0);
        assert!(relevance(0.5, 0.0) < relevance(1.0, 0.0));
        assert!(relevance(0.5, 0.0) < relevance(0.5, 1.0));
        assert!(relevance(100.0, 100.0) <= 1.0);
        assert!(relevance(3.0, 2.0) < 1.0);
        // The concept bonus is capped: a list of every method name cannot run away.
        assert_eq!(relevance(0.2, 2.0), relevance(0.2, 50.0));
    }

    #[test]
    fn meaning_adds_evidence_above_its_floor_and_is_capped() {
        let b = Blend::default();
        let with = |cosine| PairFeatures {
            meaning: Some(cosine),
            ..features(0.0)
        };
        assert_eq!(pair_relevance(&with(b.floor - 0.1), &b), 0.0);
        assert!(pair_relevance(&with(b.floor + 0.02), &b) > 0.0);
        assert!(pair_relevance(&with(0.85), &b) < pair_relevance(&with(0.9), &b));
        let past_cap = |units: f64| with(b.floor + b.span * (MEANING_CAP + units));
        assert_eq!(
            pair_relevance(&past_cap(0.5), &b),
            pair_relevance(&past_cap(5.0), &b)
        );
        assert_eq!(pair_relevance(&with(f64::NAN), &b), 0.0);
        // Without a vector, relevance is the words' alone, whatever the blend.
        assert_eq!(pair_relevance(&features(1.0), &b), relevance(1.0, 0.0));
    }

    #[test]
    fn each_misfit_lowers_the_score() {
        let base = score(&features(1.0), &Blend::default());
        let mut f = features(1.0);
        f.fit.chain = ChainFit::Different;
        assert!(score(&f, &Blend::default()) < base);
        let mut f = features(1.0);
        f.fit.price = PriceFit::Above { over: 0.5 };
        assert!(score(&f, &Blend::default()) < base);
        let mut f = features(1.0);
        f.fit.trl = 2;
        assert!(score(&f, &Blend::default()) < base);
        let mut f = features(1.0);
        f.fit.region = RegionFit::Elsewhere;
        assert!(score(&f, &Blend::default()) < base);
        let mut f = features(1.0);
        f.fit.contract = ContractFit::Incompatible;
        assert!(score(&f, &Blend::default()) < base);
    }

    #[test]
    fn price_penalty_grows_with_the_overrun_and_is_bounded() {
        let a = price_factor(PriceFit::Above { over: 0.1 });
        let b = price_factor(PriceFit::Above { over: 0.5 });
        let c = price_factor(PriceFit::Above { over: 10.0 });
        assert!(1.0 > a && a > b && b > c);
        assert_eq!(c, 1.0 - PRICE_ABOVE_MAX_PENALTY);
    }

    #[test]
    fn early_stage_is_less_of_a_misfit_for_a_development_contract() {
        assert!(trl_factor(2, ContractType::Development) > trl_factor(2, ContractType::Transfer));
    }

    #[test]
    fn structure_cannot_make_an_irrelevant_achievement_relevant() {
        assert_eq!(score(&features(0.0), &Blend::default()), 0.0);
    }

    #[test]
    fn structure_refines_but_does_not_dominate() {
        // A clearly more relevant achievement with every misfit still beats a barely relevant
        // one with every fit.
        let mut bad = features(2.0);
        bad.fit = StructuredFit {
            chain: ChainFit::Different,
            price: PriceFit::Above { over: 3.0 },
            trl: 2,
            region: RegionFit::Elsewhere,
            contract: ContractFit::Incompatible,
            contract_type: ContractType::Transfer,
        };
        let good = features(0.3);
        assert!(score(&bad, &Blend::default()) > score(&good, &Blend::default()));
    }

    fn scored(id: &str, relevance: f64, score: f64) -> Scored<()> {
        Scored {
            id: id.into(),
            relevance,
            score,
            item: (),
        }
    }

    #[test]
    fn top_k_orders_by_score_then_id() {
        let got = select_top_k(
            vec![
                scored("b", 0.5, 0.5),
                scored("a", 0.5, 0.5),
                scored("c", 0.9, 0.9),
            ],
            2,
        );
        let ids: Vec<_> = got.iter().map(|(c, _)| c.id.as_str()).collect();
        assert_eq!(ids, ["c", "a"]);
        assert!(got.iter().all(|(_, kept)| !kept));
    }

    #[test]
    fn the_most_relevant_takes_the_last_place_when_misfits_would_drop_it() {
        let got = select_top_k(
            vec![
                scored("a", 0.80, 0.85),
                scored("b", 0.79, 0.84),
                scored("c", 0.90, 0.70),
                scored("d", 0.78, 0.83),
            ],
            2,
        );
        let ids: Vec<_> = got.iter().map(|(c, kept)| (c.id.as_str(), *kept)).collect();
        assert_eq!(ids, [("a", false), ("c", true)]);
    }

    fn arb_fit() -> impl Strategy<Value = StructuredFit> {
        (
            prop_oneof![
                Just(ChainFit::Same),
                Just(ChainFit::Related),
                Just(ChainFit::Different),
                Just(ChainFit::Unknown)
            ],
            prop_oneof![
                Just(PriceFit::Within),
                Just(PriceFit::Open),
                (0.0f64..20.0).prop_map(|over| PriceFit::Above { over })
            ],
            -2i32..12,
            prop_oneof![
                Just(RegionFit::SameCity),
                Just(RegionFit::SameProvince),
                Just(RegionFit::Elsewhere),
                Just(RegionFit::Unknown)
            ],
            prop_oneof![
                Just(ContractFit::Compatible),
                Just(ContractFit::Incompatible),
                Just(ContractFit::Unknown)
            ],
            0i32..6,
        )
            .prop_map(|(chain, price, trl, region, contract, ct)| StructuredFit {
                chain,
                price,
                trl,
                region,
                contract,
                contract_type: ContractType::try_from(ct).unwrap_or(ContractType::Unspecified),
            })
    }

    proptest! {
        #[test]
        fn scores_are_finite_bounded_and_deterministic(
            text in prop_oneof![-1.0f64..50.0, Just(f64::NAN), Just(f64::INFINITY)],
            concept in 0.0f64..10.0,
            fit in arb_fit(),
        ) {
            let f = PairFeatures { text, concept, meaning: None, fit };
            let s = score(&f, &Blend::default());
            prop_assert!(s.is_finite());
            prop_assert!((0.0..1.5).contains(&s));
            prop_assert_eq!(s.to_bits(), score(&f, &Blend::default()).to_bits());
        }

        #[test]
        fn a_price_above_budget_never_removes_the_otherwise_top_achievement(
            others in proptest::collection::vec((0.0f64..3.0, 0.0f64..3.0, arb_fit()), 0..40),
            top_fit in arb_fit(),
            over in 0.01f64..50.0,
            k in 1usize..8,
        ) {
            // The achievement that is first when its price is within the budget...
            let mut within = top_fit;
            within.price = PriceFit::Within;
            let top = PairFeatures { text: 3.0, concept: 2.0, meaning: None, fit: within };
            let mut cands: Vec<Scored<()>> = others
                .iter()
                .enumerate()
                .map(|(i, (t, c, f))| {
                    let p = PairFeatures { text: *t, concept: *c, meaning: None, fit: *f };
                    scored(&format!("o{i:03}"), relevance(p.text, p.concept), score(&p, &Blend::default()))
                })
                .collect();
            let first = select_top_k(
                { let mut v = cands.clone(); v.push(scored("top", relevance(3.0, 2.0), score(&top, &Blend::default()))); v },
                k,
            );
            prop_assume!(first[0].0.id == "top");
            // ...asks more than the budget: it must still be among the k.
            let mut above = top;
            above.fit.price = PriceFit::Above { over };
            cands.push(scored("top", relevance(3.0, 2.0), score(&above, &Blend::default())));
            let got = select_top_k(cands, k);
            prop_assert!(got.iter().any(|(c, _)| c.id == "top"));
        }

        #[test]
        fn top_k_is_sorted_by_score_and_never_longer_than_k(
            cands in proptest::collection::vec((0.0f64..1.0, 0.0f64..1.5), 0..30),
            k in 0usize..10,
        ) {
            let v: Vec<Scored<()>> = cands
                .iter()
                .enumerate()
                .map(|(i, (r, s))| scored(&format!("{i:02}"), *r, *s))
                .collect();
            let n = v.len();
            let got = select_top_k(v, k);
            prop_assert_eq!(got.len(), k.min(n));
            let rescued = got.iter().filter(|(_, kept)| *kept).count();
            prop_assert!(rescued <= 1);
            // Sorted by score except possibly the rescued last one, which scores lower.
            for w in got.windows(2) {
                prop_assert!(w[0].0.score >= w[1].0.score);
            }
        }
    }
}
