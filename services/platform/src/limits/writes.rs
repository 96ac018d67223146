//! The per-caller write rate: a token bucket per caller (governor's GCRA), and which RPCs are
//! writes.

use crate::auth::Caller;
use crate::config::WriteRate;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Checks between two sweeps of callers whose bucket is full again (their state is dropped,
/// so the map holds only callers active in the last `burst / per_second` seconds or so).
const SWEEP_EVERY: u64 = 4096;

/// Per-key token buckets: `per_second` sustained, `burst` at once.
pub struct WriteLimiter<K: Hash + Eq + Clone = Caller> {
    limiter: DefaultKeyedRateLimiter<K>,
    rate: WriteRate,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> WriteLimiter<K> {
    /// `None` when the rate is 0 (no limit).
    pub fn new(rate: WriteRate) -> Option<Self> {
        let per_second = NonZeroU32::new(rate.per_second)?;
        let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
        Some(Self {
            limiter: governor::RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            rate,
            checks: AtomicU64::new(0),
        })
    }

    /// Takes one write from `key`'s bucket; when it is empty, how long until the next.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// The refusal's message, the same from every server.
    pub fn message(&self, wait: Duration) -> String {
        format!(
            "write rate limit: at most {} writes a second per caller (bursts of {}); retry in {} ms",
            self.rate.per_second,
            self.rate.burst,
            wait.as_millis().max(1)
        )
    }

    pub fn rate(&self) -> WriteRate {
        self.rate
    }
}

/// Whether the gRPC method at `path` (`/package.Service/Method`) is a write, counted against
/// the caller's write rate. Every method is a write except:
/// - those named `Get*`, `List*` or `Watch*`, `VerifyAuditTrail` (checks the trail, changes
///   nothing) and `Reconcile` (the ledger's read-only check);
/// - everything of `grpc.health.v1.Health` and of server reflection.
///
/// So a new RPC is a write unless its name says it reads: a forgotten read is limited, never
/// a forgotten write unlimited. `VerifyDemand` is a write (it changes the demand).
pub fn is_write_rpc(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (service, method) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.") {
        return false;
    }
    let reads = ["Get", "List", "Watch"];
    let named_reads = ["VerifyAuditTrail", "Reconcile"];
    !(reads.iter().any(|p| method.starts_with(p)) || named_reads.contains(&method))
}

/// The delay a RESOURCE_EXHAUSTED status asks for in its `google.rpc.RetryInfo`, if any.
pub fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    use tonic_types::StatusExt;
    status.get_details_retry_info()?.retry_delay
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platforms_writes_and_reads() {
        let writes = [
            "/kechuang.demand.v1.DemandService/RegisterEnterprise",
            "/kechuang.demand.v1.DemandService/SubmitDemand",
            "/kechuang.demand.v1.DemandService/VerifyDemand",
            "/kechuang.demand.v1.DemandService/WithdrawDemand",
            "/kechuang.fund.v1.FundService/CreateFund",
            "/kechuang.fund.v1.FundService/TopUp",
            "/kechuang.matching.v1.CatalogService/RegisterAchievement",
            "/kechuang.matching.v1.CatalogService/ImportAchievements",
            "/kechuang.matching.v1.CatalogService/WithdrawAchievement",
            "/kechuang.matching.v1.MatchingService/RespondToPairing",
            "/kechuang.matching.v1.MatchingService/SignContract",
            "/kechuang.subsidy.v1.SubsidyService/CreatePolicy",
            "/kechuang.subsidy.v1.SubsidyService/RecordPayment",
            "/kechuang.subsidy.v1.SubsidyService/ApproveApplication",
            "/kechuang.subsidy.v1.SubsidyService/RejectApplication",
        ];
        let reads = [
            "/kechuang.demand.v1.DemandService/GetEnterprise",
            "/kechuang.demand.v1.DemandService/ListDemands",
            "/kechuang.fund.v1.FundService/Reconcile",
            "/kechuang.matching.v1.MatchingService/WatchPairings",
            "/kechuang.matching.v1.MatchingService/GetPairingOutcomes",
            "/kechuang.subsidy.v1.SubsidyService/VerifyAuditTrail",
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ];
        for w in writes {
            assert!(is_write_rpc(w), "{w} is a write");
        }
        for r in reads {
            assert!(!is_write_rpc(r), "{r} is a read");
        }
    }

    #[test]
    fn a_caller_gets_its_burst_then_waits_and_others_are_unaffected() {
        let limiter = WriteLimiter::<&str>::new(WriteRate {
            per_second: 1,
            burst: 3,
        })
        .unwrap();
        for _ in 0..3 {
            assert!(limiter.check(&"a").is_ok());
        }
        let wait = limiter.check(&"a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limiter.message(wait).contains("1 writes a second"));
        assert!(limiter.check(&"b").is_ok());
        assert!(
            WriteLimiter::<&str>::new(WriteRate {
                per_second: 0,
                burst: 5
            })
            .is_none()
        );
    }
}
