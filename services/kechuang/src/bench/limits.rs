//! The limits, on the same servers the platform uses: Postgres single-row INSERT+COMMIT and
//! UPDATE+COMMIT of one hot row (scratch database) and JetStream publish-with-ack (scratch
//! stream), at each concurrency.

use super::report::{Limit, Row, Section};
use indicatif::MultiProgress;
use kechuang_platform::Settings;
use kechuang_platform::bench::{
    jetstream_publish_ack, postgres_insert_commit, postgres_update_commit,
};

/// About the size of one of the platform's event envelopes.
const ENVELOPE_BYTES: usize = 512;

pub async fn measure(
    settings: &Settings,
    levels: &[usize],
    ops: usize,
    progress: &MultiProgress,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &c in levels {
        let spinner = super::ctx_spinner(
            progress,
            &format!("Postgres INSERT+COMMIT, {c} connections, {ops} rows"),
        );
        let f = postgres_insert_commit(&settings.database_url, c, ops).await?;
        spinner.finish_and_clear();
        rows.push(
            Row::timed(Section::Limits, "Postgres INSERT+COMMIT (one row)", &f)
                .is_limit(Limit::PostgresInsertCommit),
        );
    }
    for &c in levels {
        let spinner = super::ctx_spinner(
            progress,
            &format!("Postgres UPDATE+COMMIT of one row, {c} connections, {ops} updates"),
        );
        let f = postgres_update_commit(&settings.database_url, c, ops).await?;
        spinner.finish_and_clear();
        rows.push(
            Row::timed(Section::Limits, "Postgres UPDATE+COMMIT (one hot row)", &f)
                .is_limit(Limit::PostgresUpdateCommit),
        );
    }
    for &c in levels {
        let spinner = super::ctx_spinner(
            progress,
            &format!("JetStream publish+ack, {c} in flight, {ops} messages"),
        );
        let f = jetstream_publish_ack(&settings.nats_url, c, ops, ENVELOPE_BYTES).await?;
        spinner.finish_and_clear();
        rows.push(
            Row::timed(Section::Limits, "JetStream publish+ack", &f)
                .is_limit(Limit::JetstreamPublishAck),
        );
    }
    Ok(rows)
}
