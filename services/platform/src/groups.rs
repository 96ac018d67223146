//! The queue a group commit takes its groups from: whatever has queued up while the previous
//! group committed, a group at a time. One committer per queue: two side by side were
//! measured at 8 and 64 approvers (docs/benchmarks.md) and lowered the rate at 8 by a tenth
//! while gaining nothing at 64. Used by the subsidy service's group commits and by
//! [`crate::consumer::Grouped`].

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The receiving end of a group commit's queue.
pub struct Groups<T>(mpsc::UnboundedReceiver<T>);

/// A queue: where items are handed in, and where groups are taken from.
pub fn queue<T>() -> (mpsc::UnboundedSender<T>, Groups<T>) {
    let (send, receive) = mpsc::unbounded_channel();
    (send, Groups(receive))
}

impl<T> Groups<T> {
    /// The next group (at most `max` items, at least one), or `None` once `shutdown` is
    /// cancelled or every sender is gone.
    pub async fn next(&mut self, max: usize, shutdown: &CancellationToken) -> Option<Vec<T>> {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return None,
            next = self.0.recv() => next?,
        };
        let mut group = vec![first];
        while group.len() < max {
            match self.0.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        Some(group)
    }

    /// What is still queued, once no more is handed in.
    pub async fn rest(mut self) -> Vec<T> {
        self.0.close();
        let mut rest = Vec::new();
        while let Some(item) = self.0.recv().await {
            rest.push(item);
        }
        rest
    }
}
