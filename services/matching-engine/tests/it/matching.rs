use crate::fixtures::*;
use matching_engine::Engine;

fn ids(m: &[matching_engine::Match]) -> Vec<&str> {
    m.iter().map(|m| m.achievement_id.as_str()).collect()
}

#[test]
fn a_symptom_finds_the_method_that_cures_it_and_says_why() {
    let engine = loaded();
    let got = engine.match_demand(&weld_demand(), 3);
    assert_eq!(got[0].achievement_id, "weld-hybrid", "{got:#?}");
    let reasons = &got[0].reasons;
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("需求中的“气孔”对应成果的“")),
        "{reasons:?}"
    );
    // Above the budget, and kept first anyway, saying so.
    assert!(
        reasons.contains(&"报价 120 万元，超出预算上限 80 万元".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"同属高端装备产业链".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"同城供给（武汉市）".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"成熟度 TRL 7，可直接用于生产".to_string()),
        "{reasons:?}"
    );
}

#[test]
fn a_hard_negative_sharing_the_words_ranks_below_the_true_match() {
    let engine = loaded();
    let got = engine.match_demand(&weld_demand(), 8);
    let pos = |id: &str| ids(&got).iter().position(|x| *x == id);
    let weld = pos("weld-hybrid").expect("the true match is ranked");
    if let Some(ceramic) = pos("ceramic-pores") {
        assert!(weld < ceramic, "{got:#?}");
    }
}

#[test]
fn theft_by_digging_finds_distributed_fibre_sensing_not_fibre_to_the_home() {
    let engine = loaded();
    let got = engine.match_demand(&pipeline_demand(), 3);
    assert_eq!(got[0].achievement_id, "fiber-pipeline", "{got:#?}");
    assert!(
        got[0]
            .reasons
            .iter()
            .any(|r| r.starts_with("需求中的“偷挖”对应成果的“")),
        "{:?}",
        got[0].reasons
    );
    // BM25 alone explains nothing beyond shared words.
    let baseline = engine.bm25_only(&pipeline_demand(), 3);
    assert!(
        baseline
            .iter()
            .all(|m| !m.reasons.iter().any(|r| r.contains("对应成果")))
    );
}

#[test]
fn mixed_chinese_and_english_terms_match() {
    let engine = loaded();
    let got = engine.match_demand(&ai_demand(), 2);
    assert_eq!(got[0].achievement_id, "ai-inspect", "{got:#?}");
    let shared = got[0]
        .reasons
        .iter()
        .find(|r| r.starts_with("需求与成果共有关键词"))
        .expect("shared terms");
    assert!(
        shared.contains("“PLC”") && shared.contains("“AI”"),
        "{shared}"
    );
    // The speech-quality platform shares "AI" and "质检" but solves another problem.
    let pos = |id: &str| ids(&got).iter().position(|x| *x == id);
    assert!(pos("ai-speech").is_none_or(|p| p > 0));
}

#[test]
fn results_are_deterministic_and_best_first() {
    let engine = loaded();
    let a = engine.match_demand(&weld_demand(), 8);
    let b = engine.match_demand(&weld_demand(), 8);
    assert_eq!(a, b);
    assert!(a.len() <= 8);
    for m in &a {
        assert!(m.score.is_finite() && m.score >= 0.0);
    }
}

#[test]
fn re_adding_an_id_replaces_the_achievement() {
    let engine = loaded();
    assert_eq!(engine.achievement_count(), catalog().len());
    let mut changed = catalog().remove(0);
    changed.asking_price_fen = wan(50);
    engine
        .add_achievements(&[changed.clone(), changed])
        .unwrap();
    assert_eq!(engine.achievement_count(), catalog().len());
    let got = engine.match_demand(&weld_demand(), 1);
    assert!(
        got[0]
            .reasons
            .contains(&"报价 50 万元，不超过预算上限 80 万元".to_string()),
        "{:?}",
        got[0].reasons
    );
}

#[test]
fn an_empty_engine_and_k_zero_give_nothing() {
    let engine = Engine::new().unwrap();
    assert!(engine.match_demand(&weld_demand(), 5).is_empty());
    assert!(engine.bm25_only(&weld_demand(), 5).is_empty());
    assert!(loaded().match_demand(&weld_demand(), 0).is_empty());
}

#[test]
fn the_engine_is_shared_across_threads_while_it_grows() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
    let engine = std::sync::Arc::new(loaded());
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for i in 0..5 {
                let mut a = catalog().remove(1);
                a.id = format!("extra-{i}");
                engine.add_achievements(&[a]).unwrap();
            }
        })
    };
    for _ in 0..5 {
        assert_eq!(
            engine.match_demand(&weld_demand(), 1)[0].achievement_id,
            "weld-hybrid"
        );
    }
    writer.join().unwrap();
    assert_eq!(engine.achievement_count(), catalog().len() + 5);
}

#[test]
fn achievements_added_in_several_batches_are_all_matched() {
    let engine = Engine::new().unwrap();
    for a in catalog() {
        engine.add_achievements(&[a]).unwrap();
    }
    let got = engine.match_demand(&weld_demand(), 3);
    assert_eq!(
        got.first().map(|m| m.achievement_id.as_str()),
        Some("weld-hybrid"),
        "{got:#?}"
    );
}
