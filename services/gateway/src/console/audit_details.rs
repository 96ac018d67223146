//! An audit entry's details for people: the JSON the subsidy service records, as labelled
//! lines with money in yuan, rates in percent and yes/no in words. The raw JSON stays one
//! click away (it is what the hash chain covers).

use crate::money::{percent_bps, yuan};
use maud::{Markup, html};
use serde_json::Value;

/// The label of a details key: Chinese and English for the keys the services write; the key
/// itself otherwise.
fn label(key: &str) -> &str {
    match key {
        "amount_fen" => "金额 Amount",
        "note" => "意见 Note",
        "reason" => "理由 Reason",
        "approvals" => "已批准 Approvals",
        "required_approvals" => "需批准 Required",
        "complete" => "审批完成 Complete",
        "shortfall_fen" => "缺口 Shortfall",
        "available_fen" => "可用 Available",
        "bank_reference" => "银行流水 Bank reference",
        "error" => "错误 Error",
        "attempts" => "尝试次数 Attempts",
        "policy_id" => "政策 Policy",
        "was" => "原状态 Was",
        "name" => "名称 Name",
        "version" => "版本 Version",
        "fund_id" => "基金 Fund",
        "tiers" => "分档 Tiers",
        "per_contract_cap_fen" => "单合同上限 Per-contract cap",
        "per_enterprise_annual_cap_fen" => "企业年度上限 Annual cap per enterprise",
        "region_prefixes" => "地区 Regions",
        "four_eyes_threshold_fen" => "双人审批线 Four-eyes threshold",
        "claim_window_days" => "申领期限（天）Claim window (days)",
        "status" => "状态 Status",
        "superseded" => "被取代 Superseded",
        "from_cumulative_fen" => "累计自 From (cumulative)",
        "ratio_bps" => "比例 Ratio",
        other => other,
    }
}

/// One value as a person reads it (`key` tells money and rates apart from counts).
fn value(key: &str, v: &Value) -> String {
    match v {
        Value::Number(n) if key.ends_with("_fen") => n.as_i64().map_or(n.to_string(), yuan),
        Value::Number(n) if key.ends_with("_bps") => n
            .as_i64()
            .and_then(|b| i32::try_from(b).ok())
            .map_or(n.to_string(), percent_bps),
        Value::Bool(true) => "是 yes".into(),
        Value::Bool(false) => "否 no".into(),
        Value::String(s) if s.is_empty() => "—".into(),
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => items
            .iter()
            .map(|i| value(key, i))
            .collect::<Vec<_>>()
            .join("、"),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Object(fields) => fields
                    .iter()
                    .map(|(k, v)| format!("{} {}", label(k), value(k, v)))
                    .collect::<Vec<_>>()
                    .join("，"),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("；"),
        other => other.to_string(),
    }
}

/// The details of one entry: labelled lines when they are a JSON object, the text otherwise.
pub fn details(raw: &str) -> Markup {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(raw) else {
        return html! { span.mono { (raw) } };
    };
    if fields.is_empty() {
        return html! { span.muted { "—" } };
    }
    html! {
        dl.details {
            @for (k, v) in &fields {
                dt { (label(k)) } dd data-key=(k) { (value(k, v)) }
            }
        }
        details { summary.muted { "原始记录 raw" } code.mono style="word-break:break-all" { (raw) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_in_yuan_flags_in_words_and_known_keys_labelled() {
        let html = details(
            r#"{"amount_fen": 5000000, "complete": true, "approvals": 2, "note": "合同真实"}"#,
        )
        .into_string();
        assert!(html.contains("金额 Amount"), "{html}");
        assert!(html.contains("50,000.00 元"), "{html}");
        assert!(html.contains("是 yes"), "{html}");
        assert!(html.contains(">2<"), "{html}");
        assert!(html.contains("合同真实"));
        assert!(html.contains("原始记录"), "the raw JSON is kept: {html}");
    }

    #[test]
    fn nested_tiers_and_lists_are_readable() {
        let html = details(
            r#"{"tiers": [{"from_cumulative_fen": 0, "ratio_bps": 1500}], "region_prefixes": ["4201", "4205"], "bank_reference": ""}"#,
        )
        .into_string();
        assert!(html.contains("0.00 元"), "{html}");
        assert!(html.contains("15.00%"), "{html}");
        assert!(html.contains("4201、4205"), "{html}");
        assert!(html.contains("—"));
    }

    #[test]
    fn text_that_is_not_an_object_is_shown_as_it_is_and_escaped() {
        assert!(
            details("not json <b>")
                .into_string()
                .contains("not json &lt;b&gt;")
        );
        assert!(details("[1,2]").into_string().contains("[1,2]"));
        assert!(details("{}").into_string().contains("—"));
        let html = details(r#"{"note": "<script>x</script>"}"#).into_string();
        assert!(!html.contains("<script>"), "{html}");
    }
}
