//! Listing enterprises: a technology manager's own visits (地网) for the desk, anyone's for
//! the platform's readers; an enterprise sees only itself, as everywhere.

use crate::domain::access;
use crate::{store, wire};
use chrono::{DateTime, Utc};
use kechuang_platform::error::{Error, Violations};
use kechuang_platform::{Caller, paging};
use kechuang_proto::demand::{ListEnterprisesRequest, ListEnterprisesResponse};
use sqlx::PgPool;

pub async fn list(
    pool: &PgPool,
    caller: &Caller,
    req: ListEnterprisesRequest,
) -> Result<ListEnterprisesResponse, Error> {
    access::read(caller)?;
    let mut v = Violations::new();
    let limit = match paging::page_size(req.page_size) {
        Ok(n) => n,
        Err(_) => {
            v.add("page_size", "must not be negative");
            0
        }
    };
    v.check(
        req.registered_by.chars().count() <= 200,
        "registered_by",
        "must be at most 200 characters",
    );
    v.into_result()?;
    let registered_by = Some(req.registered_by.as_str()).filter(|s| !s.is_empty());
    // An enterprise's listing holds itself at most.
    let only = access::list_scope(caller);
    if !access::reads_all(caller) && only.is_none() {
        return Ok(ListEnterprisesResponse::default());
    }
    let query = format!(
        "by={};only={}",
        registered_by.unwrap_or(""),
        only.unwrap_or("")
    );
    let after = paging::decode_token::<(DateTime<Utc>, String)>(&query, &req.page_token)?;
    let mut conn = pool.acquire().await?;
    let mut rows =
        store::list_enterprises(&mut conn, registered_by, only, after, limit + 1).await?;
    let next_page_token = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|last| paging::encode_token(&query, &(last.created_at, last.id.clone())))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(ListEnterprisesResponse {
        enterprises: rows.iter().map(wire::enterprise).collect(),
        next_page_token,
    })
}
