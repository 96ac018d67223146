use super::*;
use crate::events::NewEvent;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::events::{DemandVerified, FundReserved};

const SERVICES: [&str; 4] = ["demand-intake", "matching", "subsidy", "fund-ledger"];

fn keys(dir: &Path, own: &str) -> EventKeys {
    EventKeys::load(dir, own, &SERVICES).expect("keys load")
}

fn key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(generate(dir.path(), &SERVICES).unwrap().len(), 4);
    dir
}

fn reserved(producer: &str) -> Vec<u8> {
    NewEvent::new(
        "app-1",
        1,
        Payload::FundReserved(FundReserved {
            fund_id: "fund-default".into(),
            application_id: "app-1".into(),
            amount_fen: 100,
            ..Default::default()
        }),
    )
    .into_envelope(producer, chrono::Utc::now())
    .encode_to_vec()
}

fn sealed(keys: &EventKeys, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    keys.signer().seal(body, &mut headers);
    headers
}

#[test]
fn the_entitled_producer_signature_verifies() {
    let dir = key_dir();
    let ledger = keys(dir.path(), "fund-ledger");
    let subsidy = keys(dir.path(), "subsidy");
    let body = reserved("fund-ledger");
    let headers = sealed(&ledger, &body);
    let envelope = subsidy
        .verify("kc.fund.reserved", "kc", Some(&headers), &body)
        .expect("authentic");
    assert_eq!(envelope.event_type, "fund.reserved");
}

#[test]
fn unsigned_tampered_and_foreign_signatures_are_refused() {
    let dir = key_dir();
    let ledger = keys(dir.path(), "fund-ledger");
    let subsidy = keys(dir.path(), "subsidy");
    let body = reserved("fund-ledger");
    assert_eq!(
        subsidy.verify("kc.fund.reserved", "kc", None, &body),
        Err(Unauthentic::Unsigned)
    );
    let headers = sealed(&ledger, &body);
    let mut tampered = body.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        subsidy.verify("kc.fund.reserved", "kc", Some(&headers), &tampered),
        Err(Unauthentic::BadSignature(_))
    ));
    // A key nobody trusts, claiming to be the ledger.
    let mut forged = HeaderMap::new();
    Signer::generate("fund-ledger").seal(&body, &mut forged);
    assert!(matches!(
        subsidy.verify("kc.fund.reserved", "kc", Some(&forged), &body),
        Err(Unauthentic::BadSignature(_))
    ));
    let mut unknown = HeaderMap::new();
    unknown.insert(PRODUCER_HEADER, "bank");
    unknown.insert(SIGNATURE_HEADER, "AAAA");
    assert_eq!(
        subsidy.verify("kc.fund.reserved", "kc", Some(&unknown), &body),
        Err(Unauthentic::UnknownProducer("bank".into()))
    );
}

#[test]
fn a_genuine_service_cannot_emit_another_services_events() {
    let dir = key_dir();
    let demand = keys(dir.path(), "demand-intake");
    let subsidy = keys(dir.path(), "subsidy");
    // demand-intake signs a reservation under its own name: signed, but not entitled.
    let body = reserved("demand-intake");
    let headers = sealed(&demand, &body);
    assert!(matches!(
        subsidy.verify("kc.fund.reserved", "kc", Some(&headers), &body),
        Err(Unauthentic::NotEntitled { .. })
    ));
    // ... or under the ledger's name: the envelope and the signature disagree.
    let body = reserved("fund-ledger");
    let headers = sealed(&demand, &body);
    assert!(matches!(
        subsidy.verify("kc.fund.reserved", "kc", Some(&headers), &body),
        Err(Unauthentic::ProducerMismatch { .. })
    ));
}

#[test]
fn an_event_moved_to_another_subject_or_relabelled_is_refused() {
    let dir = key_dir();
    let ledger = keys(dir.path(), "fund-ledger");
    let body = reserved("fund-ledger");
    let headers = sealed(&ledger, &body);
    assert!(matches!(
        ledger.verify("kc.fund.posted", "kc", Some(&headers), &body),
        Err(Unauthentic::WrongSubject { .. })
    ));
    assert!(matches!(
        ledger.verify("other.fund.reserved", "kc", Some(&headers), &body),
        Err(Unauthentic::WrongSubject { .. })
    ));
    let mut envelope = Envelope::decode(body.as_slice()).unwrap();
    envelope.event_type = "fund.posted".into();
    let body = envelope.encode_to_vec();
    let headers = sealed(&ledger, &body);
    assert!(matches!(
        ledger.verify("kc.fund.posted", "kc", Some(&headers), &body),
        Err(Unauthentic::TypeMismatch { .. })
    ));
}

#[test]
fn a_verified_demand_comes_from_demand_intake_only() {
    let dir = key_dir();
    let demand = keys(dir.path(), "demand-intake");
    let matching = keys(dir.path(), "matching");
    let body = NewEvent::new("d-1", 2, Payload::DemandVerified(DemandVerified::default()))
        .into_envelope("demand-intake", chrono::Utc::now())
        .encode_to_vec();
    let headers = sealed(&demand, &body);
    assert!(
        matching
            .verify("kc.demand.verified", "kc", Some(&headers), &body)
            .is_ok()
    );
    let headers = sealed(&matching, &body);
    assert!(
        matching
            .verify("kc.demand.verified", "kc", Some(&headers), &body)
            .is_err()
    );
}

#[test]
fn keys_are_written_once_and_checked_as_pairs() {
    let dir = key_dir();
    assert!(generate(dir.path(), &SERVICES).unwrap().is_empty());
    // Another service's public key under matching's name: the pair no longer matches.
    std::fs::copy(
        dir.path().join("subsidy.pub.pem"),
        dir.path().join("matching.pub.pem"),
    )
    .unwrap();
    assert!(matches!(
        EventKeys::load(dir.path(), "matching", &SERVICES),
        Err(KeyError::Mismatch(_))
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        EventKeys::load(empty.path(), "matching", &SERVICES),
        Err(KeyError::Read { .. })
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("subsidy.key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private keys are the owner's alone");
    }
}
