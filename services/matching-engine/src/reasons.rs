//! The reasons of a pairing, in Chinese, for the technology manager and the enterprise: what
//! the demand and the achievement share, which curated relation linked a symptom to a method,
//! and every structural fit and misfit.

use crate::docs::{AchievementDoc, DemandDoc};
use crate::fit::{
    ChainFit, ContractFit, PriceFit, RegionFit, StructuredFit, hubei_city, yuan_text,
};
use crate::relations::Expansion;
use kechuang_vocabulary::{contract_type_name, transfer_mode_name};

/// How many shared terms, linked symptoms, and methods per symptom the reasons list at most.
const MAX_TERMS: usize = 6;
const MAX_TRIGGERS: usize = 4;
const MAX_TARGETS: usize = 3;

/// What the text of the demand and the achievement have in common.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextEvidence {
    /// Demand terms found in the achievement, most telling first.
    pub shared_terms: Vec<String>,
    /// Curated relations whose method the achievement names verbatim, strongest first.
    pub links: Vec<Expansion>,
    /// How close the two are in meaning, where sentence embeddings say they are.
    pub meaning: Option<MeaningEvidence>,
}

/// What the sentence embeddings say of a pair.
#[derive(Clone, Debug, PartialEq)]
pub struct MeaningEvidence {
    pub cosine: f64,
    /// Close enough in meaning to say so; below that the reasons call the link ordinary.
    pub close: bool,
    /// The two share no word and no curated relation: the pairing rests on meaning alone.
    pub rests_on_meaning: bool,
    /// The achievement's sentence closest to the demand's problem, if one stands out.
    pub sentence: Option<String>,
}

pub fn reasons(
    demand: &DemandDoc,
    achievement: &AchievementDoc,
    evidence: &TextEvidence,
    fit: &StructuredFit,
    kept_as_most_relevant: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if !evidence.shared_terms.is_empty() {
        let terms: Vec<String> = evidence
            .shared_terms
            .iter()
            .take(MAX_TERMS)
            .map(|t| format!("“{t}”"))
            .collect();
        out.push(format!("需求与成果共有关键词：{}", terms.join("、")));
    }
    // One sentence per symptom, strongest first: 需求中的“废气”对应成果的“RTO”“催化燃烧”.
    let mut triggers: Vec<(&str, Vec<&str>)> = Vec::new();
    for link in &evidence.links {
        match triggers.iter_mut().find(|(t, _)| *t == link.trigger) {
            Some((_, targets)) => targets.push(&link.target),
            None => triggers.push((&link.trigger, vec![&link.target])),
        }
    }
    for (trigger, targets) in triggers.iter().take(MAX_TRIGGERS) {
        let targets: Vec<String> = targets
            .iter()
            .take(MAX_TARGETS)
            .map(|t| format!("“{t}”"))
            .collect();
        out.push(format!("需求中的“{trigger}”对应成果的{}", targets.join("")));
    }
    match &evidence.meaning {
        Some(m) if !m.close && m.rests_on_meaning => out.push(format!(
            "与需求的文字关联较弱，语义关联也一般（语义相似度 {:.2}）",
            m.cosine
        )),
        Some(m) if !m.close => out.push(format!("语义关联一般（语义相似度 {:.2}）", m.cosine)),
        Some(m) if m.rests_on_meaning => out.push(format!(
            "用词不同，但语义相近（语义相似度 {:.2}）：成果所解决的问题与需求描述的问题相符",
            m.cosine
        )),
        Some(m) => out.push(format!("语义相近（语义相似度 {:.2}）", m.cosine)),
        None if evidence.shared_terms.is_empty() && evidence.links.is_empty() => {
            out.push("与需求的文字关联较弱".into())
        }
        None => {}
    }
    if let Some(sentence) = evidence.meaning.as_ref().and_then(|m| m.sentence.as_ref()) {
        out.push(format!("成果中与需求问题最相关的一句：“{sentence}”"));
    }
    out.push(chain_reason(demand, achievement, fit.chain));
    if let Some(r) = price_reason(demand, achievement, fit.price) {
        out.push(r);
    }
    if let Some(r) = trl_reason(fit.trl) {
        out.push(r);
    }
    if let Some(r) = region_reason(achievement, fit.region) {
        out.push(r);
    }
    if let Some(r) = contract_reason(demand, achievement, fit.contract) {
        out.push(r);
    }
    if kept_as_most_relevant {
        out.push("技术内容与需求最为贴合，虽有上述不符之处，仍列入推荐".into());
    }
    out
}

fn chain_reason(demand: &DemandDoc, achievement: &AchievementDoc, chain: ChainFit) -> String {
    match chain {
        ChainFit::Same => format!("同属{}产业链", achievement.industry_chain),
        ChainFit::Related => format!(
            "产业链相关：需求属{}，成果属{}",
            demand.industry_chain, achievement.industry_chain
        ),
        ChainFit::Different => format!(
            "产业链不同：需求属{}，成果属{}",
            demand.industry_chain, achievement.industry_chain
        ),
        ChainFit::Unknown => "产业链未注明".into(),
    }
}

fn price_reason(
    demand: &DemandDoc,
    achievement: &AchievementDoc,
    price: PriceFit,
) -> Option<String> {
    let asking = yuan_text(achievement.asking_price_fen);
    Some(match price {
        PriceFit::Within if demand.budget_min_fen > 0 => format!(
            "报价 {asking}，在预算 {}–{}之内",
            yuan_text(demand.budget_min_fen).trim_end_matches(" 万元"),
            yuan_text(demand.budget_max_fen)
        ),
        PriceFit::Within => format!(
            "报价 {asking}，不超过预算上限 {}",
            yuan_text(demand.budget_max_fen)
        ),
        PriceFit::Above { .. } => format!(
            "报价 {asking}，超出预算上限 {}",
            yuan_text(demand.budget_max_fen)
        ),
        PriceFit::Open if achievement.asking_price_fen <= 0 => "报价面议".into(),
        PriceFit::Open => format!("报价 {asking}，需求未给出预算"),
    })
}

fn trl_reason(trl: i32) -> Option<String> {
    Some(match trl {
        7..=9 => format!("成熟度 TRL {trl}，可直接用于生产"),
        4..=6 => format!("成熟度 TRL {trl}，尚需中试验证"),
        1..=3 => format!("成熟度 TRL {trl}，仍处实验室阶段"),
        _ => return None,
    })
}

fn region_reason(achievement: &AchievementDoc, region: RegionFit) -> Option<String> {
    let city = hubei_city(&achievement.region_code);
    Some(match (region, city) {
        (RegionFit::SameCity, Some(c)) => format!("同城供给（{c}）"),
        (RegionFit::SameCity, None) => "同城供给".into(),
        (RegionFit::SameProvince, Some(c)) => format!("省内供给（{c}）"),
        (RegionFit::SameProvince, None) => "省内供给".into(),
        (RegionFit::Elsewhere, Some(c)) => format!("异地供给（{c}）"),
        (RegionFit::Elsewhere, None) => format!("省外供给（地区代码 {}）", achievement.region_code),
        (RegionFit::Unknown, _) => return None,
    })
}

fn contract_reason(
    demand: &DemandDoc,
    achievement: &AchievementDoc,
    contract: ContractFit,
) -> Option<String> {
    let wanted = contract_type_name(demand.contract_type);
    let modes: Vec<&str> = achievement
        .transfer_modes
        .iter()
        .map(|m| transfer_mode_name(*m))
        .collect();
    Some(match contract {
        ContractFit::Compatible if modes.is_empty() => format!("可签订{wanted}合同"),
        ContractFit::Compatible => {
            format!("可签订{wanted}合同（成果转化方式：{}）", modes.join("、"))
        }
        ContractFit::Incompatible => {
            format!("需求拟签{wanted}合同，成果仅提供{}", modes.join("、"))
        }
        ContractFit::Unknown => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kechuang_proto::common::{ContractType, TransferMode};

    fn demand() -> DemandDoc {
        DemandDoc {
            id: "d1".into(),
            title: "焊缝气孔多".into(),
            description: "焊缝经常出现气孔，返修率高".into(),
            industry_chain: "高端装备".into(),
            contract_type: ContractType::Transfer,
            budget_min_fen: 0,
            budget_max_fen: 80_000_000,
            region_code: "420100".into(),
        }
    }

    fn achievement() -> AchievementDoc {
        AchievementDoc {
            id: "a1".into(),
            institution: "华中科技大学".into(),
            title: "激光-电弧复合焊接工艺参数自适应调控".into(),
            abstract_text: "……".into(),
            keywords: vec!["激光-电弧复合焊接".into()],
            industry_chain: "高端装备".into(),
            trl: 7,
            transfer_modes: vec![TransferMode::License],
            asking_price_fen: 120_000_000,
            region_code: "420111".into(),
        }
    }

    #[test]
    fn reasons_name_links_fits_and_misfits() {
        let (d, a) = (demand(), achievement());
        let fit = StructuredFit::of(&d, &a);
        let evidence = TextEvidence {
            shared_terms: vec!["焊缝".into()],
            links: vec![
                Expansion {
                    trigger: "气孔".into(),
                    target: "激光-电弧复合焊接".into(),
                    weight: 0.9,
                },
                Expansion {
                    trigger: "返修率".into(),
                    target: "焊接工艺参数自适应".into(),
                    weight: 0.6,
                },
                Expansion {
                    trigger: "气孔".into(),
                    target: "熔池视觉监测".into(),
                    weight: 0.5,
                },
            ],
            meaning: None,
        };
        let r = reasons(&d, &a, &evidence, &fit, true);
        let want = [
            "需求与成果共有关键词：“焊缝”",
            "需求中的“气孔”对应成果的“激光-电弧复合焊接”“熔池视觉监测”",
            "需求中的“返修率”对应成果的“焊接工艺参数自适应”",
            "同属高端装备产业链",
            "报价 120 万元，超出预算上限 80 万元",
            "成熟度 TRL 7，可直接用于生产",
            "同城供给（武汉市）",
            "需求拟签技术转让合同，成果仅提供许可",
            "技术内容与需求最为贴合，虽有上述不符之处，仍列入推荐",
        ];
        assert_eq!(r, want);
    }

    #[test]
    fn fits_read_as_fits() {
        let mut d = demand();
        d.budget_min_fen = 50_000_000;
        d.budget_max_fen = 150_000_000;
        d.contract_type = ContractType::License;
        d.industry_chain = "新材料".into();
        let mut a = achievement();
        a.region_code = "420500".into();
        let fit = StructuredFit::of(&d, &a);
        let r = reasons(&d, &a, &TextEvidence::default(), &fit, false);
        assert!(r.contains(&"与需求的文字关联较弱".to_string()), "{r:?}");
        assert!(
            r.contains(&"产业链相关：需求属新材料，成果属高端装备".to_string()),
            "{r:?}"
        );
        assert!(
            r.contains(&"报价 120 万元，在预算 50–150 万元之内".to_string()),
            "{r:?}"
        );
        assert!(r.contains(&"省内供给（宜昌市）".to_string()), "{r:?}");
        assert!(
            r.contains(&"可签订技术许可合同（成果转化方式：许可）".to_string()),
            "{r:?}"
        );
    }

    #[test]
    fn negotiable_price_and_out_of_province_supply() {
        let d = demand();
        let mut a = achievement();
        a.asking_price_fen = 0;
        a.region_code = "310104".into();
        let fit = StructuredFit::of(&d, &a);
        let r = reasons(&d, &a, &TextEvidence::default(), &fit, false);
        assert!(r.contains(&"报价面议".to_string()), "{r:?}");
        assert!(
            r.contains(&"省外供给（地区代码 310104）".to_string()),
            "{r:?}"
        );
    }

    #[test]
    fn a_pairing_that_rests_on_meaning_says_so_and_quotes_its_sentence() {
        let (d, a) = (demand(), achievement());
        let fit = StructuredFit::of(&d, &a);
        let evidence = TextEvidence {
            meaning: Some(MeaningEvidence {
                cosine: 0.874,
                close: true,
                rests_on_meaning: true,
                sentence: Some("焊缝一次合格率达99.2%".into()),
            }),
            ..TextEvidence::default()
        };
        let r = reasons(&d, &a, &evidence, &fit, false);
        assert!(
            r[0].starts_with("用词不同，但语义相近（语义相似度 0.87）"),
            "{r:?}"
        );
        assert_eq!(
            r[1],
            "成果中与需求问题最相关的一句：“焊缝一次合格率达99.2%”"
        );
        assert!(!r.iter().any(|x| x.contains("文字关联较弱")));
    }
}
