use crate::fixtures::*;

#[test]
fn reverse_matching_scores_each_pair_exactly_as_forward_matching() {
    let engine = loaded();
    let demands = [weld_demand(), pipeline_demand(), ai_demand()];
    for d in &demands {
        engine.add_open_demand(d).unwrap();
    }
    let mut compared = 0;
    for a in catalog() {
        for dm in engine.match_achievement(&a, 10) {
            let demand = demands.iter().find(|d| d.id == dm.demand_id).unwrap();
            let forward = engine.match_demand(demand, 100);
            let f = forward
                .iter()
                .find(|m| m.achievement_id == a.id)
                .unwrap_or_else(|| panic!("{} not in forward results of {}", a.id, demand.id));
            assert_eq!(
                f.score.to_bits(),
                dm.matched.score.to_bits(),
                "{} / {}",
                a.id,
                demand.id
            );
            assert_eq!(dm.matched.achievement_id, a.id);
            compared += 1;
        }
    }
    assert!(compared >= 3, "only {compared} pairs compared");
}

#[test]
fn a_new_achievement_finds_the_demands_it_cures_best_first() {
    let engine = loaded();
    for d in [weld_demand(), pipeline_demand(), ai_demand()] {
        engine.add_open_demand(&d).unwrap();
    }
    let mut newcomer = catalog().remove(0);
    newcomer.id = "weld-new".into();
    let got = engine.match_achievement(&newcomer, 5);
    assert_eq!(got[0].demand_id, "d-weld", "{got:#?}");
    // It was added to the index to be scored, and matches forward too.
    assert_eq!(engine.achievement_count(), catalog().len() + 1);
    assert!(
        got.windows(2)
            .all(|w| w[0].matched.score >= w[1].matched.score)
    );
}

#[test]
fn a_removed_demand_gets_no_more_matches() {
    let engine = loaded();
    engine.add_open_demand(&weld_demand()).unwrap();
    engine.add_open_demand(&pipeline_demand()).unwrap();
    assert_eq!(engine.open_demand_count(), 2);
    engine.remove_open_demand("d-weld").unwrap();
    engine.remove_open_demand("unknown").unwrap();
    let weld = catalog().remove(0);
    assert!(
        engine
            .match_achievement(&weld, 5)
            .iter()
            .all(|m| m.demand_id != "d-weld")
    );
}
