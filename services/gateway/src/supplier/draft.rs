//! An achievement as people type it, in a form or a spreadsheet row: text, yuan, transfer
//! modes by name. The gateway reads what it must (numbers, mode names) and names the field it
//! cannot read; matching's CatalogService judges everything else.

use crate::money::hundredths;
use kechuang_proto::common::TransferMode;
use kechuang_proto::matching as mpb;

/// The four transfer modes: the number, the form's name, and the names a file may use.
pub const TRANSFER_MODES: [(TransferMode, &str, &str, &[&str]); 4] = [
    (
        TransferMode::Assignment,
        "assignment",
        "转让 assignment",
        &["转让", "assignment"],
    ),
    (
        TransferMode::License,
        "license",
        "许可 licence",
        &["许可", "license", "licence"],
    ),
    (
        TransferMode::Equity,
        "equity",
        "作价投资 equity",
        &["作价投资", "equity"],
    ),
    (
        TransferMode::JointDevelopment,
        "joint_development",
        "合作开发 joint development",
        &["合作开发", "joint_development", "joint development"],
    ),
];

/// One achievement as typed.
#[derive(Debug, Default, Clone)]
pub struct Draft {
    pub institution: String,
    pub title: String,
    pub r#abstract: String,
    /// Separated by commas, 、 or semicolons.
    pub keywords: String,
    pub industry_chain: String,
    pub trl: String,
    /// Mode names (any of [`TRANSFER_MODES`]'s), separated like keywords.
    pub transfer_modes: String,
    /// Yuan, at most two decimals.
    pub asking_price: String,
    pub region_code: String,
}

/// Fields the gateway could not read, each with why (the field's name as the form has it).
pub type Unreadable = Vec<(&'static str, String)>;

fn split(text: &str) -> Vec<String> {
    text.split([',', '，', '、', ';', '；', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn mode_by_name(name: &str) -> Option<TransferMode> {
    let n = name.trim().to_lowercase();
    TRANSFER_MODES
        .iter()
        .find(|(_, _, _, names)| names.contains(&n.as_str()))
        .map(|(m, ..)| *m)
}

impl Draft {
    /// The request to register it, or every field the gateway cannot read.
    pub fn request(
        &self,
        request_id: String,
        validate_only: bool,
    ) -> Result<mpb::RegisterAchievementRequest, Unreadable> {
        let mut bad: Unreadable = Vec::new();
        let trl = match self.trl.trim() {
            "" => 0, // the service says it is required
            t => t.parse::<i32>().unwrap_or_else(|_| {
                bad.push(("trl", "请填写 1–9 的整数 a whole number from 1 to 9".into()));
                0
            }),
        };
        let mut modes = Vec::new();
        for name in split(&self.transfer_modes) {
            match mode_by_name(&name) {
                Some(m) => modes.push(m as i32),
                None => bad.push((
                    "transfer_modes",
                    format!("未知的转化方式 unknown transfer mode「{name}」: 转让、许可、作价投资、合作开发"),
                )),
            }
        }
        let asking_price_fen = match self.asking_price.trim() {
            "" => 0,
            t => hundredths(t).unwrap_or_else(|| {
                bad.push((
                    "asking_price",
                    "请填写金额（元，最多两位小数）a yuan amount, at most two decimals".into(),
                ));
                0
            }),
        };
        if !bad.is_empty() {
            return Err(bad);
        }
        Ok(mpb::RegisterAchievementRequest {
            request_id,
            institution: self.institution.trim().to_string(),
            title: self.title.trim().to_string(),
            r#abstract: self.r#abstract.trim().to_string(),
            keywords: split(&self.keywords),
            industry_chain: self.industry_chain.trim().to_string(),
            trl,
            transfer_modes: modes,
            asking_price_fen,
            region_code: self.region_code.trim().to_string(),
            validate_only,
        })
    }

    /// An achievement as the form shows it again (to edit it).
    pub fn of(a: &mpb::Achievement) -> Self {
        let modes: Vec<&str> = a
            .transfer_modes
            .iter()
            .filter_map(|m| TRANSFER_MODES.iter().find(|t| t.0 as i32 == *m))
            .map(|t| t.1)
            .collect();
        Self {
            institution: a.institution.clone(),
            title: a.title.clone(),
            r#abstract: a.r#abstract.clone(),
            keywords: a.keywords.join("、"),
            industry_chain: a.industry_chain.clone(),
            trl: a.trl.to_string(),
            transfer_modes: modes.join(","),
            asking_price: crate::money::yuan_digits(a.asking_price_fen),
            region_code: a.region_code.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_keywords_and_yuan_are_read() {
        let d = Draft {
            keywords: "焊接、 激光；电弧,".into(),
            trl: "7".into(),
            transfer_modes: "许可, Joint Development".into(),
            asking_price: "1,500,000.5".into(),
            ..Draft::default()
        };
        let r = d.request("r".into(), false).unwrap();
        assert_eq!(r.keywords, ["焊接", "激光", "电弧"]);
        assert_eq!(r.trl, 7);
        assert_eq!(
            r.transfer_modes,
            [
                TransferMode::License as i32,
                TransferMode::JointDevelopment as i32
            ]
        );
        assert_eq!(r.asking_price_fen, 150_000_050);
    }

    #[test]
    fn every_unreadable_field_is_named() {
        let d = Draft {
            trl: "seven".into(),
            transfer_modes: "赠送".into(),
            asking_price: "12.345".into(),
            ..Draft::default()
        };
        let fields: Vec<&str> = d
            .request(String::new(), false)
            .unwrap_err()
            .iter()
            .map(|b| b.0)
            .collect();
        assert_eq!(fields, ["trl", "transfer_modes", "asking_price"]);
    }
}
