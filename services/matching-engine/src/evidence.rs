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
fn as_written(text: &str, lower: &str, term: &str) -> String {
    if text.len() == lower.len()
        && let Some(at) = find_term(lower, term)
        && let Some(original) = text.get(at..at + term.len())
    {
        return original.to_string();
    }
    term.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
