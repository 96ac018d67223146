//! Under a backlog the ground net keeps accepting demands (the outbox holds their events),
//! and its health says it lags until the bus takes them again.

use crate::helpers::{outbox_count, outbox_drained, start_with};
use kechuang_platform::metrics::sampler::BACKLOG_HEALTH;
use kechuang_platform::testing::{TestService, eventually, isolated_settings};
use kechuang_platform::{Settings, bus};
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn health(svc: &TestService, name: &str) -> ServingStatus {
    let answer = HealthClient::new(svc.channel().await)
        .check(HealthCheckRequest {
            service: name.into(),
        })
        .await
        .expect("health check")
        .into_inner();
    ServingStatus::try_from(answer.status).expect("a known status")
}

async fn backlog_health_becomes(svc: &TestService, wanted: ServingStatus) {
    eventually(
        Duration::from_secs(30),
        &format!("{BACKLOG_HEALTH} to be {wanted:?}"),
        || async move { health(svc, BACKLOG_HEALTH).await == wanted },
    )
    .await;
}

#[tokio::test]
async fn without_its_stream_the_service_keeps_accepting_and_its_health_says_it_lags() {
    let settings = Settings {
        backlog_max_age_secs: 1,
        ..isolated_settings()
    };
    let mut ground = start_with(settings).await;
    backlog_health_becomes(&ground.svc, ServingStatus::Serving).await;

    // The bus loses the stream (an operator's mistake, a NATS node wiped).
    let stream = ground.svc.settings.stream_name.clone();
    ground
        .svc
        .jetstream
        .delete_stream(&stream)
        .await
        .expect("delete the stream");

    // Demands are still accepted: their events wait in the outbox.
    let enterprise = ground.enterprise(1).await;
    let demand = ground.demand(&enterprise, "backlog-1").await;
    assert!(!demand.id.is_empty());
    backlog_health_becomes(&ground.svc, ServingStatus::NotServing).await;
    let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&ground.svc.pool)
        .await
        .unwrap();
    assert!(
        unsent >= 2,
        "the enterprise's and the demand's events wait: {unsent}"
    );
    assert_eq!(
        health(&ground.svc, "").await,
        ServingStatus::Serving,
        "the service itself still serves"
    );

    // The stream comes back: the relay catches up and the health says so.
    bus::ensure_stream(&ground.svc.jetstream, &ground.svc.config.bus)
        .await
        .expect("the stream again");
    outbox_drained(&ground.svc.pool).await;
    backlog_health_becomes(&ground.svc, ServingStatus::Serving).await;
    assert_eq!(outbox_count(&ground.svc.pool, "demand.submitted").await, 1);
    let on_the_bus = ground.svc.events_of("demand.submitted").await;
    assert_eq!(on_the_bus.len(), 1, "the held event reached the new stream");
    assert_eq!(on_the_bus[0].aggregate_id, demand.id);
    ground.stop().await;
}
