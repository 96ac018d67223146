//! Figures the console computes from the services' public listings: the supply-chain funnel,
//! matching rates by region, and disbursements over time and by industry chain. Pure.

use chrono::{DateTime, Duration, DurationRound, Utc};
use kechuang_proto::demand::DemandStatus as S;
use std::collections::BTreeMap;

/// The stages of the funnel, in order; a demand counts for every stage it reached.
pub const STAGES: [(S, &str); 6] = [
    (S::Submitted, "已提交 submitted"),
    (S::Verified, "已审核 verified"),
    (S::Matching, "已匹配 matched"),
    (S::Docking, "对接中 docking"),
    (S::Contracted, "已签约 contracted"),
    (S::Completed, "已完成 completed"),
];

/// Hubei holds its districts to this matching rate (匹配率).
pub const HUBEI_MATCHING_TARGET: f64 = 80.0;

/// What the funnel needs of a demand.
#[derive(Debug, Clone)]
pub struct DemandFacts {
    pub region_code: String,
    /// The current status and every status the history moved it to.
    pub statuses: Vec<i32>,
}

impl From<&kechuang_proto::demand::Demand> for DemandFacts {
    fn from(d: &kechuang_proto::demand::Demand) -> Self {
        let mut statuses: Vec<i32> = d.history.iter().map(|h| h.to_status).collect();
        statuses.push(d.status);
        Self {
            region_code: d.region_code.clone(),
            statuses,
        }
    }
}

/// The furthest stage a demand reached (index into [`STAGES`]). Downstream stages may
/// arrive first, so the furthest one implies every earlier one.
pub fn furthest_stage(statuses: &[i32]) -> usize {
    statuses
        .iter()
        .filter_map(|s| STAGES.iter().position(|(stage, _)| *stage as i32 == *s))
        .max()
        .unwrap_or(0)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Funnel {
    /// Demands that reached each stage of [`STAGES`].
    pub reached: [usize; 6],
    pub rejected: usize,
    pub withdrawn: usize,
}

impl Funnel {
    pub fn verified(&self) -> usize {
        self.reached[1]
    }
    pub fn matched(&self) -> usize {
        self.reached[2]
    }
    /// Verified demands that reached docking (an enterprise accepted a pairing), in percent:
    /// the rate a province holds its districts to. Matched among verified would be 100 % by
    /// construction (every verified demand gets some pairing); this one falls when the
    /// enterprises turn the pairings down.
    pub fn matching_rate(&self) -> Option<f64> {
        crate::money::ratio(self.reached[3], self.verified())
    }
}

pub fn funnel<'a>(demands: impl IntoIterator<Item = &'a DemandFacts>) -> Funnel {
    let mut f = Funnel::default();
    for d in demands {
        let furthest = furthest_stage(&d.statuses);
        for n in &mut f.reached[..=furthest] {
            *n += 1;
        }
        let now = d.statuses.last().copied().unwrap_or(0);
        if now == S::Rejected as i32 {
            f.rejected += 1;
        } else if now == S::Withdrawn as i32 {
            f.withdrawn += 1;
        }
    }
    f
}

/// One region's matching rate.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionRate {
    pub region_code: String,
    pub funnel: Funnel,
    /// A Hubei district below [`HUBEI_MATCHING_TARGET`].
    pub below_target: bool,
}

/// The funnel of each region, regions with the most verified demands first.
pub fn by_region(demands: &[DemandFacts]) -> Vec<RegionRate> {
    let mut groups: BTreeMap<&str, Vec<&DemandFacts>> = BTreeMap::new();
    for d in demands {
        groups.entry(d.region_code.as_str()).or_default().push(d);
    }
    let mut rates: Vec<RegionRate> = groups
        .into_iter()
        .map(|(region, ds)| {
            let funnel = funnel(ds);
            let below_target = region.starts_with(kechuang_vocabulary::HUBEI_PREFIX)
                && funnel
                    .matching_rate()
                    .is_some_and(|r| r < HUBEI_MATCHING_TARGET);
            RegionRate {
                region_code: region.to_string(),
                funnel,
                below_target,
            }
        })
        .collect();
    rates.sort_by(|a, b| {
        b.funnel
            .verified()
            .cmp(&a.funnel.verified())
            .then_with(|| a.region_code.cmp(&b.region_code))
    });
    rates
}

/// One disbursed subsidy.
#[derive(Debug, Clone)]
pub struct Disbursement {
    pub at: DateTime<Utc>,
    pub industry_chain: String,
    pub amount_fen: i64,
}

/// Disbursements summed per time bucket and industry chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub bucket: Duration,
    /// The start of each bucket, oldest first.
    pub starts: Vec<DateTime<Utc>>,
    /// Per chain, the amount in each bucket (same length as `starts`).
    pub by_chain: BTreeMap<String, Vec<i64>>,
}

impl Series {
    pub fn bucket_totals(&self) -> Vec<i64> {
        let mut totals = vec![0i64; self.starts.len()];
        for amounts in self.by_chain.values() {
            for (t, a) in totals.iter_mut().zip(amounts) {
                *t = t.saturating_add(*a);
            }
        }
        totals
    }

    pub fn chain_totals(&self) -> Vec<(String, i64)> {
        let mut totals: Vec<(String, i64)> = self
            .by_chain
            .iter()
            .map(|(c, v)| (c.clone(), v.iter().fold(0i64, |s, a| s.saturating_add(*a))))
            .collect();
        totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        totals
    }
}

/// At most this many bars in the chart.
pub const MAX_BUCKETS: i64 = 40;

/// The smallest bucket among seconds, minutes, hours, days, weeks and 30-day months that
/// cuts the span from the first to the last disbursement into at most [`MAX_BUCKETS`].
pub fn bucket_for(span: Duration) -> Duration {
    let candidates = [
        Duration::seconds(1),
        Duration::seconds(10),
        Duration::minutes(1),
        Duration::minutes(10),
        Duration::hours(1),
        Duration::hours(6),
        Duration::days(1),
        Duration::days(7),
        Duration::days(30),
    ];
    candidates
        .into_iter()
        .find(|b| span.num_seconds() / b.num_seconds() < MAX_BUCKETS)
        .unwrap_or(Duration::days(365))
}

pub fn series(disbursements: &[Disbursement]) -> Series {
    let (Some(first), Some(last)) = (
        disbursements.iter().map(|d| d.at).min(),
        disbursements.iter().map(|d| d.at).max(),
    ) else {
        return Series {
            bucket: Duration::days(1),
            starts: Vec::new(),
            by_chain: BTreeMap::new(),
        };
    };
    let bucket = bucket_for(last - first);
    let origin = first.duration_trunc(bucket).unwrap_or(first);
    let count = ((last - origin).num_seconds() / bucket.num_seconds() + 1) as usize;
    let starts = (0..count).map(|i| origin + bucket * i as i32).collect();
    let mut by_chain: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for d in disbursements {
        let i = ((d.at - origin).num_seconds() / bucket.num_seconds()) as usize;
        let row = by_chain
            .entry(d.industry_chain.clone())
            .or_insert_with(|| vec![0; count]);
        row[i] = row[i].saturating_add(d.amount_fen);
    }
    Series {
        bucket,
        starts,
        by_chain,
    }
}

/// The smallest "round" number (1, 2, 2.5 or 5 times a power of ten) at least `v`: a chart's
/// axis top.
pub fn nice_ceiling(v: i64) -> i64 {
    if v <= 1 {
        return 1;
    }
    let mut power: i64 = 1;
    while power <= v / 10 {
        power *= 10;
    }
    for step in [10, 20, 25, 50, 100] {
        let candidate = power.saturating_mul(step) / 10;
        if candidate >= v {
            return candidate;
        }
    }
    power.saturating_mul(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(region: &str, statuses: &[S]) -> DemandFacts {
        DemandFacts {
            region_code: region.into(),
            statuses: statuses.iter().map(|s| *s as i32).collect(),
        }
    }

    #[test]
    fn a_demand_counts_for_every_stage_up_to_its_furthest() {
        let ds = [
            demand("420100", &[S::Submitted]),
            demand("420100", &[S::Submitted, S::Rejected]),
            demand("420100", &[S::Submitted, S::Verified, S::Matching]),
            // Contracted arrived before docking: it still passed docking.
            demand(
                "420100",
                &[S::Submitted, S::Verified, S::Matching, S::Contracted],
            ),
            demand(
                "420100",
                &[
                    S::Submitted,
                    S::Verified,
                    S::Matching,
                    S::Docking,
                    S::Withdrawn,
                ],
            ),
            demand(
                "420100",
                &[
                    S::Submitted,
                    S::Verified,
                    S::Matching,
                    S::Docking,
                    S::Contracted,
                    S::Completed,
                ],
            ),
            demand("420100", &[S::Submitted, S::Verified]),
        ];
        let f = funnel(&ds);
        assert_eq!(f.reached, [7, 5, 4, 3, 2, 1]);
        assert_eq!((f.rejected, f.withdrawn), (1, 1));
        assert_eq!(f.matching_rate(), Some(60.0), "3 docked of 5 verified");
    }

    #[test]
    fn hubei_districts_below_eighty_percent_are_flagged() {
        let mut ds = Vec::new();
        let docked = [S::Submitted, S::Verified, S::Matching, S::Docking];
        for _ in 0..4 {
            ds.push(demand("420100", &docked));
        }
        ds.push(demand("420100", &[S::Submitted, S::Verified, S::Matching]));
        ds.push(demand("420500", &docked));
        // Paired, but the enterprise accepted nothing: it does not count.
        ds.push(demand("420500", &[S::Submitted, S::Verified, S::Matching]));
        ds.push(demand("110000", &[S::Submitted, S::Verified]));
        let rates = by_region(&ds);
        let flag = |r: &str| {
            rates
                .iter()
                .find(|x| x.region_code == r)
                .unwrap()
                .below_target
        };
        assert!(!flag("420100"), "4 of 5 is exactly the target");
        assert!(flag("420500"));
        assert!(!flag("110000"), "outside Hubei: no target");
        assert_eq!(rates[0].region_code, "420100");
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(19), 20);
        assert_eq!(nice_ceiling(21), 25);
        assert_eq!(nice_ceiling(1_927_520_000), 2_000_000_000);
        assert_eq!(nice_ceiling(30_000), 50_000);
        assert_eq!(nice_ceiling(100), 100);
    }

    #[test]
    fn buckets_fit_the_span_and_sum_per_chain() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-24T08:00:30Z")
            .unwrap()
            .to_utc();
        let d = |mins: i64, chain: &str, fen: i64| Disbursement {
            at: t0 + Duration::minutes(mins),
            industry_chain: chain.into(),
            amount_fen: fen,
        };
        let quick = series(&[d(0, "北斗", 1), d(0, "北斗", 1)]);
        assert_eq!(
            (quick.bucket, quick.starts.len()),
            (Duration::seconds(1), 1)
        );
        let s = series(&[d(0, "北斗", 100), d(0, "高端装备", 50), d(25, "北斗", 7)]);
        assert_eq!(s.bucket, Duration::minutes(1));
        assert_eq!(s.starts.len(), 26);
        assert_eq!(s.starts[0].to_rfc3339(), "2026-11-24T08:00:00+00:00");
        assert_eq!(s.bucket_totals()[0], 150);
        assert_eq!(s.bucket_totals()[25], 7);
        assert_eq!(
            s.chain_totals(),
            [("北斗".to_string(), 107), ("高端装备".to_string(), 50)]
        );
        let long = series(&[d(0, "北斗", 1), d(60 * 24 * 90, "北斗", 1)]);
        assert_eq!(long.bucket, Duration::days(7));
        assert!(long.starts.len() as i64 <= MAX_BUCKETS);
        assert!(series(&[]).starts.is_empty());
    }
}
