//! Bulk import (批量导入): a CSV or XLSX file, one achievement per row, columns by header name
//! (the template at `/supplier/import/template.csv`).
//!
//! All or nothing: a technology-transfer office uploads a list it prepared, and a half-imported
//! list is worse than none (which rows are in? fixing and re-uploading would duplicate the
//! good ones). So every row is read and checked first (the gateway reads numbers and modes,
//! matching checks the rest with `validate_only`), every problem is listed by row and field,
//! and only a file without one is imported. Each row's request id is derived from the file's
//! hash and the row number, so uploading the same file again imports nothing twice.

use super::draft::Unreadable;
use super::sheet::{self, COLUMNS, Row};
use super::{Nav, posted, require, view};
use crate::AppState;
use crate::pages::{Session, error_page};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kechuang_proto::matching as mpb;
use maud::{Markup, html};
use sha2::{Digest, Sha256};

/// The largest file accepted: 10,000 rows of long abstracts fit well within it.
pub const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;
/// Rows per file: a bigger catalog goes in several files (or over the gRPC stream).
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// One problem of one row.
pub struct Problem {
    row: usize,
    field: String,
    why: String,
}

enum Outcome {
    /// The file as a whole could not be read.
    Unreadable(String),
    /// Rows with problems: nothing was imported.
    Refused { rows: usize, problems: Vec<Problem> },
    /// Imported; `late` lists rows refused while importing after they passed the check (not
    /// expected: the same rules judge both passes, and a racing upload of the same file
    /// counts as duplicates; but if it happens, it is said, never hidden).
    Imported {
        summary: mpb::ImportSummary,
        late: Vec<Problem>,
    },
}

fn form(csrf: &str) -> Markup {
    html! {
        form.card #import method="post" action="/supplier/import" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(csrf);
            div.field {
                label for="file" { "成果清单 Achievements file (CSV UTF-8 或 XLSX，最大 5 MB、10,000 行 at most 5 MB, 10,000 rows)" }
                input #file type="file" name="file" accept=".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" required;
            }
            button #upload type="submit" { "导入 Import" }
        }
        h2 { "模板 Template" }
        p { a #template href="/supplier/import/template.csv" download { "下载 CSV 模板 Download the CSV template" } "（XLSX 用同样的表头 XLSX files use the same header row）" }
        table #columns {
            thead { tr { th { "列 Column" } th { "中文列名 Chinese name" } th { "写法 What to write" } } }
            tbody {
                @for (key, zh, _) in COLUMNS {
                    tr { td.mono { (key) } td { (zh) } td { (hint(key)) } }
                }
            }
        }
    }
}

fn hint(key: &str) -> &'static str {
    match key {
        "keywords" => "以、或逗号分隔 separated by 、 or commas",
        "industry_chain" => "平台产业链名称之一 one of the platform's chains, e.g. 高端装备",
        "trl" => "1–9",
        "transfer_modes" => {
            "转让、许可、作价投资、合作开发 (or assignment, license, equity, joint_development)"
        }
        "asking_price" => "元，最多两位小数 yuan, at most two decimals",
        "region_code" => "6 位行政区划代码 6-digit region code, e.g. 420100",
        _ => "必填 required",
    }
}

fn render(session: &Session, outcome: Option<&Outcome>) -> Response {
    let body = html! {
        h1 { "批量导入成果 Import achievements" }
        @match outcome {
            None => {}
            Some(Outcome::Unreadable(why)) => { div.error #refused { "文件未导入 Nothing imported: " (why) } }
            Some(Outcome::Refused { rows, problems }) => {
                div.error #refused { "文件共 " (rows) " 行，有 " (problems.len()) " 个问题，未导入任何成果；改正后重新上传。"
                    (rows) " rows, " (problems.len()) " problems: nothing was imported; fix them and upload the file again." }
                table #problems {
                    thead { tr { th.num { "行 Row" } th { "字段 Field" } th { "原因 Why" } } }
                    tbody { @for p in problems { tr data-row=(p.row) data-field=(p.field) { td.num { (p.row) } td.mono { (p.field) } td { (p.why) } } } }
                }
            }
            Some(Outcome::Imported { summary: s, late }) => {
                div.flash #imported data-imported=(s.imported_count) {
                    "已导入 " (s.imported_count) " 项成果" @if s.duplicate_count > 0 { "，" (s.duplicate_count) " 项此前已导入" } "。"
                    "Imported " (s.imported_count) " achievements" @if s.duplicate_count > 0 { " (" (s.duplicate_count) " were already imported)" } "."
                    " " a href="/supplier" { "查看我的成果 See my achievements" }
                }
                @if !late.is_empty() {
                    div.warn #late-refusals { (late.len()) " 行在导入时被拒绝 rows were refused while importing:"
                        ul { @for p in late { li { "行 row " (p.row) " · " (p.field) ": " (p.why) } } }
                    }
                }
            }
        }
        (form(&session.csrf))
    };
    let status = match outcome {
        Some(Outcome::Unreadable(_) | Outcome::Refused { .. }) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let mut r = view("批量导入 Import", session, Nav::Import, body);
    *r.status_mut() = status;
    r
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require(&state, &headers).await {
        Ok(s) => render(&s, None),
        Err(r) => *r,
    }
}

pub async fn template() -> Response {
    let header = COLUMNS.map(|c| c.0).join(",");
    let example = "激光-电弧复合焊接工艺参数自适应调控,华中科技大学,以熔池视觉传感实时调节激光功率与电弧电流，抑制焊缝气孔。,\"激光焊接,气孔,自适应\",高端装备,7,\"许可,合作开发\",800000,420100";
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                CONTENT_DISPOSITION,
                "attachment; filename=\"achievements-template.csv\"",
            ),
        ],
        // The BOM makes Excel open the file as UTF-8.
        format!("\u{feff}{header}\n{example}\n"),
    )
        .into_response()
}

/// The CSRF token and the file, in whatever order the browser sent them.
async fn fields(mut multipart: Multipart) -> Result<(Option<String>, Vec<u8>), MultipartError> {
    let (mut csrf, mut file) = (None, Vec::new());
    while let Some(field) = multipart.next_field().await? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.ok(),
            Some("file") => file = field.bytes().await?.to_vec(),
            _ => {}
        }
    }
    Ok((csrf, file))
}

/// An upload that could not be read: too big (413), or not a multipart form (400).
fn unreadable_upload(e: MultipartError) -> Response {
    let status = e.status();
    let why = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "文件超过 {} MB 上限：请拆分后上传。The file is over {} MB: split it.",
            MAX_IMPORT_BYTES >> 20,
            MAX_IMPORT_BYTES >> 20
        )
    } else {
        format!("无法读取上传 unreadable upload: {}", e.body_text())
    };
    error_page(None, status, "文件未导入 Nothing imported", &why)
}

pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let (csrf, file) = match fields(multipart).await {
        Ok(f) => f,
        Err(e) => return unreadable_upload(e),
    };
    let session = match posted(&state, &headers, csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if file.is_empty() {
        return render(
            &session,
            Some(&Outcome::Unreadable("请选择文件 choose a file".into())),
        );
    }
    let outcome = match sheet::read(&file, MAX_IMPORT_ROWS) {
        Err(why) => Outcome::Unreadable(why),
        Ok(rows) => match import(&state, &session, &file, &rows).await {
            Ok(o) => o,
            Err(e) => return crate::pages::service_error(&session, e),
        },
    };
    render(&session, Some(&outcome))
}

async fn import(
    state: &AppState,
    session: &Session,
    file: &[u8],
    rows: &[Row],
) -> Result<Outcome, ApiError> {
    let digest = Sha256::digest(file);
    let file_id: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let mut problems = Vec::new();
    let mut requests = Vec::with_capacity(rows.len());
    // The row number of each request sent, by its index in the stream.
    let mut numbers = Vec::with_capacity(rows.len());
    for row in rows {
        match row
            .draft
            .request(format!("import-{file_id}-{}", row.number), true)
        {
            Ok(r) => {
                requests.push(r);
                numbers.push(row.number);
            }
            Err(bad) => problems.extend(unreadable(row.number, bad)),
        }
    }
    let at_row = |e: &mpb::ImportError| Problem {
        row: numbers.get(e.index as usize).copied().unwrap_or(0),
        field: e.field.clone(),
        why: e.reason.clone(),
    };
    let checked = stream(state, session, requests.clone()).await?;
    problems.extend(checked.errors.iter().map(at_row));
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.row);
        return Ok(Outcome::Refused {
            rows: rows.len(),
            problems,
        });
    }
    for r in &mut requests {
        r.validate_only = false;
    }
    let summary = stream(state, session, requests).await?;
    let late = summary.errors.iter().map(at_row).collect();
    Ok(Outcome::Imported { summary, late })
}

async fn stream(
    state: &AppState,
    session: &Session,
    requests: Vec<mpb::RegisterAchievementRequest>,
) -> Result<mpb::ImportSummary, ApiError> {
    let mut catalog = state.upstream.catalog.clone();
    Ok(catalog
        .import_achievements(authed(futures::stream::iter(requests), &session.token)?)
        .await?
        .into_inner())
}

fn unreadable(row: usize, bad: Unreadable) -> impl Iterator<Item = Problem> {
    bad.into_iter().map(move |(field, why)| Problem {
        row,
        field: field.to_string(),
        why,
    })
}
