//! Bulk import at /supplier/import over plain HTTP against the real services: a CSV with bad
//! rows imports nothing and names each row and field; a good CSV imports, and the same file
//! again imports nothing twice; an XLSX with Chinese headers imports; an upload without the
//! CSRF token or over 5 MB is refused; the template names every column.

use crate::forms::Browser;
use crate::supplier::{HEADER, count};
use crate::support::*;
use kechuang_platform::Role;

/// A multipart upload of `file` to /supplier/import with `csrf`.
async fn upload(b: &Browser, csrf: &str, name: &str, file: &[u8]) -> Answer {
    let boundary = "kcboundary7d93";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let headers = [
        format!("Cookie: kc_session={}", b.cookie),
        format!("Content-Type: multipart/form-data; boundary={boundary}"),
    ];
    exchange_bytes(b.addr, "POST", "/supplier/import", &headers, &body).await
}

fn row(title: &str, chain: &str, trl: &str) -> String {
    format!(
        "{title},武汉理工大学,{title}：面向产线的成熟方法，已在示范线验证。,\"{title},工艺\",{chain},{trl},\"许可,合作开发\",300000,420111"
    )
}

#[tokio::test]
async fn a_file_is_imported_whole_or_not_at_all() {
    let stack = Stack::start().await;
    let chen = Browser::sign_in(
        stack.gateway,
        &stack.token(Role::Supplier, "成果转化办·陈", None),
    )
    .await;

    // Import: a file with bad rows imports nothing and names each row and field.
    let broken = format!(
        "{HEADER}\n{}\n{}\n{}\n",
        row("光纤振动传感管线防挖掘预警", "节能环保", "6"),
        row("钢渣微粉混凝土掺合料", "建筑", "6"),
        row("锂电池极片缺陷视觉检测", "新能源与智能网联汽车", "ten")
    );
    let import_csrf = chen.csrf("/supplier/import").await;
    let refused = upload(&chen, &import_csrf, "broken.csv", broken.as_bytes()).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("data-row=\"3\" data-field=\"industry_chain\""),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("data-row=\"4\" data-field=\"trl\""),
        "{}",
        refused.body
    );
    assert_eq!(
        count(&chen.get("/supplier").await.body, "data-achievement="),
        0,
        "nothing imported"
    );
    // Without the CSRF token, nothing is read.
    assert_eq!(
        upload(&chen, "forged", "ok.csv", broken.as_bytes())
            .await
            .status,
        403
    );

    // A valid CSV imports; the same file again imports nothing twice.
    let good = format!(
        "\u{feff}{HEADER}\n{}\n{}\n",
        row("光纤振动传感管线防挖掘预警", "节能环保", "6"),
        row("锂电池极片缺陷视觉检测", "新能源与智能网联汽车", "5")
    );
    let imported = upload(&chen, &import_csrf, "good.csv", good.as_bytes()).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert!(
        imported.body.contains("data-imported=\"2\""),
        "{}",
        imported.body
    );
    let again = upload(&chen, &import_csrf, "good.csv", good.as_bytes()).await;
    assert!(
        again.body.contains("data-imported=\"0\"")
            && again.body.contains("2 were already imported"),
        "{}",
        again.body
    );

    // A valid XLSX (Chinese headers, numbers as numbers) imports too.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in [
        "成果名称",
        "高校院所",
        "成果简介",
        "关键词",
        "产业链",
        "技术成熟度",
        "转化方式",
        "报价（元）",
        "行政区划代码",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (c, v) in [
        "北斗高精度桥梁形变监测",
        "武汉大学",
        "基于北斗高精度定位的桥梁形变实时监测，毫米级精度。",
        "北斗定位、形变监测",
        "北斗",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(1, c as u16, *v).unwrap();
    }
    sheet.write_number(1, 5, 8).unwrap();
    sheet.write_string(1, 6, "转让").unwrap();
    sheet.write_number(1, 7, 1_200_000.5).unwrap();
    sheet.write_string(1, 8, "420106").unwrap();
    let xlsx = book.save_to_buffer().unwrap();
    let imported = upload(&chen, &import_csrf, "catalog.xlsx", &xlsx).await;
    assert!(
        imported.body.contains("data-imported=\"1\""),
        "{}",
        imported.body
    );
    let mine = chen.get("/supplier").await.body;
    assert_eq!(count(&mine, "data-achievement="), 3, "{mine}");
    assert!(mine.contains("北斗高精度桥梁形变监测") && mine.contains("1,200,000.50"));

    // The template names every column; other roles get a 403 page.
    let template = chen.get("/supplier/import/template.csv").await;
    assert!(template.body.contains(HEADER), "{}", template.body);

    // A file over 5 MB is refused before it is read.
    let huge = vec![b'a'; 6 * 1024 * 1024];
    let refused = upload(&chen, &import_csrf, "huge.csv", &huge).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert!(refused.body.contains("5 MB"));
    stack.stop().await;
}
