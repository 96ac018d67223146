//! `kc-healthcheck ADDRESS [SERVICE]`: asks a kechuang service's `grpc.health.v1.Health/Check`
//! and exits 0 only when it answers SERVING. `kc-healthcheck http://HOST:PORT/PATH`: an HTTP
//! GET (the gateway's `/healthz`) that exits 0 only on a 2xx answer. The container image's
//! health check (so the image needs neither grpc_health_probe nor curl); Kubernetes uses its
//! native `grpc:` and `httpGet:` probes instead.

use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::process::ExitCode;
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(address) = args.next() else {
        eprintln!("usage: kc-healthcheck HOST:PORT [grpc.service.Name] | http://HOST:PORT/PATH");
        return ExitCode::from(2);
    };
    let service = args.next().unwrap_or_default();
    let checked = if address.starts_with("http://") {
        tokio::time::timeout(TIMEOUT, get(&address)).await
    } else {
        tokio::time::timeout(TIMEOUT, check(&address, &service)).await
    };
    match checked {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("{address} {service}: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("{address}: no answer in {TIMEOUT:?}");
            ExitCode::FAILURE
        }
    }
}

/// The gRPC health check: Ok only on SERVING.
async fn check(address: &str, service: &str) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?
        .into_inner();
    match ServingStatus::try_from(answer.status).unwrap_or(ServingStatus::Unknown) {
        ServingStatus::Serving => Ok(()),
        status => anyhow::bail!("{}", status.as_str_name()),
    }
}

/// An HTTP/1.1 GET: Ok only on 2xx.
async fn get(url: &str) -> anyhow::Result<()> {
    let uri: Uri = url.parse().map_err(|e| anyhow::anyhow!("not a URL: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<String>();
    let status = client.get(uri).await?.status();
    anyhow::ensure!(status.is_success(), "HTTP {status}");
    Ok(())
}
