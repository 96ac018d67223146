//! The rules every free-text field, identifier and amount of every service obeys, in one place,
//! so that no input reaches Postgres (a NUL byte), the console (an ESC or a bidi override) or an
//! error message (a megabyte id) unchecked.

use crate::error::Violations;

/// At most this many fen in any amount: 100 billion yuan, beyond any fund or contract the
/// platform handles, and far from `i64::MAX` so that sums of a few amounts never overflow.
pub const MAX_FEN: i64 = 10_000_000_000_000;

/// What an error message quotes of an input, at most.
pub const QUOTE_CHARS: usize = 40;

/// A free-text field's rule: its length in characters after trimming, and whether it may hold
/// line breaks and tabs (a description may, a title may not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    pub min: usize,
    pub max: usize,
    pub multiline: bool,
}

impl Text {
    /// A required single line of at most `max` characters.
    pub const fn line(max: usize) -> Self {
        Self {
            min: 1,
            max,
            multiline: false,
        }
    }

    /// A required text of at most `max` characters that may span lines.
    pub const fn paragraphs(max: usize) -> Self {
        Self {
            min: 1,
            max,
            multiline: true,
        }
    }

    /// The same rule, but empty is allowed (an optional note).
    pub const fn optional(self) -> Self {
        Self { min: 0, ..self }
    }

    /// Checks `value` against the rule, recording what is wrong under `field`.
    pub fn check(self, v: &mut Violations, field: &str, value: &str) {
        if let Some(problem) = self.problem(value) {
            v.add(field, problem);
        }
    }

    /// What is wrong with `value`, if anything.
    pub fn problem(self, value: &str) -> Option<String> {
        if let Some(c) = value.chars().find(|&c| forbidden(c, self.multiline)) {
            return Some(format!(
                "must not contain control characters (found U+{:04X})",
                c as u32
            ));
        }
        let n = value.trim().chars().count();
        if n < self.min {
            return Some("is required".into());
        }
        (n > self.max).then(|| format!("must be at most {} characters (is {n})", self.max))
    }
}

/// NUL and the other C0/C1 controls, and the bidirectional overrides that make text display
/// other than it reads ("Trojan Source"); a multi-line text keeps `\n`, `\r` and `\t`.
fn forbidden(c: char, multiline: bool) -> bool {
    if multiline && matches!(c, '\n' | '\r' | '\t') {
        return false;
    }
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// An identifier the client names (an id, a request id, a reference): 1 to `max` visible
/// characters, no spaces or controls.
pub fn check_id(v: &mut Violations, field: &str, value: &str, max: usize) {
    if let Some(problem) = id_problem(value, max) {
        v.add(field, problem);
    }
}

pub fn id_problem(value: &str, max: usize) -> Option<String> {
    if value.is_empty() {
        return Some("is required".into());
    }
    let n = value.chars().count();
    if n > max {
        return Some(format!("must be at most {max} characters (is {n})"));
    }
    value
        .chars()
        .any(|c| c.is_whitespace() || forbidden(c, false))
        .then(|| "must not contain spaces or control characters".into())
}

/// An amount of money: at least `min` fen and at most [`MAX_FEN`].
pub fn check_fen(v: &mut Violations, field: &str, fen: i64, min: i64) {
    v.check_with((min..=MAX_FEN).contains(&fen), field, || {
        format!("must be {min} to {MAX_FEN} fen (is {fen})")
    });
}

/// `value` as an error message may show it: at most [`QUOTE_CHARS`] characters, controls
/// replaced, quoted.
pub fn quote(value: &str) -> String {
    let mut shown: String = value
        .chars()
        .take(QUOTE_CHARS)
        .map(|c| if forbidden(c, false) { '\u{FFFD}' } else { c })
        .collect();
    if value.chars().nth(QUOTE_CHARS).is_some() {
        shown.push('…');
    }
    format!("{shown:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn problems(rule: Text, value: &str) -> Option<String> {
        rule.problem(value)
    }

    #[test]
    fn controls_nul_and_bidi_overrides_are_refused() {
        let title = Text::line(10);
        assert!(problems(title, "焊缝\0气孔").unwrap().contains("U+0000"));
        assert!(problems(title, "a\u{1b}[31mb").unwrap().contains("U+001B"));
        assert!(problems(title, "bell\u{7}").is_some());
        assert!(
            problems(title, "abc\u{202E}cba")
                .unwrap()
                .contains("U+202E")
        );
        assert!(problems(title, "two\nlines").is_some());
        assert_eq!(problems(Text::paragraphs(20), "two\nlines\tok"), None);
        assert!(problems(Text::paragraphs(20), "two\0lines").is_some());
    }

    #[test]
    fn length_counts_characters_after_trimming() {
        let rule = Text::line(3);
        assert_eq!(problems(rule, "  湖北省  "), None);
        assert!(problems(rule, "湖北省武").unwrap().contains("at most 3"));
        assert_eq!(problems(rule, "   ").as_deref(), Some("is required"));
        assert_eq!(problems(rule.optional(), ""), None);
    }

    #[test]
    fn ids_are_visible_characters_only() {
        assert_eq!(id_problem("fund-default", 100), None);
        assert!(id_problem("", 100).is_some());
        assert!(id_problem("a b", 100).is_some());
        assert!(id_problem("a\0b", 100).is_some());
        assert!(id_problem(&"x".repeat(101), 100).is_some());
    }

    #[test]
    fn money_is_bounded() {
        let mut v = Violations::new();
        check_fen(&mut v, "amount_fen", MAX_FEN, 1);
        check_fen(&mut v, "amount_fen", 0, 0);
        assert!(v.is_empty());
        check_fen(&mut v, "amount_fen", i64::MAX, 1);
        check_fen(&mut v, "amount_fen", 0, 1);
        check_fen(&mut v, "amount_fen", -5, 0);
        assert!(v.into_result().is_err());
    }

    #[test]
    fn a_quote_is_short_and_printable() {
        let huge = "x".repeat(1_000_000);
        assert!(quote(&huge).chars().count() <= QUOTE_CHARS + 3);
        assert_eq!(quote("c-1"), "\"c-1\"");
        assert!(!quote("a\0b").contains('\0'));
    }

    proptest! {
        #[test]
        fn accepted_text_has_no_controls_and_fits(s in "\\PC{0,40}|.{0,40}") {
            let rule = Text::line(30);
            if rule.problem(&s).is_none() {
                prop_assert!(!s.chars().any(|c| c.is_control()));
                prop_assert!(s.trim().chars().count() <= 30);
                prop_assert!(!s.trim().is_empty());
            }
        }

        #[test]
        fn quotes_never_grow_with_the_input(s in ".{0,200}") {
            prop_assert!(quote(&s).chars().count() <= QUOTE_CHARS * 6 + 3);
        }
    }
}
