//! The committed evaluation set is what the issue asks for, and internally consistent.

use kechuang_vocabulary::{INDUSTRY_CHAINS, check_region_code};
use matching_engine::eval::{EvalAchievement, EvalDemand, parse_jsonl};
use std::collections::{BTreeSet, HashSet};

fn load() -> (Vec<EvalAchievement>, Vec<EvalDemand>) {
    let a = parse_jsonl(include_str!("../../eval/achievements.jsonl")).unwrap();
    let d = parse_jsonl(include_str!("../../eval/demands.jsonl")).unwrap();
    (a, d)
}

#[test]
fn the_evaluation_set_is_large_enough_and_spans_eight_chains() {
    let (a, d) = load();
    assert!(a.len() >= 300, "{} achievements", a.len());
    assert!(d.len() >= 60, "{} demands", d.len());
    let chains: BTreeSet<&str> = d.iter().map(|d| d.chain.as_str()).collect();
    assert!(chains.len() >= 8, "{chains:?}");
    let dev = d.iter().filter(|d| d.split == "dev").count();
    let test = d.iter().filter(|d| d.split == "test").count();
    assert_eq!(dev + test, d.len(), "every demand is dev or test");
    assert!(dev >= 30 && test >= 30);
}

#[test]
fn records_are_valid_and_labels_point_at_real_achievements() {
    let (a, d) = load();
    let ids: HashSet<&str> = a.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), a.len(), "duplicate achievement ids");
    for x in &a {
        assert!(INDUSTRY_CHAINS.contains(&x.chain.as_str()), "{}", x.id);
        assert!(check_region_code(&x.region).is_ok(), "{}", x.id);
        assert!((1..=9).contains(&x.trl), "{}", x.id);
        x.to_doc().unwrap();
    }
    for x in &d {
        assert!(INDUSTRY_CHAINS.contains(&x.chain.as_str()), "{}", x.id);
        assert!(check_region_code(&x.region).is_ok(), "{}", x.id);
        x.to_doc().unwrap();
        assert!(
            x.labels.values().any(|g| *g == 3),
            "{} has no grade-3 answer",
            x.id
        );
        assert!(
            x.labels.values().any(|g| *g == 0),
            "{} has no hard negative",
            x.id
        );
        for (id, g) in &x.labels {
            assert!(ids.contains(id.as_str()), "{} labels unknown {id}", x.id);
            assert!(*g <= 3);
        }
    }
}
