//! Inline SVG charts: no script, no library, readable without colour thanks to the labels.

use crate::money::{yuan, yuan_short};
use crate::stats::Series;
use chrono::{Duration, FixedOffset};
use maud::{Markup, html};

const PALETTE: [&str; 14] = [
    "#2f6db5", "#e07b39", "#3a9d5d", "#c23b4e", "#7b5ea7", "#1b9aaa", "#b8860b", "#8c564b",
    "#d45fa0", "#5f7a8c", "#6a994e", "#9d4edd", "#ef476f", "#118ab2",
];

/// A stable colour per industry chain (the catalog's order), grey for anything else.
pub fn chain_colour(chain: &str) -> &'static str {
    kechuang_vocabulary::INDUSTRY_CHAINS
        .iter()
        .position(|c| *c == chain)
        .map(|i| PALETTE[i % PALETTE.len()])
        .unwrap_or("#9aa5b1")
}

fn bucket_label(series: &Series, i: usize) -> String {
    let cst = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let t = series.starts[i].with_timezone(&cst);
    if series.bucket < Duration::minutes(1) {
        t.format("%H:%M:%S").to_string()
    } else if series.bucket < Duration::days(1) {
        t.format("%m-%d %H:%M").to_string()
    } else {
        t.format("%Y-%m-%d").to_string()
    }
}

/// Disbursements per time bucket, stacked by industry chain.
pub fn disbursements_over_time(series: &Series) -> Markup {
    let (w, h, left, bottom, top) = (900.0, 260.0, 70.0, 44.0, 10.0);
    let totals = series.bucket_totals();
    let max = crate::stats::nice_ceiling(totals.iter().copied().max().unwrap_or(0)) as f64;
    let n = series.starts.len().max(1) as f64;
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let slot = plot_w / n;
    let bar = (slot * 0.8).clamp(1.0, 48.0);
    let order: Vec<String> = series.chain_totals().into_iter().map(|(c, _)| c).collect();
    let label_every = (series.starts.len() / 8).max(1);
    html! {
        svg #chart-time xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (w) " " (h)} width="100%" role="img" aria-label="disbursements over time" {
            @for k in 0..=4 {
                @let v = max * k as f64 / 4.0;
                @let y = top + plot_h - plot_h * k as f64 / 4.0;
                line x1=(left) x2=(w - 10.0) y1=(y) y2=(y) stroke="#e4e7eb" {}
                text x=(left - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" fill="#7b8794" { (yuan_short(v as i64)) }
            }
            @for (i, _) in series.starts.iter().enumerate() {
                @let x = left + slot * i as f64 + (slot - bar) / 2.0;
                @let mut base = top + plot_h;
                @for chain in &order {
                    @let amount = series.by_chain[chain][i];
                    @if amount > 0 {
                        @let bh = plot_h * amount as f64 / max;
                        @let y = { base -= bh; base };
                        rect x=(x) y=(y) width=(bar) height=(bh) fill=(chain_colour(chain)) {
                            title { (bucket_label(series, i)) " " (chain) " " (yuan(amount)) }
                        }
                    }
                }
                @if i % label_every == 0 {
                    text x=(x + bar / 2.0) y=(h - bottom + 16.0) text-anchor="middle" font-size="11" fill="#52606d" { (bucket_label(series, i)) }
                }
            }
            line x1=(left) x2=(w - 10.0) y1=(top + plot_h) y2=(top + plot_h) stroke="#9fb3c8" {}
            text #chart-zone x=(w - 10.0) y=(h - 2.0) text-anchor="end" font-size="11" fill="#7b8794" { "北京时间 " (super::layout::ZONE) }
        }
        div.legend {
            @for chain in &order {
                span style="margin-right:14px;white-space:nowrap" {
                    span style={"display:inline-block;width:10px;height:10px;margin-right:4px;background:" (chain_colour(chain))} {}
                    (chain)
                }
            }
        }
    }
}

/// Total disbursed per industry chain, as horizontal bars.
pub fn by_chain(totals: &[(String, i64)]) -> Markup {
    let max = totals.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let row = 26.0;
    let (w, label_w, value_w) = (900.0, 190.0, 170.0);
    let h = row * totals.len().max(1) as f64 + 4.0;
    html! {
        svg #chart-chain xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (w) " " (h)} width="100%" role="img" aria-label="disbursed by industry chain" {
            @for (i, (chain, v)) in totals.iter().enumerate() {
                @let y = i as f64 * row + 2.0;
                @let bw = (w - label_w - value_w) * *v as f64 / max;
                text x=(label_w - 8.0) y=(y + 16.0) text-anchor="end" font-size="12" fill="#1f2933" { (chain) }
                rect x=(label_w) y=(y + 3.0) width=(bw.max(1.0)) height=(row - 8.0) fill=(chain_colour(chain)) {}
                text x=(label_w + bw + 6.0) y=(y + 16.0) font-size="12" fill="#52606d" { (yuan(*v)) }
            }
        }
    }
}

/// The fund's money as one bar: available, reserved, disbursed.
pub fn fund_bar(available: i64, reserved: i64, disbursed: i64) -> Markup {
    let total = (available.max(0) + reserved.max(0) + disbursed.max(0)).max(1) as f64;
    let w = 900.0;
    let parts = [
        (available.max(0), "#3a9d5d", "可用 available"),
        (reserved.max(0), "#f0b429", "预留 reserved"),
        (disbursed.max(0), "#2f6db5", "已拨付 disbursed"),
    ];
    let mut x = 0.0;
    html! {
        div.legend style="margin-bottom:6px" {
            @for (v, colour, label) in parts {
                span style="margin-right:18px;white-space:nowrap" {
                    span style={"display:inline-block;width:10px;height:10px;margin-right:4px;background:" (colour)} {}
                    (label) " " (crate::money::percent_bps((v as f64 * 10_000.0 / total) as i32))
                }
            }
        }
        svg #chart-fund xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (w) " 28"} width="100%" role="img" aria-label="fund balances" {
            @for (v, colour, label) in parts {
                @let bw = w * v as f64 / total;
                @let at = { let at = x; x += bw; at };
                @if v > 0 {
                    rect x=(at) y="0" width=(bw) height="28" fill=(colour) { title { (label) " " (yuan(v)) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Disbursement, series};
    use chrono::{DateTime, Utc};

    #[test]
    fn charts_render_bars_with_yuan_labels() {
        let t0: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-24T08:00:00Z")
            .unwrap()
            .to_utc();
        let s = series(&[
            Disbursement {
                at: t0,
                industry_chain: "北斗".into(),
                amount_fen: 20_000_000,
            },
            Disbursement {
                at: t0 + Duration::minutes(3),
                industry_chain: "高端装备".into(),
                amount_fen: 10_000_000,
            },
        ]);
        let svg = disbursements_over_time(&s).into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("200,000.00 元"), "{svg}");
        assert!(svg.contains("16:00:00"), "China time on the axis");
        assert!(svg.contains("北京时间 UTC+8"), "and the axis says so");
        let bars = by_chain(&s.chain_totals()).into_string();
        assert!(
            bars.find("北斗").unwrap() < bars.find("高端装备").unwrap(),
            "largest first"
        );
        assert_ne!(chain_colour("北斗"), chain_colour("高端装备"));
        let fund = fund_bar(700, 0, 300).into_string();
        assert_eq!(fund.matches("<rect").count(), 2);
    }

    #[test]
    fn labels_are_escaped() {
        let s = series(&[Disbursement {
            at: Utc::now(),
            industry_chain: "<script>".into(),
            amount_fen: 1,
        }]);
        let svg = disbursements_over_time(&s).into_string();
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
    }
}
