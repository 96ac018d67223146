//! Keeps this replica current with what any replica committed. Every write that matters
//! sends a NOTIFY on [`store::CHANNEL`] inside its transaction; Postgres delivers it to every
//! listening replica after the commit, and only then. On it this task
//! - indexes new achievements (`a:` ids) in the engine (those this replica registered are
//!   indexed by the registering call itself, after its commit and before it answers, so a
//!   demand verified right after a registration on the same replica sees it),
//! - opens or closes demands (`d:` ids) in the engine's set of open demands,
//! - hands new pairings (`p:` ids) to this replica's `WatchPairings` streams.
//!
//! A lost connection may have lost notifications: on reconnect the index is rebuilt from the
//! database and watchers are told to re-read theirs.

use crate::engine::Engine;
use crate::index::{self, demand_doc};
use crate::store::{self, Changed, Notice, meanings};
use crate::wire::pairing_proto;
use kechuang_proto::matching::Pairing;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// What `WatchPairings` streams listen to.
#[derive(Debug, Clone)]
pub enum Update {
    /// A pairing was proposed (by any replica).
    Proposed(Arc<Pairing>),
    /// Notifications may have been lost: re-read the database.
    Resync,
}

pub struct Follower {
    pub pool: PgPool,
    pub engine: Arc<Engine>,
    pub updates: broadcast::Sender<Update>,
    /// This replica's name in notifications.
    pub replica: String,
    /// The model whose vectors this replica reads.
    pub model: Option<&'static str>,
}

impl Follower {
    /// Listens before the caller rebuilds the index, so nothing committed in between is missed.
    pub async fn listen(pool: &PgPool) -> anyhow::Result<PgListener> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(store::CHANNEL).await?;
        Ok(listener)
    }

    pub async fn run(self, mut listener: PgListener, shutdown: CancellationToken) {
        loop {
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.follow(&mut listener) => r,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "matching sync lost its listener; rebuilding");
            }
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                match self.reconnect().await {
                    Ok(l) => {
                        listener = l;
                        break;
                    }
                    Err(e) => tracing::warn!(error = %e, "matching sync cannot reconnect"),
                }
            }
        }
    }

    async fn reconnect(&self) -> anyhow::Result<PgListener> {
        let listener = Self::listen(&self.pool).await?;
        index::rebuild(&self.pool, &self.engine, self.model).await?;
        let _ = self.updates.send(Update::Resync);
        Ok(listener)
    }

    async fn follow(&self, listener: &mut PgListener) -> anyhow::Result<()> {
        loop {
            let Some(n) = listener.try_recv().await? else {
                // The connection dropped (the listener reconnects on the next call): whatever
                // was notified meanwhile is lost, so read everything again.
                self.reconnect_index().await;
                continue;
            };
            let Some(notice) = Notice::decode(n.payload()) else {
                continue;
            };
            let own = notice.origin == self.replica;
            if own && matches!(notice.changed, Changed::Achievements | Changed::Meanings) {
                // This replica indexed them itself, right after its commit.
                continue;
            }
            if let Err(e) = self.apply(notice.changed, &notice.ids).await {
                tracing::warn!(error = %e, changed = ?notice.changed, "cannot apply a change notification; rebuilding");
                self.reconnect_index().await;
            }
        }
    }

    async fn reconnect_index(&self) {
        if let Err(e) = index::rebuild(&self.pool, &self.engine, self.model).await {
            tracing::error!(error = %e, "cannot rebuild the matching index");
        }
        let _ = self.updates.send(Update::Resync);
    }

    async fn apply(&self, changed: Changed, ids: &[String]) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        match changed {
            Changed::Achievements => {
                let rows = store::achievements_by_ids(&mut conn, ids).await?;
                drop(conn);
                index::add_achievements(&self.engine, rows).await?;
            }
            Changed::Meanings => {
                if let Some(model) = self.model {
                    let vectors =
                        meanings::achievement_meanings_by_ids(&mut conn, model, ids).await?;
                    self.engine.add_meanings(&vectors)?;
                }
            }
            Changed::Demands => {
                for id in ids {
                    match store::get_demand(&mut conn, id).await? {
                        Some(d) if d.is_open() => {
                            let vector = match self.model {
                                Some(model) => meanings::demand_meanings_by_ids(
                                    &mut conn,
                                    model,
                                    std::slice::from_ref(id),
                                )
                                .await?
                                .pop()
                                .map(|(_, v)| v),
                                None => None,
                            };
                            self.engine.add_open_demand_with(&demand_doc(&d), vector)?
                        }
                        _ => self.engine.remove_open_demand(id)?,
                    }
                }
            }
            Changed::Withdrawn => {
                drop(conn);
                index::remove_achievements(&self.engine, ids.to_vec()).await?;
            }
            Changed::Pairings => {
                for row in store::pairings_by_ids(&mut conn, ids).await? {
                    // No receiver is fine: nobody is watching.
                    let _ = self
                        .updates
                        .send(Update::Proposed(Arc::new(pairing_proto(&row))));
                }
            }
        }
        Ok(())
    }
}
