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

use crate::api::pairing_proto;
use crate::engine::Engine;
use crate::index::{self, demand_doc};
use crate::store;
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
        index::rebuild(&self.pool, &self.engine).await?;
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
            let mut parts = n.payload().splitn(3, ':');
            let (Some(kind), Some(origin), Some(ids)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if kind == "a" && origin == self.replica {
                // This replica indexed them itself, right after its commit.
                continue;
            }
            let ids: Vec<String> = ids
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if ids.is_empty() {
                continue;
            }
            if let Err(e) = self.apply(kind, &ids).await {
                tracing::warn!(error = %e, kind, "cannot apply a change notification; rebuilding");
                self.reconnect_index().await;
            }
        }
    }

    async fn reconnect_index(&self) {
        if let Err(e) = index::rebuild(&self.pool, &self.engine).await {
            tracing::error!(error = %e, "cannot rebuild the matching index");
        }
        let _ = self.updates.send(Update::Resync);
    }

    async fn apply(&self, kind: &str, ids: &[String]) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        match kind {
            "a" => {
                let rows = store::achievements_by_ids(&mut conn, ids).await?;
                drop(conn);
                index::add_achievements(&self.engine, rows).await?;
            }
            "d" => {
                for id in ids {
                    match store::get_demand(&mut conn, id).await? {
                        Some(d) if d.is_open() => self.engine.add_open_demand(&demand_doc(&d))?,
                        _ => self.engine.remove_open_demand(id)?,
                    }
                }
            }
            "p" => {
                for row in store::pairings_by_ids(&mut conn, ids).await? {
                    // No receiver is fine: nobody is watching.
                    let _ = self
                        .updates
                        .send(Update::Proposed(Arc::new(pairing_proto(&row))));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
