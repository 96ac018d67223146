//! Server reflection lists what this server serves (not every API of the platform), in v1 and
//! in v1alpha (older grpcurl, Python's grpcio client and several GUIs speak only v1alpha).

use crate::helpers::*;
use std::collections::BTreeSet;
use tonic_reflection::pb::{v1, v1alpha};

fn expected() -> BTreeSet<String> {
    [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "kechuang.matching.v1.CatalogService",
        "kechuang.matching.v1.MatchingService",
    ]
    .map(String::from)
    .into()
}

#[tokio::test]
async fn reflection_lists_only_the_services_this_server_serves_in_both_versions() {
    let svc = start().await;
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers =
        v1::server_reflection_client::ServerReflectionClient::new(svc.channel().await)
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .expect("v1 reflection")
            .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a service list: {answer:?}");
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    assert_eq!(names, expected());

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers =
        v1alpha::server_reflection_client::ServerReflectionClient::new(svc.channel().await)
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .expect("v1alpha reflection")
            .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a service list: {answer:?}");
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    assert_eq!(names, expected());
    svc.stop().await;
}
