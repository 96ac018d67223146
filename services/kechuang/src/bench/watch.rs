//! When events reach the bus: a plain NATS subscription to one subject (it sees what the relays
//! publish to JetStream the moment the server has it), each message timestamped on arrival and
//! filed under a key taken from its payload (the demand, the application).

use futures::StreamExt;
use kechuang_proto::events::{Envelope, envelope::Payload};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Arrivals {
    seen: Mutex<HashMap<String, Seen>>,
}

/// One key's arrivals, and who waits for them: an arrival wakes the waiters of its own key
/// only (64 callers waiting on one bell would all wake at every arrival, on the cores the
/// platform is being measured on).
#[derive(Default)]
struct Seen {
    at: Vec<Instant>,
    waiters: Arc<Notify>,
}

impl Arrivals {
    /// Subscribes to `subject` and keeps listening until the connection closes.
    pub async fn watch(
        nats: &async_nats::Client,
        subject: String,
        key: fn(&Payload) -> Option<&str>,
    ) -> anyhow::Result<Arc<Self>> {
        let arrivals = Arc::new(Self::default());
        let mut messages = nats.subscribe(subject).await?;
        // The server knows of the subscription before anything it should see is published.
        nats.flush().await?;
        let filed = arrivals.clone();
        tokio::spawn(async move {
            while let Some(m) = messages.next().await {
                let at = Instant::now();
                let Ok(Envelope {
                    payload: Some(payload),
                    ..
                }) = Envelope::decode(m.payload)
                else {
                    continue;
                };
                if let Some(k) = key(&payload) {
                    filed.record(k, at);
                }
            }
        });
        Ok(arrivals)
    }

    fn record(&self, key: &str, at: Instant) {
        let mut seen = self.seen.lock().expect("arrivals");
        let seen = seen.entry(key.to_string()).or_default();
        seen.at.push(at);
        seen.waiters.notify_waiters();
    }

    /// When the `n`-th message for `key` arrived, waiting at most `limit` for it; otherwise how
    /// many had arrived.
    pub async fn nth(&self, key: &str, n: usize, limit: Duration) -> Result<Instant, usize> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (count, waiters) = {
                let mut seen = self.seen.lock().expect("arrivals");
                let seen = seen.entry(key.to_string()).or_default();
                if seen.at.len() >= n.max(1) {
                    return Ok(seen.at[n.max(1) - 1]);
                }
                (seen.at.len(), seen.waiters.clone())
            };
            let notified = waiters.notified();
            tokio::pin!(notified);
            // Registered before looking again, so an arrival in between still wakes us.
            notified.as_mut().enable();
            let arrived = {
                let seen = self.seen.lock().expect("arrivals");
                seen.get(key).map_or(0, |s| s.at.len())
            };
            if arrived > count {
                continue;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(count);
            }
        }
    }
}

/// `kc.pairing.proposed`, filed by demand.
pub fn pairing_demand(payload: &Payload) -> Option<&str> {
    match payload {
        Payload::PairingProposed(p) => Some(&p.demand_id),
        _ => None,
    }
}

/// `kc.fund.posted`, filed by application.
pub fn posted_application(payload: &Payload) -> Option<&str> {
    match payload {
        Payload::FundPosted(p) => Some(&p.application_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nth_waits_for_the_nth_arrival_of_its_key() {
        let arrivals = Arc::new(Arrivals::default());
        let a = arrivals.clone();
        let waiter = tokio::spawn(async move { a.nth("d1", 2, Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let first = Instant::now();
        arrivals.record("d1", first);
        arrivals.record("d2", Instant::now());
        let second = Instant::now();
        arrivals.record("d1", second);
        assert_eq!(waiter.await.unwrap(), Ok(second));
        assert_eq!(
            arrivals.nth("d2", 3, Duration::from_millis(20)).await,
            Err(1)
        );
        assert_eq!(arrivals.nth("d9", 1, Duration::ZERO).await, Err(0));
    }
}
