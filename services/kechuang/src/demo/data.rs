//! A realistic, deterministic data set: the same seed gives the same enterprises, demands and
//! achievements, so two demo runs (and two machines) can be compared.

use super::catalog::{CHAINS, COMPANY_WORDS, Chain, HUBEI_REGIONS, INSTITUTIONS};
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::demand::SubmitDemandRequest;
use kechuang_proto::matching::RegisterAchievementRequest;
use kechuang_vocabulary::credit_code_check_char;
use prost_types::Timestamp;
use rand::{Rng, SeedableRng, seq::IndexedRandom};
use rand_chacha::ChaCha8Rng;

/// How much to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub enterprises: usize,
    pub demands: usize,
    pub achievements: usize,
    pub fund_fen: i64,
}

impl Scale {
    /// The default: a few thousand demands, minutes on a laptop.
    pub const QUICK: Scale = Scale {
        enterprises: 1_000,
        demands: 2_000,
        achievements: 5_000,
        fund_fen: 20_000_000_000,
    };
    /// The published size of Hubei's sky net and Henan's catalog, with the 200 M yuan fund.
    pub const HUBEI: Scale = Scale {
        enterprises: 33_000,
        demands: 15_000,
        achievements: 72_000,
        fund_fen: 20_000_000_000,
    };

    /// `quick`, `hubei`, or a factor of quick such as `0.1` or `3`.
    pub fn parse(s: &str) -> Result<Scale, String> {
        match s {
            "quick" => Ok(Scale::QUICK),
            "hubei" => Ok(Scale::HUBEI),
            other => {
                let f: f64 = other
                    .parse()
                    .map_err(|_| format!("--scale {other:?}: quick, hubei or a number"))?;
                if !(0.001..=100.0).contains(&f) {
                    return Err("--scale factor must be between 0.001 and 100".into());
                }
                let n = |x: usize| ((x as f64 * f).round() as usize).max(1);
                Ok(Scale {
                    enterprises: n(1_000),
                    demands: n(2_000),
                    achievements: n(5_000),
                    fund_fen: Scale::QUICK.fund_fen,
                })
            }
        }
    }
}

pub struct EnterpriseSeed {
    pub credit_code: String,
    pub name: String,
    pub region_code: String,
    pub chain: &'static Chain,
    pub product: &'static str,
}

pub struct DemandSeed {
    pub enterprise: usize,
    pub title: String,
    pub description: String,
    pub chain: &'static str,
    pub contract_type: ContractType,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub region_code: String,
}

pub struct AchievementSeed {
    pub institution: &'static str,
    pub title: String,
    pub abstract_text: String,
    pub keywords: Vec<String>,
    pub chain: &'static str,
    pub trl: i32,
    pub transfer_modes: Vec<TransferMode>,
    pub asking_price_fen: i64,
    pub region_code: &'static str,
}

impl DemandSeed {
    /// The demand as its enterprise submits it (the demo and the bench alike).
    pub fn submission(
        &self,
        enterprise: &EnterpriseSeed,
        request_id: String,
        deadline: Timestamp,
    ) -> SubmitDemandRequest {
        SubmitDemandRequest {
            request_id,
            enterprise_id: enterprise.credit_code.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            industry_chain: self.chain.into(),
            contract_type: self.contract_type as i32,
            budget_min_fen: self.budget_min_fen,
            budget_max_fen: self.budget_max_fen,
            region_code: self.region_code.clone(),
            deadline: Some(deadline),
        }
    }
}

impl AchievementSeed {
    /// The achievement as its supplier registers it (the demo and the bench alike).
    pub fn registration(&self, request_id: String) -> RegisterAchievementRequest {
        RegisterAchievementRequest {
            request_id,
            institution: self.institution.into(),
            title: self.title.clone(),
            r#abstract: self.abstract_text.clone(),
            keywords: self.keywords.clone(),
            industry_chain: self.chain.into(),
            trl: self.trl,
            transfer_modes: self.transfer_modes.iter().map(|m| *m as i32).collect(),
            asking_price_fen: self.asking_price_fen,
            region_code: self.region_code.into(),
            validate_only: false,
        }
    }
}

pub struct DataSet {
    pub enterprises: Vec<EnterpriseSeed>,
    pub demands: Vec<DemandSeed>,
    pub achievements: Vec<AchievementSeed>,
}

const CREDIT_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A valid unified social credit code, unique per `index`.
fn credit_code(region: &str, index: usize, seed: u64) -> String {
    let mut body = format!("91{region}");
    let mut n = index as u64 + seed.wrapping_mul(7_919) % 1_000_000_000;
    for _ in 0..9 {
        body.push(CREDIT_CHARS[(n % 31) as usize] as char);
        n /= 31;
    }
    let check = credit_code_check_char(&body).expect("generated from the charset");
    format!("{body}{check}")
}

const SUFFIXES: &[&str] = &[
    "科技有限公司",
    "智能装备有限公司",
    "股份有限公司",
    "新材料有限公司",
    "生物科技有限公司",
    "工业有限公司",
];
const DEV_HINTS: &[&str] = &["联合攻关", "技术引进", "成果转让", "委托开发"];

pub fn generate(scale: Scale, seed: u64) -> DataSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let enterprises: Vec<EnterpriseSeed> = (0..scale.enterprises)
        .map(|i| {
            let (region, city) = *HUBEI_REGIONS.choose(&mut rng).expect("regions");
            let chain = CHAINS.choose(&mut rng).expect("chains");
            let product = *chain.products.choose(&mut rng).expect("products");
            let w1 = COMPANY_WORDS.choose(&mut rng).expect("words");
            let w2 = COMPANY_WORDS.choose(&mut rng).expect("words");
            let suffix = SUFFIXES.choose(&mut rng).expect("suffixes");
            EnterpriseSeed {
                credit_code: credit_code(region, i, seed),
                name: format!("{city}{w1}{w2}{suffix}（{i}）"),
                region_code: region.to_string(),
                chain,
                product,
            }
        })
        .collect();
    let demands = (0..scale.demands)
        .map(|i| {
            let e = i % enterprises.len().max(1);
            let ent = &enterprises[e];
            let case = ent.chain.cases.choose(&mut rng).expect("cases");
            let budget_max_yuan: i64 = rng.random_range(20..=500) * 10_000;
            let contract_type = *[ContractType::Development, ContractType::Transfer, ContractType::License, ContractType::Development]
                .choose(&mut rng)
                .expect("types");
            DemandSeed {
                enterprise: e,
                title: format!("{}{}", ent.product, case.symptom),
                description: format!(
                    "我公司主要生产{}。目前{}，影响交付和成本。希望通过{}{}，预算{}万元以内，希望一年内见效。",
                    ent.product,
                    case.symptom,
                    DEV_HINTS.choose(&mut rng).expect("hints"),
                    case.goal,
                    budget_max_yuan / 10_000
                ),
                chain: ent.chain.name,
                contract_type,
                budget_min_fen: budget_max_yuan * 100 / 5,
                budget_max_fen: budget_max_yuan * 100,
                region_code: ent.region_code.clone(),
            }
        })
        .collect();
    let achievements = (0..scale.achievements)
        .map(|i| {
            let chain = &CHAINS[i % CHAINS.len()];
            let case = chain.cases.choose(&mut rng).expect("cases");
            let (institution, region) = *INSTITUTIONS.choose(&mut rng).expect("institutions");
            let variant = [
                "关键技术",
                "成套工艺",
                "系统及应用",
                "装置与方法",
                "技术研究",
            ][i % 5];
            let mut modes = vec![
                *[
                    TransferMode::Assignment,
                    TransferMode::License,
                    TransferMode::JointDevelopment,
                ]
                .choose(&mut rng)
                .expect("modes"),
            ];
            if rng.random_bool(0.4) {
                modes.push(TransferMode::JointDevelopment);
                modes.dedup();
            }
            AchievementSeed {
                institution,
                title: format!("{}{}", case.method, variant),
                abstract_text: format!(
                    "本成果面向{}领域，针对{}等问题，提出{}。已在{}开展应用验证，可{}。",
                    chain.name,
                    case.symptom,
                    case.method,
                    chain.products.choose(&mut rng).expect("products"),
                    case.goal
                ),
                keywords: case.keywords.iter().map(|k| k.to_string()).collect(),
                chain: chain.name,
                trl: rng.random_range(3..=9),
                transfer_modes: modes,
                asking_price_fen: rng.random_range(10..=600) * 10_000 * 100,
                region_code: region,
            }
        })
        .collect();
    DataSet {
        enterprises,
        demands,
        achievements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kechuang_vocabulary::{check_credit_code, check_region_code, is_industry_chain};
    use std::collections::HashSet;

    #[test]
    fn the_same_seed_gives_the_same_data_and_every_record_is_valid() {
        let scale = Scale::parse("0.2").unwrap();
        let a = generate(scale, 7);
        let b = generate(scale, 7);
        assert_eq!(
            a.demands.iter().map(|d| &d.title).collect::<Vec<_>>(),
            b.demands.iter().map(|d| &d.title).collect::<Vec<_>>()
        );
        let codes: HashSet<_> = a
            .enterprises
            .iter()
            .map(|e| e.credit_code.clone())
            .collect();
        assert_eq!(codes.len(), a.enterprises.len(), "credit codes are unique");
        for e in &a.enterprises {
            assert_eq!(
                check_credit_code(&e.credit_code),
                Ok(()),
                "{}",
                e.credit_code
            );
            assert!(check_region_code(&e.region_code).is_ok());
            assert!(e.region_code.starts_with("42"));
        }
        for d in &a.demands {
            assert!(is_industry_chain(d.chain));
            assert!(d.budget_min_fen <= d.budget_max_fen);
        }
        for x in &a.achievements {
            assert!(is_industry_chain(x.chain));
            assert!((1..=9).contains(&x.trl));
        }
        let chains: HashSet<_> = a.demands.iter().map(|d| d.chain).collect();
        assert!(chains.len() >= 8);
    }

    #[test]
    fn scales_parse() {
        assert_eq!(Scale::parse("quick").unwrap(), Scale::QUICK);
        assert_eq!(Scale::parse("hubei").unwrap().demands, 15_000);
        assert_eq!(Scale::parse("0.5").unwrap().demands, 1_000);
        assert!(Scale::parse("lots").is_err());
    }
}
