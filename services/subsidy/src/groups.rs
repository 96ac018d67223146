//! The queue a group commit takes its groups from: whatever has queued up while the previous
//! group committed, a group at a time, by [`COMMITTERS`] committers.

use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// Groups committing at a time, per queue (their rows are locked in id order, so two groups
/// never wait on each other in a cycle). Measured at 8 and 64 approvers, alternating with one
/// (docs/benchmarks.md): two lowered the rate at 8 by a tenth and gained nothing at 64, and
/// one gained a seventh at 64 over no groups at all.
pub const COMMITTERS: usize = 1;

/// The receiving end of a group commit's queue, shared by its committers.
pub struct Groups<T>(Arc<Mutex<mpsc::UnboundedReceiver<T>>>);

impl<T> Clone for Groups<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// A queue: where items are handed in, and where groups are taken from.
pub fn queue<T>() -> (mpsc::UnboundedSender<T>, Groups<T>) {
    let (send, receive) = mpsc::unbounded_channel();
    (send, Groups(Arc::new(Mutex::new(receive))))
}

impl<T> Groups<T> {
    /// The next group (at most `max` items, at least one), or `None` once `shutdown` is
    /// cancelled or every sender is gone.
    pub async fn next(&self, max: usize, shutdown: &CancellationToken) -> Option<Vec<T>> {
        let mut queue = tokio::select! {
            _ = shutdown.cancelled() => return None,
            queue = self.0.lock() => queue,
        };
        let first = tokio::select! {
            _ = shutdown.cancelled() => return None,
            next = queue.recv() => next?,
        };
        let mut group = vec![first];
        while group.len() < max {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        Some(group)
    }

    /// What is still queued, once no more is handed in.
    pub async fn rest(&self) -> Vec<T> {
        let mut queue = self.0.lock().await;
        queue.close();
        let mut rest = Vec::new();
        while let Some(item) = queue.recv().await {
            rest.push(item);
        }
        rest
    }
}
