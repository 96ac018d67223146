//! CatalogService: achievements in, one at a time or by the hundred thousand.

use crate::domain::{self, NewAchievement};
use crate::index::{self, achievement_doc};
use crate::store::{self, AchievementRow, meanings};
use crate::wire::achievement_proto;
use crate::{PRODUCER, Shared, pushing};
use kechuang_platform::auth::{Caller, Role, caller};
use kechuang_platform::error::Error;
use kechuang_platform::idempotency::{self, BatchClaim, BatchKey, Claim, Scope};
use kechuang_platform::input;
use kechuang_platform::{NewEvent, outbox};
use kechuang_proto::events::{AchievementRegistered, envelope::Payload};
use kechuang_proto::matching::catalog_service_server::CatalogService;
use kechuang_proto::matching::{
    Achievement, GetAchievementRequest, ImportError, ImportSummary, ListAchievementsRequest,
    ListAchievementsResponse, ListMatchingDemandsRequest, ListMatchingDemandsResponse,
    RegisterAchievementRequest, WithdrawAchievementRequest,
};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

/// Idempotency scope of achievement request ids.
const SCOPE: &str = "achievement";
/// Records written per import transaction.
pub const IMPORT_BATCH: usize = 500;
/// Errors listed in one import summary; `rejected_count` counts them all.
pub const MAX_REPORTED_ERRORS: usize = 10_000;

#[derive(Clone)]
pub struct CatalogApi {
    pub pool: PgPool,
    pub shared: Arc<Shared>,
}

/// A valid record of an import, waiting for its batch.
struct Pending {
    index: i64,
    request_id: String,
    fingerprint: String,
    achievement: NewAchievement,
}

impl CatalogApi {
    /// Withdraws an achievement: stored first, then taken out of this replica's index before
    /// answering (the others take it out on the commit notification).
    async fn withdraw(
        &self,
        caller: &Caller,
        req: WithdrawAchievementRequest,
    ) -> Result<Achievement, Error> {
        caller.require(&[Role::Supplier, Role::TechManager, Role::Service])?;
        let reason = domain::validate_withdrawal(&req)?;
        let mut tx = self.pool.begin().await?;
        // Another supplier's achievement answers exactly as an unknown one.
        let row = store::get_achievement(&mut tx, &req.achievement_id)
            .await?
            .filter(|a| {
                caller.has_any(&[Role::TechManager, Role::Service])
                    || caller.is_person(&a.registered_by)
            })
            .ok_or_else(|| {
                Error::not_found(format!(
                    "achievement {} not found",
                    input::quote(&req.achievement_id)
                ))
            })?;
        let row = store::withdraw_achievement(&mut tx, &row.id, &reason)
            .await?
            .ok_or_else(|| Error::internal("the achievement vanished"))?;
        meanings::dequeue(&mut tx, std::slice::from_ref(&row.id)).await?;
        store::notify(
            &mut tx,
            store::Changed::Withdrawn,
            "",
            std::slice::from_ref(&row.id),
        )
        .await?;
        tx.commit().await?;
        index::remove_achievements(&self.shared.engine, vec![row.id.clone()])
            .await
            .map_err(|e| Error::internal(format!("the matching engine failed: {e}")))?;
        Ok(achievement_proto(&row))
    }

    /// Stores new achievements with their events in `tx` and commits; then indexes them in
    /// this replica's engine before answering (other replicas index them on the commit
    /// notification), and pushes them to the open demands where they earn a place.
    ///
    /// Indexed only after the commit: an uncommitted achievement must never be matched. The push runs in a second transaction;
    /// if it fails the achievement stays registered (logged), and every demand verified later
    /// still finds it.
    async fn store_new(
        &self,
        mut tx: Transaction<'static, Postgres>,
        rows: &[(String, NewAchievement)],
        registered_by: &str,
    ) -> Result<Vec<AchievementRow>, Error> {
        let stored = store::insert_achievements(&mut tx, rows, registered_by).await?;
        for a in &stored {
            let event = NewEvent::new(
                &a.id,
                1,
                Payload::AchievementRegistered(AchievementRegistered {
                    achievement_id: a.id.clone(),
                    institution: a.institution.clone(),
                    title: a.title.clone(),
                    industry_chain: a.industry_chain.clone(),
                    trl: a.trl,
                    asking_price_fen: a.asking_price_fen,
                    region_code: a.region_code.clone(),
                }),
            );
            outbox::append(&mut tx, PRODUCER, event).await?;
        }
        let ids: Vec<String> = stored.iter().map(|a| a.id.clone()).collect();
        meanings::enqueue(&mut tx, &ids).await?;
        store::notify(
            &mut tx,
            store::Changed::Achievements,
            &self.shared.replica,
            &ids,
        )
        .await?;
        outbox::commit(tx, crate::PRODUCER).await?;
        if let Err(e) = index::add_achievements(&self.shared.engine, stored.clone()).await {
            tracing::error!(error = %e, "cannot index new achievements; rebuilding the index");
            if let Err(e) = index::rebuild(
                &self.pool,
                &self.shared.engine,
                self.shared.semantic.model(),
            )
            .await
            {
                tracing::error!(error = %e, "cannot rebuild the matching index");
            }
        }
        // Scoring against no open demand finds nothing: skip the transaction.
        if self.shared.engine.open_demand_count() > 0
            && let Err(e) = self.push(&stored).await
        {
            tracing::error!(error = %e, "cannot push new achievements to open demands");
        }
        Ok(stored)
    }

    async fn push(&self, stored: &[AchievementRow]) -> Result<(), Error> {
        let docs: Vec<_> = stored.iter().map(achievement_doc).collect();
        let candidates = pushing::reverse_candidates(&self.shared.engine, docs).await?;
        let mut tx = self.pool.begin().await?;
        pushing::push_achievements(&mut tx, candidates, self.shared.top_k).await?;
        outbox::commit(tx, crate::PRODUCER).await?;
        Ok(())
    }

    async fn register(
        &self,
        caller: &Caller,
        req: RegisterAchievementRequest,
    ) -> Result<Achievement, Error> {
        let achievement = domain::validate_achievement(&req).map_err(Error::InvalidArgument)?;
        if req.validate_only {
            // What it would register: no id, no time, nothing written.
            return Ok(Achievement {
                id: String::new(),
                create_time: None,
                ..achievement_proto(&store::supplier::unsaved(achievement, &caller.subject))
            });
        }
        let fingerprint = idempotency::fingerprint(&req);
        let mut tx = self.pool.begin().await?;
        if !req.request_id.is_empty()
            && let Claim::Existing(id) = idempotency::claim(
                &mut tx,
                &Scope::of(SCOPE, caller),
                &req.request_id,
                &fingerprint,
            )
            .await?
        {
            let row = store::get_achievement(&mut tx, &id)
                .await?
                .ok_or_else(|| Error::internal("an idempotency key names a missing achievement"))?;
            return Ok(achievement_proto(&row));
        }
        let id = Uuid::now_v7().to_string();
        if !req.request_id.is_empty() {
            idempotency::record(
                &mut tx,
                &Scope::of(SCOPE, caller),
                &req.request_id,
                &fingerprint,
                &id,
            )
            .await?;
        }
        let stored = self
            .store_new(tx, &[(id, achievement)], &caller.subject)
            .await?;
        stored
            .first()
            .map(achievement_proto)
            .ok_or_else(|| Error::internal("insert returned no row"))
    }

    /// Writes one batch of valid records in one transaction. Records whose request id was
    /// already used count as duplicates (same content) or errors (other content).
    async fn import_batch(
        &self,
        caller: &Caller,
        batch: &mut Vec<Pending>,
        summary: &mut ImportSummary,
    ) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // Ids first: the idempotency keys name them.
        let ids: Vec<String> = batch.iter().map(|_| Uuid::now_v7().to_string()).collect();
        let mut keep = vec![true; batch.len()];
        // Request ids repeated inside this batch: the first one wins.
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (i, p) in batch.iter().enumerate() {
            if p.request_id.is_empty() {
                continue;
            }
            match seen.get(p.request_id.as_str()) {
                None => {
                    seen.insert(&p.request_id, &p.fingerprint);
                }
                Some(fp) if *fp == p.fingerprint => {
                    keep[i] = false;
                    summary.duplicate_count += 1;
                }
                Some(_) => {
                    keep[i] = false;
                    reject(
                        summary,
                        p.index,
                        "request_id",
                        "was already used for a different record",
                    );
                }
            }
        }
        let keyed: Vec<usize> = (0..batch.len())
            .filter(|i| keep[*i] && !batch[*i].request_id.is_empty())
            .collect();
        let keys: Vec<BatchKey> = keyed
            .iter()
            .map(|i| BatchKey {
                request_id: &batch[*i].request_id,
                fingerprint: &batch[*i].fingerprint,
                resource_id: &ids[*i],
            })
            .collect();
        let claims = idempotency::claim_many(&mut tx, &Scope::of(SCOPE, caller), &keys).await?;
        for (i, claim) in keyed.into_iter().zip(claims) {
            match claim {
                BatchClaim::Claimed => {}
                BatchClaim::Repeat => {
                    keep[i] = false;
                    summary.duplicate_count += 1;
                }
                BatchClaim::Conflict => {
                    keep[i] = false;
                    reject(
                        summary,
                        batch[i].index,
                        "request_id",
                        "was already used for a different record",
                    );
                }
            }
        }
        let rows: Vec<(String, NewAchievement)> = batch
            .drain(..)
            .zip(ids)
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|((p, id), _)| (id, p.achievement))
            .collect();
        let stored = self.store_new(tx, &rows, &caller.subject).await?;
        summary.imported_count += stored.len() as i64;
        Ok(())
    }
}

fn reject(summary: &mut ImportSummary, index: i64, field: &str, reason: &str) {
    summary.rejected_count += 1;
    if summary.errors.len() < MAX_REPORTED_ERRORS {
        summary.errors.push(ImportError {
            index,
            field: field.to_string(),
            reason: reason.to_string(),
        });
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn register_achievement(
        &self,
        request: Request<RegisterAchievementRequest>,
    ) -> Result<Response<Achievement>, Status> {
        let caller = caller(&request)?;
        caller.require(&[Role::Supplier, Role::Service])?;
        Ok(Response::new(
            self.register(&caller, request.into_inner()).await?,
        ))
    }

    /// Each bad record is reported with its index; good ones are written in batches of
    /// [`IMPORT_BATCH`], each batch in its own transaction (so a call cut short keeps the
    /// batches it completed).
    async fn import_achievements(
        &self,
        request: Request<Streaming<RegisterAchievementRequest>>,
    ) -> Result<Response<ImportSummary>, Status> {
        let caller = caller(&request)?;
        caller.require(&[Role::Supplier, Role::Service])?;
        let _importing = self.shared.imports.start();
        let mut records = request.into_inner();
        let mut summary = ImportSummary::default();
        let mut batch: Vec<Pending> = Vec::with_capacity(IMPORT_BATCH);
        while let Some(req) = records.message().await? {
            let index = summary.received_count;
            summary.received_count += 1;
            if let Err(Error::InvalidArgument(problems)) =
                idempotency::check_request_id(&req.request_id)
            {
                let problem = problems.into_iter().next().map(|p| p.description);
                reject(
                    &mut summary,
                    index,
                    "request_id",
                    &problem.unwrap_or_default(),
                );
                continue;
            }
            match domain::validate_achievement(&req) {
                Err(violations) => {
                    summary.rejected_count += 1;
                    for v in violations {
                        if summary.errors.len() < MAX_REPORTED_ERRORS {
                            summary.errors.push(ImportError {
                                index,
                                field: v.field,
                                reason: v.description,
                            });
                        }
                    }
                }
                // Checked and counted as received, never written.
                Ok(_) if req.validate_only => {}
                Ok(achievement) => batch.push(Pending {
                    index,
                    fingerprint: if req.request_id.is_empty() {
                        String::new()
                    } else {
                        idempotency::fingerprint(&req)
                    },
                    request_id: req.request_id,
                    achievement,
                }),
            }
            if batch.len() >= IMPORT_BATCH {
                self.import_batch(&caller, &mut batch, &mut summary).await?;
            }
        }
        self.import_batch(&caller, &mut batch, &mut summary).await?;
        Ok(Response::new(summary))
    }

    async fn withdraw_achievement(
        &self,
        request: Request<WithdrawAchievementRequest>,
    ) -> Result<Response<Achievement>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.withdraw(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_achievements(
        &self,
        request: Request<ListAchievementsRequest>,
    ) -> Result<Response<ListAchievementsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.list_mine(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_matching_demands(
        &self,
        request: Request<ListMatchingDemandsRequest>,
    ) -> Result<Response<ListMatchingDemandsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.matching_demands(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_achievement(
        &self,
        request: Request<GetAchievementRequest>,
    ) -> Result<Response<Achievement>, Status> {
        caller(&request)?;
        let id = request.into_inner().achievement_id;
        if let Some(problem) = input::id_problem(&id, crate::domain::MAX_ID_CHARS) {
            return Err(Error::invalid("achievement_id", problem).into());
        }
        let mut conn = self.pool.acquire().await.map_err(Error::from)?;
        let row = store::get_achievement(&mut conn, &id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| {
                Error::not_found(format!("achievement {} not found", input::quote(&id)))
            })?;
        Ok(Response::new(achievement_proto(&row)))
    }
}
