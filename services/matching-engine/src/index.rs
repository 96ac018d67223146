//! The achievement index: its schema, the stored copy of each achievement, memoised BM25
//! statistics, query building, candidate retrieval and the exact per-document BM25 score.

use crate::analysis::{ANALYZER, BIGRAMS};
use crate::docs::AchievementDoc;
use crate::score::Blend;
use anyhow::Context;
use kechuang_proto::common::TransferMode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use tantivy::collector::{Collector, TopDocs};
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, EnableScoring, Occur, Query, TermQuery,
    Weight,
};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{DocAddress, DocSet, Searcher, TERMINATED, TantivyDocument, Term};

/// The knobs of retrieval, chosen on the dev half of the evaluation set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuning {
    /// Boost of the head (title and keywords): a word there says more about what an
    /// achievement is than the same word in its abstract.
    pub head_boost: f32,
    pub abstract_boost: f32,
    /// Weight of a curated method term relative to a term the demand itself used, before the
    /// relation's own weight.
    pub expansion_weight: f32,
    /// Weight of a character bigram of the demand's own text (the safety net under word
    /// segmentation).
    pub bigram_weight: f32,
    /// How many BM25 candidates are re-ranked.
    pub candidate_pool: usize,
    /// How many nearest achievements by meaning join them (when the demand has a vector).
    pub meaning_pool: usize,
    /// How words and meaning make up relevance.
    pub blend: Blend,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            head_boost: 2.0,
            abstract_boost: 1.0,
            expansion_weight: 0.8,
            bigram_weight: 0.3,
            candidate_pool: 100,
            meaning_pool: 100,
            blend: Blend::default(),
        }
    }
}

/// A term in more than this share of the achievements (and more than `COMMON_FLOOR` of them)
/// is left out of queries: "技术", "系统" barely tell achievements apart but have the longest
/// posting lists.
const COMMON_SHARE: f64 = 0.2;
const COMMON_FLOOR: f64 = 1000.0;
/// Curated method terms are held to a stricter bar: a generic word of a method name ("检测",
/// "工艺") costs as much as a specific one and adds little, so expansion terms in more than
/// this share are left out, and at most `MAX_EXPANSION_TERMS` of the most telling are kept.
const EXPANSION_COMMON_SHARE: f64 = 0.05;
const MAX_EXPANSION_TERMS: usize = 24;

/// One term of a demand's query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QueryTerm {
    pub text: String,
    pub weight: f32,
    /// From the demand's own text, not from an expansion.
    pub own: bool,
}

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub id: Field,
    /// Title and keywords.
    pub head: Field,
    pub abstract_text: Field,
    /// Character bigrams of title, keywords and abstract together.
    pub grams: Field,
    pub stored: Field,
}

impl Fields {
    pub fn schema() -> (Schema, Fields) {
        let mut schema = Schema::builder();
        let analysed = |tokenizer: &str| {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(IndexRecordOption::WithFreqs),
            )
        };
        let fields = Fields {
            id: schema.add_text_field("id", STRING),
            head: schema.add_text_field("head", analysed(ANALYZER)),
            abstract_text: schema.add_text_field("abstract", analysed(ANALYZER)),
            grams: schema.add_text_field("grams", analysed(BIGRAMS)),
            stored: schema.add_bytes_field("stored", STORED),
        };
        (schema.build(), fields)
    }

    pub fn document(&self, a: &AchievementDoc) -> anyhow::Result<TantivyDocument> {
        let mut doc = TantivyDocument::new();
        doc.add_text(self.id, &a.id);
        doc.add_text(self.head, &a.title);
        for k in &a.keywords {
            doc.add_text(self.head, k);
        }
        doc.add_text(self.abstract_text, &a.abstract_text);
        doc.add_text(self.grams, a.full_text());
        doc.add_bytes(self.stored, &serde_json::to_vec(&Stored::from(a))?);
        Ok(doc)
    }

    /// The achievement as indexed.
    pub fn stored(&self, searcher: &Searcher, at: DocAddress) -> anyhow::Result<AchievementDoc> {
        let doc: TantivyDocument = searcher.doc(at)?;
        let bytes = doc
            .get_first(self.stored)
            .and_then(|v| v.as_bytes())
            .context("an indexed achievement without its stored copy")?;
        let stored: Stored = serde_json::from_slice(bytes)?;
        Ok(stored.into())
    }

    /// Where the live achievement with this id is.
    pub fn address_of(&self, searcher: &Searcher, id: &str) -> tantivy::Result<Option<DocAddress>> {
        let q = TermQuery::new(Term::from_field_text(self.id, id), IndexRecordOption::Basic);
        Ok(searcher
            .search(&q, &TopDocs::with_limit(1).order_by_score())?
            .first()
            .map(|(_, a)| *a))
    }
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

/// One searcher snapshot with its BM25 statistics memoised: reverse matching builds a query
/// per open demand and their terms repeat. Forward and reverse matching read the same numbers
/// from it, so they score a pair alike.
pub(crate) struct Snapshot {
    pub searcher: Searcher,
    doc_freq: Mutex<HashMap<Term, u64>>,
    total_tokens: Mutex<HashMap<Field, u64>>,
}

impl Snapshot {
    pub fn new(searcher: Searcher) -> Snapshot {
        Snapshot {
            searcher,
            doc_freq: Mutex::new(HashMap::new()),
            total_tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn generation(&self) -> u64 {
        self.searcher.generation().generation_id()
    }

    pub fn num_docs(&self) -> u64 {
        self.searcher.num_docs()
    }
}

impl Bm25StatisticsProvider for Snapshot {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        if let Some(n) = self
            .total_tokens
            .lock()
            .ok()
            .and_then(|m| m.get(&field).copied())
        {
            return Ok(n);
        }
        let n = self.searcher.total_num_tokens(field)?;
        if let Ok(mut m) = self.total_tokens.lock() {
            m.insert(field, n);
        }
        Ok(n)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        self.searcher.total_num_docs()
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if let Some(n) = self.doc_freq.lock().ok().and_then(|m| m.get(term).copied()) {
            return Ok(n);
        }
        let n = self.searcher.doc_freq(term)?;
        if let Ok(mut m) = self.doc_freq.lock() {
            m.insert(term.clone(), n);
        }
        Ok(n)
    }
}

/// A query ready to run on one snapshot, and what it needs to explain itself.
pub(crate) struct BuiltQuery {
    pub weight: Option<Box<dyn Weight>>,
    /// Σ weight·idf of the word terms: BM25 ÷ this puts every demand on one scale.
    pub norm: f64,
    pub idf: HashMap<String, f64>,
}

/// The query of weighted word terms over head and abstract, plus bigram terms over the bigram
/// field where the words failed. Terms no achievement contains are left out, so they do not
/// dilute `norm`; `norm` counts word terms only.
pub(crate) fn build_query(
    snapshot: &Snapshot,
    fields: &Fields,
    tuning: &Tuning,
    terms: &[QueryTerm],
    bigrams: &[String],
) -> tantivy::Result<BuiltQuery> {
    let n = snapshot.num_docs() as f64;
    let idf_of = |df: u64| (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln();
    let too_common = (n * COMMON_SHARE).max(COMMON_FLOOR) as u64;
    let clause = |term: Term, boost: f32| -> (Occur, Box<dyn Query>) {
        let q = TermQuery::new(term, IndexRecordOption::WithFreqs);
        (Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost)))
    };
    let too_common_expansion = (n * EXPANSION_COMMON_SHARE).max(COMMON_FLOOR) as u64;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * 2);
    let mut norm = 0.0;
    let mut idf = HashMap::with_capacity(terms.len());
    let mut known: Vec<&str> = Vec::with_capacity(terms.len());
    // (term, head df, abstract df, idf), own terms first, then the most telling expansions.
    let mut chosen: Vec<(&QueryTerm, u64, u64, f64)> = Vec::with_capacity(terms.len());
    let mut expansions = Vec::new();
    for term in terms {
        let head_df = snapshot.doc_freq(&Term::from_field_text(fields.head, &term.text))?;
        let body_df =
            snapshot.doc_freq(&Term::from_field_text(fields.abstract_text, &term.text))?;
        let df = head_df.max(body_df);
        if df == 0 {
            continue;
        }
        known.push(&term.text);
        if term.own && df <= too_common {
            chosen.push((term, head_df, body_df, idf_of(df)));
        } else if !term.own && df <= too_common_expansion {
            expansions.push((term, head_df, body_df, idf_of(df)));
        }
    }
    expansions.sort_by(|a, b| {
        (b.0.weight as f64 * b.3)
            .total_cmp(&(a.0.weight as f64 * a.3))
            .then_with(|| a.0.text.cmp(&b.0.text))
    });
    expansions.truncate(MAX_EXPANSION_TERMS);
    chosen.extend(expansions);
    for (term, head_df, body_df, term_idf) in chosen {
        if head_df > 0 {
            let t = Term::from_field_text(fields.head, &term.text);
            clauses.push(clause(t, term.weight * tuning.head_boost));
        }
        if body_df > 0 {
            let t = Term::from_field_text(fields.abstract_text, &term.text);
            clauses.push(clause(t, term.weight * tuning.abstract_boost));
        }
        norm += term.weight as f64 * term_idf;
        idf.insert(term.text.clone(), term_idf);
    }
    if tuning.bigram_weight > 0.0 {
        // A bigram that is (part of) a word the catalog knows adds nothing the word clauses
        // did not; the others bridge words the segmenter cut differently.
        for gram in bigrams {
            if known.iter().any(|w| w.contains(gram.as_str())) {
                continue;
            }
            let term = Term::from_field_text(fields.grams, gram);
            let df = snapshot.doc_freq(&term)?;
            if df > 0 && df <= too_common {
                clauses.push(clause(term, tuning.bigram_weight));
            }
        }
    }
    let weight = if clauses.is_empty() {
        None
    } else {
        let scoring = EnableScoring::enabled_from_statistics_provider(snapshot, &snapshot.searcher);
        Some(BooleanQuery::new(clauses).weight(scoring)?)
    };
    Ok(BuiltQuery { weight, norm, idf })
}

/// The `limit` best-scoring live documents under a weight.
pub(crate) fn top_docs(
    weight: &dyn Weight,
    searcher: &Searcher,
    limit: usize,
) -> tantivy::Result<Vec<DocAddress>> {
    let collector = TopDocs::with_limit(limit.max(1)).order_by_score();
    let fruits = searcher
        .segment_readers()
        .iter()
        .enumerate()
        .map(|(ord, reader)| collector.collect_segment(weight, ord as u32, reader))
        .collect::<tantivy::Result<Vec<_>>>()?;
    Ok(collector
        .merge_fruits(fruits)?
        .into_iter()
        .map(|(_, a)| a)
        .collect())
}

/// The BM25 score of each document under one query weight, computed the same way for one
/// document or many (so forward and reverse matching agree to the bit).
pub(crate) fn exact_bm25(
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
