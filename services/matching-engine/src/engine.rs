//! The engine: an in-RAM tantivy index of achievements, BM25 candidate retrieval with curated
//! query expansion, re-ranking by `score`, and the open demands for reverse matching.
//!
//! One (demand, achievement) pair gets the same score from `match_demand` and from
//! `match_achievement` on the same index state: both build the demand's query on the same
//! snapshot statistics, compute BM25 with the same per-document scorer (`exact_bm25`), and
//! take the features from the achievement as stored in the index.

use crate::analysis::{self, ANALYZER, BIGRAMS};
use crate::dense::DenseIndex;
use crate::docs::{AchievementDoc, DemandDoc, DemandMatch, Match};
use crate::evidence;
use crate::fit::StructuredFit;
use crate::index::{self, BuiltQuery, Fields, QueryTerm, Snapshot, Tuning};
use crate::reasons::{MeaningEvidence, TextEvidence, reasons};
use crate::relations::{Expansion, TermRelations};
use crate::score::{Blend, PairFeatures, Scored, admissible, pair_relevance, score, select_top_k};
use anyhow::Context;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};

/// Meaning evidence from which the reasons call a pair close in meaning (cosine 0.875 with
/// the default blend: e5's cosines of unrelated Chinese texts reach 0.86).
const CLOSE_STRENGTH: f64 = 0.75;
/// How many open demands sharing words with a new achievement are scored exactly.
const REVERSE_POOL: usize = 500;
const WRITER_MEMORY_PER_THREAD: usize = 64 * 1024 * 1024;

/// A demand analysed once: its own terms and the curated method terms it expands to.
#[derive(Debug)]
struct PreparedDemand {
    doc: DemandDoc,
    /// Distinct terms of the demand's own text.
    own: Vec<String>,
    expansions: Vec<Expansion>,
    /// Every query term with its weight: own terms 1, expansion terms less. Sorted by term.
    weighted: Vec<QueryTerm>,
    /// Distinct character bigrams of the demand's own text.
    bigrams: Vec<String>,
    /// The demand's sentence embedding, when the caller has one.
    meaning: Option<Vec<f32>>,
}

/// The matching engine. `Send + Sync`; every method takes `&self`.
pub struct Engine {
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    /// The statistics of the reader's current searcher, memoised until the next reload.
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    analyzer: TextAnalyzer,
    bigram_analyzer: TextAnalyzer,
    relations: &'static TermRelations,
    tuning: Tuning,
    demands: RwLock<BTreeMap<String, Arc<PreparedDemand>>>,
    /// The achievements' sentence embeddings (those that have one yet).
    meanings: RwLock<DenseIndex>,
}

fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::anyhow!("engine state poisoned by an earlier panic")
}

impl Engine {
    /// An engine with empty in-RAM indexes and the shipped term relations.
    pub fn new() -> anyhow::Result<Engine> {
        Engine::with_tuning(Tuning::default())
    }

    /// An engine with other retrieval knobs (for evaluation).
    pub fn with_tuning(tuning: Tuning) -> anyhow::Result<Engine> {
        let (schema, fields) = Fields::schema();
        let index = Index::create_in_ram(schema);
        let analyzer = analysis::analyzer();
        let bigram_analyzer = analysis::bigram_analyzer();
        index.tokenizers().register(ANALYZER, analyzer.clone());
        index
            .tokenizers()
            .register(BIGRAMS, bigram_analyzer.clone());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let writer = index
            .writer_with_num_threads(threads, threads * WRITER_MEMORY_PER_THREAD)
            .context("creating the index writer")?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .context("creating the index reader")?;
        Ok(Engine {
            fields,
            writer: Mutex::new(writer),
            reader,
            snapshot: Mutex::new(None),
            analyzer,
            bigram_analyzer,
            relations: TermRelations::shipped(),
            tuning,
            demands: RwLock::new(BTreeMap::new()),
            meanings: RwLock::new(DenseIndex::default()),
        })
    }

    /// Adds (or replaces, by id) achievements and commits: they are searchable on return.
    pub fn add_achievements(&self, docs: &[AchievementDoc]) -> anyhow::Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer.lock().map_err(poisoned)?;
        for a in docs {
            writer.delete_term(Term::from_field_text(self.fields.id, &a.id));
            writer.add_document(self.fields.document(a)?)?;
        }
        writer.commit().context("committing achievements")?;
        self.reader.reload().context("reloading the index reader")?;
        Ok(())
    }

    /// Sets the sentence embeddings (unit length) of indexed achievements. Until it has one,
    /// an achievement is matched on its words alone.
    pub fn add_meanings(&self, vectors: &[(String, Vec<f32>)]) -> anyhow::Result<()> {
        let mut meanings = self.meanings.write().map_err(poisoned)?;
        for (id, v) in vectors {
            meanings
                .upsert(id, v)
                .with_context(|| format!("the meaning vector of {id}"))?;
        }
        Ok(())
    }

    /// How many achievements have a sentence embedding.
    pub fn meaning_count(&self) -> usize {
        self.meanings.read().map_or(0, |m| m.len())
    }

    /// Takes an achievement out of the catalog (withdrawn by its owner): it is never paired
    /// again. Unknown ids are fine.
    pub fn remove_achievement(&self, id: &str) -> anyhow::Result<()> {
        self.meanings.write().map_err(poisoned)?.remove(id);
        let mut writer = self.writer.lock().map_err(poisoned)?;
        writer.delete_term(Term::from_field_text(self.fields.id, id));
        writer.commit().context("committing a removal")?;
        self.reader.reload().context("reloading the index reader")?;
        Ok(())
    }

    /// The achievements nearest in meaning to a demand's embedding, nearest first, with
    /// their cosine similarity: the dense ranking alone (for evaluation).
    pub fn nearest_by_meaning(&self, meaning: &[f32], k: usize) -> Vec<(String, f32)> {
        self.meanings
            .read()
            .map_or_else(|_| Vec::new(), |m| m.nearest(meaning, k))
    }

    /// How many achievements are searchable.
    pub fn achievement_count(&self) -> usize {
        self.reader.searcher().num_docs() as usize
    }

    /// The best `k` achievements for a demand on words alone, best first, with reasons.
    pub fn match_demand(&self, demand: &DemandDoc, k: usize) -> Vec<Match> {
        self.match_demand_with(demand, None, k)
    }

    /// The best `k` achievements for a demand, by its words and, when given, its sentence
    /// embedding (`meaning`), best first, each with its reasons.
    pub fn match_demand_with(
        &self,
        demand: &DemandDoc,
        meaning: Option<&[f32]>,
        k: usize,
    ) -> Vec<Match> {
        self.try_match_demand(demand, meaning, k)
            .unwrap_or_else(|e| {
                report("match_demand", &e);
                Vec::new()
            })
    }

    /// The baseline: BM25 over the demand's own words, no expansion, no re-ranking.
    pub fn bm25_only(&self, demand: &DemandDoc, k: usize) -> Vec<Match> {
        self.try_bm25_only(demand, k).unwrap_or_else(|e| {
            report("bm25_only", &e);
            Vec::new()
        })
    }

    /// Keeps an open demand for reverse matching (replaces one with the same id).
    pub fn add_open_demand(&self, demand: &DemandDoc) -> anyhow::Result<()> {
        self.add_open_demand_with(demand, None)
    }

    /// Keeps an open demand with its sentence embedding for reverse matching.
    pub fn add_open_demand_with(
        &self,
        demand: &DemandDoc,
        meaning: Option<Vec<f32>>,
    ) -> anyhow::Result<()> {
        let prepared = Arc::new(self.prepare(demand, meaning));
        self.demands
            .write()
            .map_err(poisoned)?
            .insert(demand.id.clone(), prepared);
        Ok(())
    }

    /// Forgets an open demand (withdrawn, contracted); unknown ids are fine.
    pub fn remove_open_demand(&self, demand_id: &str) -> anyhow::Result<()> {
        self.demands.write().map_err(poisoned)?.remove(demand_id);
        Ok(())
    }

    pub fn open_demand_count(&self) -> usize {
        self.demands.read().map_or(0, |d| d.len())
    }

    /// The open demands this achievement fits best, each scored exactly as `match_demand`
    /// would score it. The achievement is scored as the index holds it: one not yet in the
    /// index is added first.
    pub fn match_achievement(
        &self,
        achievement: &AchievementDoc,
        limit: usize,
    ) -> Vec<DemandMatch> {
        self.try_match_achievement(achievement, limit)
            .unwrap_or_else(|e| {
                report("match_achievement", &e);
                Vec::new()
            })
    }

    /// The current searcher with its memoised statistics.
    fn snapshot(&self) -> anyhow::Result<Arc<Snapshot>> {
        let searcher = self.reader.searcher();
        let mut current = self.snapshot.lock().map_err(poisoned)?;
        match current.as_ref() {
            Some(s) if s.generation() == searcher.generation().generation_id() => Ok(s.clone()),
            _ => {
                let fresh = Arc::new(Snapshot::new(searcher));
                *current = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    fn prepare(&self, demand: &DemandDoc, meaning: Option<Vec<f32>>) -> PreparedDemand {
        let mut analyzer = self.analyzer.clone();
        let text = demand.full_text();
        let mut weights: BTreeMap<String, (f32, bool)> = BTreeMap::new();
        let mut own = Vec::new();
        for t in analysis::terms(&mut analyzer, &text) {
            if weights.insert(t.clone(), (1.0, true)).is_none() {
                own.push(t);
            }
        }
        let lower = text.to_lowercase();
        let mut expansions = self.relations.expand(&text, &demand.industry_chain);
        for e in &mut expansions {
            // Shown as the demand wrote it ("AI", not "ai").
            e.trigger = evidence::as_written(&text, &lower, &e.trigger);
        }
        for e in &expansions {
            let w = self.tuning.expansion_weight * e.weight as f32;
            for t in analysis::terms(&mut analyzer, &e.target) {
                let slot = weights.entry(t).or_insert((0.0, false));
                if !slot.1 {
                    slot.0 = slot.0.max(w);
                }
            }
        }
        let mut bigrams = analysis::terms(&mut self.bigram_analyzer.clone(), &text);
        bigrams.sort();
        bigrams.dedup();
        PreparedDemand {
            doc: demand.clone(),
            own,
            expansions,
            weighted: weights
                .into_iter()
                .map(|(text, (weight, own))| QueryTerm { text, weight, own })
                .collect(),
            bigrams,
            meaning,
        }
    }

    fn build(&self, snapshot: &Snapshot, d: &PreparedDemand) -> tantivy::Result<BuiltQuery> {
        index::build_query(
            snapshot,
            &self.fields,
            &self.tuning,
            &d.weighted,
            &d.bigrams,
        )
    }

    fn try_match_demand(
        &self,
        demand: &DemandDoc,
        meaning: Option<&[f32]>,
        k: usize,
    ) -> anyhow::Result<Vec<Match>> {
        let snapshot = self.snapshot()?;
        if k == 0 || snapshot.num_docs() == 0 {
            return Ok(Vec::new());
        }
        let prepared = self.prepare(demand, meaning.map(<[f32]>::to_vec));
        let built = self.build(&snapshot, &prepared)?;
        let searcher = &snapshot.searcher;
        // Candidates: the best by words, and the nearest by meaning.
        let mut addresses = match built.weight.as_deref() {
            Some(weight) => {
                let pool = self.tuning.candidate_pool.max(k * 2);
                index::top_docs(weight, searcher, pool)?
            }
            None => Vec::new(),
        };
        if let Some(m) = prepared.meaning.as_deref() {
            let pool = self.tuning.meaning_pool.max(k * 2);
            let mut seen: HashSet<tantivy::DocAddress> = addresses.iter().copied().collect();
            for (id, _) in self.nearest_by_meaning(m, pool) {
                if let Some(a) = self.fields.address_of(searcher, &id)?
                    && seen.insert(a)
                {
                    addresses.push(a);
                }
            }
        }
        let bm25 = match built.weight.as_deref() {
            Some(weight) => index::exact_bm25(weight, searcher, &addresses)?,
            None => vec![0.0; addresses.len()],
        };
        let meanings = self.meanings.read().map_err(poisoned)?;
        let mut candidates = Vec::with_capacity(addresses.len());
        for (address, bm25) in addresses.iter().zip(bm25) {
            let achievement = self.fields.stored(searcher, *address)?;
            let cosine = prepared
                .meaning
                .as_deref()
                .and_then(|m| meanings.similarity(m, &achievement.id));
            let pair = Pair::assess(
                &prepared,
                &built,
                &achievement,
                bm25,
                cosine,
                &self.tuning.blend,
            );
            candidates.push(Scored {
                id: achievement.id.clone(),
                relevance: pair.relevance,
                score: pair.score,
                item: (achievement, pair),
            });
        }
        drop(meanings);
        Ok(select_top_k(candidates, k)
            .into_iter()
            .filter(|(c, _)| c.score > 0.0)
            .map(|(c, kept)| {
                let (achievement, pair) = c.item;
                Match {
                    reasons: reasons(&prepared.doc, &achievement, &pair.evidence, &pair.fit, kept),
                    achievement_id: achievement.id,
                    score: pair.score,
                }
            })
            .collect())
    }

    fn try_bm25_only(&self, demand: &DemandDoc, k: usize) -> anyhow::Result<Vec<Match>> {
        let snapshot = self.snapshot()?;
        if k == 0 || snapshot.num_docs() == 0 {
            return Ok(Vec::new());
        }
        let prepared = self.prepare(demand, None);
        let own: Vec<QueryTerm> = prepared
            .own
            .iter()
            .map(|t| QueryTerm {
                text: t.clone(),
                weight: 1.0,
                own: true,
            })
            .collect();
        let built = index::build_query(&snapshot, &self.fields, &self.tuning, &own, &[])?;
        let Some(weight) = built.weight.as_deref() else {
            return Ok(Vec::new());
        };
        let searcher = &snapshot.searcher;
        // A few more than k, so that ties at the k-th place are broken by id, not by address.
        let addresses = index::top_docs(weight, searcher, k + 16)?;
        let bm25 = index::exact_bm25(weight, searcher, &addresses)?;
        let mut out = Vec::with_capacity(addresses.len());
        for (address, bm25) in addresses.iter().zip(bm25) {
            let achievement = self.fields.stored(searcher, *address)?;
            let text = achievement.full_text();
            let evidence = TextEvidence {
                shared_terms: evidence::shared_terms(&prepared.own, &built.idf, &text),
                links: Vec::new(),
                meaning: None,
            };
            let fit = StructuredFit::of(demand, &achievement);
            out.push(Match {
                reasons: reasons(demand, &achievement, &evidence, &fit, false),
                achievement_id: achievement.id,
                score: bm25 as f64,
            });
        }
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.achievement_id.cmp(&b.achievement_id))
        });
        out.truncate(k);
        Ok(out)
    }

    fn try_match_achievement(
        &self,
        achievement: &AchievementDoc,
        limit: usize,
    ) -> anyhow::Result<Vec<DemandMatch>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut snapshot = self.snapshot()?;
        let address = match self
            .fields
            .address_of(&snapshot.searcher, &achievement.id)?
        {
            Some(a) => a,
            None => {
                self.add_achievements(std::slice::from_ref(achievement))?;
                snapshot = self.snapshot()?;
                self.fields
                    .address_of(&snapshot.searcher, &achievement.id)?
                    .context("the achievement just added is not in the index")?
            }
        };
        let searcher = &snapshot.searcher;
        let indexed = self.fields.stored(searcher, address)?;
        let text = indexed.full_text();
        let words: HashSet<String> = analysis::terms(&mut self.analyzer.clone(), &text)
            .into_iter()
            .chain(analysis::terms(&mut self.bigram_analyzer.clone(), &text))
            .collect();
        let vector: Option<Vec<f32>> = self
            .meanings
            .read()
            .map_err(poisoned)?
            .get(&indexed.id)
            .map(<[f32]>::to_vec);
        let demands = self.demands.read().map_err(poisoned)?;
        // Only demands sharing at least one (expanded) term or bigram, or close enough in
        // meaning, can score above zero.
        let mut close: Vec<(f32, Arc<PreparedDemand>)> = match &vector {
            Some(v) => demands
                .values()
                .filter_map(|d| {
                    let cosine = crate::dense::dot(d.meaning.as_deref()?, v);
                    (self.tuning.blend.strength(cosine as f64) > 0.0).then(|| (cosine, d.clone()))
                })
                .collect(),
            None => Vec::new(),
        };
        let mut sharing: Vec<(f32, Arc<PreparedDemand>)> = demands
            .values()
            .filter_map(|d| {
                let overlap = d
                    .weighted
                    .iter()
                    .filter(|t| words.contains(&t.text))
                    .map(|t| t.weight)
                    .sum::<f32>()
                    + d.bigrams.iter().filter(|g| words.contains(*g)).count() as f32
                        * self.tuning.bigram_weight;
                (overlap > 0.0).then(|| (overlap, d.clone()))
            })
            .collect();
        sharing.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.doc.id.cmp(&b.1.doc.id))
        });
        sharing.truncate(REVERSE_POOL);
        drop(demands);
        close.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.doc.id.cmp(&b.1.doc.id))
        });
        close.truncate(REVERSE_POOL);
        let mut seen = HashSet::new();
        let pool: Vec<Arc<PreparedDemand>> = sharing
            .into_iter()
            .chain(close)
            .map(|(_, d)| d)
            .filter(|d| seen.insert(d.doc.id.clone()))
            .collect();
        let mut out = Vec::with_capacity(pool.len());
        for demand in pool {
            let built = self.build(&snapshot, &demand)?;
            let bm25 = match built.weight.as_deref() {
                Some(weight) => index::exact_bm25(weight, searcher, &[address])?[0],
                None => 0.0,
            };
            let cosine = match (&vector, &demand.meaning) {
                (Some(a), Some(d)) => Some(crate::dense::dot(d, a)),
                _ => None,
            };
            let pair = Pair::assess(&demand, &built, &indexed, bm25, cosine, &self.tuning.blend);
            if pair.score <= 0.0 {
                continue;
            }
            out.push(DemandMatch {
                demand_id: demand.doc.id.clone(),
                matched: Match {
                    achievement_id: indexed.id.clone(),
                    score: pair.score,
                    reasons: reasons(&demand.doc, &indexed, &pair.evidence, &pair.fit, false),
                },
            });
        }
        out.sort_by(|a, b| {
            b.matched
                .score
                .total_cmp(&a.matched.score)
                .then_with(|| a.demand_id.cmp(&b.demand_id))
        });
        out.truncate(limit);
        Ok(out)
    }
}

/// Everything computed for one (demand, achievement) pair.
struct Pair {
    relevance: f64,
    score: f64,
    fit: StructuredFit,
    evidence: TextEvidence,
}

impl Pair {
    fn assess(
        demand: &PreparedDemand,
        built: &BuiltQuery,
        achievement: &AchievementDoc,
        bm25: f32,
        cosine: Option<f32>,
        blend: &Blend,
    ) -> Pair {
        let text = achievement.full_text();
        let links = evidence::links(&demand.expansions, &text);
        let features = PairFeatures {
            text: if built.norm > 0.0 {
                bm25 as f64 / built.norm
            } else {
                0.0
            },
            concept: links.iter().map(|e| e.weight).sum(),
            meaning: cosine.map(f64::from),
            fit: StructuredFit::of(&demand.doc, achievement),
        };
        let shared_terms = evidence::shared_terms(&demand.own, &built.idf, &text);
        let meaning = features.meaning.and_then(|cosine| {
            let strength = blend.strength(cosine);
            (strength > 0.0).then(|| MeaningEvidence {
                cosine,
                close: strength >= CLOSE_STRENGTH,
                rests_on_meaning: shared_terms.is_empty() && links.is_empty(),
                sentence: evidence::closest_sentence(
                    &demand.doc.full_text(),
                    &demand.expansions,
                    &achievement.abstract_text,
                ),
            })
        });
        let admitted = admissible(&features, blend);
        Pair {
            relevance: if admitted {
                pair_relevance(&features, blend)
            } else {
                0.0
            },
            score: if admitted {
                score(&features, blend)
            } else {
                0.0
            },
            fit: features.fit,
            evidence: TextEvidence {
                shared_terms,
                links,
                meaning,
            },
        }
    }
}

fn report(what: &str, e: &anyhow::Error) {
    // The engine has no logger of its own; the failure shows as an empty result, and on
    // stderr for whoever runs it.
    eprintln!("matching-engine: {what} failed: {e:#}");
}
