//! What a bench run found: one row per measured run, each beside the limit it is measured
//! against (measured in the same run) and the target the issue sets for it; printed as a
//! table, markdown or JSON.

use kechuang_platform::bench::{Figures, ms};
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// Postgres INSERT+COMMIT and JetStream publish-with-ack on the same servers.
    Limits,
    /// SubmitDemand over gRPC.
    Intake,
    /// ImportAchievements, then VerifyDemand → kc.pairing.proposed.
    Matching,
    /// ApproveApplication → kc.fund.posted.
    Approval,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Limits,
        Section::Intake,
        Section::Matching,
        Section::Approval,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Limits => "limits",
            Section::Intake => "intake",
            Section::Matching => "matching",
            Section::Approval => "approval",
        }
    }
}

/// A limit of the machine's servers, measured with `concurrency` connections or publishes
/// in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Single-row INSERT + COMMIT per second.
    PostgresInsertCommit,
    /// UPDATE + COMMIT of one and the same row per second: a hot row's lock, one commit
    /// after another.
    PostgresUpdateCommit,
    /// JetStream publish-with-ack per second.
    JetstreamPublishAck,
    /// Achievements the embedding model embeds per second, called directly on the same
    /// number of threads (concurrency = threads).
    EmbeddingModel,
}

impl Limit {
    fn short(self) -> &'static str {
        match self {
            Limit::PostgresInsertCommit => "PG",
            Limit::PostgresUpdateCommit => "PGrow",
            Limit::JetstreamPublishAck => "JS",
            Limit::EmbeddingModel => "E5",
        }
    }
}

/// What the issue asks of a figure.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// Per second at least this share of the compared limit.
    ShareOfLimit(f64),
    /// p99 below this.
    P99Below(Duration),
    /// p99 below this while making at least this many a second.
    P99BelowAtRate(Duration, f64),
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub limit: Limit,
    pub concurrency: usize,
    /// This row's per second ÷ the limit's per second.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The goal in words.
    pub goal: String,
    /// Share of the limit (≥ goal to meet it), or p99 ÷ the latency goal (< 1 to meet it).
    pub value: f64,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub section: Section,
    pub measure: String,
    pub concurrency: usize,
    pub operations: usize,
    pub errors: usize,
    pub elapsed_s: f64,
    pub per_second: f64,
    /// None where a run has no per-operation latency (a bulk import).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Set when this row is itself a limit.
    pub limit: Option<Limit>,
    pub vs_limit: Option<Ratio>,
    pub target: Option<Target>,
    #[serde(skip)]
    compare: Option<(Limit, usize)>,
    #[serde(skip)]
    goal: Option<Goal>,
}

impl Row {
    /// A run of timed operations.
    pub fn timed(section: Section, measure: &str, f: &Figures) -> Self {
        Self {
            errors: f.errors,
            p50_ms: Some(ms(f.p50)),
            p99_ms: Some(ms(f.p99)),
            ..Self::bulk(section, measure, f.concurrency, f.operations, f.elapsed)
        }
    }

    /// A run measured as a whole (operations over elapsed).
    pub fn bulk(
        section: Section,
        measure: &str,
        concurrency: usize,
        operations: usize,
        elapsed: Duration,
    ) -> Self {
        Self {
            section,
            measure: measure.to_string(),
            concurrency,
            operations,
            errors: 0,
            elapsed_s: elapsed.as_secs_f64(),
            per_second: operations as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: None,
            p99_ms: None,
            limit: None,
            vs_limit: None,
            target: None,
            compare: None,
            goal: None,
        }
    }

    pub fn errors(mut self, errors: usize) -> Self {
        self.errors = errors;
        self
    }

    /// This row is the limit others compare with.
    pub fn is_limit(mut self, limit: Limit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Compare with `limit` measured at `concurrency`.
    pub fn against(mut self, limit: Limit, concurrency: usize) -> Self {
        self.compare = Some((limit, concurrency));
        self
    }

    pub fn goal(mut self, goal: Goal) -> Self {
        self.goal = Some(goal);
        self
    }
}

/// Where the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    /// Worker threads of the runtime the platform and its clients ran on
    /// ([`kechuang_platform::launcher::worker_threads`]); the limits ran on one with a worker
    /// per core, the configuration that gave them their best figures.
    pub platform_workers: usize,
    pub memory_gib: Option<f64>,
    pub postgres: String,
    pub nats: String,
    /// 1, 5 and 15 minute load averages (Linux), when the run started and when it ended.
    pub load_before: Option<[f64; 3]>,
    pub load_after: Option<[f64; 3]>,
}

/// What was run.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub sections: Vec<Section>,
    pub concurrency: Vec<usize>,
    pub achievements: usize,
    pub ops: OpsInfo,
    /// The bench's own databases (`<prefix><service>`) and stream, dropped after the run.
    pub database_prefix: String,
    pub stream: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpsInfo {
    pub limits: usize,
    pub intake: usize,
    pub matching: usize,
    pub approval: usize,
    /// The approval runs' least operations a client ([`super::Sizes::approval_per_client`]).
    pub approval_per_client: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: String,
    pub elapsed_s: f64,
    pub machine: Machine,
    pub run: RunInfo,
    pub rows: Vec<Row>,
}

impl Report {
    /// Fills every row's ratio to its limit and its target from the limits in `rows`.
    pub fn compare(&mut self) {
        let limits: Vec<(Limit, usize, f64)> = self
            .rows
            .iter()
            .filter_map(|r| Some((r.limit?, r.concurrency, r.per_second)))
            .collect();
        for row in &mut self.rows {
            row.vs_limit = row.compare.and_then(|(limit, concurrency)| {
                let (_, _, rate) = limits
                    .iter()
                    .find(|(l, c, _)| *l == limit && *c == concurrency)?;
                Some(Ratio {
                    limit,
                    concurrency,
                    ratio: row.per_second / rate.max(1e-9),
                })
            });
            row.target = match row.goal {
                Some(Goal::ShareOfLimit(share)) => row.vs_limit.as_ref().map(|r| Target {
                    goal: format!("≥ {share:.2} of {}@{}", r.limit.short(), r.concurrency),
                    value: r.ratio,
                    met: r.ratio >= share,
                }),
                Some(Goal::P99Below(bound)) => row.p99_ms.map(|p99| {
                    let value = p99 / ms(bound);
                    Target {
                        goal: format!("p99 < {:.0} ms", ms(bound)),
                        value,
                        met: value < 1.0,
                    }
                }),
                Some(Goal::P99BelowAtRate(bound, rate)) => row.p99_ms.map(|p99| {
                    let value = p99 / ms(bound);
                    Target {
                        goal: format!("p99 < {:.0} ms at ≥ {rate:.0} a second", ms(bound)),
                        value,
                        met: value < 1.0 && row.per_second >= rate,
                    }
                }),
                None => None,
            };
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises")
    }

    fn cells(row: &Row) -> [String; 10] {
        let ms = |v: Option<f64>| v.map(fmt_ms).unwrap_or_else(|| "—".into());
        [
            row.section.name().to_string(),
            row.measure.clone(),
            row.concurrency.to_string(),
            row.operations.to_string(),
            format!("{:.0}", row.per_second),
            ms(row.p50_ms),
            ms(row.p99_ms),
            row.errors.to_string(),
            row.vs_limit
                .as_ref()
                .map(|r| format!("{:.2} × {}@{}", r.ratio, r.limit.short(), r.concurrency))
                .unwrap_or_default(),
            row.target
                .as_ref()
                .map(|t| match row.goal {
                    Some(Goal::P99Below(_) | Goal::P99BelowAtRate(..)) => format!(
                        "{}: {:.2}× {}",
                        t.goal,
                        t.value,
                        if t.met { "met" } else { "MISSED" }
                    ),
                    _ => format!("{}: {}", t.goal, if t.met { "met" } else { "MISSED" }),
                })
                .unwrap_or_default(),
        ]
    }

    const HEADER: [&'static str; 10] = [
        "section", "measure", "conc", "ops", "per s", "p50 ms", "p99 ms", "errors", "vs limit",
        "target",
    ];

    fn heading(&self) -> String {
        let m = &self.machine;
        let load = |l: Option<[f64; 3]>| {
            l.map(|[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"))
                .unwrap_or_else(|| "?".into())
        };
        format!(
            "kechuang bench, {} ({:.0} s): {} cores ({} platform worker threads, {} for the limits), {} GiB, PostgreSQL {}, NATS {}; load average {} at the start, {} at the end{}",
            self.started_at,
            self.elapsed_s,
            m.cores,
            m.platform_workers,
            m.cores,
            m.memory_gib
                .map(|g| format!("{g:.1}"))
                .unwrap_or_else(|| "?".into()),
            m.postgres,
            m.nats,
            load(m.load_before),
            load(m.load_after),
            if self.run.sections.contains(&Section::Matching) {
                format!("; {} achievements", self.run.achievements)
            } else {
                String::new()
            }
        )
    }

    const LEGEND: &'static str = "PG@n: Postgres single-row INSERT+COMMIT per second with n connections; PGrow@n: Postgres UPDATE+COMMIT of one and the same row per second with n connections; JS@n: JetStream publish-with-ack per second with n in flight (both measured in this run). conc: concurrent clients; each event row times one call until its events are seen on NATS.";

    /// A fixed-width table for the terminal.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 10]> = self.rows.iter().map(Self::cells).collect();
        let mut widths = Self::HEADER.map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                let pad = " ".repeat(w - c.chars().count());
                if !NUMERIC.contains(&i) {
                    let _ = write!(s, "{c}{pad}  ");
                } else {
                    let _ = write!(s, "{pad}{c}  ");
                }
            }
            s.trim_end().to_string()
        };
        let mut out = format!("{}\n\n", self.heading());
        out += &line(&Self::HEADER.map(String::from));
        out.push('\n');
        for r in &rows {
            out += &line(r);
            out.push('\n');
        }
        out += &format!("\n{}\n", Self::LEGEND);
        out
    }

    /// The same as a markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!("{}\n\n", self.heading());
        out += &format!("| {} |\n", Self::HEADER.join(" | "));
        out += &format!(
            "|{}\n",
            Self::HEADER
                .iter()
                .enumerate()
                .map(|(i, _)| if NUMERIC.contains(&i) {
                    "---:|"
                } else {
                    "---|"
                })
                .collect::<String>()
        );
        for r in &self.rows {
            out += &format!("| {} |\n", Self::cells(r).join(" | "));
        }
        out += &format!("\n{}\n", Self::LEGEND);
        out
    }
}

/// The columns of numbers (right-aligned); the others are text.
const NUMERIC: std::ops::Range<usize> = 2..8;

fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(concurrency: usize, operations: usize, secs: u64, p99_ms: u64) -> Figures {
        Figures {
            label: String::new(),
            concurrency,
            operations,
            errors: 0,
            elapsed: Duration::from_secs(secs),
            p50: Duration::from_millis(p99_ms / 2),
            p99: Duration::from_millis(p99_ms),
        }
    }

    fn report(rows: Vec<Row>) -> Report {
        Report {
            started_at: String::new(),
            elapsed_s: 0.0,
            machine: Machine {
                cores: 2,
                platform_workers: 1,
                memory_gib: None,
                postgres: String::new(),
                nats: String::new(),
                load_before: None,
                load_after: None,
            },
            run: RunInfo {
                sections: Section::ALL.to_vec(),
                concurrency: vec![1, 8],
                achievements: 0,
                ops: OpsInfo {
                    limits: 0,
                    intake: 0,
                    matching: 0,
                    approval: 0,
                    approval_per_client: 0,
                },
                database_prefix: String::new(),
                stream: String::new(),
            },
            rows,
        }
    }

    #[test]
    fn rows_are_compared_with_the_limit_at_their_own_concurrency_and_judged() {
        let pg = Limit::PostgresInsertCommit;
        let mut r = report(vec![
            Row::timed(Section::Limits, "pg", &figures(1, 1000, 1, 2)).is_limit(pg),
            Row::timed(Section::Limits, "pg", &figures(8, 4000, 1, 4)).is_limit(pg),
            Row::timed(Section::Intake, "submit", &figures(8, 1000, 1, 9))
                .against(pg, 8)
                .goal(Goal::ShareOfLimit(0.5)),
            Row::timed(Section::Intake, "submit", &figures(1, 600, 1, 3))
                .against(pg, 1)
                .goal(Goal::ShareOfLimit(0.5)),
            Row::timed(Section::Approval, "approve", &figures(1, 10, 1, 250))
                .goal(Goal::P99Below(Duration::from_millis(200))),
            Row::timed(Section::Intake, "submit", &figures(64, 10, 1, 3))
                .against(pg, 64)
                .goal(Goal::ShareOfLimit(0.5)),
        ]);
        r.compare();
        let at8 = &r.rows[2];
        assert_eq!(at8.vs_limit.as_ref().unwrap().ratio, 0.25);
        assert!(!at8.target.as_ref().unwrap().met);
        let at1 = &r.rows[3];
        assert_eq!(at1.vs_limit.as_ref().unwrap().ratio, 0.6);
        assert!(at1.target.as_ref().unwrap().met);
        let approval = r.rows[4].target.as_ref().unwrap();
        assert_eq!((approval.value, approval.met), (1.25, false));
        // No limit measured at 64: nothing to compare with, no verdict.
        assert!(r.rows[5].vs_limit.is_none() && r.rows[5].target.is_none());
        let table = r.table();
        assert!(table.contains("0.25 × PG@8"), "{table}");
        assert!(table.contains("p99 < 200 ms: 1.25× MISSED"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(json["rows"][3]["target"]["met"], true);
        assert_eq!(json["rows"][0]["limit"], "postgres_insert_commit");
        assert_eq!(
            r.markdown().lines().filter(|l| l.starts_with('|')).count(),
            8
        );
    }

    #[test]
    fn a_rate_goal_is_met_only_by_a_run_fast_enough_and_quick_enough() {
        let goal = Goal::P99BelowAtRate(Duration::from_millis(200), 600.0);
        let mut r = report(vec![
            // 6,000 in 10 s (600 a second), p99 150 ms.
            Row::timed(Section::Approval, "approve", &figures(64, 6000, 10, 150)).goal(goal),
            // Quick enough, too slow: 463 a second.
            Row::timed(Section::Approval, "approve", &figures(64, 463, 1, 150)).goal(goal),
            // Fast enough, p99 too long.
            Row::timed(Section::Approval, "approve", &figures(64, 700, 1, 250)).goal(goal),
        ]);
        r.compare();
        let verdicts: Vec<bool> = r
            .rows
            .iter()
            .map(|row| row.target.as_ref().unwrap().met)
            .collect();
        assert_eq!(verdicts, [true, false, false]);
        let table = r.table();
        assert!(
            table.contains("p99 < 200 ms at ≥ 600 a second: 0.75× met"),
            "{table}"
        );
        assert!(
            table.contains("p99 < 200 ms at ≥ 600 a second: 0.75× MISSED"),
            "{table}"
        );
    }
}
