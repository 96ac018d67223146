//! Support for the end-to-end tests: the platform in one process ([`TestPlatform`]) or as
//! replica processes ([`Cluster`]), clients that spread calls over replicas ([`Api`]), the
//! journey of one demand through DESIGN.md's flow ([`journey`]) and the books it must leave
//! ([`books`]).

mod api;
pub mod books;
mod cluster;
pub mod forger;
pub mod journey;
mod platform;
pub mod prometheus;

pub use api::Api;
pub use cluster::{Applied, Cluster};
pub use kechuang_platform::testing::{authed, isolated_settings as settings, wait_for};
pub use platform::TestPlatform;

use kechuang_platform::Settings;

/// Amounts in the tests are written in yuan; money is fen.
pub const YUAN: i64 = 100;

/// Drops a test's databases and stream from a destructor, which may run inside the test's
/// runtime (while a failed test unwinds): on a thread with a runtime of its own.
fn cleanup_from_drop(settings: &Settings) {
    let settings = settings.clone();
    let cleaned = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(kechuang_platform::testing::cleanup(&settings));
    })
    .join();
    if cleaned.is_err() {
        eprintln!("could not drop the test's databases and stream");
    }
}
