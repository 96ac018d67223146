//! The achievement form (登记 / 修改): every input labelled, a field the service or the gateway
//! found wrong marked beside it (`aria-invalid`, `aria-describedby`), what was typed kept.

use super::draft::{Draft, TRANSFER_MODES, Unreadable};
use crate::pages::forms::{Problems, field, invalid};
use crate::portal::chain_options;
use crate::status::{ApiError, FieldViolation};
use maud::{Markup, html};
use serde::Deserialize;

/// The form as the browser sends it: the transfer modes are one checkbox each (a plain form
/// cannot send a list under one name to `Form`).
#[derive(Deserialize, Default, Debug)]
pub struct AchievementForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub institution: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub r#abstract: String,
    #[serde(default)]
    pub keywords: String,
    #[serde(default)]
    pub industry_chain: String,
    #[serde(default)]
    pub trl: String,
    #[serde(default)]
    pub mode_assignment: Option<String>,
    #[serde(default)]
    pub mode_license: Option<String>,
    #[serde(default)]
    pub mode_equity: Option<String>,
    #[serde(default)]
    pub mode_joint_development: Option<String>,
    #[serde(default)]
    pub asking_price: String,
    #[serde(default)]
    pub region_code: String,
}

impl AchievementForm {
    pub fn draft(&self) -> Draft {
        let ticked = [
            (&self.mode_assignment, "assignment"),
            (&self.mode_license, "license"),
            (&self.mode_equity, "equity"),
            (&self.mode_joint_development, "joint_development"),
        ];
        Draft {
            institution: self.institution.clone(),
            title: self.title.clone(),
            r#abstract: self.r#abstract.clone(),
            keywords: self.keywords.clone(),
            industry_chain: self.industry_chain.clone(),
            trl: self.trl.clone(),
            transfer_modes: ticked
                .iter()
                .filter(|(v, _)| v.is_some())
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
                .join(","),
            asking_price: self.asking_price.clone(),
            region_code: self.region_code.clone(),
        }
    }

    pub fn of(d: &Draft) -> Self {
        let has = |name: &str| {
            d.transfer_modes
                .split(',')
                .any(|m| m == name)
                .then(|| "on".to_string())
        };
        Self {
            institution: d.institution.clone(),
            title: d.title.clone(),
            r#abstract: d.r#abstract.clone(),
            keywords: d.keywords.clone(),
            industry_chain: d.industry_chain.clone(),
            trl: d.trl.clone(),
            mode_assignment: has("assignment"),
            mode_license: has("license"),
            mode_equity: has("equity"),
            mode_joint_development: has("joint_development"),
            asking_price: d.asking_price.clone(),
            region_code: d.region_code.clone(),
            ..Self::default()
        }
    }

    fn ticked(&self, name: &str) -> bool {
        match name {
            "assignment" => self.mode_assignment.is_some(),
            "license" => self.mode_license.is_some(),
            "equity" => self.mode_equity.is_some(),
            _ => self.mode_joint_development.is_some(),
        }
    }
}

/// The gateway's own 400 for fields it cannot read, shaped like a service's.
pub fn unreadable(bad: Unreadable) -> ApiError {
    let mut e = ApiError::invalid(bad[0].0, &bad[0].1);
    e.body.field_violations = bad
        .into_iter()
        .map(|(f, d)| FieldViolation {
            field: f.into(),
            description: d,
        })
        .collect();
    e
}

/// The form posting to `action`, with `button` as its submit label.
pub fn render(
    csrf: &str,
    action: &str,
    button: &str,
    f: &AchievementForm,
    problems: &Problems,
) -> Markup {
    let text = |name: &str, label: &str, value: &str, hint: &str| {
        let (bad, why) = invalid(name, problems);
        field(
            name,
            label,
            problems,
            html! { input id=(name) type="text" name=(name) value=(value) placeholder=(hint) aria-invalid=[bad] aria-describedby=[why]; },
        )
    };
    let (abstract_bad, abstract_why) = invalid("abstract", problems);
    let (chain_bad, chain_why) = invalid("industry_chain", problems);
    let (modes_bad, modes_why) = invalid("transfer_modes", problems);
    html! {
        form.card #achievement method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="request_id" value=(f.request_id);
            div.cols {
                (text("title", "成果名称 Title", &f.title, ""))
                (text("institution", "高校院所 Institution", &f.institution, "华中科技大学"))
            }
            (field("abstract", "成果简介 Abstract", problems, html! {
                textarea #abstract name="abstract" rows="4" aria-invalid=[abstract_bad] aria-describedby=[abstract_why] { (f.r#abstract) }
            }))
            div.cols {
                (text("keywords", "关键词 Keywords (、或逗号分隔 separated by 、 or commas)", &f.keywords, "激光焊接、气孔"))
                (field("industry_chain", "产业链 Industry chain", problems, html! {
                    select #industry_chain name="industry_chain" aria-invalid=[chain_bad] aria-describedby=[chain_why] { (chain_options(&f.industry_chain)) }
                }))
                (text("trl", "技术成熟度 TRL (1–9)", &f.trl, "6"))
                (text("asking_price", "报价（元）Asking price (yuan)", &f.asking_price, "500000"))
                (text("region_code", "行政区划代码 Region code (6)", &f.region_code, "420100"))
                div.field.invalid[modes_bad.is_some()] data-field="transfer_modes" {
                    fieldset #transfer_modes aria-invalid=[modes_bad] aria-describedby=[modes_why] {
                        legend { "转化方式 Transfer modes" }
                        @for (_, name, label, _) in TRANSFER_MODES {
                            @let id = format!("mode_{name}");
                            label for=(id) {
                                input id=(id) type="checkbox" name=(id) value="on" checked[f.ticked(name)];
                                " " (label)
                            }
                            " "
                        }
                    }
                    @if let Some(p) = problems.get("transfer_modes") { div.why id="transfer_modes-error" role="alert" { (p) } }
                }
            }
            button #save type="submit" { (button) }
        }
    }
}
