//! The catalog as its suppliers read it: their own achievements, and the open demands the sky
//! net paired with them (reverse matching), each pairing with its score and reasons.

use super::CatalogApi;
use crate::store::supplier::{self, MatchedDemandRow};
use crate::wire::{achievement_proto, pairing_proto};
use kechuang_platform::auth::{Caller, Role};
use kechuang_platform::error::Error;
use kechuang_platform::events::timestamp;
use kechuang_platform::input;
use kechuang_platform::paging::{decode_token, encode_token, page_size};
use kechuang_proto::matching::{
    ListAchievementsRequest, ListAchievementsResponse, ListMatchingDemandsRequest,
    ListMatchingDemandsResponse, MatchingDemand,
};

/// Roles that read the whole catalog (and anyone's achievements).
const CATALOG_READERS: &[Role] = &[Role::TechManager, Role::Auditor, Role::Service];
/// Each matched demand is read by its own query: keep the pages small.
const MAX_MATCHES_PER_PAGE: i64 = 100;

impl CatalogApi {
    pub(super) async fn list_mine(
        &self,
        caller: &Caller,
        req: ListAchievementsRequest,
    ) -> Result<ListAchievementsResponse, Error> {
        caller.require(&[
            Role::Supplier,
            Role::TechManager,
            Role::Auditor,
            Role::Service,
        ])?;
        // A supplier who is also a reader asked for someone's: let them; else their own.
        let whose = if caller.has_any(CATALOG_READERS) {
            Some(req.registered_by.as_str()).filter(|w| !w.is_empty())
        } else {
            Some(caller.subject.as_str())
        };
        let only = Some(req.achievement_id.as_str()).filter(|a| !a.is_empty());
        if let Some(problem) = only.and_then(|a| input::id_problem(a, crate::domain::MAX_ID_CHARS))
        {
            return Err(Error::invalid("achievement_id", problem));
        }
        let limit = page_size(req.page_size)?;
        let query = format!(
            "achievements:{}:{}",
            whose.unwrap_or("*"),
            req.achievement_id
        );
        let before: String = decode_token(&query, &req.page_token)?.unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            supplier::list_achievements(&mut conn, whose, only, &before, limit + 1).await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|a| encode_token(&query, &a.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListAchievementsResponse {
            achievements: rows.iter().map(achievement_proto).collect(),
            next_page_token,
        })
    }

    pub(super) async fn matching_demands(
        &self,
        caller: &Caller,
        req: ListMatchingDemandsRequest,
    ) -> Result<ListMatchingDemandsResponse, Error> {
        caller.require(&[Role::Supplier])?;
        let one = Some(req.achievement_id.as_str()).filter(|a| !a.is_empty());
        if let Some(problem) = one.and_then(|a| input::id_problem(a, crate::domain::MAX_ID_CHARS)) {
            return Err(Error::invalid("achievement_id", problem));
        }
        let limit = page_size(req.page_size)?.min(MAX_MATCHES_PER_PAGE);
        let query = format!("matching:{}:{}", caller.subject, req.achievement_id);
        let before: String = decode_token(&query, &req.page_token)?.unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            supplier::matching_demands(&mut conn, &caller.subject, one, &before, limit + 1).await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|(p, _)| encode_token(&query, &p.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListMatchingDemandsResponse {
            demands: rows
                .into_iter()
                .map(|(p, d)| matching_demand(pairing_proto(&p), d))
                .collect(),
            next_page_token,
        })
    }
}

fn matching_demand(
    pairing: kechuang_proto::matching::Pairing,
    d: MatchedDemandRow,
) -> MatchingDemand {
    MatchingDemand {
        pairing: Some(pairing),
        title: d.title,
        description: d.description,
        industry_chain: d.industry_chain,
        contract_type: d.contract_type,
        budget_min_fen: d.budget_min_fen,
        budget_max_fen: d.budget_max_fen,
        region_code: d.region_code,
        deadline: d.deadline.map(timestamp),
        achievement_title: d.achievement_title,
    }
}
