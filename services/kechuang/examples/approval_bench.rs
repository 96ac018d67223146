//! Approval → disbursement, measured through the real platform (run by hand):
//! `cargo run --release -p kechuang --example approval_bench [applications]`.
//!
//! Starts the four services in-process with a private stream and databases, the simulated
//! bank at zero latency, signs contracts (as `kc.contract.signed` events), records one payment
//! per contract, then approves the applications with 1, 8 and 64 concurrent approvers and
//! times each approval until its `kc.fund.posted` reaches the bus.

use futures::StreamExt;
use kechuang::Platform;
use kechuang_platform::auth::{Authenticator, Caller, Role};
use kechuang_platform::bench::{Figures, drive, percentile};
use kechuang_platform::events::timestamp;
use kechuang_platform::testing::{authed, cleanup, isolated_settings};
use kechuang_platform::{NewEvent, ServiceKind};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::{ContractSigned, Envelope, envelope::Payload};
use kechuang_proto::fund::{TopUpRequest, fund_service_client::FundServiceClient};
use kechuang_proto::subsidy::{
    ApproveApplicationRequest, RecordPaymentRequest, subsidy_service_client::SubsidyServiceClient,
};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const YUAN: i64 = 100;

fn token(auth: &Authenticator, role: Role, subject: &str, enterprise: Option<&str>) -> String {
    let caller = Caller {
        role,
        subject: subject.into(),
        enterprise_id: enterprise.map(String::from),
    };
    auth.mint(&caller, Duration::from_secs(3600))
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let per_round: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let mut settings = isolated_settings();
    settings.payout_latency_ms = 0;
    settings.database_max_connections = 32;
    let platform = Platform::start(&settings).await?;
    let subsidy_addr = platform.address(ServiceKind::Subsidy);
    let fund_addr = platform.address(ServiceKind::FundLedger);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(platform.run_until_stopped(shutdown.clone()));
    let auth = Authenticator::new(&settings.jwt_secret);
    let bus = settings.bus();
    let nats = async_nats::connect(&settings.nats_url).await?;
    let js = async_nats::jetstream::new(nats.clone());

    // Every kc.fund.posted, timestamped on arrival.
    let posted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut sub = nats.subscribe(bus.subject("fund.posted")).await?;
    let seen = posted.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Ok(Envelope {
                payload: Some(Payload::FundPosted(p)),
                ..
            }) = Envelope::decode(m.payload)
            {
                seen.lock()
                    .expect("posted")
                    .insert(p.application_id, Instant::now());
            }
        }
    });

    let subsidy = SubsidyServiceClient::new(connect(subsidy_addr).await?);
    let mut fund = FundServiceClient::new(connect(fund_addr).await?);
    let officer = token(&auth, Role::FinanceOfficer, "bench-officer", None);
    let request = TopUpRequest {
        fund_id: "fund-default".into(),
        amount_fen: 100_000_000 * YUAN,
        reference: "BENCH-TOPUP".into(),
    };
    fund.top_up(authed(request, &officer)).await?;

    println!("{}", Figures::header());
    for concurrency in [1usize, 8, 64] {
        // Contracts, then one payment each: 500,000 yuan paid, 50,000 yuan subsidy (one approver).
        let mut applications = Vec::with_capacity(per_round);
        for i in 0..per_round {
            let enterprise = format!("bench-{concurrency}-{i}");
            let contract_id = format!("c-{enterprise}");
            let event = NewEvent::new(
                &contract_id,
                1,
                Payload::ContractSigned(ContractSigned {
                    contract_id: contract_id.clone(),
                    demand_id: format!("d-{enterprise}"),
                    enterprise_id: enterprise.clone(),
                    contract_type: ContractType::Transfer as i32,
                    amount_fen: 1_000_000 * YUAN,
                    signed_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::days(2))),
                    region_code: "420100".into(),
                    industry_chain: "高端装备".into(),
                    ..Default::default()
                }),
            )
            .into_envelope("bench", chrono::Utc::now());
            js.publish(bus.subject("contract.signed"), event.encode_to_vec().into())
                .await?
                .await?;
            applications.push((enterprise, contract_id));
        }
        let mut ids = Vec::with_capacity(per_round);
        for (enterprise, contract_id) in &applications {
            let t = token(&auth, Role::Enterprise, "bench-cfo", Some(enterprise));
            let request = RecordPaymentRequest {
                contract_id: contract_id.clone(),
                amount_fen: 500_000 * YUAN,
                paid_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::hours(1))),
                bank_reference: format!("BENCH-{enterprise}"),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            let payment = loop {
                match subsidy
                    .clone()
                    .record_payment(authed(request.clone(), &t))
                    .await
                {
                    Ok(p) => break p.into_inner(),
                    Err(s) if s.code() == tonic::Code::NotFound && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(s) => return Err(s.into()),
                }
            };
            ids.push(payment.application_id);
        }
        let approver = token(&auth, Role::FinanceApprover, "bench-approver", None);
        let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let (client, ids_shared, marks) = (subsidy.clone(), Arc::new(ids.clone()), started.clone());
        let approvals = drive("approve (gRPC)", concurrency, per_round, move |i| {
            let (mut c, id, t, marks) = (
                client.clone(),
                ids_shared[i].clone(),
                approver.clone(),
                marks.clone(),
            );
            async move {
                marks
                    .lock()
                    .expect("marks")
                    .insert(id.clone(), Instant::now());
                c.approve_application(authed(
                    ApproveApplicationRequest {
                        id,
                        note: String::new(),
                    },
                    &t,
                ))
                .await
                .map(|_| ())
            }
        })
        .await;
        let round_start = Instant::now() - approvals.elapsed;
        let deadline = Instant::now() + Duration::from_secs(120);
        while ids
            .iter()
            .any(|id| !posted.lock().expect("posted").contains_key(id))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (marks, done) = (
            started.lock().expect("marks").clone(),
            posted.lock().expect("posted").clone(),
        );
        let mut latencies: Vec<Duration> = ids
            .iter()
            .filter_map(|id| Some(done.get(id)?.duration_since(*marks.get(id)?)))
            .collect();
        let last = ids
            .iter()
            .filter_map(|id| done.get(id))
            .max()
            .copied()
            .unwrap_or_else(Instant::now);
        let settled = Figures {
            label: "approval → kc.fund.posted".into(),
            concurrency,
            operations: latencies.len(),
            errors: per_round - latencies.len(),
            elapsed: last.duration_since(round_start),
            p50: percentile(&mut latencies, 0.50),
            p99: percentile(&mut latencies, 0.99),
        };
        println!("{}", approvals.row());
        println!("{}", settled.row());
    }
    shutdown.cancel();
    running.await??;
    cleanup(&settings).await;
    Ok(())
}
