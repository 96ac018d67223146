//! One hot fund: a reservation and its post per operation, straight into the ledger's group
//! commit (no gRPC, no NATS, no subsidy service), every client on the same fund. Compared
//! with Postgres's UPDATE + COMMIT of one row at the same concurrency: the rate one row's
//! lock allows one commit at a time, which batching is there to beat.

use super::Ctx;
use super::report::{Limit, Row, Section};
use fund_ledger::domain::batch::Ask;
use fund_ledger::group_commit::GroupCommit;
use fund_ledger::ledger::{self, Answer, Request, Reserved, Resolved};
use kechuang_platform::ServiceKind;
use kechuang_platform::bench::drive;

const AMOUNT_FEN: i64 = 100;

/// `ops(c)`: the operations of the run with `c` clients.
pub async fn measure(
    ctx: &Ctx,
    levels: &[usize],
    ops: impl Fn(usize) -> usize,
) -> anyhow::Result<Vec<Row>> {
    let pool = ctx.pool(ServiceKind::FundLedger).clone();
    let funds = GroupCommit::new(pool.clone());
    let mut rows = Vec::new();
    for &c in levels {
        let ops = ops(c);
        let fund_id = format!("bench-hot-fund-{c}");
        let mut tx = pool.begin().await?;
        ledger::create_fund(&mut tx, &fund_id, "压测资金（单一热点）", 0).await?;
        let reference = format!("{fund_id}-top-up");
        ledger::top_up(&mut tx, &fund_id, AMOUNT_FEN * ops as i64, &reference).await?;
        kechuang_platform::outbox::commit(tx, ledger::PRODUCER).await?;
        let pb = ctx.bar(ops, &format!("reserve + post, one fund ×{c}"));
        let (funds, tick) = (funds.clone(), pb.clone());
        let f = drive("reserve + post, one fund", c, ops, move |i| {
            let (funds, fund_id, tick) = (funds.clone(), fund_id.clone(), tick.clone());
            async move {
                let application_id = format!("{fund_id}-app-{i}");
                reserve_and_post(&funds, &fund_id, &application_id).await?;
                tick.inc(1);
                anyhow::Ok(())
            }
        })
        .await;
        pb.finish_and_clear();
        rows.push(
            Row::timed(Section::Approval, "reserve + post, one fund", &f)
                .against(Limit::PostgresUpdateCommit, c),
        );
    }
    Ok(rows)
}

async fn reserve_and_post(
    funds: &GroupCommit,
    fund_id: &str,
    application_id: &str,
) -> anyhow::Result<()> {
    let ask = |ask| Request {
        ask,
        cause: None,
        processed: None,
    };
    let reserved = funds
        .submit(
            fund_id,
            ask(Ask::Reserve {
                application_id: application_id.into(),
                amount: AMOUNT_FEN,
            }),
        )
        .await?;
    anyhow::ensure!(
        matches!(reserved, Answer::Reserved(Reserved::Reserved { .. })),
        "{reserved:?}"
    );
    let posted = funds
        .submit(
            fund_id,
            ask(Ask::Post {
                application_id: application_id.into(),
                amount: Some(AMOUNT_FEN),
            }),
        )
        .await?;
    anyhow::ensure!(
        matches!(posted, Answer::Resolved(Resolved::Written { .. })),
        "{posted:?}"
    );
    Ok(())
}
