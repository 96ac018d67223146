//! The domain's shared vocabulary, kept apart from the platform's plumbing (which knows no
//! domain): the industry chains it ships, unified social credit codes (GB 32100-2015),
//! administrative region codes, contract types, the default fund.

use kechuang_proto::common::{ContractType, TransferMode};

/// Hubei's key industry chains (重点产业链), the catalog `industry_chain` must name.
pub const INDUSTRY_CHAINS: &[&str] = &[
    "光电子信息",
    "新能源与智能网联汽车",
    "生命健康",
    "高端装备",
    "北斗",
    "新材料",
    "绿色化工",
    "现代农业与食品",
    "节能环保",
    "人工智能与软件",
    "集成电路",
    "航空航天",
    "数字创意",
    "现代纺织服装",
];

pub fn is_industry_chain(name: &str) -> bool {
    INDUSTRY_CHAINS.contains(&name)
}

/// The 31 characters of a credit code (no I, O, S, V, Z).
const CREDIT_CHARSET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// The check character of the first 17 characters of a credit code, if they are valid.
pub fn credit_code_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in bytes.iter().zip(CREDIT_WEIGHTS) {
        let value = CREDIT_CHARSET.iter().position(|c| c == b)? as u32;
        sum += value * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(CREDIT_CHARSET[check as usize] as char)
}

/// Why a credit code is not valid, or `Ok`.
pub fn check_credit_code(code: &str) -> Result<(), String> {
    if code.chars().count() != 18 {
        return Err("must be 18 characters".into());
    }
    if let Some(bad) = code.bytes().find(|b| !CREDIT_CHARSET.contains(b)) {
        return Err(format!(
            "contains {:?}: only digits and capital letters other than I, O, S, V, Z",
            bad as char
        ));
    }
    if !code.as_bytes()[2..8].iter().all(u8::is_ascii_digit) {
        return Err("characters 3 to 8 must be the registering region's 6-digit code".into());
    }
    let expected = credit_code_check_char(&code[..17]).expect("charset checked");
    if code.as_bytes()[17] as char != expected {
        return Err(format!(
            "check character should be {expected} (GB 32100-2015)"
        ));
    }
    Ok(())
}

/// Province-level prefixes of GB/T 2260 region codes.
const PROVINCES: &[&str] = &[
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82",
];

/// Why a region code is not valid, or `Ok`: 6 digits under a known province.
pub fn check_region_code(code: &str) -> Result<(), String> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be a 6-digit administrative region code, e.g. 420100".into());
    }
    if !PROVINCES.contains(&&code[..2]) {
        return Err(format!("{} is not a province code", &code[..2]));
    }
    Ok(())
}

/// Hubei (湖北省) region codes start with 42.
pub const HUBEI_PREFIX: &str = "42";

/// The fund the ledger seeds at start (Hubei's technology-transfer subsidy fund), which the
/// seeded policy, the console and the demo draw on unless told another.
pub const DEFAULT_FUND_ID: &str = "fund-default";

/// Hubei's prefecture-level divisions and Wuhan's districts (GB/T 2260), for showing a region
/// code by its name.
const HUBEI_REGION_NAMES: &[(&str, &str)] = &[
    ("420000", "湖北省"),
    ("420100", "武汉市"),
    ("420102", "武汉市江岸区"),
    ("420103", "武汉市江汉区"),
    ("420104", "武汉市硚口区"),
    ("420105", "武汉市汉阳区"),
    ("420106", "武汉市武昌区"),
    ("420107", "武汉市青山区"),
    ("420111", "武汉市洪山区"),
    ("420112", "武汉市东西湖区"),
    ("420113", "武汉市汉南区"),
    ("420114", "武汉市蔡甸区"),
    ("420115", "武汉市江夏区"),
    ("420116", "武汉市黄陂区"),
    ("420117", "武汉市新洲区"),
    ("420200", "黄石市"),
    ("420300", "十堰市"),
    ("420500", "宜昌市"),
    ("420600", "襄阳市"),
    ("420700", "鄂州市"),
    ("420800", "荆门市"),
    ("420900", "孝感市"),
    ("421000", "荆州市"),
    ("421100", "黄冈市"),
    ("421200", "咸宁市"),
    ("421300", "随州市"),
    ("422800", "恩施土家族苗族自治州"),
    ("429004", "仙桃市"),
    ("429005", "潜江市"),
    ("429006", "天门市"),
    ("429021", "神农架林区"),
];

/// The name of a Hubei region code: its own, else its prefecture's (a county under it), else
/// `None` (outside Hubei, or unknown).
pub fn region_name(code: &str) -> Option<&'static str> {
    let find = |c: &str| {
        HUBEI_REGION_NAMES
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, name)| *name)
    };
    if code.len() != 6 || !code.is_ascii() {
        return None;
    }
    find(code).or_else(|| find(&format!("{}00", &code[..4])))
}

/// The Chinese name of a contract type.
pub fn contract_type_name(t: ContractType) -> &'static str {
    match t {
        ContractType::Unspecified => "未指定",
        ContractType::Development => "技术开发",
        ContractType::Transfer => "技术转让",
        ContractType::License => "技术许可",
        ContractType::Consulting => "技术咨询",
        ContractType::Service => "技术服务",
    }
}

/// The Chinese name of a transfer mode.
pub fn transfer_mode_name(m: TransferMode) -> &'static str {
    match m {
        TransferMode::Unspecified => "未指定",
        TransferMode::Assignment => "转让",
        TransferMode::License => "许可",
        TransferMode::Equity => "作价投资",
        TransferMode::JointDevelopment => "合作开发",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn published_credit_codes_check_out() {
        // The standard's own example and two codes printed on real business licences.
        for code in [
            "91350100M000100Y43",
            "91110108551385082Q",
            "9144030071526726XG",
        ] {
            assert_eq!(check_credit_code(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn broken_credit_codes_are_refused_with_a_reason() {
        assert!(
            check_credit_code("91420100177672946")
                .unwrap_err()
                .contains("18")
        );
        assert!(
            check_credit_code("91420100177672946A")
                .unwrap_err()
                .contains("check character")
        );
        assert!(
            check_credit_code("9142010017767294IK")
                .unwrap_err()
                .contains("'I'")
        );
        assert!(check_credit_code("91AB0100177672946K").is_err());
    }

    #[test]
    fn region_codes() {
        assert!(check_region_code("420100").is_ok());
        assert!(check_region_code("42010").is_err());
        assert!(check_region_code("990100").is_err());
        assert!(check_region_code("42a100").is_err());
    }

    proptest! {
        #[test]
        fn any_body_with_its_check_char_is_valid(body in "[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{9}") {
            let check = credit_code_check_char(&body).unwrap();
            let code = format!("{body}{check}");
            prop_assert_eq!(check_credit_code(&code), Ok(()));
        }

        #[test]
        fn changing_one_character_breaks_the_check(body in "[0-9]{17}", pos in 0usize..17, delta in 1u8..10) {
            let code = format!("{body}{}", credit_code_check_char(&body).unwrap());
            let mut bytes = code.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(check_credit_code(&changed).is_err());
        }
    }

    #[test]
    fn hubei_regions_have_names() {
        assert_eq!(region_name("420500"), Some("宜昌市"));
        assert_eq!(region_name("420111"), Some("武汉市洪山区"));
        // A county is shown by its prefecture.
        assert_eq!(region_name("420581"), Some("宜昌市"));
        assert_eq!(region_name("110000"), None);
        assert_eq!(region_name("42"), None);
        assert_eq!(region_name("湖北省"), None);
    }
}
