//! One demand, end to end, through the four real services in one process: DESIGN.md's flow,
//! then the books: the fund exact to the fen, every event handled once by each consumer of
//! it, and rows counting exactly what the flow implies.

use kechuang_e2e::books::Books;
use kechuang_e2e::journey::welding::{self, SUBSIDY_FEN};
use kechuang_e2e::journey::{audit_once_settled, top_up};
use kechuang_e2e::{TestPlatform, YUAN, settings};

const PAIRINGS: usize = 2;
const TOP_UP_FEN: i64 = 1_000_000 * YUAN;

#[tokio::test]
async fn one_demand_from_submission_to_subsidy() {
    let platform = TestPlatform::start_with(kechuang_platform::Settings {
        pairings_per_demand: PAIRINGS,
        ..settings()
    })
    .await;
    let api = platform.api();
    top_up(&api, TOP_UP_FEN, "财预〔2026〕1号").await;
    welding::publish_catalog(&api).await;

    let contracted = welding::to_contract(&api, "WELD00001").await;
    welding::to_subsidy(&contracted).await;

    let (fund, violations) = audit_once_settled(&api, |f| {
        f.reserved_fen == 0 && f.disbursed_fen == SUBSIDY_FEN
    })
    .await;
    assert_eq!(fund.available_fen, TOP_UP_FEN - SUBSIDY_FEN);
    assert_eq!(fund.total_fen, TOP_UP_FEN);
    assert!(violations.is_empty(), "{violations:?}");

    let books = Books::open(&platform.settings).await;
    books.exactly_once().await;
    assert_eq!(
        books.tally().await,
        welding::tally(1, PAIRINGS as i64, TOP_UP_FEN)
    );
    books.close().await;
    platform.stop().await;
}
