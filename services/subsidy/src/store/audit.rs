use crate::domain::audit::{self, Entry, GENESIS};
use chrono::Utc;
use kechuang_platform::{Caller, Error, NewEvent, outbox};
use kechuang_proto::events::{AuditAnchored, envelope::Payload};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Queues one finance action for the trail, in the caller's transaction: it commits or rolls
/// back with the action. No lock: [`integrate`] links what committed into the chain, in queue
/// order, soon after (a background task) and before anyone reads the trail.
pub async fn append(
    conn: &mut PgConnection,
    actor: &str,
    role: &str,
    action: &str,
    target_id: &str,
    details: serde_json::Value,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO audit_queue (at, actor, role, action, target_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    .bind(actor)
    .bind(role)
    .bind(action)
    .bind(target_id)
    .bind(details.to_string())
    .execute(conn)
    .await?;
    INTEGRATOR.notify_one();
    Ok(())
}

/// One entry of [`append_all`].
pub struct NewEntry<'a> {
    pub actor: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub target_id: &'a str,
    pub details: serde_json::Value,
}

/// [`append`] for several entries, in one statement, in the order given.
pub async fn append_all(conn: &mut PgConnection, entries: &[NewEntry<'_>]) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let column =
        |f: fn(&NewEntry<'_>) -> String| -> Vec<String> { entries.iter().map(f).collect() };
    sqlx::query(
        "INSERT INTO audit_queue (at, actor, role, action, target_id, details) \
         SELECT $1, actor, role, action, target_id, details \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
              WITH ORDINALITY AS e(actor, role, action, target_id, details, n) ORDER BY n",
    )
    .bind(at)
    .bind(column(|e| e.actor.to_string()))
    .bind(column(|e| e.role.to_string()))
    .bind(column(|e| e.action.to_string()))
    .bind(column(|e| e.target_id.to_string()))
    .bind(column(|e| e.details.to_string()))
    .execute(conn)
    .await?;
    INTEGRATOR.notify_one();
    Ok(())
}

/// The most queued entries one integration moves: bounds its transaction.
const INTEGRATE_BATCH: i64 = 1000;

/// Wakes this process's integrator after an append (it looks a moment later, once the
/// appending transaction has likely committed; a periodic look catches the rest).
static INTEGRATOR: Notify = Notify::const_new();

#[derive(sqlx::FromRow)]
struct Queued {
    id: i64,
    at: String,
    actor: String,
    role: String,
    action: String,
    target_id: String,
    details: String,
}

/// The aggregate of the trail's anchors: one, so that the relay publishes them in order and
/// the latest on the bus is the latest linked.
pub const TRAIL: &str = "finance-audit-trail";

/// Links the committed queued entries into the hash chain, oldest first, and anchors the new
/// head on the bus (`kc.audit.anchored`, through the outbox); how many it linked.
/// One integrator at a time (audit_log's lock, which only integrators take), so each entry
/// is linked once: it leaves the queue in the transaction that chains it.
pub async fn integrate(conn: &mut PgConnection) -> Result<usize, Error> {
    let mut linked = 0;
    loop {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let mut queued: Vec<Queued> = sqlx::query_as(
            "DELETE FROM audit_queue WHERE id IN \
               (SELECT id FROM audit_queue ORDER BY id LIMIT $1) \
             RETURNING id, at, actor, role, action, target_id, details",
        )
        .bind(INTEGRATE_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        // RETURNING keeps no order.
        queued.sort_by_key(|q| q.id);
        if queued.is_empty() {
            tx.rollback().await?;
            return Ok(linked);
        }
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (mut sequence, mut prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
        let mut entries = Vec::with_capacity(queued.len());
        for q in queued {
            sequence += 1;
            let mut entry = Entry {
                sequence,
                at: q.at,
                actor: q.actor,
                role: q.role,
                action: q.action,
                target_id: q.target_id,
                details: q.details,
                prev_hash: prev_hash.clone(),
                hash: String::new(),
            };
            entry.hash = audit::link_hash(&prev_hash, &entry);
            prev_hash = entry.hash.clone();
            entries.push(entry);
        }
        let batch = entries.len();
        insert(&mut tx, &entries).await?;
        // The new head leaves the database in the same commit (see `audit::check_anchor`).
        let anchor = AuditAnchored {
            sequence,
            hash: prev_hash,
        };
        outbox::append(
            &mut tx,
            crate::PRODUCER,
            NewEvent::new(TRAIL, sequence, Payload::AuditAnchored(anchor)),
        )
        .await?;
        outbox::commit(tx, crate::PRODUCER).await?;
        linked += batch;
        if (batch as i64) < INTEGRATE_BATCH {
            return Ok(linked);
        }
    }
}

async fn insert(conn: &mut PgConnection, entries: &[Entry]) -> Result<(), Error> {
    let column = |f: fn(&Entry) -> &str| entries.iter().map(f).collect::<Vec<&str>>();
    let sequences: Vec<i64> = entries.iter().map(|e| e.sequence).collect();
    sqlx::query(
        "INSERT INTO audit_log (sequence, at, actor, role, action, target_id, details, prev_hash, hash) \
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
                              $6::text[], $7::text[], $8::text[], $9::text[])",
    )
    .bind(&sequences)
    .bind(column(|e| &e.at))
    .bind(column(|e| &e.actor))
    .bind(column(|e| &e.role))
    .bind(column(|e| &e.action))
    .bind(column(|e| &e.target_id))
    .bind(column(|e| &e.details))
    .bind(column(|e| &e.prev_hash))
    .bind(column(|e| &e.hash))
    .execute(conn)
    .await?;
    Ok(())
}

/// How long the integrator lets appends gather after the first wakes it: nobody waits for it
/// (every reader links the queue before it reads), and each pass is five statements, so under
/// load one pass links the entries of many commits instead of a few.
const INTEGRATE_AFTER: Duration = Duration::from_millis(50);

/// How often the integrator looks at the queue without being woken.
const INTEGRATE_EVERY: Duration = Duration::from_secs(1);

/// The integrator, until cancelled: links queued entries shortly after they are appended.
pub async fn run_integrator(pool: PgPool, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = INTEGRATOR.notified() => {
                // Let the appending transaction commit, and its neighbours join it.
                tokio::time::sleep(INTEGRATE_AFTER).await;
            }
            _ = tokio::time::sleep(INTEGRATE_EVERY) => {}
        }
        let linked = match pool.acquire().await {
            Ok(mut conn) => integrate(&mut conn).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = linked {
            tracing::warn!(error = %e, "cannot link the audit queue into the chain; retrying");
        }
    }
}

/// An action by a person.
pub async fn by(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    target_id: &str,
    details: serde_json::Value,
) -> Result<(), Error> {
    append(
        conn,
        &caller.subject,
        &caller.roles.to_string(),
        action,
        target_id,
        details,
    )
    .await
}

#[derive(sqlx::FromRow)]
struct Row {
    sequence: i64,
    at: String,
    actor: String,
    role: String,
    action: String,
    target_id: String,
    details: String,
    prev_hash: String,
    hash: String,
}

fn entry(r: Row) -> Entry {
    Entry {
        sequence: r.sequence,
        at: r.at,
        actor: r.actor,
        role: r.role,
        action: r.action,
        target_id: r.target_id,
        details: r.details,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

/// The chain from `after` on; what is still queued is linked first, so every committed
/// action is in it.
pub async fn page(conn: &mut PgConnection, after: i64, limit: i64) -> Result<Vec<Entry>, Error> {
    integrate(conn).await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT sequence, at, actor, role, action, target_id, details, prev_hash, hash FROM audit_log \
         WHERE sequence > $1 ORDER BY sequence LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(entry).collect())
}

/// Entries [`check`] reads at a time.
const CHECK_PAGE: i64 = 10_000;

/// Reads the whole trail page by page (years of entries are never held at once) and checks it
/// against `anchor` ([`audit::TrailCheck`]): how many entries there are, and the first problem
/// if any (past it, entries are only counted).
pub async fn check(
    conn: &mut PgConnection,
    anchor: Option<audit::Anchor>,
) -> Result<(i64, Result<(), (i64, String)>), Error> {
    check_in_pages(conn, anchor, CHECK_PAGE).await
}

/// [`check`], `page_size` entries at a time.
pub async fn check_in_pages(
    conn: &mut PgConnection,
    anchor: Option<audit::Anchor>,
    page_size: i64,
) -> Result<(i64, Result<(), (i64, String)>), Error> {
    let mut check = audit::TrailCheck::new(anchor);
    let mut checked = Ok(());
    let (mut after, mut count) = (0, 0);
    loop {
        let page = page(conn, after, page_size).await?;
        let Some(last) = page.last() else { break };
        after = last.sequence;
        count += page.len() as i64;
        if checked.is_ok() {
            checked = page.iter().try_for_each(|e| check.push(e));
        }
        if (page.len() as i64) < page_size {
            break;
        }
    }
    Ok((count, checked.and_then(|()| check.finish().map(|_| ()))))
}

pub async fn all(conn: &mut PgConnection) -> Result<Vec<Entry>, Error> {
    page(conn, 0, i64::MAX).await
}
