//! The limits the benchmarks compare against run against the real servers and count what
//! they did (the figures themselves are not asserted).

use crate::helpers::{NATS, PG};
use kechuang_platform::bench::{jetstream_publish_ack, postgres_insert_commit};

#[tokio::test]
async fn postgres_insert_commit_counts_every_committed_row() {
    let f = postgres_insert_commit(PG, 4, 40).await.unwrap();
    assert_eq!((f.operations, f.errors, f.concurrency), (40, 0, 4));
    assert!(f.p50 <= f.p99);
}

#[tokio::test]
async fn jetstream_publish_ack_counts_every_acked_publish() {
    let f = jetstream_publish_ack(NATS, 4, 40, 256).await.unwrap();
    assert_eq!((f.operations, f.errors, f.concurrency), (40, 0, 4));
    assert!(f.p50 <= f.p99);
}
