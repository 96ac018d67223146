use kechuang_proto::common::{ContractType, TransferMode};
use matching_engine::{AchievementDoc, DemandDoc, Engine};

pub fn wan(w: i64) -> i64 {
    w * 1_000_000
}

#[allow(clippy::too_many_arguments)]
pub fn achievement(
    id: &str,
    title: &str,
    abstract_text: &str,
    keywords: &[&str],
    chain: &str,
    trl: i32,
    modes: &[TransferMode],
    price_wan: i64,
    region: &str,
) -> AchievementDoc {
    AchievementDoc {
        id: id.into(),
        institution: "某高校".into(),
        title: title.into(),
        abstract_text: abstract_text.into(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        industry_chain: chain.into(),
        trl,
        transfer_modes: modes.to_vec(),
        asking_price_fen: wan(price_wan),
        region_code: region.into(),
    }
}

pub fn demand(
    id: &str,
    title: &str,
    description: &str,
    chain: &str,
    contract: ContractType,
    budget_max_wan: i64,
) -> DemandDoc {
    DemandDoc {
        id: id.into(),
        title: title.into(),
        description: description.into(),
        industry_chain: chain.into(),
        contract_type: contract,
        budget_min_fen: 0,
        budget_max_fen: wan(budget_max_wan),
        region_code: "420100".into(),
    }
}

pub fn catalog() -> Vec<AchievementDoc> {
    use TransferMode::*;
    vec![
        achievement(
            "weld-hybrid",
            "激光-电弧复合焊接工艺参数自适应调控技术",
            "针对中厚板焊接效率低、焊接缺陷多的难题，研发激光-电弧复合焊接工艺，基于熔池视觉监测实时调整激光功率与送丝速度，实现工艺参数自适应调控，焊缝一次合格率提升至99%以上。",
            &["激光-电弧复合焊接", "熔池视觉监测", "工艺参数自适应"],
            "高端装备",
            7,
            &[License, Assignment],
            120,
            "420111",
        ),
        achievement(
            "ceramic-pores",
            "多孔陶瓷气孔率与孔径精确调控制备技术",
            "通过造孔剂级配与烧结制度优化，实现多孔陶瓷气孔率在30%-70%范围内精确调控，气孔分布均匀，气孔孔径可控，用于高温烟气过滤与催化剂载体。",
            &["多孔陶瓷", "气孔率", "造孔剂"],
            "新材料",
            6,
            &[Assignment],
            60,
            "420500",
        ),
        achievement(
            "weld-fume",
            "焊接烟尘高效净化与回收装置",
            "面向焊接车间烟尘浓度高、工人职业健康风险大的问题，开发滤筒式焊接烟尘净化装置，净化效率99%。",
            &["焊接烟尘", "除尘", "职业健康"],
            "节能环保",
            8,
            &[Assignment],
            30,
            "420100",
        ),
        achievement(
            "fiber-pipeline",
            "基于分布式光纤振动传感的长输管道安全预警系统",
            "利用与管道同沟敷设的通信光缆，采用相位敏感光时域反射（Φ-OTDR）技术实现分布式光纤振动传感，对机械施工、人工挖掘等第三方破坏行为进行识别定位，定位精度优于10米。",
            &["分布式光纤振动传感", "Φ-OTDR", "管道安全预警"],
            "光电子信息",
            7,
            &[License],
            200,
            "420100",
        ),
        achievement(
            "fiber-home",
            "光纤到户接入网络低成本部署方法",
            "提出面向老旧小区的光纤到户部署方案，降低管道资源占用与施工成本。",
            &["光纤到户", "接入网", "FTTH"],
            "光电子信息",
            8,
            &[Assignment],
            40,
            "420100",
        ),
        achievement(
            "ai-inspect",
            "基于深度学习的产线表面缺陷AI视觉检测系统",
            "采用卷积神经网络对金属件表面划痕、凹坑进行实时识别，支持与PLC联动剔除不良品，检出率99.5%，适用于冲压、压铸产线。",
            &["机器视觉", "缺陷检测", "深度学习", "PLC"],
            "人工智能与软件",
            7,
            &[License, JointDevelopment],
            50,
            "420100",
        ),
        achievement(
            "ai-speech",
            "面向客服场景的AI语音质检平台",
            "对呼叫中心通话录音进行语音识别与情绪分析，自动发现服务违规话术，实现客服通话全量质检。",
            &["语音识别", "客服质检", "情绪分析"],
            "人工智能与软件",
            8,
            &[License],
            35,
            "310000",
        ),
        achievement(
            "battery-thermal",
            "动力电池热失控早期预警与抑制技术",
            "融合电芯温度、电压与产气信号，实现动力电池热失控提前预警，配合气溶胶灭火抑制热蔓延。",
            &["热失控", "动力电池", "早期预警"],
            "新能源与智能网联汽车",
            6,
            &[JointDevelopment],
            150,
            "420100",
        ),
    ]
}

pub fn loaded() -> Engine {
    let engine = Engine::new().expect("engine");
    engine.add_achievements(&catalog()).expect("add");
    engine
}

pub fn weld_demand() -> DemandDoc {
    demand(
        "d-weld",
        "压力容器焊缝质量问题",
        "我们公司生产压力容器，焊缝经常出现气孔，返修率高，希望找到能提高焊接质量的技术。",
        "高端装备",
        ContractType::License,
        80,
    )
}

pub fn pipeline_demand() -> DemandDoc {
    demand(
        "d-pipe",
        "输油管道防破坏",
        "管道沿线老有人偷挖，去年被挖断过两次，希望能提前发现并报警。",
        "绿色化工",
        ContractType::License,
        300,
    )
}

pub fn ai_demand() -> DemandDoc {
    demand(
        "d-ai",
        "冲压件AI质检",
        "冲压产线靠人工目检，漏检多，想上AI质检，需要能和现有PLC对接。",
        "高端装备",
        ContractType::Development,
        100,
    )
}
