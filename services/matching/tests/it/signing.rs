//! Time is evidence (issue 20, item 2): a contract is signed after its pairing was accepted,
//! and not in the future.

use crate::contracts::{paired, respond};
use crate::helpers::*;
use chrono::{Duration, NaiveDate, Utc};
use kechuang_platform::error::field_violations;
use kechuang_platform::events::{from_timestamp, timestamp};
use kechuang_platform::testing::authed;
use kechuang_proto::common::ContractType;
use kechuang_proto::matching::SignContractRequest;
use matching::domain::CLOCK_SKEW;
use tonic::Code;

fn contract(pairing_id: &str, no: &str, at: chrono::DateTime<Utc>) -> SignContractRequest {
    SignContractRequest {
        request_id: String::new(),
        pairing_id: pairing_id.into(),
        contract_no: no.into(),
        contract_type: ContractType::Transfer as i32,
        amount_fen: 20_000_000,
        signed_at: Some(timestamp(at)),
    }
}

#[tokio::test]
async fn backdated_or_future_signings_are_refused_naming_signed_at() {
    let svc = start().await;
    let pairings = paired(&svc).await;
    let mut client = matching(&svc).await;
    let accepted = client
        .respond_to_pairing(authed(respond(&pairings[0].id, true), &enterprise(&svc)))
        .await
        .unwrap()
        .into_inner();
    let accepted_at = accepted
        .accept_time
        .as_ref()
        .and_then(from_timestamp)
        .expect("an accepted pairing says when");
    assert!(accepted_at <= Utc::now());
    assert!(
        pairings[1].accept_time.is_none(),
        "a proposal was not accepted"
    );

    let year_one = NaiveDate::from_ymd_opt(1, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    for (i, at) in [
        year_one,
        accepted_at - Duration::days(730),
        accepted_at - Duration::seconds(1),
        Utc::now() + CLOCK_SKEW + Duration::minutes(5),
    ]
    .into_iter()
    .enumerate()
    {
        let refused = client
            .sign_contract(authed(
                contract(&accepted.id, &format!("HT-BAD-{i}"), at),
                &enterprise(&svc),
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{at}: {refused:?}");
        let fields: Vec<String> = field_violations(&refused)
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(fields, ["signed_at"], "{at}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM contracts")
        .fetch_one(&svc.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing half-written");

    // The very moment of the acceptance is fine.
    let signed = client
        .sign_contract(authed(
            contract(&accepted.id, "HT-OK-1", accepted_at),
            &enterprise(&svc),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        signed.signed_at.as_ref().and_then(from_timestamp),
        Some(accepted_at)
    );
    svc.stop().await;
}
