//! The catalog (天网): what an enterprise was paired with.

use super::Errors;
use super::extract::{Bearer, Id};
use super::types::time;
use crate::AppState;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use kechuang_proto::common::TransferMode;
use kechuang_proto::matching as mpb;
use serde::Serialize;
use utoipa::ToSchema;

/// A technology achievement (科技成果) of a university or institute.
#[derive(Debug, Serialize, ToSchema)]
pub struct Achievement {
    pub id: String,
    /// The university or institute (高校院所).
    pub institution: String,
    pub title: String,
    #[serde(rename = "abstract")]
    #[schema(rename = "abstract")]
    pub abstract_text: String,
    pub keywords: Vec<String>,
    pub industry_chain: String,
    /// Technology readiness level, 1 to 9.
    pub trl: i32,
    /// ASSIGNMENT, LICENSE, EQUITY or JOINT_DEVELOPMENT.
    pub transfer_modes: Vec<String>,
    pub asking_price_fen: i64,
    pub region_code: String,
    pub create_time: Option<DateTime<Utc>>,
    /// Set once the supplier withdrew it.
    pub withdraw_time: Option<DateTime<Utc>>,
}

fn transfer_mode(mode: i32) -> Option<String> {
    let name = match TransferMode::try_from(mode).ok()? {
        TransferMode::Assignment => "ASSIGNMENT",
        TransferMode::License => "LICENSE",
        TransferMode::Equity => "EQUITY",
        TransferMode::JointDevelopment => "JOINT_DEVELOPMENT",
        TransferMode::Unspecified => return None,
    };
    Some(name.into())
}

impl From<mpb::Achievement> for Achievement {
    fn from(a: mpb::Achievement) -> Self {
        Self {
            id: a.id,
            institution: a.institution,
            title: a.title,
            abstract_text: a.r#abstract,
            keywords: a.keywords,
            industry_chain: a.industry_chain,
            trl: a.trl,
            transfer_modes: a
                .transfer_modes
                .into_iter()
                .filter_map(transfer_mode)
                .collect(),
            asking_price_fen: a.asking_price_fen,
            region_code: a.region_code,
            create_time: time(a.create_time),
            withdraw_time: time(a.withdraw_time),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/achievements/{achievement_id}", tag = "matching",
    params(("achievement_id" = String, Path)),
    responses((status = 200, description = "The achievement a pairing names", body = Achievement), Errors),
    security(("bearer" = [])))]
pub async fn get_achievement(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Id(achievement_id): Id,
) -> Result<Json<Achievement>, ApiError> {
    let a = s
        .upstream
        .catalog
        .clone()
        .get_achievement(authed(
            mpb::GetAchievementRequest { achievement_id },
            &token,
        )?)
        .await?;
    Ok(Json(a.into_inner().into()))
}
