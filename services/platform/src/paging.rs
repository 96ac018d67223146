//! AIP-158 pagination: a page size clamped to a maximum and an opaque page token carrying the
//! position after the last item returned (keyset pagination: stable under inserts).

use crate::error::Error;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// The page size to use: the default for 0, at most [`MAX_PAGE_SIZE`]; negative is refused.
pub fn page_size(requested: i32) -> Result<i64, Error> {
    match requested {
        n if n < 0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok(i64::from(n).min(MAX_PAGE_SIZE)),
    }
}

#[derive(Serialize, Deserialize)]
struct Token<C> {
    /// What the listing was filtered by: a token is only valid for the same query.
    q: String,
    c: C,
}

/// Encodes a cursor (the sort key of the last item returned) for the query `query`.
pub fn encode_token<C: Serialize>(query: &str, cursor: &C) -> String {
    let json = serde_json::to_vec(&Token {
        q: query.to_string(),
        c: cursor,
    })
    .expect("cursors serialize");
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a page token; `None` for the first page. A token from another query, or one that
/// was tampered with, is `INVALID_ARGUMENT` on `page_token`.
pub fn decode_token<C: DeserializeOwned>(query: &str, token: &str) -> Result<Option<C>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token", "is not a token this listing returned");
    if token.len() > 4096 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let parsed: Token<C> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if parsed.q != query {
        return Err(Error::invalid(
            "page_token",
            "belongs to a listing with other filters",
        ));
    }
    Ok(Some(parsed.c))
}

/// Cuts rows fetched with `limit + 1` (one extra row tells whether more follow) down to the
/// page, with the token for the next one (empty on the last page).
pub fn finish<T, C: Serialize>(
    mut rows: Vec<T>,
    limit: i64,
    query: &str,
    cursor: impl Fn(&T) -> C,
) -> (Vec<T>, String) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let token = match (more, rows.last()) {
        (true, Some(last)) => encode_token(query, &cursor(last)),
        _ => String::new(),
    };
    (rows, token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn page_sizes_are_clamped() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(10).unwrap(), 10);
        assert_eq!(page_size(1_000_000).unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn a_token_only_fits_its_own_query() {
        let token = encode_token("status=1", &(17i64, "d-9".to_string()));
        let cursor: Option<(i64, String)> = decode_token("status=1", &token).unwrap();
        assert_eq!(cursor, Some((17, "d-9".into())));
        assert!(decode_token::<(i64, String)>("status=2", &token).is_err());
        assert!(decode_token::<(i64, String)>("status=1", "!!").is_err());
        assert_eq!(decode_token::<(i64, String)>("status=1", "").unwrap(), None);
    }

    #[test]
    fn finish_cuts_the_extra_row_and_tokens_only_when_more_follow() {
        let (page, token) = finish(vec![1, 2, 3], 2, "q", |x| *x);
        assert_eq!(page, [1, 2]);
        assert_eq!(decode_token::<i32>("q", &token).unwrap(), Some(2));
        let (page, token) = finish(vec![1, 2], 2, "q", |x| *x);
        assert_eq!((page.len(), token.as_str()), (2, ""));
    }

    proptest! {
        #[test]
        fn tokens_round_trip(a in any::<i64>(), b in ".{0,40}", q in ".{0,20}") {
            let token = encode_token(&q, &(a, b.clone()));
            prop_assert_eq!(decode_token::<(i64, String)>(&q, &token).unwrap(), Some((a, b)));
        }

        #[test]
        fn garbage_never_panics(s in ".{0,64}") {
            let _ = decode_token::<(i64, String)>("q", &s);
        }
    }
}
