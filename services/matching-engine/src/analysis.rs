//! Text analysis shared by the index and the queries: jieba segmentation (search mode, so a
//! long word also yields its parts: "返修率" → "返修", "返修率"), lower-cased so "PLC" and "plc"
//! meet, without punctuation, whitespace and stop words.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

/// The name the analyzer is registered under in the index.
pub(crate) const ANALYZER: &str = "kc_zh";

/// Function words and the phrasing every demand and abstract shares ("我们", "希望", "本成果").
static STOP_WORDS: LazyLock<Arc<HashSet<String>>> = LazyLock::new(|| {
    Arc::new(
        include_str!("../data/stopwords.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect(),
    )
});

/// The analyzer: jieba → lower case → drop punctuation and stop words → drop absurdly long tokens.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::new())
        .filter(LowerCaser)
        .filter(WordsOnly {
            stop: STOP_WORDS.clone(),
        })
        .filter(RemoveLongFilter::limit(40))
        .build()
}

/// The analyzed terms of `text`, in order, with repeats.
pub(crate) fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Keeps tokens with at least one letter or digit (CJK ideographs are letters) that are not
/// stop words.
#[derive(Clone)]
struct WordsOnly {
    stop: Arc<HashSet<String>>,
}

impl TokenFilter for WordsOnly {
    type Tokenizer<T: Tokenizer> = WordsOnlyWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> WordsOnlyWrapper<T> {
        WordsOnlyWrapper {
            inner: tokenizer,
            stop: self.stop,
        }
    }
}

#[derive(Clone)]
struct WordsOnlyWrapper<T> {
    inner: T,
    stop: Arc<HashSet<String>>,
}

impl<T: Tokenizer> Tokenizer for WordsOnlyWrapper<T> {
    type TokenStream<'a> = WordsOnlyStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        WordsOnlyStream {
            tail: self.inner.token_stream(text),
            stop: &self.stop,
        }
    }
}

struct WordsOnlyStream<'a, T> {
    tail: T,
    stop: &'a HashSet<String>,
}

impl<T: TokenStream> TokenStream for WordsOnlyStream<'_, T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            let text = &self.tail.token().text;
            if text.chars().any(char::is_alphanumeric) && !self.stop.contains(text) {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Vec<String> {
        terms(&mut analyzer(), text)
    }

    #[test]
    fn mixed_chinese_and_english_terms_survive() {
        let got = t("基于PLC的AI质检系统，支持5G回传。");
        for want in ["plc", "ai", "质检", "5g", "回传"] {
            assert!(got.contains(&want.to_string()), "{want} missing in {got:?}");
        }
    }

    #[test]
    fn punctuation_whitespace_and_stop_words_are_dropped() {
        let got = t("我们希望：焊缝的气孔 （返修率高）！");
        assert!(got.iter().all(|w| w.chars().any(char::is_alphanumeric)));
        assert!(!got.contains(&"我们".to_string()));
        assert!(!got.contains(&"的".to_string()));
        assert!(got.contains(&"气孔".to_string()));
        assert!(got.contains(&"焊缝".to_string()));
    }
}
