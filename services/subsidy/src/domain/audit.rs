//! The finance audit trail's hash chain: each entry's hash covers the previous hash and the
//! entry, so editing, deleting or reordering any entry breaks every later link.

use sha2::{Digest, Sha256};

/// The hash of the (absent) entry before the first.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub sequence: i64,
    /// RFC 3339 with microseconds, as stored.
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target_id: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// SHA-256 over the previous hash and every field, length-prefixed so fields cannot bleed.
pub fn link_hash(prev_hash: &str, e: &Entry) -> String {
    let mut h = Sha256::new();
    for field in [
        prev_hash,
        &e.sequence.to_string(),
        &e.at,
        &e.actor,
        &e.role,
        &e.action,
        &e.target_id,
        &e.details,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the chain in sequence order: `Err((sequence, problem))` at the first broken link.
pub fn verify(entries: &[Entry]) -> Result<(), (i64, String)> {
    let mut prev = GENESIS.to_string();
    for (expected_sequence, e) in (1..).zip(entries) {
        if e.sequence != expected_sequence {
            return Err((
                e.sequence,
                format!("expected entry {expected_sequence}: an entry is missing"),
            ));
        }
        if e.prev_hash != prev {
            return Err((e.sequence, "does not link to the entry before it".into()));
        }
        if link_hash(&prev, e) != e.hash {
            return Err((e.sequence, "its content does not match its hash".into()));
        }
        prev = e.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Entry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|i| {
                let mut e = Entry {
                    sequence: i,
                    at: format!("2026-11-24T00:00:0{i}Z"),
                    actor: "wang".into(),
                    role: "finance_approver".into(),
                    action: "application.approved".into(),
                    target_id: format!("a-{i}"),
                    details: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = link_hash(&prev, &e);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_any_edit_breaks_it() {
        let entries = chain(5);
        assert_eq!(verify(&entries), Ok(()));
        let mut edited = entries.clone();
        edited[2].actor = "mallory".into();
        assert_eq!(verify(&edited).unwrap_err().0, 3);
        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted).unwrap_err().0, 3);
        let mut rehashed = entries;
        rehashed[1].details = "{\"amount\":1}".into();
        rehashed[1].hash = link_hash(&rehashed[1].prev_hash.clone(), &rehashed[1]);
        assert_eq!(
            verify(&rehashed).unwrap_err().0,
            3,
            "re-hashing one entry breaks the next link"
        );
    }
}
