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
    let mut check = TrailCheck::new(None);
    entries.iter().try_for_each(|e| check.push(e))?;
    check.finish().map(|_| ())
}

/// The trail's head as it was anchored outside the database (`kc.audit.anchored` on the bus).
/// A chain is only as honest as whoever can rewrite it: someone who edits an entry and
/// recomputes every later hash leaves a chain that links, but not one that still holds the
/// anchored hash at the anchored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub sequence: i64,
    pub hash: String,
}

/// Checks a trail entry by entry, in sequence order, so that a long one is read in pages and
/// never held whole: each entry must follow the one before and link to it, and the anchored
/// one (if any) must have the hash that was anchored. The first problem is the answer,
/// `Err((sequence, problem))`.
pub struct TrailCheck {
    prev: String,
    next: i64,
    anchor: Option<Anchor>,
}

impl TrailCheck {
    pub fn new(anchor: Option<Anchor>) -> Self {
        Self {
            prev: GENESIS.to_string(),
            next: 1,
            anchor,
        }
    }

    pub fn push(&mut self, e: &Entry) -> Result<(), (i64, String)> {
        if e.sequence != self.next {
            return Err((
                e.sequence,
                format!("expected entry {}: an entry is missing", self.next),
            ));
        }
        if e.prev_hash != self.prev {
            return Err((e.sequence, "does not link to the entry before it".into()));
        }
        if link_hash(&self.prev, e) != e.hash {
            return Err((e.sequence, "its content does not match its hash".into()));
        }
        if let Some(anchor) = &self.anchor
            && anchor.sequence == e.sequence
            && anchor.hash != e.hash
        {
            return Err((
                e.sequence,
                format!(
                    "entry {} no longer has the hash anchored on the bus: the trail up to it was rewritten",
                    e.sequence
                ),
            ));
        }
        self.prev = e.hash.clone();
        self.next += 1;
        Ok(())
    }

    /// After the last entry: how many there were, unless the anchor names one past the end.
    pub fn finish(self) -> Result<i64, (i64, String)> {
        let count = self.next - 1;
        match self.anchor {
            Some(anchor) if anchor.sequence > count || anchor.sequence < 1 => Err((
                anchor.sequence,
                format!(
                    "entry {} was anchored on the bus but the trail ends at {count}: entries were removed",
                    anchor.sequence
                ),
            )),
            _ => Ok(count),
        }
    }
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

    fn check_anchor(entries: &[Entry], anchor: &Anchor) -> Result<i64, (i64, String)> {
        let mut check = TrailCheck::new(Some(anchor.clone()));
        entries.iter().try_for_each(|e| check.push(e))?;
        check.finish()
    }

    #[test]
    fn a_rewritten_or_shortened_trail_no_longer_ends_in_its_anchor() {
        let entries = chain(5);
        let anchor = Anchor {
            sequence: 4,
            hash: entries[3].hash.clone(),
        };
        assert_eq!(check_anchor(&entries, &anchor), Ok(5));
        assert_eq!(check_anchor(&entries[..4], &anchor), Ok(4));

        // Entry 2 edited and every later hash recomputed: the chain links, the anchor fails.
        let mut rewritten = entries.clone();
        rewritten[1].details = "{\"amount\":1}".into();
        for i in 1..rewritten.len() {
            let prev = rewritten[i - 1].hash.clone();
            rewritten[i].prev_hash = prev.clone();
            rewritten[i].hash = link_hash(&prev, &rewritten[i]);
        }
        assert_eq!(verify(&rewritten), Ok(()));
        let (sequence, problem) = check_anchor(&rewritten, &anchor).unwrap_err();
        assert_eq!(sequence, 4);
        assert!(problem.contains("rewritten"), "{problem}");

        // The last two entries removed: the chain links, the anchor is past its end.
        let (sequence, problem) = check_anchor(&entries[..3], &anchor).unwrap_err();
        assert_eq!(sequence, 4);
        assert!(problem.contains("removed"), "{problem}");
        // An anchor that names no entry at all fails too, without panicking.
        let nonsense = Anchor {
            sequence: 0,
            hash: String::new(),
        };
        assert!(check_anchor(&entries, &nonsense).is_err());
    }
}
