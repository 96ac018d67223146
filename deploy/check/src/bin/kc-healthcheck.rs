//! `kc-healthcheck ADDRESS [SERVICE]`: asks a kechuang service's `grpc.health.v1.Health/Check`
//! and exits 0 only when it answers SERVING. The container image's health check (so the image
//! needs no grpc_health_probe); Kubernetes uses its native `grpc:` probe instead.

use std::process::ExitCode;
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(address) = args.next() else {
        eprintln!("usage: kc-healthcheck HOST:PORT [grpc.service.Name]");
        return ExitCode::from(2);
    };
    let service = args.next().unwrap_or_default();
    match tokio::time::timeout(Duration::from_secs(3), check(&address, &service)).await {
        Ok(Ok(ServingStatus::Serving)) => ExitCode::SUCCESS,
        Ok(Ok(status)) => {
            eprintln!("{address} {service:?}: {}", status.as_str_name());
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("{address}: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("{address}: no answer in 3 s");
            ExitCode::FAILURE
        }
    }
}

async fn check(address: &str, service: &str) -> anyhow::Result<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?
        .into_inner();
    Ok(ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown))
}
