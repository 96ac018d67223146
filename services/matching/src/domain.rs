//! The sky net's rules, without I/O: what a valid achievement and contract are, how a pairing
//! moves, and when a later achievement earns a place among a demand's pairings.

use chrono::{DateTime, Utc};
use kechuang_platform::auth::{Role, same_person};
use kechuang_platform::error::{Error, FieldViolation, Violations};
use kechuang_platform::events::from_timestamp;
use kechuang_platform::input::{self, Text};
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::matching::{
    PairingStatus, RegisterAchievementRequest, SignContractRequest, WithdrawAchievementRequest,
};
use kechuang_vocabulary::{INDUSTRY_CHAINS, check_region_code, is_industry_chain};

pub const MAX_INSTITUTION_CHARS: usize = 100;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_ABSTRACT_CHARS: usize = 5000;
pub const MAX_KEYWORDS: usize = 20;
pub const MAX_KEYWORD_CHARS: usize = 30;
pub const MAX_CONTRACT_NO_CHARS: usize = 64;
/// How far into the future a signing time may lie: the signer's clock and ours disagree a little.
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// An achievement that passed validation, its text trimmed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAchievement {
    pub institution: String,
    pub title: String,
    pub abstract_text: String,
    pub keywords: Vec<String>,
    pub industry_chain: String,
    pub trl: i32,
    pub transfer_modes: Vec<TransferMode>,
    pub asking_price_fen: i64,
    pub region_code: String,
}

fn check_text(v: &mut Violations, field: &str, value: &str, max: usize) {
    Text::line(max).check(v, field, value);
}

/// Where a demand stands for the sky net (the `demands.status` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemandState {
    /// Receives pairings once verified.
    Open,
    Withdrawn,
    Rejected,
    /// A contract was signed on one of its pairings: no more pairings are pushed.
    Contracted,
}

impl DemandState {
    pub fn as_str(self) -> &'static str {
        match self {
            DemandState::Open => "open",
            DemandState::Withdrawn => "withdrawn",
            DemandState::Rejected => "rejected",
            DemandState::Contracted => "contracted",
        }
    }

    /// A stored value; `None` for anything the schema's CHECK would have refused.
    pub fn parse(s: &str) -> Option<DemandState> {
        [
            DemandState::Open,
            DemandState::Withdrawn,
            DemandState::Rejected,
            DemandState::Contracted,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// Open or contracted: a contract may still be signed on an accepted pairing.
    pub fn takes_contracts(self) -> bool {
        matches!(self, DemandState::Open | DemandState::Contracted)
    }
}

/// The longest reason a withdrawal may give.
pub const MAX_WITHDRAWAL_REASON_CHARS: usize = 500;
pub const MAX_ID_CHARS: usize = 100;

/// The reason of a valid withdrawal (trimmed), or every broken rule.
pub fn validate_withdrawal(req: &WithdrawAchievementRequest) -> Result<String, Error> {
    let mut v = Violations::new();
    input::check_id(&mut v, "achievement_id", &req.achievement_id, MAX_ID_CHARS);
    check_text(&mut v, "reason", &req.reason, MAX_WITHDRAWAL_REASON_CHARS);
    v.into_result()?;
    Ok(req.reason.trim().to_string())
}

/// Every broken rule of an achievement, or the achievement.
pub fn validate_achievement(
    req: &RegisterAchievementRequest,
) -> Result<NewAchievement, Vec<FieldViolation>> {
    let mut v = Violations::new();
    check_text(
        &mut v,
        "institution",
        &req.institution,
        MAX_INSTITUTION_CHARS,
    );
    check_text(&mut v, "title", &req.title, MAX_TITLE_CHARS);
    Text::paragraphs(MAX_ABSTRACT_CHARS).check(&mut v, "abstract", &req.r#abstract);
    v.check_with(
        !req.keywords.is_empty() && req.keywords.len() <= MAX_KEYWORDS,
        "keywords",
        || format!("must hold 1 to {MAX_KEYWORDS} keywords"),
    );
    if let Some(problem) = req
        .keywords
        .iter()
        .find_map(|k| Text::line(MAX_KEYWORD_CHARS).problem(k))
    {
        v.add("keywords", format!("each keyword {problem}"));
    }
    v.check_with(
        is_industry_chain(req.industry_chain.trim()),
        "industry_chain",
        || format!("must be one of {}", INDUSTRY_CHAINS.join("、")),
    );
    v.check(
        (1..=9).contains(&req.trl),
        "trl",
        "must be a technology readiness level from 1 to 9",
    );
    let modes: Vec<Option<TransferMode>> = req
        .transfer_modes
        .iter()
        .map(|m| TransferMode::try_from(*m).ok())
        .collect();
    v.check(
        !modes.is_empty(),
        "transfer_modes",
        "must name at least one transfer mode",
    );
    v.check(
        modes
            .iter()
            .all(|m| matches!(m, Some(m) if *m != TransferMode::Unspecified)),
        "transfer_modes",
        "each must be ASSIGNMENT, LICENSE, EQUITY or JOINT_DEVELOPMENT",
    );
    input::check_fen(&mut v, "asking_price_fen", req.asking_price_fen, 0);
    if let Err(why) = check_region_code(&req.region_code) {
        v.add("region_code", why);
    }
    if !v.is_empty() {
        return Err(match v.into_result() {
            Err(Error::InvalidArgument(list)) => list,
            _ => Vec::new(),
        });
    }
    let mut transfer_modes: Vec<TransferMode> = modes.into_iter().flatten().collect();
    transfer_modes.sort_by_key(|m| *m as i32);
    transfer_modes.dedup();
    Ok(NewAchievement {
        institution: req.institution.trim().to_string(),
        title: req.title.trim().to_string(),
        abstract_text: req.r#abstract.trim().to_string(),
        keywords: req.keywords.iter().map(|k| k.trim().to_string()).collect(),
        industry_chain: req.industry_chain.trim().to_string(),
        trl: req.trl,
        transfer_modes,
        asking_price_fen: req.asking_price_fen,
        region_code: req.region_code.clone(),
    })
}

/// A contract that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContract {
    pub contract_no: String,
    pub contract_type: ContractType,
    pub amount_fen: i64,
    pub signed_at: DateTime<Utc>,
}

/// Every broken rule of a contract, judged at `now`.
pub fn validate_contract(
    req: &SignContractRequest,
    now: DateTime<Utc>,
) -> Result<NewContract, Error> {
    let mut v = Violations::new();
    input::check_id(&mut v, "pairing_id", &req.pairing_id, MAX_ID_CHARS);
    check_text(
        &mut v,
        "contract_no",
        &req.contract_no,
        MAX_CONTRACT_NO_CHARS,
    );
    input::check_fen(&mut v, "amount_fen", req.amount_fen, 1);
    let contract_type = ContractType::try_from(req.contract_type)
        .ok()
        .filter(|t| *t != ContractType::Unspecified);
    v.check(
        contract_type.is_some(),
        "contract_type",
        "must be DEVELOPMENT, TRANSFER, LICENSE, CONSULTING or SERVICE",
    );
    let signed_at = req.signed_at.as_ref().and_then(from_timestamp);
    match (&req.signed_at, signed_at) {
        (None, _) => {
            v.add("signed_at", "is required");
        }
        (Some(_), None) => {
            v.add("signed_at", "is not a valid time");
        }
        (Some(_), Some(t)) => {
            v.check(
                t <= now + CLOCK_SKEW,
                "signed_at",
                "must not be in the future",
            );
        }
    }
    v.into_result()?;
    match (contract_type, signed_at) {
        (Some(contract_type), Some(signed_at)) => Ok(NewContract {
            contract_no: req.contract_no.trim().to_string(),
            contract_type,
            amount_fen: req.amount_fen,
            signed_at,
        }),
        _ => Err(Error::internal("validated contract lost a field")),
    }
}

/// Time is evidence: a contract is signed after its pairing was accepted (`accepted_at`, kept
/// when the enterprise accepted), and not in the future ([`validate_contract`]).
pub fn check_signed_after_acceptance(
    signed_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
) -> Result<(), Error> {
    let Some(accepted_at) = accepted_at else {
        return Err(Error::internal(
            "an accepted pairing without its acceptance time",
        ));
    };
    if signed_at < accepted_at {
        return Err(Error::invalid(
            "signed_at",
            format!(
                "must not be before the pairing was accepted ({})",
                accepted_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
    }
    Ok(())
}

/// What answering a pairing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The pairing moves to this status; emit its event.
    Moved(PairingStatus),
    /// The same answer was already given: nothing changes, nothing is emitted.
    Unchanged,
}

/// The longest broker subject `RespondToPairing` takes (token subjects are user names or UUIDs).
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Who facilitated a deal: the person the subsidy service rewards once the deal's contract is
/// registered and paid. Recorded on a pairing when it is accepted, copied onto its contract.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facilitator {
    /// A token subject, as the token (or the enterprise naming a broker, trimmed) spelled it;
    /// empty when nobody is known.
    pub subject: String,
    /// `broker` or `tech_manager` (the platform's role names); empty when `subject` is.
    pub role: &'static str,
}

impl Facilitator {
    /// The deal's facilitator: the broker the enterprise named, else the technology manager
    /// who verified the demand (`verified_by` of kc.demand.verified), else nobody.
    pub fn of(broker: Option<&str>, verified_by: &str) -> Self {
        let (subject, role) = match broker {
            Some(b) => (b.trim(), Role::Broker),
            None => (verified_by.trim(), Role::TechManager),
        };
        if subject.is_empty() {
            return Self::default();
        }
        Self {
            subject: subject.to_string(),
            role: role.as_str(),
        }
    }
}

/// Checks `RespondToPairingRequest.broker` (recording what is wrong under `broker`) and returns
/// the broker named, trimmed, if any. A broker is named only on an acceptance, and never the
/// caller.
///
/// Why only the caller: matching keeps no directory of people. A token names one person (its
/// subject) and their enterprise; nothing here lists who else works for an enterprise or who
/// holds the broker role, so "not one of the enterprise's own people" and "really a broker"
/// cannot be checked by this service. What it can refuse is the enterprise user naming
/// themselves (subjects compared as four eyes compares them: trimmed, case-folded); the
/// reward's payer checks the rest against what it knows before paying.
pub fn check_broker(
    v: &mut Violations,
    caller_subject: &str,
    accept: bool,
    broker: &str,
) -> Option<String> {
    if let Some(problem) = Text::line(MAX_SUBJECT_CHARS).optional().problem(broker) {
        v.add("broker", problem);
        return None;
    }
    let broker = broker.trim();
    if broker.is_empty() {
        return None;
    }
    if !accept {
        v.add(
            "broker",
            "is named only when accepting a pairing (accept is false)",
        );
        return None;
    }
    if same_person(caller_subject, broker) {
        v.add(
            "broker",
            "must not be yourself: the broker is another person, who brokered the deal",
        );
        return None;
    }
    Some(broker.to_string())
}

/// A repeated acceptance is answered with the pairing as it is, unless it names a broker other
/// than the one recorded then: the facilitator of an accepted pairing is not changed.
pub fn check_repeated_acceptance(
    recorded: &Facilitator,
    broker: Option<&str>,
) -> Result<(), Error> {
    match broker {
        Some(b) if !(recorded.role == Role::Broker.as_str() && same_person(&recorded.subject, b)) => {
            Err(Error::FailedPrecondition(
                "the pairing is already accepted; its facilitator was recorded then and is not changed"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

/// `PROPOSED → ACCEPTED | REJECTED`; repeating the answer given is a no-op.
pub fn respond(current: PairingStatus, accept: bool) -> Result<Response, Error> {
    let wanted = if accept {
        PairingStatus::Accepted
    } else {
        PairingStatus::Rejected
    };
    match current {
        PairingStatus::Proposed => Ok(Response::Moved(wanted)),
        s if s == wanted => Ok(Response::Unchanged),
        s => Err(Error::FailedPrecondition(format!(
            "the pairing is {}; only a proposed pairing can be answered",
            s.as_str_name()
        ))),
    }
}

/// Whether a pairing scored `score` earns a place among a demand's pairings already scored
/// `existing`: when there are fewer than `k`, or it beats the k-th best.
pub fn earns_place(existing: &[f64], k: usize, score: f64) -> bool {
    if !score.is_finite() || k == 0 {
        return false;
    }
    let mut sorted: Vec<f64> = existing.iter().copied().filter(|s| s.is_finite()).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    match sorted.get(k - 1) {
        None => true,
        Some(kth) => score > *kth,
    }
}

/// The rank (1 = best) a pairing scored `score` takes among `existing`: after every pairing
/// that scores at least as much (an earlier pairing keeps its place on a tie).
pub fn rank_among(existing: &[f64], score: f64) -> i32 {
    let ahead = existing.iter().filter(|s| **s >= score).count();
    i32::try_from(ahead + 1).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facilitator_is_the_named_broker_else_the_verifier() {
        let named = Facilitator::of(Some(" 经纪人·刘 "), "tm.zhao");
        assert_eq!(
            (named.subject.as_str(), named.role),
            ("经纪人·刘", "broker")
        );
        let verifier = Facilitator::of(None, "tm.zhao");
        assert_eq!(
            (verifier.subject.as_str(), verifier.role),
            ("tm.zhao", "tech_manager")
        );
        assert_eq!(Facilitator::of(None, " "), Facilitator::default());
    }

    #[test]
    fn a_broker_is_checked_trimmed_on_acceptances_only_and_never_the_caller() {
        let check = |caller: &str, accept: bool, broker: &str| {
            let mut v = Violations::new();
            let named = check_broker(&mut v, caller, accept, broker);
            (named, v.into_result().err().map(|e| e.to_string()))
        };
        assert_eq!(check("a", true, ""), (None, None));
        assert_eq!(check("a", false, "  "), (None, None));
        assert_eq!(
            check("a", true, " 经纪人·刘 "),
            (Some("经纪人·刘".into()), None)
        );
        for (caller, accept, broker) in [
            ("a", false, "经纪人·刘"),
            (" Zhang.Jingli", true, "zhang.jingli "),
            ("a", true, "bad\u{0}name"),
            ("a", true, "two\nlines"),
            ("a", true, &"长".repeat(MAX_SUBJECT_CHARS + 1)),
        ] {
            let (named, problem) = check(caller, accept, broker);
            assert_eq!(named, None, "{broker:?}");
            assert!(problem.unwrap().contains("broker"), "{broker:?}");
        }
    }

    #[test]
    fn a_repeated_acceptance_keeps_its_facilitator() {
        let broker = Facilitator::of(Some("经纪人·刘"), "tm.zhao");
        let verifier = Facilitator::of(None, "tm.zhao");
        assert!(check_repeated_acceptance(&broker, None).is_ok());
        assert!(check_repeated_acceptance(&broker, Some("经纪人·刘")).is_ok());
        assert!(check_repeated_acceptance(&broker, Some("经纪人·王")).is_err());
        assert!(check_repeated_acceptance(&verifier, None).is_ok());
        assert!(check_repeated_acceptance(&verifier, Some("tm.zhao")).is_err());
    }

    #[test]
    fn demand_states_read_back_what_is_stored() {
        for d in [
            DemandState::Open,
            DemandState::Withdrawn,
            DemandState::Rejected,
            DemandState::Contracted,
        ] {
            assert_eq!(DemandState::parse(d.as_str()), Some(d));
        }
        assert_eq!(DemandState::parse("OPEN"), None);
        assert!(DemandState::Contracted.takes_contracts());
        assert!(!DemandState::Withdrawn.takes_contracts());
    }

    #[test]
    fn a_withdrawal_needs_an_id_and_a_clean_reason() {
        let ok = WithdrawAchievementRequest {
            achievement_id: "a-1".into(),
            reason: "  专利已转让  ".into(),
        };
        assert_eq!(validate_withdrawal(&ok).unwrap(), "专利已转让");
        let fields = |r: WithdrawAchievementRequest| match validate_withdrawal(&r) {
            Err(Error::InvalidArgument(v)) => v.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let bad = WithdrawAchievementRequest {
            achievement_id: String::new(),
            reason: "x\0y".into(),
        };
        assert_eq!(fields(bad), ["achievement_id", "reason"]);
        let long = WithdrawAchievementRequest {
            achievement_id: "a".repeat(101),
            reason: "理".repeat(MAX_WITHDRAWAL_REASON_CHARS + 1),
        };
        assert_eq!(fields(long), ["achievement_id", "reason"]);
    }
    use proptest::prelude::*;

    fn good() -> RegisterAchievementRequest {
        RegisterAchievementRequest {
            request_id: String::new(),
            institution: "华中科技大学".into(),
            title: "激光-电弧复合焊接工艺参数自适应调控".into(),
            r#abstract: "基于熔池视觉的焊接参数闭环调控，降低气孔率。".into(),
            keywords: vec!["激光焊接".into(), "气孔".into()],
            industry_chain: "高端装备".into(),
            trl: 6,
            transfer_modes: vec![
                TransferMode::License as i32,
                TransferMode::Assignment as i32,
            ],
            asking_price_fen: 50_000_000,
            region_code: "420100".into(),
            validate_only: false,
        }
    }

    type Breaker = fn(&mut RegisterAchievementRequest);

    fn fields(r: RegisterAchievementRequest) -> Vec<String> {
        validate_achievement(&r)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_good_achievement_is_trimmed_and_its_modes_sorted() {
        let mut r = good();
        r.title = "  激光焊接 ".into();
        let a = validate_achievement(&r).unwrap();
        assert_eq!(a.title, "激光焊接");
        assert_eq!(
            a.transfer_modes,
            [TransferMode::Assignment, TransferMode::License]
        );
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(Breaker, &str)> = vec![
            (|r| r.institution = " ".into(), "institution"),
            (|r| r.title = "题".repeat(201), "title"),
            (|r| r.r#abstract = String::new(), "abstract"),
            (|r| r.keywords.clear(), "keywords"),
            (|r| r.keywords = vec!["词".repeat(31)], "keywords"),
            (|r| r.keywords = vec!["k".into(); 21], "keywords"),
            (|r| r.industry_chain = "房地产".into(), "industry_chain"),
            (|r| r.trl = 0, "trl"),
            (|r| r.trl = 10, "trl"),
            (|r| r.transfer_modes.clear(), "transfer_modes"),
            (|r| r.transfer_modes = vec![0], "transfer_modes"),
            (|r| r.transfer_modes = vec![99], "transfer_modes"),
            (|r| r.asking_price_fen = -1, "asking_price_fen"),
            (|r| r.region_code = "4201".into(), "region_code"),
            (|r| r.region_code = "990100".into(), "region_code"),
        ];
        for (break_it, field) in cases {
            let mut r = good();
            break_it(&mut r);
            assert_eq!(fields(r), [field], "breaking {field}");
        }
    }

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let mut r = good();
        r.title.clear();
        r.trl = 0;
        assert_eq!(fields(r), ["title", "trl"]);
    }

    fn contract(now: DateTime<Utc>) -> SignContractRequest {
        SignContractRequest {
            request_id: String::new(),
            pairing_id: "p1".into(),
            contract_no: "2026420100000001".into(),
            contract_type: ContractType::Transfer as i32,
            amount_fen: 10_000_000,
            signed_at: Some(kechuang_platform::events::timestamp(now)),
        }
    }

    #[test]
    fn contracts_need_an_amount_a_type_and_a_past_signing() {
        let now = Utc::now();
        assert!(validate_contract(&contract(now), now).is_ok());
        let field = |r: SignContractRequest| match validate_contract(&r, now) {
            Err(Error::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let mut r = contract(now);
        r.amount_fen = 0;
        assert_eq!(field(r), ["amount_fen"]);
        let mut r = contract(now);
        r.contract_type = 0;
        assert_eq!(field(r), ["contract_type"]);
        let mut r = contract(now + chrono::Duration::hours(1));
        r.contract_no = " ".into();
        assert_eq!(field(r), ["contract_no", "signed_at"]);
        let mut r = contract(now);
        r.signed_at = None;
        assert_eq!(field(r), ["signed_at"]);
    }

    #[test]
    fn a_signing_lies_between_the_acceptance_and_now_give_or_take_the_skew() {
        let now = Utc::now();
        let accepted = now - chrono::Duration::hours(2);
        let at = |t: DateTime<Utc>| {
            let mut r = contract(t);
            r.signed_at = Some(kechuang_platform::events::timestamp(t));
            validate_contract(&r, now)
                .and_then(|c| check_signed_after_acceptance(c.signed_at, Some(accepted)))
        };
        assert!(at(accepted).is_ok());
        assert!(at(now).is_ok());
        assert!(at(now + CLOCK_SKEW).is_ok(), "within the clock skew");
        let year_one = chrono::NaiveDate::from_ymd_opt(1, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        for bad in [
            year_one,
            accepted - chrono::Duration::days(730),
            accepted - chrono::Duration::microseconds(1),
            now + CLOCK_SKEW + chrono::Duration::seconds(1),
        ] {
            match at(bad) {
                Err(Error::InvalidArgument(v)) => assert_eq!(v[0].field, "signed_at", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(
            check_signed_after_acceptance(now, None),
            Err(Error::Internal(_))
        ));
    }

    proptest::proptest! {
        /// Whatever the times, a signing passes exactly when it lies in [accepted, now + skew].
        #[test]
        fn signing_times_pass_exactly_inside_the_window(
            accepted_s in -62_000_000_000i64..4_000_000_000,
            offset_s in -100_000_000i64..100_000_000,
            lag_s in 0i64..100_000_000,
        ) {
            let accepted = DateTime::from_timestamp(accepted_s, 0).unwrap();
            let now = accepted + chrono::Duration::seconds(lag_s);
            let signed = accepted + chrono::Duration::seconds(offset_s);
            let mut r = contract(signed);
            r.signed_at = Some(kechuang_platform::events::timestamp(signed));
            let ok = validate_contract(&r, now)
                .and_then(|c| check_signed_after_acceptance(c.signed_at, Some(accepted)))
                .is_ok();
            proptest::prop_assert_eq!(ok, signed >= accepted && signed <= now + CLOCK_SKEW);
        }
    }

    #[test]
    fn only_a_proposed_pairing_can_be_answered() {
        assert_eq!(
            respond(PairingStatus::Proposed, true).unwrap(),
            Response::Moved(PairingStatus::Accepted)
        );
        assert_eq!(
            respond(PairingStatus::Accepted, true).unwrap(),
            Response::Unchanged
        );
        assert!(respond(PairingStatus::Accepted, false).is_err());
        assert!(respond(PairingStatus::Expired, true).is_err());
    }

    #[test]
    fn a_late_achievement_must_beat_the_kth_pairing() {
        assert!(earns_place(&[0.9, 0.5], 3, 0.1));
        assert!(earns_place(&[0.9, 0.5, 0.4], 3, 0.45));
        assert!(!earns_place(&[0.9, 0.5, 0.4], 3, 0.4));
        assert!(!earns_place(&[], 3, f64::NAN));
        assert_eq!(rank_among(&[0.9, 0.5, 0.4], 0.45), 3);
        assert_eq!(rank_among(&[0.9, 0.5, 0.4], 0.95), 1);
        assert_eq!(rank_among(&[0.9, 0.5], 0.5), 3);
    }

    proptest! {
        #[test]
        fn a_place_is_earned_exactly_when_the_rank_is_within_k(
            existing in proptest::collection::vec(0.0f64..1.0, 0..12),
            k in 1usize..8,
            score in 0.0f64..1.0,
        ) {
            let rank = rank_among(&existing, score) as usize;
            // Ties do not earn a place; strictly better does.
            let strictly_ahead = existing.iter().filter(|s| **s > score).count();
            if earns_place(&existing, k, score) {
                prop_assert!(strictly_ahead < k);
            } else {
                prop_assert!(rank > k);
            }
        }

        #[test]
        fn validation_never_panics(title in ".{0,300}", trl in any::<i32>(), modes in proptest::collection::vec(any::<i32>(), 0..4), region in ".{0,8}") {
            let mut r = good();
            r.title = title;
            r.trl = trl;
            r.transfer_modes = modes;
            r.region_code = region;
            let _ = validate_achievement(&r);
        }
    }
}
