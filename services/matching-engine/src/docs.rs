//! What the engine matches: achievements (科技成果) from the catalog, demands (技术需求) from
//! enterprises, and the explained pairings between them.

use kechuang_proto::common::{ContractType, TransferMode};

/// One achievement in the catalog, as the engine needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct AchievementDoc {
    pub id: String,
    pub institution: String,
    pub title: String,
    pub abstract_text: String,
    pub keywords: Vec<String>,
    /// One of `kechuang_vocabulary::INDUSTRY_CHAINS`.
    pub industry_chain: String,
    /// Technology readiness level, 1–9.
    pub trl: i32,
    pub transfer_modes: Vec<TransferMode>,
    /// 0 = 面议 (price open to negotiation).
    pub asking_price_fen: i64,
    /// 6-digit administrative region code of the supplier.
    pub region_code: String,
}

/// One verified demand, as the engine needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct DemandDoc {
    pub id: String,
    pub title: String,
    pub description: String,
    pub industry_chain: String,
    pub contract_type: ContractType,
    pub budget_min_fen: i64,
    /// 0 = no budget given.
    pub budget_max_fen: i64,
    pub region_code: String,
}

/// One achievement proposed for a demand: its score and why, in Chinese.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub achievement_id: String,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// One open demand an achievement fits (reverse matching), scored as `match_demand` would.
#[derive(Clone, Debug, PartialEq)]
pub struct DemandMatch {
    pub demand_id: String,
    pub matched: Match,
}

impl AchievementDoc {
    /// The text the reasons and the verbatim checks look at: title, keywords, abstract.
    pub(crate) fn full_text(&self) -> String {
        let mut text = String::with_capacity(
            self.title.len() + self.abstract_text.len() + 16 * self.keywords.len(),
        );
        text.push_str(&self.title);
        for k in &self.keywords {
            text.push(' ');
            text.push_str(k);
        }
        text.push(' ');
        text.push_str(&self.abstract_text);
        text
    }
}

impl DemandDoc {
    pub(crate) fn full_text(&self) -> String {
        format!("{}。{}", self.title, self.description)
    }

    /// The text whose sentence embedding stands for the demand's meaning (the query side).
    pub fn meaning_text(&self) -> String {
        self.full_text()
    }
}

impl AchievementDoc {
    /// The text whose sentence embedding stands for the achievement's meaning (the passage
    /// side): what it is, its keywords, then what it solves and how.
    pub fn meaning_text(&self) -> String {
        format!(
            "{}。{}。{}",
            self.title,
            self.keywords.join("、"),
            self.abstract_text
        )
    }
}
