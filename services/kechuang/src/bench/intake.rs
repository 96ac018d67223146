//! Demand intake: SubmitDemand over gRPC (validation, idempotency key, demand row, history and
//! outbox in one transaction) with 1, 8, 64 … clients, each on its own connection.

use super::Ctx;
use super::report::{Goal, Limit, Row, Section};
use kechuang_platform::Role;
use kechuang_platform::auth::authed;
use kechuang_platform::bench::drive;
use kechuang_platform::events::timestamp;
use kechuang_proto::demand::SubmitDemandRequest;
use kechuang_proto::demand::demand_service_client::DemandServiceClient;
use std::sync::Arc;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The target: intake at least half the raw INSERT+COMMIT rate.
pub const TARGET_SHARE: f64 = 0.5;

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
                let token = ctx.token(Role::Enterprise, "bench-cfo", Some(&e.credit_code));
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
    }
    Ok(rows)
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
