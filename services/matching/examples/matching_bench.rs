//! Sky net figures, run by hand:
//! `cargo run --release -p matching --example matching_bench [N [SEQUENTIAL [BURST]]]`.
//!
//! Imports N (default 100,000) achievements over gRPC into a fresh service, waits until their
//! events are published, then measures (1) one demand at a time: the time from publishing
//! `kc.demand.verified` to its first `kc.pairing.proposed` being in the stream, and (2) a burst
//! of demands: demands per second until every one has its pairings announced.

use futures::StreamExt;
use kechuang_platform::bench::{Figures, percentile};
use kechuang_platform::testing::{TestService, authed};
use kechuang_platform::{NewEvent, Role, ServiceKind};
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::events::{DemandDetails, DemandVerified, Envelope, envelope::Payload};
use kechuang_proto::matching::RegisterAchievementRequest;
use kechuang_proto::matching::catalog_service_client::CatalogServiceClient;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const TOPICS: &[(&str, &[&str])] = &[
    (
        "高端装备",
        &[
            "激光焊接",
            "焊缝气孔",
            "数控机床",
            "精密减速器",
            "工业机器人",
            "液压系统",
            "轴承寿命",
            "振动抑制",
        ],
    ),
    (
        "光电子信息",
        &[
            "光纤传感",
            "光模块",
            "激光器",
            "硅光芯片",
            "红外探测",
            "显示面板",
            "光通信",
            "图像传感",
        ],
    ),
    (
        "生命健康",
        &[
            "疫苗佐剂",
            "体外诊断",
            "医学影像",
            "靶向药物",
            "基因检测",
            "医用材料",
            "康复器械",
            "中药提取",
        ],
    ),
    (
        "新材料",
        &[
            "碳纤维",
            "石墨烯",
            "高温合金",
            "陶瓷涂层",
            "正极材料",
            "复合材料",
            "稀土永磁",
            "防腐涂料",
        ],
    ),
    (
        "现代农业与食品",
        &[
            "水稻育种",
            "生猪养殖",
            "茶叶加工",
            "冷链保鲜",
            "土壤改良",
            "病虫害防治",
            "淡水养殖",
            "食品检测",
        ],
    ),
    (
        "节能环保",
        &[
            "污水处理",
            "烟气脱硝",
            "固废资源化",
            "余热回收",
            "土壤修复",
            "除尘设备",
            "膜分离",
            "污泥干化",
        ],
    ),
    (
        "人工智能与软件",
        &[
            "缺陷检测",
            "知识图谱",
            "语音识别",
            "工业软件",
            "数字孪生",
            "推荐算法",
            "视觉定位",
            "大模型",
        ],
    ),
    (
        "新能源与智能网联汽车",
        &[
            "电池管理",
            "电机控制",
            "自动驾驶",
            "热管理",
            "充电桩",
            "车联网",
            "氢燃料电池",
            "轻量化车身",
        ],
    ),
];
const METHODS: &[&str] = &[
    "在线监测",
    "自适应调控",
    "低成本制备",
    "智能诊断",
    "高效工艺",
    "国产化替代",
    "寿命预测",
    "绿色改造",
];

/// A small deterministic generator: the same N gives the same catalog.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn achievement(i: usize, rng: &mut Lcg) -> RegisterAchievementRequest {
    let (chain, words) = TOPICS[rng.next(TOPICS.len())];
    let (a, b) = (words[rng.next(words.len())], words[rng.next(words.len())]);
    let m = METHODS[rng.next(METHODS.len())];
    RegisterAchievementRequest {
        request_id: format!("bench-{i}"),
        institution: ["华中科技大学", "武汉大学", "武汉理工大学", "中科院武汉分院"][i % 4].into(),
        title: format!("{a}{m}技术（{i}）"),
        r#abstract: format!(
            "面向{chain}产业，针对{a}与{b}的问题，提出{m}方法，已在示范线验证，性能提升显著，成本下降。"
        ),
        keywords: vec![a.into(), b.into(), m.into()],
        industry_chain: chain.into(),
        trl: 1 + (i % 9) as i32,
        transfer_modes: vec![
            TransferMode::License as i32,
            TransferMode::JointDevelopment as i32,
        ],
        asking_price_fen: 1_000_000 * (1 + (i % 100) as i64),
        region_code: if i.is_multiple_of(3) {
            "110108"
        } else {
            "420100"
        }
        .into(),
        validate_only: false,
    }
}

fn demand(i: usize, rng: &mut Lcg) -> NewEvent {
    let (chain, words) = TOPICS[rng.next(TOPICS.len())];
    let a = words[rng.next(words.len())];
    let m = METHODS[rng.next(METHODS.len())];
    let id = format!("bench-d-{i}");
    NewEvent::new(
        &id,
        2,
        Payload::DemandVerified(DemandVerified {
            demand: Some(DemandDetails {
                demand_id: id.clone(),
                enterprise_id: "91420100MA4KX0001A".into(),
                title: format!("{a}问题急需解决"),
                description: format!("我公司在{a}方面长期存在问题，希望引进{m}技术，提高良品率。"),
                industry_chain: chain.into(),
                contract_type: ContractType::License as i32,
                budget_min_fen: 5_000_000,
                budget_max_fen: 80_000_000,
                region_code: "420100".into(),
                deadline: None,
            }),
            verified_by: "bench".into(),
            note: String::new(),
        }),
    )
}

/// When each demand's first pairing was seen on the bus.
#[derive(Default)]
struct Seen {
    at: Mutex<HashMap<String, Instant>>,
    notify: Notify,
}

async fn wait_seen(seen: &Seen, ids: &[String], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let notified = seen.notify.notified();
        if ids
            .iter()
            .all(|id| seen.at.lock().unwrap().contains_key(id))
        {
            return true;
        }
        if tokio::time::timeout_at(deadline.into(), notified)
            .await
            .is_err()
        {
            return false;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let svc = TestService::start(ServiceKind::Matching, matching::build).await;
    let token = svc.token(Role::Supplier, "bench", None);
    println!("{}", Figures::header());

    // Import over gRPC, one call.
    let mut rng = Lcg(7);
    let records: Vec<_> = (0..n).map(|i| achievement(i, &mut rng)).collect();
    let started = Instant::now();
    let summary = CatalogServiceClient::new(svc.channel().await)
        .import_achievements(authed(futures::stream::iter(records), &token))
        .await?
        .into_inner();
    let elapsed = started.elapsed();
    anyhow::ensure!(summary.imported_count as usize == n, "imported {summary:?}");
    println!(
        "{}",
        Figures {
            label: format!("import {n} achievements (one call)"),
            concurrency: 1,
            operations: n,
            errors: 0,
            elapsed,
            p50: Duration::ZERO,
            p99: Duration::ZERO
        }
        .row()
    );

    // Let the relay publish the import's events and every replica index it.
    let started = Instant::now();
    while kechuang_platform::outbox::unsent_count(&svc.pool).await? > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "outbox drained {:.1} s after the import returned",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Watch the stream's pairing.proposed subject.
    let seen = Arc::new(Seen::default());
    let client = async_nats::connect(&svc.settings.nats_url).await?;
    let mut sub = client
        .subscribe(svc.config.bus.subject("pairing.proposed"))
        .await?;
    let s = seen.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Ok(Envelope {
                payload: Some(Payload::PairingProposed(p)),
                ..
            }) = Envelope::decode(msg.payload)
            {
                s.at.lock()
                    .unwrap()
                    .entry(p.demand_id)
                    .or_insert_with(Instant::now);
                s.notify.notify_waiters();
            }
        }
    });

    // One at a time: latency.
    let mut rng = Lcg(11);
    let sequential: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut latencies = Vec::with_capacity(sequential);
    let mut missing = 0;
    let started = Instant::now();
    for i in 0..sequential {
        let event = demand(i, &mut rng);
        let id = event.aggregate_id.clone();
        let t = Instant::now();
        svc.publish(event).await;
        if wait_seen(&seen, std::slice::from_ref(&id), Duration::from_secs(5)).await {
            let at = seen.at.lock().unwrap()[&id];
            latencies.push(at - t);
        } else {
            missing += 1;
        }
    }
    let elapsed = started.elapsed();
    let ops = latencies.len();
    println!(
        "{}",
        Figures {
            label: "verified -> pairing.proposed (1 at a time)".into(),
            concurrency: 1,
            operations: ops,
            errors: missing,
            elapsed,
            p50: percentile(&mut latencies, 0.5),
            p99: percentile(&mut latencies, 0.99),
        }
        .row()
    );

    // A burst: throughput.
    let burst: usize = std::env::args()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let events: Vec<NewEvent> = (0..burst)
        .map(|i| demand(sequential + i, &mut rng))
        .collect();
    let ids: Vec<String> = events.iter().map(|e| e.aggregate_id.clone()).collect();
    let started = Instant::now();
    for e in events {
        svc.publish(e).await;
    }
    let all = wait_seen(&seen, &ids, Duration::from_secs(300)).await;
    let elapsed = started.elapsed();
    let done = ids
        .iter()
        .filter(|id| seen.at.lock().unwrap().contains_key(*id))
        .count();
    println!(
        "{}",
        Figures {
            label: format!("burst of {burst} verified demands"),
            concurrency: burst,
            operations: done,
            errors: burst - done,
            elapsed,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
        }
        .row()
    );
    if !all {
        println!("not every demand of the burst was paired in time");
    }
    let paired: i64 = sqlx::query_scalar("SELECT count(*) FROM pairings")
        .fetch_one(&svc.pool)
        .await?;
    println!("pairings stored: {paired}");
    svc.stop().await;
    engine_alone(n, sequential)
}

/// The engine alone on the same catalog and demands: how much of the above is matching.
fn engine_alone(n: usize, sequential: usize) -> anyhow::Result<()> {
    use matching::engine::{AchievementDoc, DemandDoc, Engine};
    let engine = Engine::new()?;
    let mut rng = Lcg(7);
    let docs: Vec<AchievementDoc> = (0..n)
        .map(|i| {
            let r = achievement(i, &mut rng);
            AchievementDoc {
                id: r.request_id.clone(),
                institution: r.institution,
                title: r.title,
                abstract_text: r.r#abstract,
                keywords: r.keywords,
                industry_chain: r.industry_chain,
                trl: r.trl,
                transfer_modes: vec![TransferMode::License, TransferMode::JointDevelopment],
                asking_price_fen: r.asking_price_fen,
                region_code: r.region_code,
            }
        })
        .collect();
    let started = Instant::now();
    for chunk in docs.chunks(500) {
        engine.add_achievements(chunk)?;
    }
    let indexed = started.elapsed();
    let mut rng = Lcg(11);
    let mut times = Vec::with_capacity(sequential);
    let started = Instant::now();
    for i in 0..sequential {
        let Payload::DemandVerified(v) = demand(i, &mut rng).payload else {
            continue;
        };
        let Some(d) = v.demand else { continue };
        let doc = DemandDoc {
            id: d.demand_id,
            title: d.title,
            description: d.description,
            industry_chain: d.industry_chain,
            contract_type: ContractType::License,
            budget_min_fen: d.budget_min_fen,
            budget_max_fen: d.budget_max_fen,
            region_code: d.region_code,
        };
        let t = Instant::now();
        let _ = engine.match_demand(&doc, matching::DEFAULT_TOP_K);
        times.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    let indexing = Figures {
        label: format!("engine alone: index {n} (500 a batch)"),
        concurrency: 1,
        operations: n,
        errors: 0,
        elapsed: indexed,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
    };
    println!("{}", indexing.row());
    let matching = Figures {
        label: "engine alone: match_demand".into(),
        concurrency: 1,
        operations: times.len(),
        errors: 0,
        p50: percentile(&mut times, 0.5),
        p99: percentile(&mut times, 0.99),
        elapsed,
    };
    println!("{}", matching.row());
    Ok(())
}
