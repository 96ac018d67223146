//! Every string and money field of every write, given what an attacker would send: a NUL byte,
//! terminal escapes, a bidi override, a megabyte, `i64::MAX`, a negative amount. Each answer is
//! INVALID_ARGUMENT naming the field, with a short message, and nothing is stored.

use kechuang_e2e::books::Books;
use kechuang_e2e::{Api, TestPlatform, authed, settings};
use kechuang_platform::Role;
use kechuang_platform::error::field_violations;
use kechuang_platform::events::timestamp;
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::demand as dpb;
use kechuang_proto::fund as fpb;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;
use tonic::{Code, Response, Status};

const ENTERPRISE: &str = "91420100MA4KXXXX0X";

fn bad_strings() -> Vec<(&'static str, String)> {
    vec![
        ("NUL", "焊缝\0气孔".into()),
        ("ESC", "a\u{1b}[2Jb".into()),
        ("BEL", "ding\u{7}".into()),
        ("bidi override", "abc\u{202e}cba".into()),
        ("a megabyte", "x".repeat(1_000_000)),
    ]
}

const BAD_FEN: [(&str, i64); 3] = [
    ("negative", -1),
    ("i64::MAX", i64::MAX),
    ("over 10^13", 10_000_000_000_001),
];

/// The call was refused as the caller's error, naming `field`, with a short message.
fn refused<T>(what: &str, field: &str, answer: Result<Response<T>, Status>) {
    let Err(status) = answer else {
        panic!("{what}: accepted");
    };
    let shown: String = status.message().chars().take(200).collect();
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {shown}");
    assert!(
        status.message().chars().count() <= 501,
        "{what}: a message of {} characters",
        status.message().chars().count()
    );
    let fields: Vec<String> = field_violations(&status).into_iter().map(|f| f.0).collect();
    assert!(
        fields
            .iter()
            .any(|f| f == field || f.starts_with(&format!("{field}["))),
        "{what}: violations name {fields:?}, not {field}"
    );
}

#[tokio::test]
async fn hostile_strings_and_amounts_are_refused_field_by_field_and_store_nothing() {
    // Hundreds of writes from a few callers in a moment: the write rate (tested on its own)
    // would answer some of them before validation does.
    let p = TestPlatform::start_with(kechuang_platform::Settings {
        writes_per_second: 0,
        ..settings()
    })
    .await;
    let api = p.api();
    let books = Books::open(&p.settings).await;
    books.quiesce().await;
    let before = books.events_written().await;

    demand_intake(&api).await;
    catalog_and_matching(&api).await;
    subsidy(&api).await;
    policy(&api).await;
    fund(&api).await;

    books.quiesce().await;
    assert_eq!(books.events_written().await, before, "nothing was stored");
    books.close().await;
    p.stop().await;
}

async fn demand_intake(api: &Api) {
    let manager = api.token(Role::TechManager, "周经理", None);
    let enterprise = api.token(Role::Enterprise, "刘总", Some(ENTERPRISE));
    let register = dpb::RegisterEnterpriseRequest {
        name: "武汉焊接科技有限公司".into(),
        credit_code: ENTERPRISE.into(),
        region_code: "420100".into(),
        industry_chain: "高端装备".into(),
    };
    let submit = dpb::SubmitDemandRequest {
        request_id: "bad-input-1".into(),
        enterprise_id: ENTERPRISE.into(),
        title: "焊缝气孔多返修率高".into(),
        description: "我公司焊缝经常出现气孔，返修率高，希望引进新工艺。".into(),
        industry_chain: "高端装备".into(),
        contract_type: ContractType::Development as i32,
        budget_min_fen: 0,
        budget_max_fen: 50_000_000,
        region_code: "420100".into(),
        deadline: Some(timestamp(chrono::Utc::now() + chrono::Duration::days(30))),
    };
    for (label, bad) in bad_strings() {
        let what = |f: &str| format!("RegisterEnterprise.{f} with {label}");
        for field in ["name", "credit_code", "region_code", "industry_chain"] {
            let mut r = register.clone();
            match field {
                "name" => r.name = bad.clone(),
                "credit_code" => r.credit_code = bad.clone(),
                "region_code" => r.region_code = bad.clone(),
                _ => r.industry_chain = bad.clone(),
            }
            let answer = api.demands().register_enterprise(authed(r, &manager)).await;
            refused(&what(field), field, answer);
        }
        for field in [
            "request_id",
            "title",
            "description",
            "industry_chain",
            "region_code",
        ] {
            let mut r = submit.clone();
            match field {
                "request_id" => r.request_id = bad.clone(),
                "title" => r.title = bad.clone(),
                "description" => r.description = bad.clone(),
                "industry_chain" => r.industry_chain = bad.clone(),
                _ => r.region_code = bad.clone(),
            }
            let answer = api.demands().submit_demand(authed(r, &enterprise)).await;
            refused(&format!("SubmitDemand.{field} with {label}"), field, answer);
        }
        let verify = dpb::VerifyDemandRequest {
            demand_id: "d-unknown".into(),
            approve: false,
            note: bad.clone(),
        };
        let answer = api.demands().verify_demand(authed(verify, &manager)).await;
        refused(&format!("VerifyDemand.note with {label}"), "note", answer);
        let withdraw = dpb::WithdrawDemandRequest {
            demand_id: bad.clone(),
            reason: "不再需要".into(),
        };
        let answer = api
            .demands()
            .withdraw_demand(authed(withdraw, &enterprise))
            .await;
        refused(
            &format!("WithdrawDemand.demand_id with {label}"),
            "demand_id",
            answer,
        );
    }
    for (label, fen) in BAD_FEN {
        for field in ["budget_min_fen", "budget_max_fen"] {
            let mut r = submit.clone();
            if field == "budget_min_fen" {
                r.budget_min_fen = fen;
            } else {
                r.budget_max_fen = fen;
            }
            let answer = api.demands().submit_demand(authed(r, &enterprise)).await;
            refused(&format!("SubmitDemand.{field} {label}"), field, answer);
        }
    }
}

async fn catalog_and_matching(api: &Api) {
    let supplier = api.token(Role::Supplier, "华中科技大学", None);
    let enterprise = api.token(Role::Enterprise, "刘总", Some(ENTERPRISE));
    let achievement = mpb::RegisterAchievementRequest {
        request_id: "bad-input-a".into(),
        institution: "华中科技大学".into(),
        title: "激光-电弧复合焊接工艺".into(),
        r#abstract: "激光-电弧复合焊接工艺参数自适应调控，减少焊缝气孔。".into(),
        keywords: vec!["焊接".into(), "气孔".into()],
        industry_chain: "高端装备".into(),
        trl: 7,
        transfer_modes: vec![TransferMode::License as i32],
        asking_price_fen: 50_000_000,
        region_code: "420100".into(),
        validate_only: false,
    };
    let sign = mpb::SignContractRequest {
        request_id: "bad-input-c".into(),
        pairing_id: "p-unknown".into(),
        contract_no: "鄂技开2026-0001".into(),
        contract_type: ContractType::Development as i32,
        amount_fen: 50_000_000,
        signed_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::hours(1))),
    };
    for (label, bad) in bad_strings() {
        for field in [
            "request_id",
            "institution",
            "title",
            "abstract",
            "keywords",
            "industry_chain",
            "region_code",
        ] {
            let mut r = achievement.clone();
            match field {
                "request_id" => r.request_id = bad.clone(),
                "institution" => r.institution = bad.clone(),
                "title" => r.title = bad.clone(),
                "abstract" => r.r#abstract = bad.clone(),
                "keywords" => r.keywords = vec!["焊接".into(), bad.clone()],
                "industry_chain" => r.industry_chain = bad.clone(),
                _ => r.region_code = bad.clone(),
            }
            let answer = api
                .catalog()
                .register_achievement(authed(r, &supplier))
                .await;
            refused(
                &format!("RegisterAchievement.{field} with {label}"),
                field,
                answer,
            );
        }
        for field in ["request_id", "pairing_id", "contract_no"] {
            let mut r = sign.clone();
            match field {
                "request_id" => r.request_id = bad.clone(),
                "pairing_id" => r.pairing_id = bad.clone(),
                _ => r.contract_no = bad.clone(),
            }
            let answer = api.matching().sign_contract(authed(r, &enterprise)).await;
            refused(&format!("SignContract.{field} with {label}"), field, answer);
        }
        let respond = mpb::RespondToPairingRequest {
            pairing_id: "p-unknown".into(),
            accept: false,
            note: bad.clone(),
            broker: String::new(),
        };
        let answer = api
            .matching()
            .respond_to_pairing(authed(respond, &enterprise))
            .await;
        refused(
            &format!("RespondToPairing.note with {label}"),
            "note",
            answer,
        );
        let respond = mpb::RespondToPairingRequest {
            pairing_id: "p-unknown".into(),
            accept: true,
            note: String::new(),
            broker: bad.clone(),
        };
        let answer = api
            .matching()
            .respond_to_pairing(authed(respond, &enterprise))
            .await;
        refused(
            &format!("RespondToPairing.broker with {label}"),
            "broker",
            answer,
        );
    }
    for (label, fen) in BAD_FEN {
        let mut r = achievement.clone();
        r.asking_price_fen = fen;
        let answer = api
            .catalog()
            .register_achievement(authed(r, &supplier))
            .await;
        refused(
            &format!("RegisterAchievement.asking_price_fen {label}"),
            "asking_price_fen",
            answer,
        );
        let mut r = sign.clone();
        r.amount_fen = fen;
        let answer = api.matching().sign_contract(authed(r, &enterprise)).await;
        refused(
            &format!("SignContract.amount_fen {label}"),
            "amount_fen",
            answer,
        );
    }
}

async fn subsidy(api: &Api) {
    let enterprise = api.token(Role::Enterprise, "刘总", Some(ENTERPRISE));
    let approver = api.token(Role::FinanceApprover, "审批人", None);
    let payment = spb::RecordPaymentRequest {
        contract_id: "c-unknown".into(),
        amount_fen: 50_000_000,
        paid_at: Some(timestamp(chrono::Utc::now())),
        bank_reference: "CCB-0001".into(),
    };
    for (label, bad) in bad_strings() {
        for field in ["contract_id", "bank_reference"] {
            let mut r = payment.clone();
            if field == "contract_id" {
                r.contract_id = bad.clone();
            } else {
                r.bank_reference = bad.clone();
            }
            let answer = api.subsidy().record_payment(authed(r, &enterprise)).await;
            refused(
                &format!("RecordPayment.{field} with {label}"),
                field,
                answer,
            );
        }
        let approve = spb::ApproveApplicationRequest {
            id: "app-unknown".into(),
            note: bad.clone(),
        };
        let answer = api
            .subsidy()
            .approve_application(authed(approve, &approver))
            .await;
        refused(
            &format!("ApproveApplication.note with {label}"),
            "note",
            answer,
        );
        let reject = spb::RejectApplicationRequest {
            id: "app-unknown".into(),
            reason: bad.clone(),
        };
        let answer = api
            .subsidy()
            .reject_application(authed(reject, &approver))
            .await;
        refused(
            &format!("RejectApplication.reason with {label}"),
            "reason",
            answer,
        );
    }
    for (label, fen) in BAD_FEN {
        let mut r = payment.clone();
        r.amount_fen = fen;
        let answer = api.subsidy().record_payment(authed(r, &enterprise)).await;
        refused(
            &format!("RecordPayment.amount_fen {label}"),
            "amount_fen",
            answer,
        );
    }
}

async fn policy(api: &Api) {
    let officer = api.token(Role::FinanceOfficer, "王会计", None);
    let now = chrono::Utc::now();
    let create = spb::CreatePolicyRequest {
        request_id: "bad-input-p".into(),
        name: "技术合同补贴".into(),
        fund_id: "fund-default".into(),
        tiers: vec![spb::PolicyTier {
            from_cumulative_fen: 0,
            ratio_bps: 1000,
        }],
        per_contract_cap_fen: 100_000_000,
        per_enterprise_annual_cap_fen: 100_000_000,
        contract_types: vec![ContractType::Development as i32],
        region_prefixes: vec!["42".into()],
        industry_chains: vec![],
        valid_from: Some(timestamp(now)),
        valid_to: Some(timestamp(now + chrono::Duration::days(365))),
        four_eyes_threshold_fen: 10_000_000,
        claim_window_days: 365,
        subsidise_unregistered: false,
        kind: 0,
    };
    for (label, bad) in bad_strings() {
        for field in ["name", "fund_id"] {
            let mut r = create.clone();
            if field == "name" {
                r.name = bad.clone();
            } else {
                r.fund_id = bad.clone();
            }
            let answer = api.policies().create_policy(authed(r, &officer)).await;
            refused(&format!("CreatePolicy.{field} with {label}"), field, answer);
        }
    }
    for (label, fen) in BAD_FEN {
        for field in ["per_contract_cap_fen", "per_enterprise_annual_cap_fen"] {
            let mut r = create.clone();
            if field == "per_contract_cap_fen" {
                r.per_contract_cap_fen = fen;
            } else {
                r.per_enterprise_annual_cap_fen = fen;
            }
            let answer = api.policies().create_policy(authed(r, &officer)).await;
            refused(&format!("CreatePolicy.{field} {label}"), field, answer);
        }
    }
}

async fn fund(api: &Api) {
    let officer = api.token(Role::FinanceOfficer, "王会计", None);
    let create = fpb::CreateFundRequest {
        request_id: "bad-input-f".into(),
        name: "科技成果转化专项资金".into(),
        low_balance_fen: 0,
    };
    let top_up = fpb::TopUpRequest {
        fund_id: "fund-default".into(),
        amount_fen: 100,
        reference: "财预〔2026〕1号".into(),
    };
    for (label, bad) in bad_strings() {
        for field in ["request_id", "name"] {
            let mut r = create.clone();
            if field == "request_id" {
                r.request_id = bad.clone();
            } else {
                r.name = bad.clone();
            }
            let answer = api.fund().create_fund(authed(r, &officer)).await;
            refused(&format!("CreateFund.{field} with {label}"), field, answer);
        }
        for field in ["fund_id", "reference"] {
            let mut r = top_up.clone();
            if field == "fund_id" {
                r.fund_id = bad.clone();
            } else {
                r.reference = bad.clone();
            }
            let answer = api.fund().top_up(authed(r, &officer)).await;
            refused(&format!("TopUp.{field} with {label}"), field, answer);
        }
    }
    for (label, fen) in BAD_FEN {
        let mut r = top_up.clone();
        r.amount_fen = fen;
        let answer = api.fund().top_up(authed(r, &officer)).await;
        refused(&format!("TopUp.amount_fen {label}"), "amount_fen", answer);
        if !(0..=kechuang_platform::input::MAX_FEN).contains(&fen) {
            let mut r = create.clone();
            r.low_balance_fen = fen;
            let answer = api.fund().create_fund(authed(r, &officer)).await;
            refused(
                &format!("CreateFund.low_balance_fen {label}"),
                "low_balance_fen",
                answer,
            );
        }
    }
}

/// Bytes as they are: lets a test send what is not a protobuf message at all.
#[derive(Default, Clone, Copy)]
struct RawBytes;

impl tonic::codec::Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> Self::Encoder {
        RawBytes
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawBytes
    }
}

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

#[tokio::test]
async fn a_request_that_is_not_protobuf_is_the_callers_error() {
    let p = TestPlatform::start().await;
    let officer = p.token(Role::FinanceOfficer, "王会计", None);
    let channel = p.channel(kechuang_platform::ServiceKind::FundLedger).await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    // A field tag with wire type 7, which does not exist.
    let garbage = vec![0x0f, 0xff, 0xff, 0xff];
    let answer = grpc
        .unary::<Vec<u8>, Vec<u8>, RawBytes>(
            authed(garbage, &officer),
            http::uri::PathAndQuery::from_static("/kechuang.fund.v1.FundService/TopUp"),
            RawBytes,
        )
        .await;
    let status = answer.expect_err("garbage is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    p.stop().await;
}
