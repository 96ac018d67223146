//! Money is `i64` fen; ratios are basis points. Shown to people as yuan with two decimals.

/// 1 yuan = 100 fen.
pub const FEN_PER_YUAN: i64 = 100;
/// 10000 basis points = 100 %.
pub const BPS_SCALE: i64 = 10_000;

/// `1234567` fen → `"12,345.67 元"`.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let (whole, cents) = (abs / 100, abs % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{cents:02} 元")
}

/// `1000` bps → `"10.00%"`.
pub fn percent(bps: i32) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_yuan_with_grouping() {
        assert_eq!(yuan(0), "0.00 元");
        assert_eq!(yuan(5), "0.05 元");
        assert_eq!(yuan(100_000_000), "1,000,000.00 元");
        assert_eq!(yuan(-123_456), "-1,234.56 元");
        assert_eq!(percent(1000), "10.00%");
        assert_eq!(percent(1250), "12.50%");
    }
}
