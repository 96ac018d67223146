//! Curated domain knowledge that closes the vocabulary gap between how enterprises describe a
//! problem (symptoms, goals: "气孔", "偷挖") and how achievements describe a cure (methods:
//! "激光-电弧复合焊接", "分布式光纤振动传感"). Read from `data/term_relations.tsv`, committed and
//! reviewed like code.
//!
//! A line is `trigger<TAB>target<TAB>weight[<TAB>context]`. `trigger` and `target` may list
//! alternatives separated by `|` (every trigger relates to every target). `weight` in (0, 1] says
//! how strongly the method answers the symptom. `context`, when present, lists words (or
//! industry chain names) separated by `|`, one of which must also occur in the demand for the
//! relation to apply: "气孔" means a welding defect only next to "焊".

use std::sync::LazyLock;

#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    pub trigger: String,
    pub target: String,
    pub weight: f64,
    pub context: Vec<String>,
}

/// One relation that applies to a demand: the demand said `trigger`, so look for `target`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expansion {
    pub trigger: String,
    pub target: String,
    pub weight: f64,
}

#[derive(Debug, Default)]
pub struct TermRelations {
    relations: Vec<Relation>,
}

static SHIPPED: LazyLock<TermRelations> = LazyLock::new(|| {
    TermRelations::parse(include_str!("../data/term_relations.tsv"))
        .expect("data/term_relations.tsv is checked by a unit test")
});

impl TermRelations {
    /// The relations shipped with the engine.
    pub fn shipped() -> &'static TermRelations {
        &SHIPPED
    }

    pub fn parse(tsv: &str) -> Result<TermRelations, String> {
        let mut relations = Vec::new();
        for (n, line) in tsv.lines().enumerate() {
            let line = line.trim_end();
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            if !(3..=4).contains(&cols.len()) {
                return Err(format!(
                    "line {}: expected 3 or 4 tab-separated columns",
                    n + 1
                ));
            }
            let weight: f64 = cols[2]
                .trim()
                .parse()
                .map_err(|_| format!("line {}: weight {:?} is not a number", n + 1, cols[2]))?;
            if !(weight > 0.0 && weight <= 1.0) {
                return Err(format!("line {}: weight must be in (0, 1]", n + 1));
            }
            let context = cols.get(3).map(|c| alternatives(c)).unwrap_or_default();
            let triggers = alternatives(cols[0]);
            let targets = alternatives(cols[1]);
            if triggers.is_empty() || targets.is_empty() {
                return Err(format!("line {}: empty trigger or target", n + 1));
            }
            for trigger in &triggers {
                for target in &targets {
                    if trigger != target {
                        relations.push(Relation {
                            trigger: trigger.clone(),
                            target: target.clone(),
                            weight,
                            context: context.clone(),
                        });
                    }
                }
            }
        }
        Ok(TermRelations { relations })
    }

    pub fn len(&self) -> usize {
        self.relations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }

    /// The relations that apply to a demand's text (and its industry chain, which a context
    /// may name). One expansion per target, from its strongest trigger; sorted for determinism.
    pub fn expand(&self, demand_text: &str, industry_chain: &str) -> Vec<Expansion> {
        let text = without_degree_adverbs(&demand_text.to_lowercase());
        let mut best: Vec<Expansion> = Vec::new();
        for r in &self.relations {
            if !text.contains(&r.trigger) {
                continue;
            }
            if !r.context.is_empty() {
                // The context must be found beside the trigger, not inside it ("没信号" does
                // not supply its own context "信号").
                let rest = text.replace(&r.trigger, "|");
                if !r
                    .context
                    .iter()
                    .any(|c| c == industry_chain || rest.contains(c.as_str()))
                {
                    continue;
                }
            }
            // A method the demand already names is not an expansion.
            if text.contains(&r.target) {
                continue;
            }
            match best.iter_mut().find(|e| e.target == r.target) {
                Some(e) if e.weight < r.weight => {
                    e.trigger = r.trigger.clone();
                    e.weight = r.weight;
                }
                Some(_) => {}
                None => best.push(Expansion {
                    trigger: r.trigger.clone(),
                    target: r.target.clone(),
                    weight: r.weight,
                }),
            }
        }
        best.sort_by(|a, b| {
            b.weight
                .total_cmp(&a.weight)
                .then_with(|| a.target.cmp(&b.target))
        });
        best
    }
}

/// Degree adverbs people put between a noun and its complaint: "电费太高" means "电费高".
const DEGREE_ADVERBS: &[&str] = &[
    "非常", "特别", "比较", "老是", "总是", "经常", "十分", "太", "很", "偏", "较",
];
/// The complaints a degree adverb is dropped before.
const COMPLAINTS: &[char] = &[
    '高', '低', '大', '小', '多', '少', '慢', '快', '差', '贵', '重', '短', '长', '厚', '薄', '脏',
    '臭', '难', '严', '不',
];

/// The demand text with degree adverbs before a complaint removed, for trigger matching only.
fn without_degree_adverbs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while let Some(c) = rest.chars().next() {
        for adverb in DEGREE_ADVERBS {
            if let Some(after) = rest.strip_prefix(adverb)
                && after
                    .chars()
                    .next()
                    .is_some_and(|n| COMPLAINTS.contains(&n))
            {
                rest = after;
                continue 'outer;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn alternatives(column: &str) -> Vec<String> {
    column
        .split('|')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_parses_and_is_substantial() {
        let r = TermRelations::parse(include_str!("../data/term_relations.tsv")).unwrap();
        assert!(r.len() > 100, "{} relations", r.len());
    }

    #[test]
    fn alternatives_expand_to_every_pair_and_context_gates() {
        let r = TermRelations::parse("气孔|夹渣\t激光-电弧复合焊接|焊缝跟踪\t0.9\t焊\n").unwrap();
        assert_eq!(r.len(), 4);
        let e = r.expand("焊缝经常出现气孔，返修率高", "高端装备");
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|x| x.trigger == "气孔"));
        // Without a welding context "气孔" (e.g. in ceramics) expands to nothing.
        assert!(r.expand("陶瓷坯体气孔率偏高", "新材料").is_empty());
    }

    #[test]
    fn a_context_may_name_the_industry_chain() {
        let r = TermRelations::parse("偷挖\t分布式光纤振动传感\t1\t节能环保|管道\n").unwrap();
        assert_eq!(r.expand("老有人偷挖", "节能环保").len(), 1);
        assert_eq!(r.expand("老有人偷挖", "生命健康").len(), 0);
    }

    #[test]
    fn strongest_trigger_wins_and_named_methods_are_not_expanded() {
        let r = TermRelations::parse(
            "返修\tX射线探伤\t0.3\n气孔\tx射线探伤\t0.8\n气孔\t焊缝跟踪\t0.5\n",
        )
        .unwrap();
        let e = r.expand("气孔多，返修率高，已有焊缝跟踪", "");
        assert_eq!(
            e,
            vec![Expansion {
                trigger: "气孔".into(),
                target: "x射线探伤".into(),
                weight: 0.8
            }]
        );
    }

    #[test]
    fn degree_adverbs_do_not_hide_a_complaint() {
        assert_eq!(
            without_degree_adverbs("电费太高了，噪音非常大"),
            "电费高了，噪音大"
        );
        assert_eq!(without_degree_adverbs("太阳能很好"), "太阳能很好");
        let r = TermRelations::parse("电费高\t能源管理系统\t0.8\n").unwrap();
        assert_eq!(r.expand("厂里电费太高了", "").len(), 1);
    }

    #[test]
    fn a_trigger_does_not_supply_its_own_context() {
        let r = TermRelations::parse("没信号\t5g小基站\t0.8\t信号|网络\n").unwrap();
        assert!(r.expand("厂房里gps没信号", "").is_empty());
        assert_eq!(r.expand("厂房里没信号，网络不通", "").len(), 1);
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        assert!(
            TermRelations::parse("a\tb\n")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(
            TermRelations::parse("# c\na\tb\tx\n")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(TermRelations::parse("a\tb\t1.5\n").is_err());
    }
}
