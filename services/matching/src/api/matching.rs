//! MatchingService: pairings (listed, watched, answered) and the contracts signed on them.

use crate::Shared;
use crate::deals::{Deals, PLATFORM_READERS};
use crate::engine::outcomes;
use crate::store::{self, meanings};
use crate::sync::Update;
use crate::wire::{contract_proto, pairing_proto};
use kechuang_platform::auth::{Caller, Role, caller};
use kechuang_platform::error::Error;
use kechuang_platform::input;
use kechuang_platform::paging::{decode_token, encode_token, page_size};
use kechuang_proto::matching::matching_service_server::MatchingService;
use kechuang_proto::matching::{
    Contract, GetContractRequest, GetMatchingStatusRequest, GetPairingOutcomesRequest,
    ListPairingsRequest, ListPairingsResponse, MatchingStatus, Pairing, PairingOutcomes,
    RankOutcome, RespondToPairingRequest, SignContractRequest, WatchPairingsRequest,
};
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Roles that read every demand's pairings.
const READERS: &[Role] = &[Role::TechManager, Role::Auditor, Role::Service];

type PairingStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Pairing, Status>> + Send + 'static>>;

#[derive(Clone)]
pub struct MatchingApi {
    pub pool: PgPool,
    pub shared: Arc<Shared>,
    pub deals: Deals,
}

/// An enterprise sees its own demands only; readers see all.
fn may_see(caller: &Caller, enterprise_id: &str) -> bool {
    caller.is_enterprise(enterprise_id) || caller.has_any(READERS)
}

/// Another enterprise's demand answers exactly as an unknown one: its id tells nothing.
fn demand_not_found(demand_id: &str) -> Error {
    Error::not_found(format!("demand {} not found", input::quote(demand_id)))
}

/// Which pairings a watcher wants.
#[derive(Clone)]
struct Filter {
    demand_id: Option<String>,
    enterprise_id: Option<String>,
}

impl Filter {
    fn wants(&self, p: &Pairing) -> bool {
        self.demand_id.as_ref().is_none_or(|d| *d == p.demand_id)
            && self
                .enterprise_id
                .as_ref()
                .is_none_or(|e| *e == p.enterprise_id)
    }
}

impl MatchingApi {
    async fn list(
        &self,
        caller: Caller,
        req: ListPairingsRequest,
    ) -> Result<ListPairingsResponse, Error> {
        caller.require(&[
            Role::Enterprise,
            Role::TechManager,
            Role::Auditor,
            Role::Service,
        ])?;
        if req.demand_id.is_empty() {
            return Err(Error::invalid("demand_id", "must not be empty"));
        }
        let limit = page_size(req.page_size)?;
        let after: Option<(i32, String)> = decode_token(&req.demand_id, &req.page_token)?;
        let mut conn = self.pool.acquire().await?;
        store::get_demand(&mut conn, &req.demand_id)
            .await?
            .filter(|d| may_see(&caller, &d.enterprise_id))
            .ok_or_else(|| demand_not_found(&req.demand_id))?;
        let mut rows = store::list_pairings(&mut conn, &req.demand_id, after, limit + 1).await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|p| encode_token(&req.demand_id, &(p.rank, p.id.clone())))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListPairingsResponse {
            pairings: rows.iter().map(pairing_proto).collect(),
            next_page_token,
        })
    }

    async fn watch_filter(
        &self,
        caller: &Caller,
        req: WatchPairingsRequest,
    ) -> Result<Filter, Error> {
        caller.require(&[
            Role::Enterprise,
            Role::TechManager,
            Role::Auditor,
            Role::Service,
        ])?;
        if req.demand_id.is_empty() && req.enterprise_id.is_empty() {
            return Err(Error::invalid(
                "demand_id",
                "name a demand_id or an enterprise_id",
            ));
        }
        if !req.enterprise_id.is_empty() && !may_see(caller, &req.enterprise_id) {
            return Err(Error::PermissionDenied(
                "an enterprise sees only its own pairings".into(),
            ));
        }
        if !req.demand_id.is_empty() {
            let mut conn = self.pool.acquire().await?;
            store::get_demand(&mut conn, &req.demand_id)
                .await?
                .filter(|d| may_see(caller, &d.enterprise_id))
                .ok_or_else(|| demand_not_found(&req.demand_id))?;
        }
        Ok(Filter {
            demand_id: Some(req.demand_id).filter(|s| !s.is_empty()),
            enterprise_id: Some(req.enterprise_id).filter(|s| !s.is_empty()),
        })
    }
}

/// Sends what the watcher has not seen yet; false when the watcher hung up.
async fn send_unseen(
    out: &mpsc::Sender<Result<Pairing, Status>>,
    seen: &mut HashSet<String>,
    pairings: impl IntoIterator<Item = Pairing>,
) -> bool {
    for p in pairings {
        if seen.insert(p.id.clone()) && out.send(Ok(p)).await.is_err() {
            return false;
        }
    }
    true
}

/// Streams a watcher's existing pairings, then new ones as any replica commits them. When
/// this replica fell behind (lagged) or lost notifications, it re-reads the database.
async fn watch(
    pool: PgPool,
    filter: Filter,
    mut updates: broadcast::Receiver<Update>,
    out: mpsc::Sender<Result<Pairing, Status>>,
) {
    let mut seen = HashSet::new();
    let reread = |pool: PgPool, filter: Filter| async move {
        let mut conn = pool.acquire().await?;
        let rows = store::pairings_to_watch(
            &mut conn,
            filter.demand_id.as_deref(),
            filter.enterprise_id.as_deref(),
        )
        .await?;
        Ok::<_, sqlx::Error>(rows.iter().map(pairing_proto).collect::<Vec<_>>())
    };
    let mut resync = true;
    loop {
        if resync {
            resync = false;
            match reread(pool.clone(), filter.clone()).await {
                Ok(existing) => {
                    if !send_unseen(&out, &mut seen, existing).await {
                        return;
                    }
                }
                Err(e) => {
                    let _ = out.send(Err(Error::Database(e).into())).await;
                    return;
                }
            }
        }
        tokio::select! {
            _ = out.closed() => return,
            update = updates.recv() => match update {
                Ok(Update::Proposed(p)) if filter.wants(&p) => {
                    if !send_unseen(&out, &mut seen, [(*p).clone()]).await {
                        return;
                    }
                }
                Ok(Update::Proposed(_)) => {}
                Ok(Update::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => resync = true,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[tonic::async_trait]
impl MatchingService for MatchingApi {
    async fn list_pairings(
        &self,
        request: Request<ListPairingsRequest>,
    ) -> Result<Response<ListPairingsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.list(caller, request.into_inner()).await?,
        ))
    }

    async fn watch_pairings(
        &self,
        request: Request<WatchPairingsRequest>,
    ) -> Result<Response<PairingStream>, Status> {
        let caller = caller(&request)?;
        // Subscribe before reading what exists, so nothing falls in between.
        let updates = self.shared.updates.subscribe();
        let filter = self.watch_filter(&caller, request.into_inner()).await?;
        let (out, stream) = mpsc::channel(64);
        tokio::spawn(watch(self.pool.clone(), filter, updates, out));
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }

    async fn respond_to_pairing(
        &self,
        request: Request<RespondToPairingRequest>,
    ) -> Result<Response<Pairing>, Status> {
        let caller = caller(&request)?;
        let row = self.deals.respond(&caller, request.into_inner()).await?;
        Ok(Response::new(pairing_proto(&row)))
    }

    async fn sign_contract(
        &self,
        request: Request<SignContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let caller = caller(&request)?;
        let row = self.deals.sign(&caller, request.into_inner()).await?;
        Ok(Response::new(contract_proto(&row)))
    }

    async fn get_contract(
        &self,
        request: Request<GetContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let caller = caller(&request)?;
        let row = self.deals.contract(&caller, request.into_inner()).await?;
        Ok(Response::new(contract_proto(&row)))
    }

    async fn get_pairing_outcomes(
        &self,
        request: Request<GetPairingOutcomesRequest>,
    ) -> Result<Response<PairingOutcomes>, Status> {
        caller(&request)?.require(PLATFORM_READERS)?;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let all = store::outcomes(&mut conn).await.map_err(Error::from)?;
        Ok(Response::new(PairingOutcomes {
            ranks: outcomes::by_rank(&all)
                .into_iter()
                .map(|r| RankOutcome {
                    rank: r.rank,
                    proposed: r.proposed as i64,
                    answered: r.answered as i64,
                    accepted: r.accepted as i64,
                    contracted: r.contracted as i64,
                })
                .collect(),
            accepted_mrr: outcomes::accepted_mrr(&all).unwrap_or(0.0),
            answered_demands: outcomes::answered_demands(&all) as i64,
        }))
    }

    async fn get_matching_status(
        &self,
        request: Request<GetMatchingStatusRequest>,
    ) -> Result<Response<MatchingStatus>, Status> {
        // Any signed-in caller: it says how pairings are made, nothing about anyone's data.
        caller(&request)?;
        let semantic = &self.shared.semantic;
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let (achievements, embedded) = meanings::catalog_counts(&mut conn, semantic.model())
            .await
            .map_err(Error::from)?;
        Ok(Response::new(MatchingStatus {
            semantic: semantic.model().is_some(),
            model: semantic.model().unwrap_or_default().to_string(),
            unavailable_reason: semantic.unavailable.clone(),
            achievements,
            embedded,
            embedding_backlog: if semantic.model().is_some() {
                meanings::backlog(&mut conn).await.map_err(Error::from)?
            } else {
                0
            },
            open_demands: self.shared.engine.open_demand_count() as i64,
            indexed_meanings: self.shared.engine.meaning_count() as i64,
        }))
    }
}
