//! Probes for orchestrators. `/healthz` (liveness) answers as long as the HTTP server does and
//! asks nothing upstream, so a slow or restarting service never gets the gateway restarted.
//! `/readyz` (readiness) asks each of the four services' gRPC health check and the console's
//! session database at once and answers 200 only when all say SERVING; otherwise 503 naming the ones that do not, so traffic goes to
//! a replica that can serve it. Neither needs a token: they reveal only up or down.

use crate::AppState;
use crate::upstream::HealthTarget;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

/// How long a service may take to answer its health check (below a probe's own timeout).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok"
}

/// `/readyz`'s answer: per service, `SERVING` or what was heard instead.
#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub services: BTreeMap<&'static str, String>,
    /// The services that are not SERVING.
    pub not_serving: Vec<&'static str>,
}

impl Readiness {
    fn of(answers: Vec<(&'static str, String)>) -> Self {
        let not_serving: Vec<_> = answers
            .iter()
            .filter(|(_, status)| status != SERVING)
            .map(|(service, _)| *service)
            .collect();
        Self {
            ready: not_serving.is_empty(),
            services: answers.into_iter().collect(),
            not_serving,
        }
    }
}

const SERVING: &str = "SERVING";

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let services = futures::future::join_all(state.upstream.health.iter().cloned().map(check));
    let (mut answers, sessions) = tokio::join!(services, sessions(&state));
    answers.push(sessions);
    let readiness = Readiness::of(answers);
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        tracing::debug!(not_serving = ?readiness.not_serving, "gateway not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// The console's session store: a replica that cannot reach it cannot sign anyone in.
async fn sessions(state: &AppState) -> (&'static str, String) {
    let answer = match tokio::time::timeout(CHECK_TIMEOUT, state.sessions.ping()).await {
        Ok(true) => SERVING.to_string(),
        Ok(false) => "the session database does not answer".to_string(),
        Err(_) => format!("no answer in {CHECK_TIMEOUT:?}"),
    };
    ("console-sessions", answer)
}

/// One service's answer: its serving status's name, or why there was none.
async fn check(mut target: HealthTarget) -> (&'static str, String) {
    let request = HealthCheckRequest {
        service: target.api.to_string(),
    };
    let answer = match tokio::time::timeout(CHECK_TIMEOUT, target.client.check(request)).await {
        Ok(Ok(response)) => ServingStatus::try_from(response.into_inner().status)
            .unwrap_or(ServingStatus::Unknown)
            .as_str_name()
            .to_string(),
        Ok(Err(status)) => format!("{:?}: {}", status.code(), status.message()),
        Err(_) => format!("no answer in {CHECK_TIMEOUT:?}"),
    };
    (target.service, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_service_is_serving() {
        let all = Readiness::of(vec![
            ("matching", "SERVING".into()),
            ("subsidy", "SERVING".into()),
        ]);
        assert!(all.ready);
        assert!(all.not_serving.is_empty());
        let one = Readiness::of(vec![
            ("matching", "SERVING".into()),
            ("subsidy", "NOT_SERVING".into()),
            ("fund-ledger", "Unavailable: connection refused".into()),
        ]);
        assert!(!one.ready);
        assert_eq!(one.not_serving, ["subsidy", "fund-ledger"]);
        assert_eq!(one.services["subsidy"], "NOT_SERVING");
    }
}
