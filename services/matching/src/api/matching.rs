//! MatchingService: pairings (listed, watched, answered) and the contracts signed on them.

use crate::domain::{self, DemandState, Response as Answer};
use crate::engine::outcomes;
use crate::store::{self, ContractParties, PairingRow, meanings};
use crate::sync::Update;
use crate::wire::{contract_proto, contract_signed, pairing_proto};
use crate::{PRODUCER, Shared};
use chrono::Utc;
use kechuang_platform::auth::{Caller, Role, caller};
use kechuang_platform::error::{Error, ResultExt, Violations};
use kechuang_platform::idempotency::{self, Claim, Scope};
use kechuang_platform::input::{self, Text};
use kechuang_platform::paging::{decode_token, encode_token, page_size};
use kechuang_platform::{NewEvent, outbox};
use kechuang_proto::events::{PairingAccepted, PairingRejected, envelope::Payload};
use kechuang_proto::matching::matching_service_server::MatchingService;
use kechuang_proto::matching::{
    Contract, GetContractRequest, GetMatchingStatusRequest, GetPairingOutcomesRequest,
    ListPairingsRequest, ListPairingsResponse, MatchingStatus, Pairing, PairingOutcomes,
    PairingStatus, RankOutcome, RespondToPairingRequest, SignContractRequest, WatchPairingsRequest,
};
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Idempotency scope of contract request ids.
const SCOPE: &str = "contract";
const MAX_NOTE_CHARS: usize = 500;
/// The platform's people who read contracts and outcomes across enterprises.
const PLATFORM_READERS: &[Role] = &[
    Role::TechManager,
    Role::Auditor,
    Role::FinanceOfficer,
    Role::FinanceApprover,
    Role::Service,
];
/// Roles that read every demand's pairings.
const READERS: &[Role] = &[Role::TechManager, Role::Auditor, Role::Service];

type PairingStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<Pairing, Status>> + Send + 'static>>;

#[derive(Clone)]
pub struct MatchingApi {
    pub pool: PgPool,
    pub shared: Arc<Shared>,
}

/// An enterprise sees its own demands only; readers see all.
fn may_see(caller: &Caller, enterprise_id: &str) -> bool {
    caller.is_enterprise(enterprise_id) || caller.has_any(READERS)
}

/// Another enterprise's demand answers exactly as an unknown one: its id tells nothing.
fn demand_not_found(demand_id: &str) -> Error {
    Error::not_found(format!("demand {} not found", input::quote(demand_id)))
}

fn pairing_not_found(pairing_id: &str) -> Error {
    Error::not_found(format!("pairing {} not found", input::quote(pairing_id)))
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

    async fn respond(
        &self,
        caller: Caller,
        req: RespondToPairingRequest,
    ) -> Result<Pairing, Error> {
        caller.require(&[Role::Enterprise])?;
        let mut v = Violations::new();
        input::check_id(&mut v, "pairing_id", &req.pairing_id, domain::MAX_ID_CHARS);
        Text::paragraphs(MAX_NOTE_CHARS)
            .optional()
            .check(&mut v, "note", &req.note);
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let pairing = store::get_pairing(&mut tx, &req.pairing_id, true)
            .await?
            .filter(|p| caller.is_enterprise(&p.enterprise_id))
            .ok_or_else(|| pairing_not_found(&req.pairing_id))?;
        let status = PairingStatus::try_from(pairing.status).unwrap_or(PairingStatus::Unspecified);
        if req.accept && status == PairingStatus::Proposed {
            let achievement = store::get_achievement(&mut tx, &pairing.achievement_id).await?;
            if achievement.is_none_or(|a| a.withdrawn_at.is_some()) {
                return Err(Error::FailedPrecondition(
                    "the achievement was withdrawn by its supplier; this pairing can only be declined"
                        .into(),
                ));
            }
        }
        let row = match domain::respond(status, req.accept)? {
            Answer::Unchanged => pairing,
            Answer::Moved(to) => {
                store::record_outcome(&mut tx, &pairing, to == PairingStatus::Accepted).await?;
                let row =
                    store::set_pairing_status(&mut tx, &pairing.id, to, req.note.trim()).await?;
                outbox::append(&mut tx, PRODUCER, response_event(&row, to)).await?;
                row
            }
        };
        outbox::commit(tx).await?;
        Ok(pairing_proto(&row))
    }

    async fn sign(&self, caller: Caller, req: SignContractRequest) -> Result<Contract, Error> {
        caller.require(&[Role::Enterprise, Role::Service])?;
        let contract = domain::validate_contract(&req, Utc::now())?;
        let fingerprint = idempotency::fingerprint(&req);
        let mut tx = self.pool.begin().await?;
        if !req.request_id.is_empty()
            && let Claim::Existing(id) = idempotency::claim(
                &mut tx,
                &Scope::of(SCOPE, &caller),
                &req.request_id,
                &fingerprint,
            )
            .await?
        {
            let row = store::get_contract(&mut tx, &id)
                .await?
                .ok_or_else(|| Error::internal("an idempotency key names a missing contract"))?;
            return Ok(contract_proto(&row));
        }
        // Lock order of every writer: the demand, then its pairings.
        let demand_id = store::get_pairing(&mut tx, &req.pairing_id, false)
            .await?
            .filter(|p| caller.has(Role::Service) || caller.is_enterprise(&p.enterprise_id))
            .ok_or_else(|| pairing_not_found(&req.pairing_id))?
            .demand_id;
        let demand = store::lock_demand(&mut tx, &demand_id)
            .await?
            .ok_or_else(|| Error::internal("a pairing without its demand"))?;
        let pairing = store::get_pairing(&mut tx, &req.pairing_id, true)
            .await?
            .ok_or_else(|| Error::internal("a pairing vanished"))?;
        if !caller.has(Role::Service) && !caller.is_enterprise(&pairing.enterprise_id) {
            return Err(pairing_not_found(&req.pairing_id));
        }
        if pairing.status != PairingStatus::Accepted as i32 {
            return Err(Error::FailedPrecondition(
                "a contract can only be signed for an accepted pairing".into(),
            ));
        }
        domain::check_signed_after_acceptance(contract.signed_at, pairing.accepted_at)?;
        // Withdrawn or rejected: no contract. Already contracted: another accepted pairing of
        // the same demand may still be signed (a demand can need two suppliers).
        if !demand.verified || !demand.state().is_some_and(DemandState::takes_contracts) {
            return Err(Error::FailedPrecondition(format!(
                "the demand is {}; no contract can be signed on it",
                demand.status
            )));
        }
        let achievement = store::get_achievement(&mut tx, &pairing.achievement_id)
            .await?
            .ok_or_else(|| Error::internal("a pairing without its achievement"))?;
        let id = Uuid::now_v7().to_string();
        let parties = ContractParties {
            pairing: &pairing,
            demand: &demand,
            achievement: &achievement,
        };
        let row = store::insert_contract(&mut tx, &id, &parties, &contract)
            .await
            .on_constraint("contracts_contract_no_key", || {
                Error::AlreadyExists(format!(
                    "contract number {} is already recorded",
                    contract.contract_no
                ))
            })
            .on_constraint("contracts_pairing_key", || {
                Error::AlreadyExists("this pairing already has a signed contract".into())
            })?;
        let event = NewEvent::new(&row.id, 1, Payload::ContractSigned(contract_signed(&row)));
        outbox::append(&mut tx, PRODUCER, event).await?;
        store::outcome_contracted(&mut tx, &row.pairing_id).await?;
        store::mark_contracted(&mut tx, &demand.id).await?;
        store::notify(
            &mut tx,
            store::Changed::Demands,
            "",
            std::slice::from_ref(&demand.id),
        )
        .await?;
        if !req.request_id.is_empty() {
            idempotency::record(
                &mut tx,
                &Scope::of(SCOPE, &caller),
                &req.request_id,
                &fingerprint,
                &row.id,
            )
            .await?;
        }
        outbox::commit(tx).await?;
        Ok(contract_proto(&row))
    }

    async fn contract(&self, caller: Caller, req: GetContractRequest) -> Result<Contract, Error> {
        // An enterprise reads its own contracts (checked below); the platform's people all.
        let reads_all = caller.has_any(PLATFORM_READERS);
        if !reads_all {
            caller.require(&[Role::Enterprise])?;
        }
        if req.contract_id.is_empty() {
            return Err(Error::invalid("contract_id", "must not be empty"));
        }
        let mut conn = self.pool.acquire().await?;
        let row = store::get_contract(&mut conn, &req.contract_id)
            .await?
            .filter(|c| reads_all || caller.is_enterprise(&c.enterprise_id))
            .ok_or_else(|| {
                Error::not_found(format!(
                    "contract {} not found",
                    input::quote(&req.contract_id)
                ))
            })?;
        Ok(contract_proto(&row))
    }
}

fn response_event(row: &PairingRow, to: PairingStatus) -> NewEvent {
    let payload = if to == PairingStatus::Accepted {
        Payload::PairingAccepted(PairingAccepted {
            pairing_id: row.id.clone(),
            demand_id: row.demand_id.clone(),
            enterprise_id: row.enterprise_id.clone(),
            achievement_id: row.achievement_id.clone(),
        })
    } else {
        Payload::PairingRejected(PairingRejected {
            pairing_id: row.id.clone(),
            demand_id: row.demand_id.clone(),
            enterprise_id: row.enterprise_id.clone(),
            achievement_id: row.achievement_id.clone(),
            note: row.note.clone(),
        })
    };
    NewEvent::new(&row.id, row.version, payload)
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
        Ok(Response::new(
            self.respond(caller, request.into_inner()).await?,
        ))
    }

    async fn sign_contract(
        &self,
        request: Request<SignContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.sign(caller, request.into_inner()).await?,
        ))
    }

    async fn get_contract(
        &self,
        request: Request<GetContractRequest>,
    ) -> Result<Response<Contract>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.contract(caller, request.into_inner()).await?,
        ))
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
