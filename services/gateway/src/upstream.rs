//! The gateway's gRPC clients of the four services. The gateway is a client like any other:
//! every call carries the caller's own bearer token, and the service decides.

use crate::status::ApiError;
use futures::{StreamExt, stream};
use kechuang_platform::GatewayConfig;
use kechuang_proto::demand::GetEnterpriseRequest;
use kechuang_proto::demand::demand_service_client::DemandServiceClient;
use kechuang_proto::fund::fund_service_client::FundServiceClient;
use kechuang_proto::matching::Contract;
use kechuang_proto::matching::GetContractRequest;
use kechuang_proto::matching::catalog_service_client::CatalogServiceClient;
use kechuang_proto::matching::matching_service_client::MatchingServiceClient;
use kechuang_proto::subsidy::policy_service_client::PolicyServiceClient;
use kechuang_proto::subsidy::registration_service_client::RegistrationServiceClient;
use kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient;
use kechuang_proto::subsidy::{self as spb, Policy};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

/// Largest answer accepted from a service (a page of 500 demands with their histories).
const MAX_MESSAGE: usize = 64 << 20;
/// Contracts kept in memory (they never change once signed).
const CONTRACT_CACHE: usize = 100_000;

#[derive(Clone)]
pub struct Upstream {
    pub demand: DemandServiceClient<Channel>,
    pub matching: MatchingServiceClient<Channel>,
    pub catalog: CatalogServiceClient<Channel>,
    pub subsidy: SubsidyServiceClient<Channel>,
    pub policy: PolicyServiceClient<Channel>,
    pub registration: RegistrationServiceClient<Channel>,
    pub fund: FundServiceClient<Channel>,
    /// Each service's gRPC health check, on the channel its API calls use (`/readyz`).
    pub health: Vec<HealthTarget>,
    contracts: Arc<Mutex<HashMap<String, Contract>>>,
    /// Enterprise names by credit code (an enterprise is registered once and never renamed
    /// through the API).
    enterprise_names: Arc<Mutex<HashMap<String, String>>>,
}

/// One service's health check: its name, the API name it reports on, its client.
#[derive(Clone)]
pub struct HealthTarget {
    pub service: &'static str,
    pub api: &'static str,
    pub client: HealthClient<Channel>,
}

fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_string())
        .map_err(|e| anyhow::anyhow!("bad service URL {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .connect_lazy())
}

impl Upstream {
    /// Clients that connect on first use, so the gateway may start before the services.
    pub fn connect_lazy(config: &GatewayConfig) -> anyhow::Result<Self> {
        let demand = channel(&config.demand_url)?;
        let matching = channel(&config.matching_url)?;
        let subsidy = channel(&config.subsidy_url)?;
        let fund = channel(&config.fund_url)?;
        let target = |service, api, channel: &Channel| HealthTarget {
            service,
            api,
            client: HealthClient::new(channel.clone()),
        };
        let health = vec![
            target(
                "demand-intake",
                kechuang_proto::demand::demand_service_server::SERVICE_NAME,
                &demand,
            ),
            target(
                "matching",
                kechuang_proto::matching::matching_service_server::SERVICE_NAME,
                &matching,
            ),
            target(
                "subsidy",
                kechuang_proto::subsidy::subsidy_service_server::SERVICE_NAME,
                &subsidy,
            ),
            target(
                "fund-ledger",
                kechuang_proto::fund::fund_service_server::SERVICE_NAME,
                &fund,
            ),
        ];
        Ok(Self {
            demand: DemandServiceClient::new(demand).max_decoding_message_size(MAX_MESSAGE),
            catalog: CatalogServiceClient::new(matching.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            matching: MatchingServiceClient::new(matching).max_decoding_message_size(MAX_MESSAGE),
            policy: PolicyServiceClient::new(subsidy.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            registration: RegistrationServiceClient::new(subsidy.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            subsidy: SubsidyServiceClient::new(subsidy).max_decoding_message_size(MAX_MESSAGE),
            fund: FundServiceClient::new(fund).max_decoding_message_size(MAX_MESSAGE),
            health,
            contracts: Arc::default(),
            enterprise_names: Arc::default(),
        })
    }

    /// A contract, from memory when it was read before. Contracts are immutable, and the
    /// console asks only for contracts of applications the caller just listed itself.
    pub async fn contract(&self, token: &str, id: &str) -> Result<Contract, ApiError> {
        if let Some(c) = self.contracts.lock().expect("cache lock").get(id) {
            return Ok(c.clone());
        }
        let contract = self
            .matching
            .clone()
            .get_contract(authed(
                GetContractRequest {
                    contract_id: id.to_string(),
                },
                token,
            )?)
            .await?
            .into_inner();
        let mut cache = self.contracts.lock().expect("cache lock");
        if cache.len() >= CONTRACT_CACHE {
            cache.clear();
        }
        cache.insert(id.to_string(), contract.clone());
        Ok(contract)
    }
}

impl Upstream {
    /// The names of the enterprises `ids`, from memory when read before; an enterprise the
    /// caller may not read, or that cannot be read now, is left out (pages show its code).
    pub async fn enterprise_names<'a>(
        &self,
        token: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> HashMap<String, String> {
        let mut names = HashMap::new();
        let mut missing = Vec::new();
        {
            let known = self.enterprise_names.lock().expect("cache lock");
            for id in ids {
                match known.get(id) {
                    Some(name) => {
                        names.insert(id.to_string(), name.clone());
                    }
                    None if !missing.contains(&id) => missing.push(id),
                    None => {}
                }
            }
        }
        let fetched = futures::future::join_all(missing.into_iter().map(|id| async move {
            let request = authed(
                GetEnterpriseRequest {
                    enterprise_id: id.to_string(),
                },
                token,
            )
            .ok()?;
            let e = self.demand.clone().get_enterprise(request).await.ok()?;
            Some((id.to_string(), e.into_inner().name))
        }))
        .await;
        let mut known = self.enterprise_names.lock().expect("cache lock");
        if known.len() >= CONTRACT_CACHE {
            known.clear();
        }
        for (id, name) in fetched.into_iter().flatten() {
            known.insert(id.clone(), name.clone());
            names.insert(id, name);
        }
        names
    }
}

impl Upstream {
    /// Every policy version (few: one per change of the rules), by id.
    pub async fn policies(&self, token: &str) -> Result<HashMap<String, Policy>, ApiError> {
        let mut out = HashMap::new();
        let mut page_token = String::new();
        for _ in 0..20 {
            let page = self
                .policy
                .clone()
                .list_policies(authed(
                    spb::ListPoliciesRequest {
                        page_size: 500,
                        page_token,
                        status: 0,
                    },
                    token,
                )?)
                .await?
                .into_inner();
            out.extend(page.policies.into_iter().map(|p| (p.id.clone(), p)));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        Ok(out)
    }

    /// The contracts of `applications`, by id (those the caller may not read are left out).
    pub async fn contracts(
        &self,
        token: &str,
        applications: &[spb::SubsidyApplication],
    ) -> HashMap<String, Contract> {
        let ids: BTreeSet<String> = applications.iter().map(|a| a.contract_id.clone()).collect();
        let lookups = ids.into_iter().map(|id| {
            let (upstream, token) = (self.clone(), token.to_string());
            async move { upstream.contract(&token, &id).await.ok().map(|c| (id, c)) }
        });
        stream::iter(lookups)
            .buffer_unordered(8)
            .filter_map(futures::future::ready)
            .collect()
            .await
    }
}

/// `message` with `authorization: Bearer <token>`; a token that cannot travel in a header
/// is the caller's mistake (401), never the gateway's.
pub fn authed<T>(message: T, token: &str) -> Result<tonic::Request<T>, ApiError> {
    let value: MetadataValue<_> = format!("Bearer {token}").parse().map_err(|_| {
        ApiError::unauthenticated("the bearer token has characters a header cannot carry")
    })?;
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_travels_as_a_bearer_header_or_is_refused() {
        let r = authed((), "abc.def.ghi").unwrap();
        assert_eq!(
            r.metadata().get("authorization").unwrap(),
            "Bearer abc.def.ghi"
        );
        let e = authed((), "bad\ntoken").unwrap_err();
        assert_eq!(e.status.as_u16(), 401);
    }
}
