//! The OpenAPI document, generated from the handlers' annotations and the JSON types, so it
//! cannot drift from what the handlers accept and return.

use super::{catalog, demands, matching, subsidy, types::*};
use crate::status::{ErrorBody, FieldViolation};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kechuang enterprise API 科创供应链企业接口",
        description = "Demands, pairings, contracts and payments over HTTP/JSON. Money is integer fen (0.01 CNY); times are RFC 3339. Every call needs `Authorization: Bearer <token>`; errors are JSON with `field_violations` naming each wrong field.",
        version = "1"
    ),
    paths(
        demands::register_enterprise,
        demands::get_enterprise,
        demands::submit_demand,
        demands::list_demands,
        demands::get_demand,
        demands::withdraw_demand,
        matching::list_pairings,
        catalog::get_achievement,
        matching::respond_to_pairing,
        matching::sign_contract,
        matching::get_contract,
        subsidy::record_payment,
        subsidy::list_applications,
        subsidy::get_application,
    ),
    components(schemas(ErrorBody, FieldViolation, ContractType, DemandStatus, PairingStatus, ApplicationStatus, ApplicationKind)),
    modifiers(&BearerAuth),
    tags(
        (name = "demands", description = "地网: enterprises and their technology demands"),
        (name = "matching", description = "天网: pairings and contracts"),
        (name = "subsidy", description = "金网: payments and subsidy applications"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
