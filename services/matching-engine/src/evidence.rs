//! What a demand and an achievement visibly share: the demand's own terms found in the
//! achievement, and the curated methods the achievement names verbatim. Shown as written in
//! the achievement ("PLC", not "plc").

use crate::relations::Expansion;
use std::collections::HashMap;

/// The demand's own terms found in the achievement text, most telling (highest idf) first,
/// leaving out a term another shared term contains ("返修" when "返修率" is there).
pub(crate) fn shared_terms(own: &[String], idf: &HashMap<String, f64>, text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let found: Vec<&String> = own
        .iter()
        .filter(|t| find_term(&lower, t).is_some())
        .collect();
    let mut kept: Vec<&String> = found
        .iter()
        .filter(|t| {
            let t: &str = t;
            !found.iter().any(|o| o.len() > t.len() && o.contains(t))
        })
        .copied()
        .collect();
    kept.sort_by(|a, b| {
        let (ia, ib) = (idf.get(*a).unwrap_or(&0.0), idf.get(*b).unwrap_or(&0.0));
        ib.total_cmp(ia).then_with(|| a.cmp(b))
    });
    kept.into_iter()
        .map(|t| as_written(text, &lower, t))
        .collect()
}

/// The expansions whose method the achievement names verbatim, in the order given (strongest
/// first), each target as the achievement writes it.
pub(crate) fn links(expansions: &[Expansion], text: &str) -> Vec<Expansion> {
    let lower = text.to_lowercase();
    expansions
        .iter()
        .filter(|e| find_term(&lower, &e.target).is_some())
        .map(|e| Expansion {
            target: as_written(text, &lower, &e.target),
            ..e.clone()
        })
        .collect()
}

/// Where `needle` first occurs in `hay`, an ASCII word not being part of a longer ASCII word
/// ("AI" is not in "MAIN").
pub(crate) fn find_term(hay: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_ascii_alphanumeric();
    let starts_ascii = needle.chars().next().is_some_and(is_word);
    let ends_ascii = needle.chars().next_back().is_some_and(is_word);
    hay.match_indices(needle)
        .find(|(at, _)| {
            let glued_before = starts_ascii && hay[..*at].chars().next_back().is_some_and(is_word);
            let glued_after =
                ends_ascii && hay[at + needle.len()..].chars().next().is_some_and(is_word);
            !glued_before && !glued_after
        })
        .map(|(at, _)| at)
}

/// `term` (lower case, found in `lower`) as `text` writes it, when lower-casing kept the byte
/// offsets (it does for Chinese and ASCII).
pub(crate) fn as_written(text: &str, lower: &str, term: &str) -> String {
    if text.len() == lower.len()
        && let Some(at) = find_term(lower, term)
        && let Some(original) = text.get(at..at + term.len())
    {
        return original.to_string();
    }
    term.to_string()
}

/// A quoted sentence is cut to this many characters.
const MAX_QUOTE: usize = 80;

/// The abstract's sentence closest to the demand's problem: the one sharing the most
/// character bigrams with the demand and the methods its symptoms point to; with none shared,
/// the first (an abstract usually opens with the problem it addresses). Cheap on purpose: it
/// runs for every candidate, where embedding each sentence would cost tens of milliseconds.
pub(crate) fn closest_sentence(
    demand_text: &str,
    expansions: &[Expansion],
    abstract_text: &str,
) -> Option<String> {
    let mut wanted = bigrams(demand_text);
    for e in expansions {
        wanted.extend(bigrams(&e.target));
    }
    let sentences: Vec<&str> = abstract_text
        .split(['。', '；', '！', '？', ';', '!', '?', '\n'])
        .map(str::trim)
        .filter(|s| s.chars().count() >= 4)
        .collect();
    let best = sentences
        .iter()
        .enumerate()
        .max_by_key(|(i, s)| {
            let shared = bigrams(s).intersection(&wanted).count();
            (shared, std::cmp::Reverse(*i))
        })
        .map(|(_, s)| *s)?;
    let mut quote: String = best.chars().take(MAX_QUOTE).collect();
    if best.chars().count() > MAX_QUOTE {
        quote.push('…');
    }
    Some(quote)
}

/// Distinct pairs of adjacent letters or ideographs, lower-cased.
fn bigrams(text: &str) -> std::collections::HashSet<(char, char)> {
    let chars: Vec<char> = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    chars.windows(2).map(|w| (w[0], w[1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quoted_sentence_is_the_one_closest_to_the_demand() {
        let abs = "本成果面向中厚板焊接。采用熔池视觉监测实时调整参数，焊缝气孔率降低90%。已在船舶行业应用。";
        assert_eq!(
            closest_sentence("焊缝老有气孔", &[], abs).as_deref(),
            Some("采用熔池视觉监测实时调整参数，焊缝气孔率降低90%")
        );
        // Nothing shared: the opening sentence, which states the problem addressed.
        assert_eq!(
            closest_sentence("电费太高", &[], abs).as_deref(),
            Some("本成果面向中厚板焊接")
        );
        assert_eq!(closest_sentence("电费太高", &[], ""), None);
        let long = "很".repeat(200);
        assert!(closest_sentence("很好", &[], &long).unwrap().ends_with('…'));
    }

    #[test]
    fn ascii_terms_match_whole_words_only() {
        assert!(find_term("基于ai的质检", "ai").is_some());
        assert!(find_term("main board", "ai").is_none());
        assert!(find_term("5g回传", "5g").is_some());
        assert!(find_term("焊缝气孔", "气孔").is_some());
    }

    #[test]
    fn shared_terms_prefer_the_longer_and_rarer_as_written() {
        let own: Vec<String> = ["返修", "返修率", "焊缝", "plc"].map(String::from).to_vec();
        let idf = HashMap::from([("焊缝".to_string(), 3.0), ("返修率".to_string(), 1.0)]);
        assert_eq!(
            shared_terms(&own, &idf, "降低焊缝返修率，与PLC联动"),
            ["焊缝", "返修率", "PLC"]
        );
    }

    #[test]
    fn links_show_the_method_as_the_achievement_writes_it() {
        let e = vec![Expansion {
            trigger: "废气".into(),
            target: "vocs治理".into(),
            weight: 0.8,
        }];
        let got = links(&e, "面向VOCs治理的吸附浓缩");
        assert_eq!(got[0].target, "VOCs治理");
        assert!(links(&e, "废水处理").is_empty());
    }
}
