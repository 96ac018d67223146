//! `kechuang dlq`: the services' dead letters, for an operator. The work is done by
//! `kechuang_platform::dead_letters`; this is its command line and what it prints.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, builder::PossibleValuesParser};
use kechuang_platform::ServiceKind;
use kechuang_platform::dead_letters::{DeadLetter, DeadLetters, MAX_LIST, ReplaySummary};
use kechuang_proto::events::Envelope;
use std::fmt::Write as _;

#[derive(Subcommand)]
pub enum DlqCommand {
    /// The dead letters waiting, oldest first. ID is what `show`, `replay` and `purge` take:
    /// the dead letter's sequence number in the stream, which never changes.
    List {
        /// Only this service's dead letters.
        #[arg(long, value_parser = service_names())]
        service: Option<String>,
        /// Show at most this many (1 to 1000); the last line says how many more there are.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=MAX_LIST as u64))]
        limit: u64,
        /// Only dead letters with an ID above this one: the next page.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Everything about one dead letter, its event decoded.
    Show { id: u64 },
    /// Put dead letters back before the consumer that failed on them, and remove them from
    /// the list. One that fails again comes back under a new ID with its new error; an event
    /// the consumer has handled since is not handled twice.
    Replay(Selection),
    /// Delete dead letters for good.
    Purge(Selection),
}

/// One dead letter, or all of them.
#[derive(Args)]
pub struct Selection {
    /// The dead letter's ID (from `list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<u64>,
    /// Every dead letter there is now (one arriving meanwhile waits for the next command).
    #[arg(long)]
    all: bool,
    /// With --all: only this service's dead letters.
    #[arg(long, requires = "all", value_parser = service_names())]
    service: Option<String>,
}

fn service_names() -> PossibleValuesParser {
    PossibleValuesParser::new(ServiceKind::names())
}

/// Runs `command` against the stream of the `KC_*` settings and prints what it did.
pub fn run(command: DlqCommand) -> anyhow::Result<()> {
    let settings = kechuang_platform::launcher::load_settings()?;
    let bus = settings.bus();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // `connect` retries for ever, as a service should; a command should say so at once.
        kechuang_platform::bus::ping(&bus.nats_url)
            .await
            .map_err(|e| anyhow::anyhow!("NATS at {}: {e}", bus.nats_url))?;
        let jetstream = kechuang_platform::bus::connect(&bus, "kechuang-dlq").await?;
        let letters = DeadLetters::new(jetstream, bus);
        match command {
            DlqCommand::List {
                service,
                limit,
                after,
            } => {
                let page = letters
                    .list(service.as_deref(), after, limit as usize)
                    .await?;
                print!("{}", table(&page.letters));
                println!("{}", footer(&page, service.as_deref(), after));
            }
            DlqCommand::Show { id } => print!("{}", describe(&letters.get(id).await?)),
            DlqCommand::Replay(Selection { id: Some(id), .. }) => {
                let done = letters.replay(id).await?;
                println!(
                    "replayed dead letter {id} (event {}) to consumer {} as stream message {}",
                    done.letter.event_id(),
                    done.letter.consumer,
                    done.sequence
                );
            }
            DlqCommand::Replay(Selection { service, .. }) => {
                replayed_all(letters.replay_all(service.as_deref()).await?, service)?;
            }
            DlqCommand::Purge(Selection { id: Some(id), .. }) => {
                let letter = letters.purge(id).await?;
                println!(
                    "purged dead letter {id} (event {}, consumer {})",
                    letter.event_id(),
                    letter.consumer
                );
            }
            DlqCommand::Purge(Selection { service, .. }) => {
                let purged = letters.purge_all(service.as_deref()).await?;
                println!("purged {}{}", count(purged), of(service.as_deref()));
            }
        }
        Ok(())
    })
}

/// "1 dead letter", "2 dead letters".
fn count(n: u64) -> String {
    match n {
        1 => "1 dead letter".into(),
        n => format!("{n} dead letters"),
    }
}

fn of(service: Option<&str>) -> String {
    service.map(|s| format!(" of {s}")).unwrap_or_default()
}

fn replayed_all(summary: ReplaySummary, service: Option<String>) -> anyhow::Result<()> {
    println!(
        "replayed {}{}",
        count(summary.replayed),
        of(service.as_deref())
    );
    if summary.refused > 0 {
        println!("left {} that cannot be replayed:", summary.refused);
        for refusal in &summary.refusals {
            println!("  {refusal}");
        }
    }
    match summary.interrupted {
        Some(e) => Err(anyhow::anyhow!("stopped before the end: {e}")),
        None => Ok(()),
    }
}

const ERROR_WIDTH: usize = 60;

/// One line per dead letter, in aligned columns.
fn table(letters: &[DeadLetter]) -> String {
    if letters.is_empty() {
        return String::new();
    }
    let mut rows = vec![[
        "ID".to_string(),
        "DEAD-LETTERED (UTC)".into(),
        "SERVICE".into(),
        "CONSUMER".into(),
        "EVENT".into(),
        "SUBJECT".into(),
        "DELIVERIES".into(),
        "ERROR".into(),
    ]];
    for l in letters {
        rows.push([
            l.id.to_string(),
            l.dead_lettered_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            l.service.clone(),
            l.consumer.clone(),
            l.event_id(),
            l.subject.clone(),
            l.deliveries.to_string(),
            shorten(&l.error, ERROR_WIDTH),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn footer(
    page: &kechuang_platform::dead_letters::Page,
    service: Option<&str>,
    after: u64,
) -> String {
    let Some(last) = page.letters.last() else {
        let after = if after > 0 {
            format!(" after {after}")
        } else {
            String::new()
        };
        return format!("no dead letters{}{after}", of(service));
    };
    if page.more == 0 {
        return format!("{} shown, no more", page.letters.len());
    }
    let filter = service
        .map(|s| format!(" --service {s}"))
        .unwrap_or_default();
    format!(
        "{} shown, {} more: kechuang dlq list{filter} --after {}",
        page.letters.len(),
        page.more,
        last.id
    )
}

fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let cut: String = s.chars().take(width - 1).collect();
    format!("{cut}…")
}

/// Everything about one dead letter: what the consumer recorded, every header, the event.
fn describe(l: &DeadLetter) -> String {
    let mut out = format!("dead letter {}\n", l.id);
    let mut field = |name: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "  {name:<15} {value}");
    };
    field("service", &l.service);
    field("consumer", &l.consumer);
    field(
        "dead-lettered",
        &l.dead_lettered_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
    );
    field("deliveries", &l.deliveries);
    field("error", &l.error);
    field(
        "subject",
        &format!("{} (stream message {})", l.subject, l.original_sequence),
    );
    if let Some(replayed) = l.replay_of {
        field("replay of", &format!("dead letter {replayed}"));
    }
    let mut headers: Vec<(String, String)> = l
        .headers
        .iter()
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.to_string()))
        })
        .collect();
    headers.sort();
    out.push_str("  headers\n");
    for (name, value) in headers {
        let _ = writeln!(out, "    {name}: {value}");
    }
    match l.envelope() {
        Ok(envelope) => out.push_str(&event(&envelope)),
        Err(e) => {
            let _ = writeln!(
                out,
                "event\n  not an envelope ({e}): {} bytes",
                l.body.len()
            );
        }
    }
    out
}

fn event(e: &Envelope) -> String {
    let mut out = String::from("event\n");
    let mut field = |name: &str, value: &dyn std::fmt::Display| {
        let value = value.to_string();
        let value = if value.is_empty() { "-" } else { &value };
        let _ = writeln!(out, "  {name:<15} {value}");
    };
    field("id", &e.event_id);
    field("type", &e.event_type);
    let occurred = e
        .occurred_at
        .as_ref()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_default();
    field("occurred at", &occurred);
    field(
        "aggregate",
        &format!(
            "{} {} (version {})",
            e.aggregate_type, e.aggregate_id, e.aggregate_version
        ),
    );
    field("correlation", &e.correlation_id);
    field("causation", &e.causation_id);
    field("producer", &e.producer);
    let payload = match &e.payload {
        Some(p) => format!("{p:#?}"),
        None => "(none)".into(),
    };
    out.push_str("  payload\n");
    for line in payload.lines() {
        let _ = writeln!(out, "    {line}");
    }
    out
}
