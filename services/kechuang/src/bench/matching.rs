//! Sky net: the catalog loaded through ImportAchievements (and its events published), then
//! VerifyDemand timed until every pairing the demand receives is on NATS
//! (`kc.pairing.proposed`): demand-intake's commit and relay, matching's consumer, the engine
//! over the whole catalog, its commit and relay.

use super::Ctx;
use super::intake::Submissions;
use super::report::{Goal, Limit, Row, Section};
use super::watch::{self, Arrivals};
use futures::{StreamExt, TryStreamExt};
use kechuang_platform::auth::authed;
use kechuang_platform::bench::drive_timed;
use kechuang_platform::{Role, ServiceKind, outbox};
use kechuang_proto::demand::VerifyDemandRequest;
use kechuang_proto::demand::demand_service_client::DemandServiceClient;
use kechuang_proto::matching::matching_service_client::MatchingServiceClient;
use kechuang_proto::matching::{ListPairingsRequest, RegisterAchievementRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The target, end to end, with the demand embedded and the catalog searched by
/// meaning as well as words.
pub const TARGET_P99: Duration = Duration::from_millis(250);
/// Records per ImportAchievements call.
const IMPORT_CALL: usize = 10_000;
/// Verifications before the measured runs.
const WARM: usize = 5;

pub async fn measure(ctx: &Ctx, levels: &[usize], ops: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = if ctx.settings.semantic_matching {
        vec![super::embedding::model_limit(ctx).await?]
    } else {
        Vec::new()
    };
    rows.extend(import(ctx).await?);
    ctx.settle("the catalog's events").await?;
    rows.extend(super::embedding::measure(ctx).await?);
    let ids = submit(ctx, WARM + levels.len() * ops).await?;
    ctx.settle("the submitted demands' events").await?;
    let subject = ctx
        .settings
        .bus()
        .subject(kechuang_proto::event_types::PAIRING_PROPOSED);
    let verifier = Arc::new(Verifier {
        demand: DemandServiceClient::new(ctx.connect(ServiceKind::DemandIntake).await?),
        matching: MatchingServiceClient::new(ctx.connect(ServiceKind::Matching).await?),
        manager: ctx.token(Role::TechManager, "bench-manager", None),
        auditor: ctx.token(Role::Auditor, "bench-auditor", None),
        arrivals: Arrivals::watch(&ctx.nats, subject, watch::pairing_demand).await?,
    });
    for id in &ids[..WARM] {
        verifier.verify(id).await?;
    }
    let mut next = WARM;
    for &c in levels {
        let c = c.min(ops);
        let batch: Arc<Vec<String>> = Arc::new(ids[next..next + ops].to_vec());
        next += ops;
        let pb = ctx.bar(ops, &format!("VerifyDemand ×{c}"));
        let (v, tick) = (verifier.clone(), pb.clone());
        let f = drive_timed("verify → pairings", c, ops, move |i| {
            let (v, batch, tick) = (v.clone(), batch.clone(), tick.clone());
            async move {
                let latency = v.verify(&batch[i]).await;
                tick.inc(1);
                latency
            }
        })
        .await;
        pb.finish_and_clear();
        rows.push(
            Row::timed(
                Section::Matching,
                "VerifyDemand → kc.pairing.proposed (all)",
                &f,
            )
            .against(Limit::PostgresInsertCommit, c)
            .goal(Goal::P99Below(TARGET_P99)),
        );
        ctx.settle("the pairings' events").await?;
    }
    Ok(rows)
}

/// Imports the data set's achievements, then waits until matching's relay has published
/// every `kc.achievement.registered`.
async fn import(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let achievements = &ctx.data.achievements;
    let supplier = ctx.token(Role::Supplier, "bench-supplier", None);
    let calls: Vec<Vec<RegisterAchievementRequest>> = achievements
        .chunks(IMPORT_CALL)
        .enumerate()
        .map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(i, a)| a.registration(format!("bench-ach-{}", c * IMPORT_CALL + i)))
                .collect()
        })
        .collect();
    let pb = ctx.bar(achievements.len(), "achievements imported");
    let started = Instant::now();
    let (mut imported, mut refused) = (0usize, 0usize);
    for records in calls {
        let sent = records.len() as u64;
        let summary = ctx
            .clients
            .catalog
            .clone()
            .import_achievements(authed(futures::stream::iter(records), &supplier))
            .await?
            .into_inner();
        imported += summary.imported_count as usize;
        refused += (summary.rejected_count + summary.duplicate_count) as usize;
        pb.inc(sent);
    }
    let imported_in = started.elapsed();
    pb.finish_and_clear();
    let spinner = super::ctx_spinner(
        &ctx.progress,
        "waiting for the catalog's events to be published",
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    while outbox::unsent_count(ctx.pool(ServiceKind::Matching)).await? > 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the catalog's events were not published within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let published_in = started.elapsed();
    spinner.finish_and_clear();
    let measure = format!("ImportAchievements ({IMPORT_CALL} a call)");
    Ok(vec![
        Row::bulk(Section::Matching, &measure, 1, imported, imported_in)
            .errors(refused)
            .against(Limit::PostgresInsertCommit, 1),
        Row::bulk(
            Section::Matching,
            "import → kc.achievement.registered (all)",
            1,
            imported,
            published_in,
        )
        .against(Limit::JetstreamPublishAck, 1),
    ])
}

/// Submits `n` demands (untimed) and returns their ids in order.
async fn submit(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<String>> {
    let submissions = Submissions::new(ctx);
    let pb = ctx.bar(n, "demands submitted");
    let client = ctx.clients.demand.clone();
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|i| {
            let mut client = client.clone();
            let request = submissions.get(i, format!("bench-matching-{i}"));
            let pb = pb.clone();
            async move {
                let demand = client.submit_demand(request).await?.into_inner();
                pb.inc(1);
                anyhow::Ok(demand.id)
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    pb.finish_and_clear();
    Ok(ids)
}

struct Verifier {
    demand: DemandServiceClient<Channel>,
    matching: MatchingServiceClient<Channel>,
    manager: String,
    auditor: String,
    arrivals: Arc<Arrivals>,
}

impl Verifier {
    /// Verifies the demand; the time until its last pairing reached NATS.
    async fn verify(&self, id: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let request = VerifyDemandRequest {
            demand_id: id.into(),
            approve: true,
            note: "bench".into(),
        };
        self.demand
            .clone()
            .verify_demand(authed(request, &self.manager))
            .await?;
        if self
            .arrivals
            .nth(id, 1, Duration::from_secs(120))
            .await
            .is_err()
        {
            anyhow::bail!("no pairing for demand {id} within 120 s");
        }
        // One transaction stored them all, and the relay publishes them back to back.
        let top_k = matching::DEFAULT_TOP_K;
        let last = match self.arrivals.nth(id, top_k, Duration::from_secs(2)).await {
            Ok(at) => at,
            Err(_) => {
                // Fewer than k: the stored pairings say how many to expect.
                let stored = self.stored_pairings(id).await?;
                self.arrivals
                    .nth(id, stored, Duration::from_secs(10))
                    .await
                    .map_err(|seen| {
                        anyhow::anyhow!("{seen} of the {stored} pairings of {id} on NATS")
                    })?
            }
        };
        Ok(last.duration_since(started))
    }

    async fn stored_pairings(&self, id: &str) -> anyhow::Result<usize> {
        let request = ListPairingsRequest {
            demand_id: id.into(),
            page_size: 100,
            page_token: String::new(),
        };
        let page = self
            .matching
            .clone()
            .list_pairings(authed(request, &self.auditor))
            .await?
            .into_inner();
        Ok(page.pairings.len())
    }
}
