//! Every process is scraped: compose's Prometheus finds every replica of each service and of
//! the gateway on the metrics port they are given, Grafana gets that Prometheus and a dashboard
//! that shows every series the code records and no other, and every Kubernetes pod says where
//! to scrape it.

use crate::manifests::{METRICS_PORT, env_map, read, str_of, strings, yaml_documents};
use kechuang_deploy_check::repo_root;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// What runs a metrics endpoint: the four services and the gateway.
const SCRAPED: [&str; 5] = [
    "demand-intake",
    "matching",
    "subsidy",
    "fund-ledger",
    "gateway",
];

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn compose_scrapes_every_replica_and_provisions_grafana() {
    let compose = yaml_documents("docker-compose.yml").remove(0);
    for name in SCRAPED {
        let service = &compose["services"][name];
        let env = env_map(service.get("environment"));
        let port = env
            .iter()
            .find(|(k, _)| k == "KC_METRICS_PORT")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} lacks KC_METRICS_PORT"));
        assert_eq!(port, METRICS_PORT.to_string(), "{name}");
        assert!(strings(&service["expose"]).contains(&port), "{name}");
    }

    // Prometheus: the file compose gives it finds every scraped service by DNS, on that port.
    let prometheus = &compose["services"]["prometheus"];
    let config = &prometheus["configs"][0];
    let target = str_of(&config["target"]);
    assert!(strings(&prometheus["command"]).contains(&format!("--config.file={target}")));
    let file = str_of(&compose["configs"][str_of(&config["source"]).as_str()]["file"]);
    let scrape = yaml(file.trim_start_matches("./"));
    let job = &scrape["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/metrics");
    let dns = &job["dns_sd_configs"][0];
    assert_eq!(dns["type"], "A", "every replica's address, not one");
    assert_eq!(dns["port"].as_u64(), Some(METRICS_PORT.into()));
    let names = strings(&dns["names"]);
    assert_eq!(
        names.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        SCRAPED.into_iter().collect()
    );
    assert!(
        strings(&prometheus["ports"])
            .iter()
            .any(|p| p.ends_with(":9090"))
    );

    // Grafana: that Prometheus as its data source, the dashboards read where compose mounts them.
    let datasource =
        &yaml("deploy/grafana/provisioning/datasources/prometheus.yaml")["datasources"][0];
    assert_eq!(datasource["url"], "http://prometheus:9090");
    assert_eq!(datasource["type"], "prometheus");
    let grafana = &compose["services"]["grafana"];
    let mounts = strings(&grafana["volumes"]);
    let provider = &yaml("deploy/grafana/provisioning/dashboards/kechuang.yaml")["providers"][0];
    let path = str_of(&provider["options"]["path"]);
    for mount in [
        "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro".to_string(),
        format!("./deploy/grafana/dashboards:{path}:ro"),
    ] {
        assert!(mounts.contains(&mount), "grafana lacks {mount}");
    }
    let dashboard = yaml("deploy/grafana/dashboards/kechuang.json");
    for panel in dashboard["panels"].as_sequence().expect("panels") {
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], datasource["uid"], "{panel:?}");
        }
    }
}

/// Every `kc_*` series the dashboard queries (a histogram's `_bucket`, `_count` and `_sum` by
/// the histogram's name) is one the code records, and it shows every one the code records: the
/// names of `services/platform/src/metrics/mod.rs`'s constants and of any `*_METRIC` constant.
#[test]
fn the_dashboard_shows_every_series_the_code_records_and_no_other() {
    let mut recorded = BTreeSet::new();
    for file in rust_files(&repo_root().join("services")) {
        let text = std::fs::read_to_string(&file).expect("a source file");
        let all_consts = file.ends_with("platform/src/metrics/mod.rs");
        for line in text.lines() {
            let Some((name, value)) = line
                .trim()
                .strip_prefix("pub const ")
                .and_then(|rest| rest.split_once(": &str = \""))
            else {
                continue;
            };
            if (all_consts || name.ends_with("_METRIC")) && value.starts_with("kc_") {
                recorded.insert(value.trim_end_matches("\";").to_string());
            }
        }
    }
    assert!(recorded.len() >= 10, "{recorded:?}");

    let dashboard = yaml("deploy/grafana/dashboards/kechuang.json");
    let mut shown = BTreeSet::new();
    for panel in dashboard["panels"].as_sequence().expect("panels") {
        for target in panel["targets"].as_sequence().into_iter().flatten() {
            for name in series_in(&str_of(&target["expr"])) {
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|b| recorded.contains(*b)))
                    .unwrap_or(&name)
                    .to_string();
                assert!(
                    recorded.contains(&base),
                    "the dashboard asks for {name}, which nothing records"
                );
                shown.insert(base);
            }
        }
    }
    assert_eq!(shown, recorded, "series recorded but not on the dashboard");
}

#[test]
fn every_kubernetes_pod_says_where_to_scrape_it() {
    let common = yaml_documents("deploy/k8s/common.yaml").remove(0);
    assert_eq!(
        str_of(&common["data"]["KC_METRICS_PORT"]),
        METRICS_PORT.to_string()
    );
    for name in SCRAPED {
        let deployment = yaml_documents(&format!("deploy/k8s/{name}.yaml"))
            .into_iter()
            .find(|d| d["kind"] == "Deployment")
            .unwrap_or_else(|| panic!("{name} has a Deployment"));
        let pod = &deployment["spec"]["template"];
        let annotations = &pod["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true", "{name}");
        assert_eq!(
            str_of(&annotations["prometheus.io/port"]),
            METRICS_PORT.to_string(),
            "{name}"
        );
        assert_eq!(annotations["prometheus.io/path"], "/metrics", "{name}");
        let container = &pod["spec"]["containers"][0];
        let ports = container["ports"].as_sequence().expect("ports");
        assert!(
            ports.iter().any(|p| p["name"] == "metrics"
                && p["containerPort"].as_u64() == Some(METRICS_PORT.into())),
            "{name} declares no metrics port"
        );
        let maps: Vec<String> = container["envFrom"]
            .as_sequence()
            .expect("envFrom")
            .iter()
            .map(|from| str_of(&from["configMapRef"]["name"]))
            .collect();
        assert!(
            maps.iter().any(|m| m == "kechuang-common"),
            "{name}: KC_METRICS_PORT comes from kechuang-common"
        );
    }
    // The image exposes the port, and the platform serves that path.
    let exposed = read("Dockerfile");
    let exposed = exposed
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    assert!(
        exposed
            .split_whitespace()
            .any(|p| p == METRICS_PORT.to_string())
    );
    assert!(read("services/platform/src/metrics/server.rs").contains("\"/metrics\""));
}

/// The `kc_*` names in a PromQL expression.
fn series_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("kc_"))
        .map(String::from)
        .collect()
}

/// Every `.rs` file under `dir`, except tests' and build output.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a directory").flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "tests" && name != "target" {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
