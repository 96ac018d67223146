//! Deployment checks: the image's health check works, the manifests name only what exists,
//! NATS credentials confine each service to its own subjects, and the clustered topology
//! survives losing a node.

mod cluster;
mod healthcheck;
mod keycloak;
mod manifests;
mod metrics;
mod permissions;
