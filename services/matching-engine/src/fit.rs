//! Structured fit of an achievement to a demand: industry chain, price against budget,
//! maturity, where the supplier is, and whether the contract the enterprise wants is one the
//! supplier offers. Plain data, computed without I/O; `score` turns it into numbers and
//! `reasons` into sentences.

use crate::docs::{AchievementDoc, DemandDoc};
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_vocabulary::HUBEI_PREFIX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainFit {
    Same,
    /// Chains whose technologies routinely cross (e.g. 新材料 for 新能源与智能网联汽车).
    Related,
    Different,
    /// One side did not say.
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PriceFit {
    Within,
    /// Above the budget's upper bound by `over` (a fraction of the bound: 0.5 = 50 % over).
    Above {
        over: f64,
    },
    /// 面议 (no asking price) or no budget given.
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionFit {
    SameCity,
    SameProvince,
    Elsewhere,
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContractFit {
    Compatible,
    Incompatible,
    Unknown,
}

/// Everything structural about one (demand, achievement) pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StructuredFit {
    pub chain: ChainFit,
    pub price: PriceFit,
    /// 1–9; anything else is unknown.
    pub trl: i32,
    pub region: RegionFit,
    pub contract: ContractFit,
    pub contract_type: ContractType,
}

impl StructuredFit {
    pub fn of(demand: &DemandDoc, achievement: &AchievementDoc) -> StructuredFit {
        StructuredFit {
            chain: chain_fit(&demand.industry_chain, &achievement.industry_chain),
            price: price_fit(
                achievement.asking_price_fen,
                demand.budget_min_fen,
                demand.budget_max_fen,
            ),
            trl: achievement.trl,
            region: region_fit(&demand.region_code, &achievement.region_code),
            contract: contract_fit(demand.contract_type, &achievement.transfer_modes),
            contract_type: demand.contract_type,
        }
    }
}

/// Pairs of chains whose technologies routinely serve each other. 人工智能与软件 serves all.
const RELATED_CHAINS: &[(&str, &str)] = &[
    ("光电子信息", "集成电路"),
    ("光电子信息", "北斗"),
    ("光电子信息", "数字创意"),
    ("光电子信息", "航空航天"),
    ("光电子信息", "新能源与智能网联汽车"),
    ("光电子信息", "生命健康"),
    ("新能源与智能网联汽车", "新材料"),
    ("新能源与智能网联汽车", "高端装备"),
    ("新能源与智能网联汽车", "集成电路"),
    ("新能源与智能网联汽车", "北斗"),
    ("新能源与智能网联汽车", "节能环保"),
    ("高端装备", "新材料"),
    ("高端装备", "航空航天"),
    ("高端装备", "节能环保"),
    ("高端装备", "集成电路"),
    ("新材料", "绿色化工"),
    ("新材料", "航空航天"),
    ("新材料", "现代纺织服装"),
    ("新材料", "集成电路"),
    ("新材料", "生命健康"),
    ("新材料", "节能环保"),
    ("绿色化工", "节能环保"),
    ("绿色化工", "现代农业与食品"),
    ("绿色化工", "现代纺织服装"),
    ("绿色化工", "生命健康"),
    ("现代农业与食品", "生命健康"),
    ("现代农业与食品", "北斗"),
    ("现代农业与食品", "节能环保"),
    ("航空航天", "北斗"),
];

pub fn chain_fit(demand_chain: &str, achievement_chain: &str) -> ChainFit {
    if demand_chain.is_empty() || achievement_chain.is_empty() {
        ChainFit::Unknown
    } else if demand_chain == achievement_chain {
        ChainFit::Same
    } else if demand_chain == "人工智能与软件"
        || achievement_chain == "人工智能与软件"
        || RELATED_CHAINS.iter().any(|&(a, b)| {
            (a == demand_chain && b == achievement_chain)
                || (b == demand_chain && a == achievement_chain)
        })
    {
        ChainFit::Related
    } else {
        ChainFit::Different
    }
}

pub fn price_fit(asking_fen: i64, _budget_min_fen: i64, budget_max_fen: i64) -> PriceFit {
    // Below the budget's lower bound is still affordable: a cheaper cure is no misfit.
    if asking_fen <= 0 || budget_max_fen <= 0 {
        PriceFit::Open
    } else if asking_fen <= budget_max_fen {
        PriceFit::Within
    } else {
        PriceFit::Above {
            over: (asking_fen - budget_max_fen) as f64 / budget_max_fen as f64,
        }
    }
}

fn valid_region(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Same city = same first 4 digits; same province = same first 2 digits.
pub fn region_fit(demand_region: &str, achievement_region: &str) -> RegionFit {
    if !valid_region(demand_region) || !valid_region(achievement_region) {
        RegionFit::Unknown
    } else if demand_region[..4] == achievement_region[..4] {
        RegionFit::SameCity
    } else if demand_region[..2] == achievement_region[..2] {
        RegionFit::SameProvince
    } else {
        RegionFit::Elsewhere
    }
}

/// Which transfer modes can carry a contract of this type. 技术服务 and 技术咨询 hand over no
/// rights, so any achievement can be the basis of one. 作价投资 (equity) moves the rights into a
/// company, which is signed as a 技术转让.
pub fn modes_for(contract_type: ContractType) -> &'static [TransferMode] {
    match contract_type {
        ContractType::Transfer => &[TransferMode::Assignment, TransferMode::Equity],
        ContractType::License => &[TransferMode::License],
        ContractType::Development => &[TransferMode::JointDevelopment],
        ContractType::Service | ContractType::Consulting | ContractType::Unspecified => &[],
    }
}

pub fn contract_fit(contract_type: ContractType, modes: &[TransferMode]) -> ContractFit {
    match contract_type {
        ContractType::Unspecified => ContractFit::Unknown,
        ContractType::Service | ContractType::Consulting => ContractFit::Compatible,
        _ if modes.iter().all(|m| *m == TransferMode::Unspecified) => ContractFit::Unknown,
        t if modes.iter().any(|m| modes_for(t).contains(m)) => ContractFit::Compatible,
        _ => ContractFit::Incompatible,
    }
}

/// The Chinese name of a city (地级行政区) in Hubei by the first 4 digits of its code.
pub fn hubei_city(region_code: &str) -> Option<&'static str> {
    if !valid_region(region_code) || !region_code.starts_with(HUBEI_PREFIX) {
        return None;
    }
    Some(match &region_code[..4] {
        "4201" => "武汉市",
        "4202" => "黄石市",
        "4203" => "十堰市",
        "4205" => "宜昌市",
        "4206" => "襄阳市",
        "4207" => "鄂州市",
        "4208" => "荆门市",
        "4209" => "孝感市",
        "4210" => "荆州市",
        "4211" => "黄冈市",
        "4212" => "咸宁市",
        "4213" => "随州市",
        "4228" => "恩施州",
        "4290" => match region_code {
            "429004" => "仙桃市",
            "429005" => "潜江市",
            "429006" => "天门市",
            "429021" => "神农架林区",
            _ => "省直辖县级行政区",
        },
        _ => "湖北省",
    })
}

/// Money in fen as a person reads it: "120 万元", "12.5 万元", "8000 元".
pub fn yuan_text(fen: i64) -> String {
    let yuan = fen / 100;
    if yuan >= 10_000 {
        let wan = yuan as f64 / 10_000.0;
        let s = format!("{wan:.2}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s} 万元")
    } else {
        format!("{yuan} 元")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains() {
        assert_eq!(chain_fit("高端装备", "高端装备"), ChainFit::Same);
        assert_eq!(chain_fit("新材料", "高端装备"), ChainFit::Related);
        assert_eq!(chain_fit("高端装备", "新材料"), ChainFit::Related);
        assert_eq!(chain_fit("北斗", "人工智能与软件"), ChainFit::Related);
        assert_eq!(chain_fit("生命健康", "北斗"), ChainFit::Different);
        assert_eq!(chain_fit("", "北斗"), ChainFit::Unknown);
    }

    #[test]
    fn related_chains_are_real_chain_names() {
        for (a, b) in RELATED_CHAINS {
            assert!(kechuang_vocabulary::is_industry_chain(a), "{a}");
            assert!(kechuang_vocabulary::is_industry_chain(b), "{b}");
        }
    }

    #[test]
    fn prices() {
        assert_eq!(price_fit(50, 10, 80), PriceFit::Within);
        assert_eq!(price_fit(5, 10, 80), PriceFit::Within);
        assert_eq!(price_fit(120, 10, 80), PriceFit::Above { over: 0.5 });
        assert_eq!(price_fit(0, 10, 80), PriceFit::Open);
        assert_eq!(price_fit(120, 0, 0), PriceFit::Open);
    }

    #[test]
    fn regions() {
        assert_eq!(region_fit("420100", "420111"), RegionFit::SameCity);
        assert_eq!(region_fit("420100", "420500"), RegionFit::SameProvince);
        assert_eq!(region_fit("420100", "310000"), RegionFit::Elsewhere);
        assert_eq!(region_fit("4201", "420100"), RegionFit::Unknown);
        assert_eq!(hubei_city("420111"), Some("武汉市"));
        assert_eq!(hubei_city("429004"), Some("仙桃市"));
        assert_eq!(hubei_city("310000"), None);
    }

    #[test]
    fn contract_types_against_transfer_modes() {
        use ContractType as C;
        use TransferMode as M;
        assert_eq!(
            contract_fit(C::Transfer, &[M::Assignment]),
            ContractFit::Compatible
        );
        assert_eq!(
            contract_fit(C::Transfer, &[M::License]),
            ContractFit::Incompatible
        );
        assert_eq!(
            contract_fit(C::License, &[M::License]),
            ContractFit::Compatible
        );
        assert_eq!(
            contract_fit(C::Development, &[M::JointDevelopment]),
            ContractFit::Compatible
        );
        assert_eq!(
            contract_fit(C::Development, &[M::Assignment]),
            ContractFit::Incompatible
        );
        assert_eq!(
            contract_fit(C::Service, &[M::Assignment]),
            ContractFit::Compatible
        );
        assert_eq!(contract_fit(C::Consulting, &[]), ContractFit::Compatible);
        assert_eq!(contract_fit(C::License, &[]), ContractFit::Unknown);
        assert_eq!(
            contract_fit(C::Unspecified, &[M::License]),
            ContractFit::Unknown
        );
    }

    #[test]
    fn money_reads_like_money() {
        assert_eq!(yuan_text(120_000_000), "120 万元");
        assert_eq!(yuan_text(125_000_000 / 10), "12.5 万元");
        assert_eq!(yuan_text(800_000), "8000 元");
    }
}
