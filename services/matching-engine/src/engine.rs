//! The engine: an in-RAM tantivy index of achievements, BM25 candidate retrieval with curated
//! query expansion, re-ranking by `score`, and the open demands for reverse matching.
//!
//! One (demand, achievement) pair gets the same score from `match_demand` and from
//! `match_achievement` on the same index state: both compute BM25 through the same query
//! weight and the same per-document scorer (`exact_bm25`), and the same features from the
//! achievement as stored in the index.

use crate::analysis::{self, ANALYZER, BIGRAMS};
use crate::docs::{AchievementDoc, DemandDoc, DemandMatch, Match};
use crate::evidence;
use crate::fit::StructuredFit;
use crate::reasons::{TextEvidence, reasons};
use crate::relations::{Expansion, TermRelations};
use crate::score::{PairFeatures, Scored, relevance, score, select_top_k};
use anyhow::Context;
use kechuang_proto::common::TransferMode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, EnableScoring, Occur, Query, TermQuery, Weight};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TERMINATED,
    TantivyDocument, Term,
};

/// The knobs of retrieval, chosen on the dev half of the evaluation set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuning {
    /// Field boosts: a word in the title or the keywords says more about what an achievement
    /// is than the same word in the abstract.
    pub title_boost: f32,
    pub keywords_boost: f32,
    pub abstract_boost: f32,
    /// Weight of a curated method term relative to a term the demand itself used, before the
    /// relation's own weight.
    pub expansion_weight: f32,
    /// Weight of a character bigram of the demand's own text (the safety net under word
    /// segmentation).
    pub bigram_weight: f32,
    /// How many BM25 candidates are re-ranked.
    pub candidate_pool: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            title_boost: 2.0,
            keywords_boost: 2.0,
            abstract_boost: 1.0,
            expansion_weight: 0.8,
            bigram_weight: 0.3,
            candidate_pool: 150,
        }
    }
}
/// How many open demands sharing words with a new achievement are scored exactly.
const REVERSE_POOL: usize = 500;
const WRITER_MEMORY_PER_THREAD: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    abstract_text: Field,
    keywords: Field,
    /// Character bigrams of title, keywords and abstract together.
    grams: Field,
    stored: Field,
}

/// The achievement as stored in the index (the engine re-ranks from it).
#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    institution: String,
    title: String,
    abstract_text: String,
    keywords: Vec<String>,
    industry_chain: String,
    trl: i32,
    transfer_modes: Vec<i32>,
    asking_price_fen: i64,
    region_code: String,
}

impl From<&AchievementDoc> for Stored {
    fn from(a: &AchievementDoc) -> Stored {
        Stored {
            id: a.id.clone(),
            institution: a.institution.clone(),
            title: a.title.clone(),
            abstract_text: a.abstract_text.clone(),
            keywords: a.keywords.clone(),
            industry_chain: a.industry_chain.clone(),
            trl: a.trl,
            transfer_modes: a.transfer_modes.iter().map(|m| *m as i32).collect(),
            asking_price_fen: a.asking_price_fen,
            region_code: a.region_code.clone(),
        }
    }
}

impl From<Stored> for AchievementDoc {
    fn from(s: Stored) -> AchievementDoc {
        AchievementDoc {
            id: s.id,
            institution: s.institution,
            title: s.title,
            abstract_text: s.abstract_text,
            keywords: s.keywords,
            industry_chain: s.industry_chain,
            trl: s.trl,
            transfer_modes: s
                .transfer_modes
                .into_iter()
                .map(|m| TransferMode::try_from(m).unwrap_or(TransferMode::Unspecified))
                .collect(),
            asking_price_fen: s.asking_price_fen,
            region_code: s.region_code,
        }
    }
}

/// A demand analysed once: its own terms and the curated method terms it expands to.
#[derive(Debug)]
struct PreparedDemand {
    doc: DemandDoc,
    /// Distinct terms of the demand's own text.
    own: Vec<String>,
    expansions: Vec<Expansion>,
    /// Every query term with its weight: own terms 1, expansion terms less. Sorted by term.
    weighted: Vec<(String, f32)>,
    /// Distinct character bigrams of the demand's own text.
    bigrams: Vec<String>,
}

/// A query ready to run on one searcher, and what it needs to explain itself.
struct BuiltQuery {
    query: BooleanQuery,
    /// Σ weight·idf of the terms: BM25 ÷ this puts every demand on one scale.
    norm: f64,
    idf: HashMap<String, f64>,
}

/// The matching engine. `Send + Sync`; every method takes `&self`.
pub struct Engine {
    fields: Fields,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    analyzer: TextAnalyzer,
    bigram_analyzer: TextAnalyzer,
    relations: &'static TermRelations,
    tuning: Tuning,
    demands: RwLock<BTreeMap<String, Arc<PreparedDemand>>>,
}

impl Engine {
    /// An engine with empty in-RAM indexes and the shipped term relations.
    pub fn new() -> anyhow::Result<Engine> {
        Engine::with_tuning(Tuning::default())
    }

    /// An engine with other retrieval knobs (for evaluation).
    pub fn with_tuning(tuning: Tuning) -> anyhow::Result<Engine> {
        let mut schema = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let fields = Fields {
            id: schema.add_text_field("id", STRING),
            title: schema.add_text_field("title", text.clone()),
            abstract_text: schema.add_text_field("abstract", text.clone()),
            keywords: schema.add_text_field("keywords", text),
            grams: schema.add_text_field(
                "grams",
                TextOptions::default().set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(BIGRAMS)
                        .set_index_option(IndexRecordOption::WithFreqs),
                ),
            ),
            stored: schema.add_bytes_field("stored", STORED),
        };
        let index = Index::create_in_ram(schema.build());
        let analyzer = analysis::analyzer();
        index.tokenizers().register(ANALYZER, analyzer.clone());
        let bigram_analyzer = analysis::bigram_analyzer();
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
            analyzer,
            bigram_analyzer,
            relations: TermRelations::shipped(),
            tuning,
            demands: RwLock::new(BTreeMap::new()),
        })
    }

    /// Adds (or replaces, by id) achievements and commits: they are searchable on return.
    pub fn add_achievements(&self, docs: &[AchievementDoc]) -> anyhow::Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let f = self.fields;
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| anyhow::anyhow!("index writer poisoned by an earlier panic"))?;
        for a in docs {
            writer.delete_term(Term::from_field_text(f.id, &a.id));
            let mut doc = TantivyDocument::new();
            doc.add_text(f.id, &a.id);
            doc.add_text(f.title, &a.title);
            doc.add_text(f.abstract_text, &a.abstract_text);
            for k in &a.keywords {
                doc.add_text(f.keywords, k);
            }
            doc.add_text(f.grams, a.full_text());
            doc.add_bytes(f.stored, &serde_json::to_vec(&Stored::from(a))?);
            writer.add_document(doc)?;
        }
        writer.commit().context("committing achievements")?;
        self.reader.reload().context("reloading the index reader")?;
        Ok(())
    }

    /// How many achievements are searchable.
    pub fn achievement_count(&self) -> usize {
        self.reader.searcher().num_docs() as usize
    }

    /// The best `k` achievements for a demand, best first, each with its reasons.
    pub fn match_demand(&self, demand: &DemandDoc, k: usize) -> Vec<Match> {
        self.try_match_demand(demand, k).unwrap_or_else(|e| {
            tracing_error("match_demand", &e);
            Vec::new()
        })
    }

    /// The baseline: BM25 over the demand's own words, no expansion, no re-ranking.
    pub fn bm25_only(&self, demand: &DemandDoc, k: usize) -> Vec<Match> {
        self.try_bm25_only(demand, k).unwrap_or_else(|e| {
            tracing_error("bm25_only", &e);
            Vec::new()
        })
    }

    /// Keeps an open demand for reverse matching (replaces one with the same id).
    pub fn add_open_demand(&self, demand: &DemandDoc) -> anyhow::Result<()> {
        let prepared = Arc::new(self.prepare(demand));
        self.demands
            .write()
            .map_err(|_| anyhow::anyhow!("open demands poisoned by an earlier panic"))?
            .insert(demand.id.clone(), prepared);
        Ok(())
    }

    /// Forgets an open demand (withdrawn, contracted); unknown ids are fine.
    pub fn remove_open_demand(&self, demand_id: &str) -> anyhow::Result<()> {
        self.demands
            .write()
            .map_err(|_| anyhow::anyhow!("open demands poisoned by an earlier panic"))?
            .remove(demand_id);
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
                tracing_error("match_achievement", &e);
                Vec::new()
            })
    }

    fn prepare(&self, demand: &DemandDoc) -> PreparedDemand {
        let mut analyzer = self.analyzer.clone();
        let text = demand.full_text();
        let mut weights: BTreeMap<String, f32> = BTreeMap::new();
        let mut own = Vec::new();
        for t in analysis::terms(&mut analyzer, &text) {
            if weights.insert(t.clone(), 1.0).is_none() {
                own.push(t);
            }
        }
        let expansions = self.relations.expand(&text, &demand.industry_chain);
        for e in &expansions {
            let w = self.tuning.expansion_weight * e.weight as f32;
            for t in analysis::terms(&mut analyzer, &e.target) {
                let slot = weights.entry(t).or_insert(0.0);
                *slot = slot.max(w);
            }
        }
        let mut bigrams = analysis::terms(&mut self.bigram_analyzer.clone(), &text);
        bigrams.sort();
        bigrams.dedup();
        PreparedDemand {
            doc: demand.clone(),
            own,
            expansions,
            weighted: weights.into_iter().collect(),
            bigrams,
        }
    }

    /// The query of weighted word terms over title, keywords and abstract (plus, when given,
    /// bigram terms over the bigram field). Terms no achievement contains are left out, so
    /// they do not dilute `norm`; `norm` counts word terms only.
    fn build_query(
        &self,
        searcher: &Searcher,
        terms: &[(String, f32)],
        bigrams: &[String],
    ) -> tantivy::Result<BuiltQuery> {
        let t = &self.tuning;
        let f = &self.fields;
        let n = searcher.num_docs() as f64;
        let idf_of = |df: u64| (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * 3);
        let mut norm = 0.0;
        let mut idf = HashMap::with_capacity(terms.len());
        let clause = |term: Term, boost: f32| -> (Occur, Box<dyn Query>) {
            (
                Occur::Should,
                Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                    boost,
                )),
            )
        };
        for (text, weight) in terms {
            let mut df = 0u64;
            for (field, boost) in [
                (f.title, t.title_boost),
                (f.keywords, t.keywords_boost),
                (f.abstract_text, t.abstract_boost),
            ] {
                let term = Term::from_field_text(field, text);
                let field_df = searcher.doc_freq(&term)?;
                if field_df > 0 {
                    clauses.push(clause(term, weight * boost));
                }
                df = df.max(field_df);
            }
            if df > 0 {
                // The BM25 idf of the term's commonest field.
                let term_idf = idf_of(df);
                norm += *weight as f64 * term_idf;
                idf.insert(text.clone(), term_idf);
            }
        }
        if t.bigram_weight > 0.0 {
            for gram in bigrams {
                let term = Term::from_field_text(f.grams, gram);
                if searcher.doc_freq(&term)? > 0 {
                    clauses.push(clause(term, t.bigram_weight));
                }
            }
        }
        Ok(BuiltQuery {
            query: BooleanQuery::new(clauses),
            norm,
            idf,
        })
    }

    fn try_match_demand(&self, demand: &DemandDoc, k: usize) -> anyhow::Result<Vec<Match>> {
        let searcher = self.reader.searcher();
        if k == 0 || searcher.num_docs() == 0 {
            return Ok(Vec::new());
        }
        let prepared = self.prepare(demand);
        let built = self.build_query(&searcher, &prepared.weighted, &prepared.bigrams)?;
        if built.query.clauses().is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.tuning.candidate_pool.max(k * 2);
        let top = searcher.search(&built.query, &TopDocs::with_limit(pool).order_by_score())?;
        let addresses: Vec<DocAddress> = top.iter().map(|(_, a)| *a).collect();
        let weight = built
            .query
            .weight(EnableScoring::enabled_from_searcher(&searcher))?;
        let bm25 = exact_bm25(weight.as_ref(), &searcher, &addresses)?;
        let mut candidates = Vec::with_capacity(addresses.len());
        for (address, bm25) in addresses.iter().zip(bm25) {
            let achievement = self.stored(&searcher, *address)?;
            let pair = Pair::assess(&prepared, &built, &achievement, bm25);
            candidates.push(Scored {
                id: achievement.id.clone(),
                relevance: pair.relevance,
                score: pair.score,
                item: (achievement, pair),
            });
        }
        Ok(select_top_k(candidates, k)
            .into_iter()
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
        let searcher = self.reader.searcher();
        if k == 0 || searcher.num_docs() == 0 {
            return Ok(Vec::new());
        }
        let prepared = self.prepare(demand);
        let own: Vec<(String, f32)> = prepared.own.iter().map(|t| (t.clone(), 1.0)).collect();
        let built = self.build_query(&searcher, &own, &[])?;
        if built.query.clauses().is_empty() {
            return Ok(Vec::new());
        }
        // A few more than k, so that ties at the k-th place are broken by id, not by address.
        let top = searcher.search(&built.query, &TopDocs::with_limit(k + 16).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (bm25, address) in top {
            let achievement = self.stored(&searcher, address)?;
            let evidence = TextEvidence {
                shared_terms: evidence::shared_terms(
                    &prepared.own,
                    &built.idf,
                    &achievement.full_text(),
                ),
                links: Vec::new(),
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
        let mut searcher = self.reader.searcher();
        let address = match self.address_of(&searcher, &achievement.id)? {
            Some(a) => a,
            None => {
                self.add_achievements(std::slice::from_ref(achievement))?;
                searcher = self.reader.searcher();
                self.address_of(&searcher, &achievement.id)?
                    .context("the achievement just added is not in the index")?
            }
        };
        let indexed = self.stored(&searcher, address)?;
        let mut analyzer = self.analyzer.clone();
        let text = indexed.full_text();
        let words: HashSet<String> = analysis::terms(&mut analyzer, &text)
            .into_iter()
            .chain(analysis::terms(&mut self.bigram_analyzer.clone(), &text))
            .collect();
        // Only demands sharing at least one (expanded) term can score above zero.
        let mut sharing: Vec<(f32, Arc<PreparedDemand>)> = self
            .demands
            .read()
            .map_err(|_| anyhow::anyhow!("open demands poisoned by an earlier panic"))?
            .values()
            .filter_map(|d| {
                let overlap: f32 = d
                    .weighted
                    .iter()
                    .filter(|(t, _)| words.contains(t))
                    .map(|(_, w)| w)
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
        let mut out = Vec::with_capacity(sharing.len());
        for (_, demand) in sharing {
            let built = self.build_query(&searcher, &demand.weighted, &demand.bigrams)?;
            let weight = built
                .query
                .weight(EnableScoring::enabled_from_searcher(&searcher))?;
            let bm25 = exact_bm25(weight.as_ref(), &searcher, &[address])?[0];
            let pair = Pair::assess(&demand, &built, &indexed, bm25);
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

    fn address_of(&self, searcher: &Searcher, id: &str) -> tantivy::Result<Option<DocAddress>> {
        let q = TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            IndexRecordOption::Basic,
        );
        Ok(searcher
            .search(&q, &TopDocs::with_limit(1).order_by_score())?
            .first()
            .map(|(_, a)| *a))
    }

    fn stored(&self, searcher: &Searcher, address: DocAddress) -> anyhow::Result<AchievementDoc> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let bytes = doc
            .get_first(self.fields.stored)
            .and_then(|v| v.as_bytes())
            .context("an indexed achievement without its stored copy")?;
        let stored: Stored = serde_json::from_slice(bytes)?;
        Ok(stored.into())
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
            fit: StructuredFit::of(&demand.doc, achievement),
        };
        Pair {
            relevance: relevance(features.text, features.concept),
            score: score(&features),
            fit: features.fit,
            evidence: TextEvidence {
                shared_terms: evidence::shared_terms(&demand.own, &built.idf, &text),
                links,
            },
        }
    }
}

/// The BM25 score of each document under one query weight, computed the same way for one
/// document or many (so forward and reverse matching agree to the bit).
fn exact_bm25(
    weight: &dyn Weight,
    searcher: &Searcher,
    docs: &[DocAddress],
) -> tantivy::Result<Vec<f32>> {
    let mut order: Vec<usize> = (0..docs.len()).collect();
    order.sort_by_key(|&i| (docs[i].segment_ord, docs[i].doc_id));
    let mut out = vec![0.0; docs.len()];
    let mut current: Option<(u32, Box<dyn tantivy::query::Scorer>)> = None;
    for i in order {
        let DocAddress {
            segment_ord,
            doc_id,
        } = docs[i];
        if current.as_ref().is_none_or(|(s, _)| *s != segment_ord) {
            let reader = searcher.segment_reader(segment_ord);
            current = Some((segment_ord, weight.scorer(reader, 1.0)?));
        }
        if let Some((_, scorer)) = current.as_mut() {
            let mut at = scorer.doc();
            if at != TERMINATED && at < doc_id {
                at = scorer.seek(doc_id);
            }
            if at == doc_id {
                out[i] = scorer.score();
            }
        }
    }
    Ok(out)
}

fn tracing_error(what: &str, e: &anyhow::Error) {
    // The engine has no logger of its own; the failure is visible as an empty result, and
    // on stderr for whoever runs it.
    eprintln!("matching-engine: {what} failed: {e:#}");
}
