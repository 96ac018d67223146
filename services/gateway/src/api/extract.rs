//! Extractors of the HTTP API whose refusals are JSON errors naming the field: a malformed
//! body, a wrong type or a bad query parameter is a 400, never a 5xx.

use crate::status::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The caller's bearer token, passed through to the services.
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <token>"))?
            .to_str()
            .map_err(|_| ApiError::unauthenticated("the Authorization header is not ASCII"))?;
        let token = kechuang_platform::auth::bearer_token(value)
            .ok_or_else(|| ApiError::unauthenticated("Authorization must be `Bearer <token>`"))?;
        Ok(Bearer(token.to_string()))
    }
}

/// A JSON body; serde's complaint is reported against the field it concerns.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::invalid(
                "body",
                "Content-Type must be application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as `T`, naming the field of the first problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let field = if path == "." || path == "?" || path.is_empty() {
            missing_field(&message).unwrap_or_else(|| "body".to_string())
        } else {
            path
        };
        ApiError::invalid(field, strip_position(&message))
    })?;
    de.end()
        .map_err(|e| ApiError::invalid("body", strip_position(&e.to_string())))?;
    Ok(parsed)
}

/// `missing field `title`` → `title`.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// serde_json appends ` at line 1 column 42`; people do not need it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Query parameters.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(v)) => Ok(Params(v)),
            Err(e) => {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                // axum names the parameter first when it knows it: `page_size: invalid digit`.
                let (field, description) = match detail.split_once(": ") {
                    Some((f, d)) if is_identifier(f) => (f.to_string(), d.to_string()),
                    _ => ("query".to_string(), detail.to_string()),
                };
                Err(ApiError::invalid(field, description))
            }
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A path segment (an id).
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|e| ApiError::invalid("path", e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::SubmitDemandBody;

    fn field_of(json: &str) -> String {
        let e = parse_json::<SubmitDemandBody>(json.as_bytes()).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        e.body.field_violations[0].field.clone()
    }

    #[test]
    fn malformed_json_and_wrong_types_name_their_field() {
        assert_eq!(field_of("{"), "body");
        assert_eq!(field_of("[]"), "body");
        assert_eq!(field_of(r#"{"request_id": 5}"#), "request_id");
        assert_eq!(field_of(r#"{"request_id":"r"}"#), "enterprise_id");
        let almost = r#"{"request_id":"r","enterprise_id":"e","title":"t","description":"d",
            "industry_chain":"北斗","contract_type":"lease","budget_min_fen":1,"budget_max_fen":2,
            "region_code":"420100","deadline":"2027-01-01T00:00:00Z"}"#;
        assert_eq!(field_of(almost), "contract_type");
        let bad_time = almost
            .replace("lease", "transfer")
            .replace("2027-01-01T00:00:00Z", "soon");
        assert_eq!(field_of(&bad_time), "deadline");
        let too_big = almost
            .replace("lease", "transfer")
            .replace(":1,", ":1e400,");
        assert_eq!(field_of(&too_big), "budget_min_fen");
        let ok = almost.replace("lease", "transfer");
        assert!(parse_json::<SubmitDemandBody>(ok.as_bytes()).is_ok());
        let trailing = format!("{ok} x");
        assert_eq!(field_of(&trailing), "body");
    }
}
