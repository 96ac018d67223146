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

/// The name the character-bigram analyzer is registered under.
pub(crate) const BIGRAMS: &str = "kc_bigram";

/// Overlapping character bigrams of each run of CJK characters, plus each ASCII word, lower
/// cased. A safety net under the word segmentation: "做鲜湿面" segments as "做鲜 / 湿面" but
/// "鲜湿面保鲜" as "鲜湿面 / 保鲜"; both share the bigrams "鲜湿", "湿面".
pub(crate) fn bigram_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(CjkBigrams).build()
}

#[derive(Clone)]
struct CjkBigrams;

impl Tokenizer for CjkBigrams {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream::new(bigram_tokens(text))
    }
}

fn bigram_tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let is_cjk = |c: char| c.is_alphanumeric() && !c.is_ascii();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if is_cjk(c) {
            let mut j = i;
            while j + 1 < chars.len() && is_cjk(chars[j + 1].1) {
                let end = chars.get(j + 2).map_or(text.len(), |(b, _)| *b);
                out.push(token(&text[chars[j].0..end], chars[j].0, end, out.len()));
                j += 1;
            }
            i = j + 1;
        } else if c.is_ascii_alphanumeric() {
            let mut j = i;
            while j + 1 < chars.len() && chars[j + 1].1.is_ascii_alphanumeric() {
                j += 1;
            }
            let end = chars.get(j + 1).map_or(text.len(), |(b, _)| *b);
            if j > i {
                out.push(token(
                    &text[start..end].to_ascii_lowercase(),
                    start,
                    end,
                    out.len(),
                ));
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

fn token(text: &str, from: usize, to: usize, position: usize) -> Token {
    Token {
        offset_from: from,
        offset_to: to,
        position,
        text: text.to_string(),
        position_length: 1,
    }
}

struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl VecTokenStream {
    fn new(tokens: Vec<Token>) -> Self {
        VecTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
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

/// Keeps tokens of two or more characters, with at least one letter or digit (CJK ideographs
/// are letters), that are not stop words.
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
            // A single character ("高", "用", "件") says little on its own; the bigram field
            // still sees it in context.
            let long_enough = text.chars().nth(1).is_some();
            if long_enough && text.chars().any(char::is_alphanumeric) && !self.stop.contains(text) {
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
    fn bigrams_bridge_differently_segmented_words() {
        let texts = |t: &str| -> Vec<String> { terms(&mut bigram_analyzer(), t) };
        assert_eq!(
            texts("做鲜湿面，PLC控制"),
            ["做鲜", "鲜湿", "湿面", "plc", "控制"]
        );
        assert!(texts("鲜湿面保鲜").contains(&"湿面".to_string()));
        assert!(texts("a 面 b").is_empty());
    }

    #[test]
    fn single_characters_are_not_terms() {
        assert!(t("刀也坏得快").iter().all(|w| w.chars().count() > 1));
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
