//! AIP-155 idempotent creates. Inside the create's transaction: `claim` the request id; if it
//! was already used with the same body, return the existing resource instead of creating;
//! with another body, refuse.

use crate::auth::{Caller, normalised_subject};
use crate::error::Error;
use crate::locks::{LockSpace, lock};
use sqlx::PgConnection;

/// What a request id means for this create.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use: create the resource, then `record` its id.
    New,
    /// Already used with the same body: return this resource.
    Existing(String),
}

/// Whose request ids these are: one operation of one caller. A request id means something
/// only to whoever sent it, so two enterprises (or two people) using the same id never meet,
/// and nobody receives another's resource by replaying its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(String);

impl Scope {
    /// `operation` (e.g. `SignContract`) for `caller`: its enterprise when it acts for one,
    /// else its person.
    pub fn of(operation: &str, caller: &Caller) -> Self {
        Scope(match &caller.enterprise_id {
            Some(enterprise) => format!("{operation}/enterprise:{enterprise}"),
            None => format!(
                "{operation}/{}:{}",
                caller.roles,
                normalised_subject(&caller.subject)
            ),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Looks up `request_id` in `scope`, waiting on a concurrent transaction that holds the same
/// id (the advisory lock serialises two identical requests racing each other).
pub async fn claim(
    conn: &mut PgConnection,
    scope: &Scope,
    request_id: &str,
    fingerprint: &str,
) -> Result<Claim, Error> {
    check_request_id(request_id)?;
    let scope = scope.as_str();
    lock(conn, LockSpace::RequestId, &format!("{scope}/{request_id}")).await?;
    lookup(conn, scope, request_id, fingerprint).await
}

/// A request id longer than this is refused.
pub fn check_request_id(request_id: &str) -> Result<(), Error> {
    if request_id.is_empty() {
        return Ok(());
    }
    match crate::input::id_problem(request_id, 200) {
        Some(problem) => Err(Error::invalid("request_id", problem)),
        None => Ok(()),
    }
}

/// What `request_id` already stands for, without waiting for anyone.
async fn lookup(
    conn: &mut PgConnection,
    scope: &str,
    request_id: &str,
    fingerprint: &str,
) -> Result<Claim, Error> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT fingerprint, resource_id FROM idempotency_keys WHERE scope = $1 AND request_id = $2",
    )
    .bind(scope)
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Ok(Claim::New),
        Some((stored, resource_id)) => {
            same_request(&stored, fingerprint)?;
            Ok(Claim::Existing(resource_id))
        }
    }
}

/// A request id is answered with what it created only for the same body: `stored` is the
/// fingerprint it was first used with.
pub fn same_request(stored: &str, fingerprint: &str) -> Result<(), Error> {
    if stored != fingerprint {
        return Err(Error::invalid(
            "request_id",
            "was already used for a different request",
        ));
    }
    Ok(())
}

/// Records that `request_id` created `resource_id`; same transaction as the create.
pub async fn record(
    conn: &mut PgConnection,
    scope: &Scope,
    request_id: &str,
    fingerprint: &str,
    resource_id: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, request_id, fingerprint, resource_id) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(scope.as_str())
    .bind(request_id)
    .bind(fingerprint)
    .bind(resource_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stable digest of a request body (SHA-256 of its protobuf encoding), for `claim`.
pub fn fingerprint(message: &impl prost::Message) -> String {
    use sha2::Digest;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(message.encode_to_vec());
    let mut hex = String::with_capacity(digest.len() * 2);
    for b in digest {
        hex.push(HEX[usize::from(b >> 4)] as char);
        hex.push(HEX[usize::from(b & 0xf)] as char);
    }
    hex
}

/// What became of one key of [`claim_many`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchClaim {
    /// New: recorded with its resource id.
    Claimed,
    /// Used before for the same request: a repeat, nothing to write.
    Repeat,
    /// Used before for a different request.
    Conflict,
}

/// One key of a batch: request id, fingerprint of the request, the id its resource gets.
pub struct BatchKey<'a> {
    pub request_id: &'a str,
    pub fingerprint: &'a str,
    pub resource_id: &'a str,
}

/// Claims many request ids in two statements (a bulk import): records the new ones with their
/// resource ids and says, key by key, what became of each. The request ids must be distinct.
pub async fn claim_many(
    conn: &mut PgConnection,
    scope: &Scope,
    keys: &[BatchKey<'_>],
) -> Result<Vec<BatchClaim>, Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let scope = scope.as_str();
    let request_ids: Vec<&str> = keys.iter().map(|k| k.request_id).collect();
    let fingerprints: Vec<&str> = keys.iter().map(|k| k.fingerprint).collect();
    let resources: Vec<&str> = keys.iter().map(|k| k.resource_id).collect();
    let claimed: Vec<String> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (scope, request_id, fingerprint, resource_id) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[]) \
         ON CONFLICT DO NOTHING RETURNING request_id",
    )
    .bind(scope)
    .bind(&request_ids)
    .bind(&fingerprints)
    .bind(&resources)
    .fetch_all(&mut *conn)
    .await?;
    let claimed: std::collections::HashSet<String> = claimed.into_iter().collect();
    let taken: Vec<&str> = request_ids
        .iter()
        .copied()
        .filter(|r| !claimed.contains(*r))
        .collect();
    let previous: std::collections::HashMap<String, String> = if taken.is_empty() {
        Default::default()
    } else {
        sqlx::query_as::<_, (String, String)>(
            "SELECT request_id, fingerprint FROM idempotency_keys \
             WHERE scope = $1 AND request_id = ANY($2)",
        )
        .bind(scope)
        .bind(&taken)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect()
    };
    Ok(keys
        .iter()
        .map(|k| {
            if claimed.contains(k.request_id) {
                BatchClaim::Claimed
            } else if previous.get(k.request_id).map(String::as_str) == Some(k.fingerprint) {
                BatchClaim::Repeat
            } else {
                BatchClaim::Conflict
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_the_lowercase_hex_sha256_of_the_encoded_message() {
        // An empty message encodes to no bytes: SHA-256 of the empty string.
        assert_eq!(
            fingerprint(&()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // "abc" as field 1 of a message: 0x0a 0x03 'a' 'b' 'c'.
        let message = prost_types::Any {
            type_url: "abc".into(),
            value: Vec::new(),
        };
        let expected = {
            use sha2::Digest;
            sha2::Sha256::digest([0x0a, 0x03, b'a', b'b', b'c'])
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(fingerprint(&message), expected);
    }
}
