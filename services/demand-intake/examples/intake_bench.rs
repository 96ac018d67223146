//! SubmitDemand over gRPC (the real service: validation, idempotency key, demand row, history,
//! outbox, with the relay publishing to NATS) beside the same Postgres's single-row
//! INSERT+COMMIT rate, measured in the same run.
//!
//! `cargo run --release -p demand-intake --example intake_bench` (BENCH_OPS scales the run).

use chrono::{Duration, Utc};
use kechuang_platform::bench::{Figures, drive, postgres_insert_commit};
use kechuang_platform::events::timestamp;
use kechuang_platform::testing::{TestService, authed, isolated_settings};
use kechuang_platform::vocabulary::credit_code_check_char;
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::common::ContractType;
use kechuang_proto::demand::demand_service_client::DemandServiceClient;
use kechuang_proto::demand::{
    GetEnterpriseRequest, RegisterEnterpriseRequest, SubmitDemandRequest,
};
use std::sync::Arc;
use tonic::transport::Channel;

const ENTERPRISES: usize = 64;
const CHANNELS: usize = 8;

fn credit_code(n: usize) -> String {
    let body = format!("91420100{n:09}");
    let check = credit_code_check_char(&body).expect("digits");
    format!("{body}{check}")
}

fn submission(enterprise_id: &str, request_id: String) -> SubmitDemandRequest {
    SubmitDemandRequest {
        request_id,
        enterprise_id: enterprise_id.into(),
        title: "焊缝气孔导致返修率高".into(),
        description: "厚板焊接时焊缝经常出现气孔，返修率高达百分之八，希望找到能稳定焊接质量的工艺"
            .into(),
        industry_chain: "高端装备".into(),
        contract_type: ContractType::Development as i32,
        budget_min_fen: 10_000_000,
        budget_max_fen: 50_000_000,
        region_code: "420100".into(),
        deadline: Some(timestamp(Utc::now() + Duration::days(90))),
    }
}

struct Clients {
    channels: Vec<DemandServiceClient<Channel>>,
    enterprises: Vec<(String, String)>,
}

async fn submit_run(clients: Arc<Clients>, label: &str, concurrency: usize, ops: usize) -> Figures {
    let run = uuid::Uuid::new_v4().simple().to_string();
    drive(label, concurrency, ops, move |i| {
        let clients = clients.clone();
        let run = run.clone();
        async move {
            let mut client = clients.channels[i % CHANNELS].clone();
            let (id, token) = &clients.enterprises[i % ENTERPRISES];
            client
                .submit_demand(authed(submission(id, format!("{run}-{i}")), token))
                .await
                .map(|_| ())
        }
    })
    .await
}

/// The gRPC and auth overhead alone: one indexed read per call.
async fn read_run(clients: Arc<Clients>, concurrency: usize, ops: usize) -> Figures {
    drive(
        "GetEnterprise over gRPC (read)",
        concurrency,
        ops,
        move |i| {
            let clients = clients.clone();
            async move {
                let mut client = clients.channels[i % CHANNELS].clone();
                let (id, token) = &clients.enterprises[i % ENTERPRISES];
                let request = GetEnterpriseRequest {
                    enterprise_id: id.clone(),
                };
                client
                    .get_enterprise(authed(request, token))
                    .await
                    .map(|_| ())
            }
        },
    )
    .await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale: usize = std::env::var("BENCH_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut settings = isolated_settings();
    settings.database_max_connections = 20;
    let server_url = settings.database_url.clone();
    let svc =
        TestService::start_with(settings, ServiceKind::DemandIntake, demand_intake::build).await;
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(DemandServiceClient::new(svc.channel().await));
    }
    let operator = svc.token(Role::Service, "bench", None);
    let mut enterprises = Vec::new();
    for n in 0..ENTERPRISES {
        let code = credit_code(n);
        channels[0]
            .register_enterprise(authed(
                RegisterEnterpriseRequest {
                    name: format!("基准测试企业{n}"),
                    credit_code: code.clone(),
                    region_code: "420100".into(),
                    industry_chain: "高端装备".into(),
                },
                &operator,
            ))
            .await?;
        let token = svc.token(Role::Enterprise, "bench", Some(&code));
        enterprises.push((code, token));
    }
    let clients = Arc::new(Clients {
        channels,
        enterprises,
    });
    submit_run(clients.clone(), "warm-up", 8, 300).await;

    println!("{}", Figures::header());
    let mut ratios = Vec::new();
    for (concurrency, ops) in [(1, 500), (8, 2000), (64, 4000)] {
        let ops = ops * scale;
        let raw = postgres_insert_commit(&server_url, concurrency, ops).await?;
        let intake = submit_run(clients.clone(), "SubmitDemand over gRPC", concurrency, ops).await;
        let read = read_run(clients.clone(), concurrency, ops).await;
        println!("{}", raw.row());
        println!("{}", intake.row());
        println!("{}", read.row());
        ratios.push((concurrency, intake.per_second() / raw.per_second()));
    }
    for (concurrency, ratio) in ratios {
        println!(
            "concurrency {concurrency:>2}: SubmitDemand / INSERT+COMMIT = {ratio:.2} (target >= 0.50)"
        );
    }
    svc.stop().await;
    Ok(())
}
