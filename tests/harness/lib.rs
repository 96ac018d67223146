//! Support for the end-to-end tests: the platform in one process ([`TestPlatform`]), clients
//! that spread calls over replicas ([`Api`]), the journey of one demand through DESIGN.md's flow ([`journey`]) and the books it must leave
//! ([`books`]).

mod api;
pub mod books;
pub mod journey;
mod platform;

pub use api::Api;
pub use kechuang_platform::testing::{authed, isolated_settings as settings};
pub use platform::TestPlatform;

use std::future::Future;
use std::time::{Duration, Instant};

/// Amounts in the tests are written in yuan; money is fen.
pub const YUAN: i64 = 100;

/// Polls `probe` every 50 ms until it answers; panics naming `what` after 60 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
