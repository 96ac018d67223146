//! `evaluate --from-db URL`: the live engine judged by what enterprises did with its pairings
//! (the matching service's database, `kc_matching`), and the term relations their accepted
//! pairings suggest, for a manager to review. Reads only.

use matching_engine::outcomes::{
    ACCEPTED_SQL, AcceptedPair, OUTCOMES_SQL, Outcome, accepted_mrr, by_rank, propose_relations,
};
use matching_engine::relations::TermRelations;

/// Relations shown at most, and the demands that must support one.
const SHOWN: usize = 30;
const MIN_SUPPORT: usize = 2;

pub fn run(url: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(report(url))
}

async fn report(url: &str) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let rows: Vec<(String, i32, Option<bool>, bool)> =
        sqlx::query_as(OUTCOMES_SQL).fetch_all(&pool).await?;
    let outcomes: Vec<Outcome> = rows.into_iter().map(Outcome::from).collect();
    println!(
        "pairings by the rank they were seen at ({} pairings)",
        outcomes.len()
    );
    println!(
        "{:>4} {:>9} {:>9} {:>9} {:>10} {:>11}",
        "rank", "proposed", "answered", "accepted", "contracted", "acceptance"
    );
    for r in by_rank(&outcomes) {
        println!(
            "{:>4} {:>9} {:>9} {:>9} {:>10} {:>10.1}%",
            r.rank,
            r.proposed,
            r.answered,
            r.accepted,
            r.contracted,
            100.0 * r.acceptance()
        );
    }
    match accepted_mrr(&outcomes) {
        Some(mrr) => println!("MRR of the best accepted pairing per answered demand: {mrr:.3}"),
        None => println!("no pairing has been answered yet"),
    }
    let accepted: Vec<(String, String, String, String, Vec<String>)> =
        sqlx::query_as(ACCEPTED_SQL).fetch_all(&pool).await?;
    let pairs: Vec<AcceptedPair> = accepted
        .into_iter()
        .map(
            |(demand_id, demand_text, industry_chain, achievement_text, keywords)| AcceptedPair {
                demand_id,
                demand_text,
                industry_chain,
                achievement_text,
                achievement_keywords: keywords,
            },
        )
        .collect();
    let proposals = propose_relations(&pairs, TermRelations::shipped(), MIN_SUPPORT);
    println!(
        "\nterm relations the {} accepted pairings suggest (seen for ≥ {MIN_SUPPORT} demands; \
         proposals for review, never applied: add the ones that hold to data/term_relations.tsv)",
        pairs.len()
    );
    for p in proposals.iter().take(SHOWN) {
        println!("{}\t{}\t0.6\t# support {}", p.trigger, p.target, p.support);
    }
    if proposals.is_empty() {
        println!("(none yet)");
    }
    pool.close().await;
    Ok(())
}
