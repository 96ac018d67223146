//! Money is `i64` fen in every API; people read yuan with two decimals.

/// `1234567` fen → `"12,345.67"` (no unit: the page says 元 where it fits).
pub fn yuan_digits(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let (whole, cents) = (abs / 100, abs % 100);
    let digits = whole.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{cents:02}")
}

/// `1234567` fen → `"12,345.67 元"`.
pub fn yuan(fen: i64) -> String {
    format!("{} 元", yuan_digits(fen))
}

/// A short yuan figure for chart axes: `"1.2 亿"`, `"35.0 万"`, `"800"`.
pub fn yuan_short(fen: i64) -> String {
    let y = fen as f64 / 100.0;
    if y.abs() >= 1e8 {
        format!("{:.1} 亿", y / 1e8)
    } else if y.abs() >= 1e4 {
        format!("{:.1} 万", y / 1e4)
    } else {
        format!("{y:.0}")
    }
}

/// Basis points → `"10.00%"`.
pub fn percent_bps(bps: i32) -> String {
    let sign = if bps < 0 { "-" } else { "" };
    let abs = bps.unsigned_abs();
    format!("{sign}{}.{:02}%", abs / 100, abs % 100)
}

/// `part / whole` as a percentage with one decimal, `None` when `whole` is 0.
pub fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// A decimal with at most two places, in hundredths: `"1,000.5"` → `100050`. Yuan → fen,
/// percent → basis points.
pub fn hundredths(text: &str) -> Option<i64> {
    let t: String = text
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | ' '))
        .collect();
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents: i64 = format!("{frac:0<2}").parse().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_render_as_yuan_with_two_decimals_and_grouping() {
        assert_eq!(yuan(0), "0.00 元");
        assert_eq!(yuan(5), "0.05 元");
        assert_eq!(yuan(100), "1.00 元");
        assert_eq!(yuan(123_456), "1,234.56 元");
        assert_eq!(yuan(20_000_000_000), "200,000,000.00 元");
        assert_eq!(yuan(-123_456), "-1,234.56 元");
        assert_eq!(yuan_digits(i64::MIN), "-92,233,720,368,547,758.08");
        assert_eq!(yuan_digits(i64::MAX), "92,233,720,368,547,758.07");
    }

    #[test]
    fn short_figures_and_percentages() {
        assert_eq!(yuan_short(20_000_000_000), "2.0 亿");
        assert_eq!(yuan_short(35_000_000), "35.0 万");
        assert_eq!(yuan_short(80_000), "800");
        assert_eq!(percent_bps(1000), "10.00%");
        assert_eq!(percent_bps(1250), "12.50%");
        assert_eq!(percent_bps(-5), "-0.05%");
        assert_eq!(ratio(4, 5), Some(80.0));
        assert_eq!(ratio(1, 0), None);
    }
}
