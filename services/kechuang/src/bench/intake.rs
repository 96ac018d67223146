//! Demand intake: SubmitDemand over gRPC (validation, then the group commit: request id,
//! demand and outbox row in one statement) with 1, 8, 64 … clients, each on its own
//! connection; beside each level the gRPC floor and the same statement alone.

use super::Ctx;
use super::report::{Goal, Limit, Row, Section};
use demand_intake::store::{self, Written};
use demand_intake::submission::{Submission, seal};
use kechuang_platform::Role;
use kechuang_platform::ServiceKind;
use kechuang_platform::auth::authed;
use kechuang_platform::bench::drive;
use kechuang_platform::events::timestamp;
use kechuang_proto::demand::SubmitDemandRequest;
use kechuang_proto::demand::demand_service_client::DemandServiceClient;
use sqlx::{Connection, PgConnection};
use std::sync::{Arc, Mutex};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The target: intake at least half the raw INSERT+COMMIT rate.
pub const TARGET_SHARE: f64 = 0.5;

/// Who submits the bench's demands.
const SUBJECT: &str = "bench-cfo";

/// What one client sends: the data set's demands in turn, each under a fresh request id.
pub(crate) struct Submissions {
    pub requests: Vec<(SubmitDemandRequest, String)>,
}

impl Submissions {
    pub fn new(ctx: &Ctx) -> Self {
        let deadline = timestamp(chrono::Utc::now() + chrono::Duration::days(180));
        let requests = ctx
            .data
            .demands
            .iter()
            .map(|d| {
                let e = &ctx.data.enterprises[d.enterprise];
                let request = d.submission(e, String::new(), deadline);
                let token = ctx.token(Role::Enterprise, SUBJECT, Some(&e.credit_code));
                (request, token)
            })
            .collect();
        Self { requests }
    }

    /// The `i`-th submission, with `request_id`.
    pub fn get(&self, i: usize, request_id: String) -> tonic::Request<SubmitDemandRequest> {
        let (request, token) = &self.requests[i % self.requests.len()];
        authed(
            SubmitDemandRequest {
                request_id,
                ..request.clone()
            },
            token,
        )
    }
}

pub async fn measure(ctx: &Ctx, levels: &[usize], ops: usize) -> anyhow::Result<Vec<Row>> {
    let submissions = Arc::new(Submissions::new(ctx));
    let top = levels.iter().copied().max().unwrap_or(1);
    let mut channels = Vec::with_capacity(top);
    for _ in 0..top {
        channels.push(
            ctx.connect(kechuang_platform::ServiceKind::DemandIntake)
                .await?,
        );
    }
    let clients: Vec<_> = channels
        .iter()
        .cloned()
        .map(DemandServiceClient::new)
        .collect();
    let clients = Arc::new(clients);
    // Warm-up: connections, prepared statements, the first pages of the tables.
    let warm = (ops / 10).clamp(8, 200);
    run(ctx, &clients, &submissions, "warm-up", 8.min(top), warm).await;
    let mut rows = Vec::new();
    for &c in levels {
        let c = c.min(ops);
        // The floor under SubmitDemand: a gRPC call that does no work, on the same channels.
        let f = floor(ctx, &channels, c, ops).await;
        rows.push(Row::timed(Section::Intake, "Health/Check (gRPC floor)", &f));
        let f = run(ctx, &clients, &submissions, &format!("intake-{c}"), c, ops).await;
        rows.push(
            Row::timed(Section::Intake, "SubmitDemand (gRPC)", &f)
                .against(Limit::PostgresInsertCommit, c)
                .goal(Goal::ShareOfLimit(TARGET_SHARE)),
        );
        let f = statement_alone(ctx, &submissions, c, ops).await?;
        rows.push(
            Row::timed(Section::Intake, "  its statement alone (no gRPC)", &f)
                .against(Limit::PostgresInsertCommit, c),
        );
        ctx.settle("the statements' events").await?;
    }
    Ok(rows)
}

/// The database's share of a submission, measured the way the limit is: each of `concurrency`
/// clients keeps a connection to the demand database and runs SubmitDemand's own statement
/// (demand, request id, event; see `demand_intake::store::insert_submitted`) for one
/// submission at a time, sealed beforehand, with no gRPC, no group commit and no relay in
/// front of it. With one client its ratio to PG@n is the most a SubmitDemand could make of
/// that statement; with more, the group commit shares one statement between submissions,
/// which this does not.
async fn statement_alone(
    ctx: &Ctx,
    submissions: &Arc<Submissions>,
    concurrency: usize,
    ops: usize,
) -> anyhow::Result<kechuang_platform::bench::Figures> {
    let options = ctx.pool(ServiceKind::DemandIntake).connect_options();
    let mut sealed = Vec::with_capacity(ops);
    for i in 0..ops {
        let (request, _) = &submissions.requests[i % submissions.requests.len()];
        let mut submission = seal(&Submission {
            subject: SUBJECT.into(),
            request: SubmitDemandRequest {
                request_id: format!("bench-statement-{concurrency}-{i}"),
                ..request.clone()
            },
            received: chrono::Utc::now(),
        })?;
        // The service's own relay is in this process: no other relay needs waking.
        submission.event.notify = false;
        sealed.push(Some(submission));
    }
    let sealed = Arc::new(Mutex::new(sealed));
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        connections.push(PgConnection::connect_with(&options).await?);
    }
    let bank = Arc::new(Mutex::new(connections));
    let pb = ctx.bar(ops, &format!("its statement alone ×{concurrency}"));
    let tick = pb.clone();
    let (work, free) = (sealed.clone(), bank.clone());
    let figures = drive("SubmitDemand's statement", concurrency, ops, move |i| {
        let submission = work.lock().expect("sealed")[i].take();
        let (free, tick) = (free.clone(), tick.clone());
        async move {
            let submission = submission.ok_or_else(|| anyhow::anyhow!("operation {i} twice"))?;
            // At most `concurrency` operations are in flight, so one connection is free.
            let mut conn = free
                .lock()
                .expect("connections")
                .pop()
                .ok_or_else(|| anyhow::anyhow!("no free connection"))?;
            let written =
                store::insert_submitted(&mut conn, std::slice::from_ref(&submission)).await;
            free.lock().expect("connections").push(conn);
            anyhow::ensure!(written? == [Written::Yes], "submission {i} not written");
            tick.inc(1);
            anyhow::Ok(())
        }
    })
    .await;
    pb.finish_and_clear();
    // Nothing handed these events over: the relay finds their rows when woken.
    kechuang_platform::outbox::ring(demand_intake::PRODUCER);
    Ok(figures)
}

async fn floor(
    ctx: &Ctx,
    channels: &[Channel],
    concurrency: usize,
    ops: usize,
) -> kechuang_platform::bench::Figures {
    let pb = ctx.bar(ops, &format!("Health/Check ×{concurrency}"));
    let health: Arc<Vec<HealthClient<Channel>>> =
        Arc::new(channels.iter().cloned().map(HealthClient::new).collect());
    let tick = pb.clone();
    let figures = drive("Health/Check", concurrency, ops, move |i| {
        let mut client = health[i % concurrency].clone();
        let tick = tick.clone();
        async move {
            let result = client
                .check(HealthCheckRequest::default())
                .await
                .map(|_| ());
            tick.inc(1);
            result
        }
    })
    .await;
    pb.finish_and_clear();
    figures
}

async fn run(
    ctx: &Ctx,
    clients: &Arc<Vec<DemandServiceClient<Channel>>>,
    submissions: &Arc<Submissions>,
    run: &str,
    concurrency: usize,
    ops: usize,
) -> kechuang_platform::bench::Figures {
    let pb = ctx.bar(ops, &format!("SubmitDemand ×{concurrency}"));
    let (clients, submissions, tick) = (clients.clone(), submissions.clone(), pb.clone());
    let run = run.to_string();
    let figures = drive("SubmitDemand", concurrency, ops, move |i| {
        let mut client = clients[i % concurrency].clone();
        let request = submissions.get(i, format!("bench-{run}-{i}"));
        let tick = tick.clone();
        async move {
            let result = client.submit_demand(request).await.map(|_| ());
            tick.inc(1);
            result
        }
    })
    .await;
    pb.finish_and_clear();
    figures
}
