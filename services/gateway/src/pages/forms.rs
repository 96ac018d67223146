//! Form fields with their errors beside them: each input has its `<label for>`, and a field
//! the service (or the gateway) found wrong carries `aria-invalid` and is described by its
//! message, so a screen reader reads the reason with the field.

use crate::status::ApiError;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use maud::{Markup, html};
use std::collections::BTreeMap;

/// What was wrong, by the form's field name.
#[derive(Default, Debug)]
pub struct Problems(pub BTreeMap<String, String>);

impl Problems {
    /// The violations of a service's `INVALID_ARGUMENT` (or the gateway's own), each under the
    /// form field that carries it: the services name money `..._fen` where the forms take yuan
    /// under the same stem (`budget_min_fen` is the field `budget_min`).
    pub fn of(e: &ApiError) -> Self {
        let mut out = BTreeMap::new();
        for v in &e.body.field_violations {
            let field = v.field.strip_suffix("_fen").unwrap_or(&v.field).to_string();
            out.entry(field)
                .and_modify(|d: &mut String| {
                    d.push('；');
                    d.push_str(&v.description)
                })
                .or_insert_with(|| v.description.clone());
        }
        Self(out)
    }

    pub fn add(&mut self, field: &str, description: &str) {
        self.0.insert(field.to_string(), description.to_string());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
}

/// One labelled field: `input` must carry `id=(name)` and `name=(name)`; see [`invalid`].
pub fn field(name: &str, label: &str, problems: &Problems, input: Markup) -> Markup {
    let problem = problems.get(name);
    html! {
        div.field.invalid[problem.is_some()] data-field=(name) {
            label for=(name) { (label) }
            (input)
            @if let Some(p) = problem {
                div.why id={(name) "-error"} role="alert" { (p) }
            }
        }
    }
}

/// The attributes of an input the problems name: `aria-invalid` and the id of its message.
pub fn invalid(name: &str, problems: &Problems) -> (Option<&'static str>, Option<String>) {
    match problems.get(name) {
        Some(_) => (Some("true"), Some(format!("{name}-error"))),
        None => (None, None),
    }
}

fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8")
}

/// A `<input type=date>` value, as the end of that day in China time (a deadline).
pub fn end_of_day(text: &str) -> Option<DateTime<Utc>> {
    let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    let at = cst()
        .from_local_datetime(&day.and_hms_opt(23, 59, 59)?)
        .single()?;
    Some(at.to_utc())
}

/// A `<input type=datetime-local>` value in China time; empty means now, `None` unreadable.
pub fn moment(text: Option<&str>) -> Option<DateTime<Utc>> {
    let t = text.unwrap_or("").trim();
    if t.is_empty() {
        return Some(Utc::now());
    }
    let local = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
        .ok()?;
    cst()
        .from_local_datetime(&local)
        .single()
        .map(|at| at.to_utc())
}

/// A fresh idempotency key for a form (AIP-155): submitting the same form twice acts once.
pub fn request_id(prefix: &str) -> String {
    format!(
        "{prefix}-{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::FieldViolation;

    #[test]
    fn money_violations_land_on_the_yuan_field_and_repeat_fields_join() {
        let mut e = ApiError::invalid("budget_max_fen", "must be at least budget_min_fen");
        e.body.field_violations.push(FieldViolation {
            field: "title".into(),
            description: "is required".into(),
        });
        e.body.field_violations.push(FieldViolation {
            field: "title".into(),
            description: "too short".into(),
        });
        let p = Problems::of(&e);
        assert_eq!(p.get("budget_max"), Some("must be at least budget_min_fen"));
        assert_eq!(p.get("title"), Some("is required；too short"));
        let html = field("title", "标题", &p, html! { input #title name="title"; }).into_string();
        assert!(html.contains("title-error") && html.contains("role=\"alert\""));
    }

    #[test]
    fn times_are_read_in_china_time() {
        let d = end_of_day("2026-03-01").unwrap();
        assert_eq!(d.to_rfc3339(), "2026-03-01T15:59:59+00:00");
        let m = moment(Some("2026-03-01T08:30")).unwrap();
        assert_eq!(m.to_rfc3339(), "2026-03-01T00:30:00+00:00");
        assert!(moment(Some("yesterday")).is_none());
        assert!((Utc::now() - moment(Some(" ")).unwrap()).num_seconds() < 5);
    }
}
