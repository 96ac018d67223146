//! Finance net: ApproveApplication timed until the ledger's `kc.fund.posted` is on NATS, the
//! whole saga (approval, reservation, payout through the simulated bank at zero latency,
//! post), each hop a commit, a relay and a consumer.
//!
//! Set-up, untimed: contracts arrive as `kc.contract.signed` events (as the sky net would
//! send them), each enterprise records one payment of 500,000 yuan, which makes an
//! application of 50,000 yuan (one approver), and the fund is topped up to pay them all.

use super::Ctx;
use super::report::{Goal, Limit, Row, Section};
use super::watch::{self, Arrivals};
use futures::{StreamExt, TryStreamExt};
use kechuang_platform::auth::authed;
use kechuang_platform::bench::{Figures, drive_timed, percentile};
use kechuang_platform::events::timestamp;
use kechuang_platform::{NewEvent, Role, ServiceKind};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::{ContractSigned, envelope::Payload};
use kechuang_proto::fund::TopUpRequest;
use kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient;
use kechuang_proto::subsidy::{
    ApproveApplicationRequest, CertifyContractRequest, RecordPaymentRequest,
};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The target, with the simulated bank at zero latency.
pub const TARGET_P99: Duration = Duration::from_millis(200);
const YUAN: i64 = 100;
const PAID_FEN: i64 = 500_000 * YUAN;
const SUBSIDY_FEN: i64 = PAID_FEN / 10;
const WARM: usize = 5;
/// Issue 22's rate, asked of 64 approvers and more (fewer, in a closed loop, cannot reach it:
/// 8 approvers at 600 a second would each need a saga every 13 ms).
pub const TARGET_PER_SECOND: f64 = 600.0;
const RATE_FROM: usize = 64;

/// What a run with `approvers` is held to.
fn goal(approvers: usize) -> Goal {
    if approvers >= RATE_FROM {
        Goal::P99BelowAtRate(TARGET_P99, TARGET_PER_SECOND)
    } else {
        Goal::P99Below(TARGET_P99)
    }
}

/// `ops(c)`: the approvals of the run with `c` approvers.
pub async fn measure(
    ctx: &Ctx,
    levels: &[usize],
    ops: impl Fn(usize) -> usize,
) -> anyhow::Result<Vec<Row>> {
    let total = WARM + levels.iter().map(|&c| ops(c)).sum::<usize>();
    let officer = ctx.token(Role::FinanceOfficer, "bench-officer", None);
    let top_up = TopUpRequest {
        fund_id: kechuang_vocabulary::DEFAULT_FUND_ID.into(),
        amount_fen: SUBSIDY_FEN * total as i64,
        reference: "BENCH-TOPUP".into(),
    };
    ctx.clients
        .fund
        .clone()
        .top_up(authed(top_up, &officer))
        .await?;
    let applications = applications(ctx, total).await?;
    ctx.settle("the applications' events").await?;
    let subject = ctx
        .settings
        .bus()
        .subject(kechuang_proto::event_types::FUND_POSTED);
    // One subscription to `kc.fund.posted` times the saga and its last hop alike.
    let posted = Arrivals::watch(&ctx.nats, subject, watch::posted_application).await?;
    let hops = Hops::watch(ctx, posted.clone()).await?;
    let approver = Arc::new(Approver {
        subsidy: SubsidyServiceClient::new(ctx.connect(ServiceKind::Subsidy).await?),
        token: ctx.token(Role::FinanceApprover, "bench-approver", None),
        arrivals: posted,
        answered: Mutex::default(),
    });
    for id in &applications[..WARM] {
        approver.approve(id).await?;
    }
    approver.answered.lock().expect("answered").clear();
    let mut rows = Vec::new();
    let mut next = WARM;
    for &c in levels {
        let ops = ops(c);
        let c = c.min(ops);
        let batch: Arc<Vec<String>> = Arc::new(applications[next..next + ops].to_vec());
        next += ops;
        let pb = ctx.bar(ops, &format!("ApproveApplication ×{c}"));
        let (a, tick) = (approver.clone(), pb.clone());
        let f = drive_timed("approval → posted", c, ops, move |i| {
            let (a, batch, tick) = (a.clone(), batch.clone(), tick.clone());
            async move {
                let latency = a.approve(&batch[i]).await;
                tick.inc(1);
                latency
            }
        })
        .await;
        pb.finish_and_clear();
        rows.push(
            Row::timed(Section::Approval, "ApproveApplication → kc.fund.posted", &f)
                .against(Limit::PostgresInsertCommit, c)
                .goal(goal(c)),
        );
        let answered = std::mem::take(&mut *approver.answered.lock().expect("answered"));
        rows.extend(hops.rows(&f, &answered).await);
        ctx.settle("the saga's events").await?;
    }
    Ok(rows)
}

/// `n` applications pending review, one per enterprise and contract.
async fn applications(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<String>> {
    let bus = ctx.settings.bus();
    let signed_at = timestamp(chrono::Utc::now() - chrono::Duration::days(2));
    let contracts: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("bench-enterprise-{i}"),
                format!("bench-contract-{i}"),
            )
        })
        .collect();
    // Signed with the sky net's key, as its relay would: the finance net acts on nothing else.
    let matching = kechuang_platform::testing::event_keys_of(&ctx.settings, "matching").signer();
    let pb = ctx.bar(n, "contracts signed");
    for (enterprise, contract_id) in &contracts {
        let event = NewEvent::new(
            contract_id,
            1,
            Payload::ContractSigned(ContractSigned {
                contract_id: contract_id.clone(),
                demand_id: format!("bench-demand-{enterprise}"),
                enterprise_id: enterprise.clone(),
                contract_type: ContractType::Transfer as i32,
                amount_fen: 2 * PAID_FEN,
                signed_at: Some(signed_at),
                region_code: "420100".into(),
                industry_chain: "高端装备".into(),
                ..Default::default()
            }),
        )
        .into_envelope("matching", chrono::Utc::now());
        let body = event.encode_to_vec();
        let headers = kechuang_platform::testing::sealed_headers(&matching, &body);
        ctx.js
            .publish_with_headers(
                bus.subject(kechuang_proto::event_types::CONTRACT_SIGNED),
                headers,
                body.into(),
            )
            .await?
            .await?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    // The registrar certifies each contract whole, so its payment is judged at once (the
    // seeded policy subsidises registered contracts only).
    let pb = ctx.bar(n, "contracts certified");
    let registrations = ctx.clients.registrations.clone();
    futures::stream::iter(contracts.iter().cloned().enumerate())
        .map(|(i, (_, contract_id))| {
            // One registrar each: the write rate is per caller.
            let token = ctx.token(Role::Registrar, &format!("bench-registrar-{i}"), None);
            let request = CertifyContractRequest {
                contract_id,
                registration_no: format!("BENCH-REG-{i:06}"),
                contract_type: ContractType::Transfer as i32,
                certified_amount_fen: 2 * PAID_FEN,
                note: String::new(),
            };
            let (registrations, pb) = (registrations.clone(), pb.clone());
            async move {
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    match registrations
                        .clone()
                        .certify_contract(authed(request.clone(), &token))
                        .await
                    {
                        Ok(_) => {
                            pb.inc(1);
                            return anyhow::Ok(());
                        }
                        // Not arrived yet, or the database busy on a loaded machine.
                        Err(s)
                            if matches!(
                                s.code(),
                                tonic::Code::NotFound | tonic::Code::Unavailable
                            ) && Instant::now() < deadline =>
                        {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(s) => return Err(s.into()),
                    }
                }
            }
        })
        // Each certification writes the audit chain, one at a time: more in flight would
        // only hold connections waiting for it.
        .buffered(4)
        .try_collect::<Vec<()>>()
        .await?;
    pb.finish_and_clear();
    let pb = ctx.bar(n, "payments recorded");
    let paid_at = timestamp(chrono::Utc::now() - chrono::Duration::hours(1));
    let subsidy = ctx.clients.subsidy.clone();
    let ids = futures::stream::iter(contracts)
        .map(|(enterprise, contract_id)| {
            let token = ctx.token(Role::Enterprise, "bench-cfo", Some(&enterprise));
            let request = RecordPaymentRequest {
                contract_id,
                amount_fen: PAID_FEN,
                paid_at: Some(paid_at),
                bank_reference: format!("BENCH-{enterprise}"),
            };
            let (subsidy, pb) = (subsidy.clone(), pb.clone());
            async move {
                // The contract may not have reached the finance net yet.
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    match subsidy
                        .clone()
                        .record_payment(authed(request.clone(), &token))
                        .await
                    {
                        Ok(payment) => {
                            pb.inc(1);
                            return anyhow::Ok(payment.into_inner().application_id);
                        }
                        Err(s)
                            if s.code() == tonic::Code::NotFound && Instant::now() < deadline =>
                        {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(s) => return Err(s.into()),
                    }
                }
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    pb.finish_and_clear();
    Ok(ids)
}

struct Approver {
    subsidy: SubsidyServiceClient<Channel>,
    token: String,
    arrivals: Arc<Arrivals>,
    /// Per application: when the call started and when it was answered.
    answered: Mutex<HashMap<String, (Instant, Instant)>>,
}

impl Approver {
    /// Approves the application; the time until its `kc.fund.posted` reached NATS.
    async fn approve(&self, id: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let request = ApproveApplicationRequest {
            id: id.into(),
            note: String::new(),
        };
        self.subsidy
            .clone()
            .approve_application(authed(request, &self.token))
            .await?;
        self.answered
            .lock()
            .expect("answered")
            .insert(id.to_string(), (started, Instant::now()));
        let posted = self
            .arrivals
            .nth(id, 1, Duration::from_secs(120))
            .await
            .map_err(|_| anyhow::anyhow!("application {id} not posted within 120 s"))?;
        Ok(posted.duration_since(started))
    }
}

/// The saga hop by hop: when each application's events reached the bus, so that a run's
/// latency can be split into the call, the approval's relay, the ledger's reservation, the
/// payout and the post (each row's rate is its run's).
struct Hops {
    approved: Arc<Arrivals>,
    reserved: Arc<Arrivals>,
    disbursed: Arc<Arrivals>,
    posted: Arc<Arrivals>,
}

impl Hops {
    async fn watch(ctx: &Ctx, posted: Arc<Arrivals>) -> anyhow::Result<Self> {
        use kechuang_proto::event_types as t;
        let bus = ctx.settings.bus();
        let on = |event_type: &str| bus.subject(event_type);
        Ok(Self {
            approved: Arrivals::watch(&ctx.nats, on(t::SUBSIDY_APPROVED), approved).await?,
            reserved: Arrivals::watch(&ctx.nats, on(t::FUND_RESERVED), reserved).await?,
            disbursed: Arrivals::watch(&ctx.nats, on(t::SUBSIDY_DISBURSED), disbursed).await?,
            posted,
        })
    }

    /// One row per hop of `run`'s applications.
    async fn rows(
        &self,
        run: &Figures,
        answered: &HashMap<String, (Instant, Instant)>,
    ) -> Vec<Row> {
        const HOPS: [&str; 5] = [
            "  hop: ApproveApplication answered",
            "  hop: → kc.subsidy.approved (relay)",
            "  hop: → kc.fund.reserved (ledger)",
            "  hop: → kc.subsidy.disbursed (payout)",
            "  hop: → kc.fund.posted (ledger)",
        ];
        let mut hops: [Vec<Duration>; 5] = Default::default();
        for (id, (started, answer)) in answered {
            let mut at = vec![*started, *answer];
            for arrivals in [
                &self.approved,
                &self.reserved,
                &self.disbursed,
                &self.posted,
            ] {
                match arrivals.nth(id, 1, Duration::from_secs(5)).await {
                    Ok(seen) => at.push(seen),
                    Err(_) => break,
                }
            }
            // The relay may publish before the answer reaches the caller: that hop counts 0.
            for (i, pair) in at.windows(2).enumerate() {
                hops[i].push(pair[1].saturating_duration_since(pair[0]));
            }
        }
        HOPS.iter()
            .zip(hops.iter_mut())
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(measure, samples)| {
                let figures = Figures {
                    label: measure.to_string(),
                    operations: samples.len(),
                    p50: percentile(samples, 0.50),
                    p99: percentile(samples, 0.99),
                    errors: 0,
                    ..run.clone()
                };
                Row::timed(Section::Approval, measure, &figures)
            })
            .collect()
    }
}

fn approved(payload: &Payload) -> Option<&str> {
    match payload {
        Payload::SubsidyApproved(a) => Some(&a.application_id),
        _ => None,
    }
}

fn reserved(payload: &Payload) -> Option<&str> {
    match payload {
        Payload::FundReserved(r) => Some(&r.application_id),
        _ => None,
    }
}

fn disbursed(payload: &Payload) -> Option<&str> {
    match payload {
        Payload::SubsidyDisbursed(d) => Some(&d.application_id),
        _ => None,
    }
}
