//! Reading an import file: CSV (UTF-8, with or without Excel's BOM) or XLSX (its first sheet),
//! a header row naming the columns, one achievement per row after it. Columns are found by
//! name (English or Chinese, any order); a missing or unknown column refuses the whole file, so
//! a typo in a header never silently drops a column. Rows are numbered as the spreadsheet
//! shows them (the header is row 1); empty rows are skipped.

use super::draft::Draft;
use calamine::{Reader, Xlsx, open_workbook_from_rs};
use std::io::Cursor;

/// The template's columns: the name it uses, the Chinese name also accepted, and whether a
/// file must have it.
pub const COLUMNS: [(&str, &str, bool); 9] = [
    ("title", "成果名称", true),
    ("institution", "高校院所", true),
    ("abstract", "成果简介", true),
    ("keywords", "关键词", true),
    ("industry_chain", "产业链", true),
    ("trl", "技术成熟度", true),
    ("transfer_modes", "转化方式", true),
    ("asking_price", "报价（元）", true),
    ("region_code", "行政区划代码", true),
];

/// One row of a file, numbered as the spreadsheet shows it.
#[derive(Debug)]
pub struct Row {
    pub number: usize,
    pub draft: Draft,
}

/// XLSX files are ZIP archives.
fn is_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// The rows of a file, or why the file as a whole cannot be read.
pub fn read(bytes: &[u8], max_rows: usize) -> Result<Vec<Row>, String> {
    let table = if is_xlsx(bytes) {
        xlsx_cells(bytes)?
    } else {
        csv_cells(bytes)?
    };
    let mut lines = table.into_iter();
    let Some((_, header)) = lines.next() else {
        return Err("文件是空的 the file is empty".into());
    };
    let columns = columns(&header)?;
    let mut rows = Vec::new();
    for (number, cells) in lines {
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() == max_rows {
            return Err(format!(
                "最多 {max_rows} 行 at most {max_rows} rows per file: split it"
            ));
        }
        let cell = |key: &str| {
            columns
                .iter()
                .position(|c| *c == key)
                .and_then(|i| cells.get(i))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        rows.push(Row {
            number,
            draft: Draft {
                institution: cell("institution"),
                title: cell("title"),
                r#abstract: cell("abstract"),
                keywords: cell("keywords"),
                industry_chain: cell("industry_chain"),
                trl: cell("trl"),
                transfer_modes: cell("transfer_modes"),
                asking_price: cell("asking_price"),
                region_code: cell("region_code"),
            },
        });
    }
    if rows.is_empty() {
        return Err("表头之后没有数据行 no rows after the header".into());
    }
    Ok(rows)
}

/// Each header cell's column key, in order.
fn columns(header: &[String]) -> Result<Vec<&'static str>, String> {
    let mut keys = Vec::with_capacity(header.len());
    for name in header {
        let n = name.trim().trim_start_matches('\u{feff}');
        let key = COLUMNS
            .iter()
            .find(|(k, zh, _)| n.eq_ignore_ascii_case(k) || n == *zh)
            .map(|c| c.0);
        match key {
            Some(k) if keys.contains(&k) => {
                return Err(format!("列「{n}」重复 column {k} appears twice"));
            }
            Some(k) => keys.push(k),
            None if n.is_empty() => keys.push(""),
            None => {
                return Err(format!(
                    "未知的列「{n}」unknown column \"{n}\": see the template"
                ));
            }
        }
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .filter(|(k, _, required)| *required && !keys.contains(k))
        .map(|c| c.0)
        .collect();
    if !missing.is_empty() {
        return Err(format!("缺少列 missing columns: {}", missing.join(", ")));
    }
    Ok(keys)
}

fn csv_cells(bytes: &[u8]) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        "文件不是 UTF-8 编码：请在 Excel 中另存为「CSV UTF-8」或 XLSX。The file is not UTF-8: save it as \"CSV UTF-8\" or XLSX.".to_string()
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("CSV 无法读取 unreadable CSV: {e}"))?;
        let line = record
            .position()
            .map_or(out.len() + 1, |p| p.line() as usize);
        out.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok(out)
}

fn xlsx_cells(bytes: &[u8]) -> Result<Vec<(usize, Vec<String>)>, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("XLSX 无法读取 unreadable XLSX: {e}");
    let mut book: Xlsx<_> =
        open_workbook_from_rs(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or("XLSX 没有工作表 the workbook has no sheet")?
        .map_err(|e| unreadable(&e))?;
    let first = range.start().map_or(0, |(row, _)| row as usize);
    Ok(range
        .rows()
        .enumerate()
        .map(|(i, cells)| (first + i + 1, cells.iter().map(|c| c.to_string()).collect()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_either_name_in_any_order() {
        let csv = "\u{feff}成果名称,institution,abstract,keywords,industry_chain,trl,transfer_modes,asking_price,region_code\n\
                   激光焊接,华科,摘要,\"焊接,激光\",高端装备,7,许可,500000,420100\n,,,,,,,,\n第二,华科,摘要,焊接,高端装备,6,转让,1,420100\n";
        let rows = read(csv.as_bytes(), 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number, 2);
        assert_eq!(rows[0].draft.title, "激光焊接");
        assert_eq!(rows[0].draft.keywords, "焊接,激光");
        // The blank row 3 is skipped, and numbers stay the spreadsheet's.
        assert_eq!(rows[1].number, 4);
    }

    #[test]
    fn a_bad_header_or_too_many_rows_refuse_the_file() {
        assert!(
            read(b"title,colour\nx,y\n", 10)
                .unwrap_err()
                .contains("colour")
        );
        assert!(read(b"title\nx\n", 10).unwrap_err().contains("institution"));
        let header = COLUMNS.map(|c| c.0).join(",");
        let many = format!("{header}\n{}", "a,b,c,d,e,1,许可,1,420100\n".repeat(3));
        assert!(read(many.as_bytes(), 2).unwrap_err().contains("2"));
        assert!(
            read(&[0xb2, 0xe2, b'\n'], 10)
                .unwrap_err()
                .contains("UTF-8")
        );
    }
}
