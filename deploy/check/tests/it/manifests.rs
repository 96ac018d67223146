//! docker-compose.yml, the Kubernetes manifests and the Dockerfile name only what exists: every
//! service, port, environment variable, NATS user and configuration file; and the gateway is
//! deployed like the services, as a client of their addresses.

use kechuang_deploy_check::repo_root;
use serde_yaml::Value;
use std::collections::BTreeSet;

const SERVICES: [(&str, u16, &str, &str); 4] = [
    (
        "demand-intake",
        50051,
        "KC_DEMAND_PORT",
        "kechuang.demand.v1.DemandService",
    ),
    (
        "matching",
        50052,
        "KC_MATCHING_PORT",
        "kechuang.matching.v1.MatchingService",
    ),
    (
        "subsidy",
        50053,
        "KC_SUBSIDY_PORT",
        "kechuang.subsidy.v1.SubsidyService",
    ),
    (
        "fund-ledger",
        50054,
        "KC_FUND_PORT",
        "kechuang.fund.v1.FundService",
    ),
];

/// The gateway's HTTP port (KC_GATEWAY_PORT's default in services/platform/src/config.rs).
const GATEWAY_PORT: u16 = 8080;
/// Every process's metrics port (KC_METRICS_PORT, the deployment's setting; see metrics.rs).
pub const METRICS_PORT: u16 = 9464;

/// Where the gateway finds a service: `KC_DEMAND_PORT` -> `KC_DEMAND_URL`.
fn url_var(port_var: &str) -> String {
    port_var.replace("_PORT", "_URL")
}

pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a sequence: {v:?}"))
        .iter()
        .map(str_of)
        .collect()
}

/// The gateway's probe paths are routes it has (`services/gateway/src/health.rs`).
fn assert_gateway_routes(paths: &[&str]) {
    let health = read("services/gateway/src/health.rs");
    for path in paths {
        assert!(
            health.contains(&format!(".route(\"{path}\"")),
            "the gateway has no route {path}"
        );
    }
}

/// `${NAME...}` references of a compose file.
fn interpolated_variables(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

pub(crate) fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn yaml_documents(path: &str) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}"));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{path}: merge keys: {e}"));
            value
        })
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize as _;

/// The environment variables platform's `Settings` reads: `KC_<FIELD>` per field, plus
/// OTEL_EXPORTER_OTLP_ENDPOINT; RUST_LOG is read by the log filter.
fn settings_variables() -> BTreeSet<String> {
    let source = read("services/platform/src/config.rs");
    let body = source
        .split("pub struct Settings {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("config.rs defines Settings");
    let mut vars: BTreeSet<String> = body
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub "))
        .filter_map(|line| line.split(':').next())
        .map(|field| format!("KC_{}", field.trim().to_uppercase()))
        .collect();
    assert!(vars.contains("KC_NATS_URL") && vars.contains("KC_FUND_PORT"));
    vars.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into());
    vars.insert("RUST_LOG".into());
    vars
}

/// `$KC_NATS_PASSWORD_*` variables and users of deploy/nats/permissions.conf.
fn nats_permission_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let conf = read("deploy/nats/permissions.conf");
    let vars = conf
        .split('$')
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|v| v.starts_with("KC_NATS_PASSWORD_"))
        .collect();
    let users = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("user: "))
        .map(|u| u.trim_matches('"').to_string())
        .collect();
    (vars, users)
}

pub(crate) fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

pub(crate) fn env_map(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    str_of(k),
                    if v.is_null() {
                        String::new()
                    } else {
                        str_of(v)
                    },
                )
            })
            .collect(),
        None => Vec::new(),
        Some(other) => panic!("environment is not a mapping: {other:?}"),
    }
}

fn health_services_in_protos() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for dir in ["demand", "matching", "subsidy", "fund"] {
        let proto = read(&format!("proto/kechuang/{dir}/v1/{dir}.proto"));
        let package = proto
            .lines()
            .find_map(|l| l.strip_prefix("package "))
            .expect("package")
            .trim_end_matches(';')
            .to_string();
        for line in proto.lines() {
            if let Some(rest) = line.strip_prefix("service ") {
                let name = rest.split_whitespace().next().expect("service name");
                names.insert(format!("{package}.{name}"));
            }
        }
    }
    names
}

fn binaries() -> BTreeSet<String> {
    let mut bins = BTreeSet::new();
    for manifest in [
        "services/kechuang/Cargo.toml",
        "services/demand-intake/Cargo.toml",
        "services/matching/Cargo.toml",
        "services/subsidy/Cargo.toml",
        "services/fund-ledger/Cargo.toml",
        "deploy/check/Cargo.toml",
    ] {
        let text = read(manifest);
        for block in text.split("[[bin]]").skip(1) {
            let name = block
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .expect("bin name");
            bins.insert(name.trim_matches('"').to_string());
        }
    }
    bins
}

#[test]
fn compose_names_only_existing_services_ports_variables_and_files() {
    let compose = yaml_documents("docker-compose.yml").remove(0);
    let settings = settings_variables();
    let (password_vars, nats_users) = nats_permission_names();
    let health_names = health_services_in_protos();
    let bins = binaries();
    let services = compose["services"].as_mapping().expect("services");

    for (name, port, port_var, health) in SERVICES {
        let service = &compose["services"][name];
        assert!(service.is_mapping(), "compose lacks {name}");
        assert!(repo_root().join("services").join(name).is_dir(), "{name}");
        assert_eq!(service["deploy"]["replicas"].as_u64(), Some(2), "{name}");
        let command: Vec<String> = service["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .map(str_of)
            .collect();
        assert_eq!(command, ["serve", name]);
        assert_eq!(
            str_of(&service["build"]["dockerfile"]),
            "Dockerfile",
            "{name}"
        );
        let env = env_map(service.get("environment"));
        for (var, _) in &env {
            assert!(settings.contains(var), "{name}: {var} is read by nothing");
        }
        let value = |var: &str| {
            env.iter()
                .find(|(k, _)| k == var)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{name} lacks {var}"))
        };
        assert_eq!(value(port_var), port.to_string(), "{name}");
        assert_eq!(value("KC_STREAM_REPLICAS"), "3");
        let nats_url = value("KC_NATS_URL");
        let user = nats_url
            .strip_prefix("nats://")
            .and_then(|r| r.split(':').next())
            .expect("user in KC_NATS_URL");
        assert_eq!(user, name);
        assert!(nats_users.contains(user), "{user} not in permissions.conf");
        let password_var = format!("KC_NATS_PASSWORD_{}", name.replace('-', "_").to_uppercase());
        assert!(
            nats_url.contains(&format!("${{{password_var}}}")),
            "{nats_url}"
        );
        assert!(password_vars.contains(&password_var), "{password_var}");
        let expose: Vec<String> = service["expose"]
            .as_sequence()
            .expect("expose")
            .iter()
            .map(str_of)
            .collect();
        assert_eq!(expose, [port.to_string(), METRICS_PORT.to_string()]);
        let check: Vec<String> = service["healthcheck"]["test"]
            .as_sequence()
            .expect("healthcheck")
            .iter()
            .map(str_of)
            .collect();
        assert_eq!(check[0], "CMD");
        assert!(bins.contains(&check[1]), "{} is not a binary", check[1]);
        assert_eq!(check[2], format!("127.0.0.1:{port}"));
        assert_eq!(check[3], health);
        assert!(health_names.contains(health), "{health}");
        assert!(service["restart"].is_string(), "{name}");
    }

    // The gateway: twice, a client of the four services by their compose names, with the
    // shared token and CSRF keys, the database of its sessions and no NATS credentials.
    let gateway = &compose["services"]["gateway"];
    assert!(gateway.is_mapping(), "compose lacks gateway");
    assert_eq!(gateway["deploy"]["replicas"].as_u64(), Some(2));
    assert_eq!(strings(&gateway["command"]), ["serve", "gateway"]);
    assert_eq!(str_of(&gateway["build"]["dockerfile"]), "Dockerfile");
    let env = env_map(gateway.get("environment"));
    for (var, _) in &env {
        assert!(settings.contains(var), "gateway: {var} is read by nothing");
    }
    let value = |var: &str| {
        env.iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("gateway lacks {var}"))
    };
    assert_eq!(value("KC_GATEWAY_PORT"), GATEWAY_PORT.to_string());
    assert_eq!(value("KC_HOST"), "0.0.0.0");
    for (name, port, port_var, _) in SERVICES {
        assert_eq!(value(&url_var(port_var)), format!("http://{name}:{port}"));
        assert_eq!(
            gateway["depends_on"][name]["condition"], "service_healthy",
            "gateway must wait for {name}"
        );
    }
    let services_env = env_map(compose["services"]["demand-intake"].get("environment"));
    for var in [
        "KC_TOKEN_JWKS_URL",
        "KC_TOKEN_ISSUER",
        "KC_TOKEN_ROLES_CLAIM",
    ] {
        let theirs = services_env
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.clone());
        assert_eq!(
            Some(value(var)),
            theirs,
            "one identity provider for all: {var}"
        );
    }
    // People sign in at the gateway with the provider whose tokens the services trust.
    assert_eq!(value("KC_GATEWAY_OIDC_ISSUER"), value("KC_TOKEN_ISSUER"));
    assert!(
        value("KC_GATEWAY_CSRF_KEY").starts_with("${KC_GATEWAY_CSRF_KEY:?"),
        "the replicas must share a required CSRF key"
    );
    assert!(
        !env.iter().any(|(k, _)| k == "KC_NATS_URL"),
        "gateway gets KC_NATS_URL"
    );
    // Its sessions: in its own database on the services' server, shared by its replicas.
    assert_eq!(
        Some(value("KC_DATABASE_URL")),
        services_env
            .iter()
            .find(|(k, _)| k == "KC_DATABASE_URL")
            .map(|(_, v)| v.clone())
    );
    assert_eq!(
        strings(&gateway["expose"]),
        [GATEWAY_PORT.to_string(), METRICS_PORT.to_string()]
    );
    assert!(
        gateway.get("ports").is_none(),
        "two replicas cannot publish one host port"
    );
    let check = strings(&gateway["healthcheck"]["test"]);
    assert_eq!(
        check,
        [
            "CMD",
            "kc-healthcheck",
            &format!("http://127.0.0.1:{GATEWAY_PORT}/healthz")
        ]
    );
    assert!(bins.contains(&check[1]), "{} is not a binary", check[1]);
    assert!(gateway["restart"].is_string());
    assert_gateway_routes(&["/healthz", "/readyz"]);
    // gateway-lb publishes the one host port and balances over the ready replicas.
    let lb = &compose["services"]["gateway-lb"];
    assert_eq!(
        strings(&lb["ports"]),
        [format!("127.0.0.1:{GATEWAY_PORT}:{GATEWAY_PORT}")]
    );
    assert_eq!(lb["depends_on"]["gateway"]["condition"], "service_healthy");
    let haproxy_source = str_of(&lb["configs"][0]["source"]);
    let haproxy = read(&str_of(
        &compose["configs"][haproxy_source.as_str()]["file"],
    ));
    assert!(haproxy.contains(&format!("bind :{GATEWAY_PORT}")));
    assert!(haproxy.contains(&format!("server-template gateway 4 gateway:{GATEWAY_PORT}")));
    assert!(haproxy.contains("option httpchk GET /readyz"));
    assert!(haproxy.contains("nameserver dns 127.0.0.11:53"));
    let lb_check = strings(&lb["healthcheck"]["test"]);
    let monitor = haproxy
        .lines()
        .find_map(|l| l.trim().strip_prefix("monitor-uri "))
        .expect("monitor-uri");
    assert!(lb_check.last().is_some_and(|url| url.ends_with(monitor)));

    // Every variable compose interpolates is in deploy/example.env, and nothing else is.
    let example: BTreeSet<String> = read("deploy/example.env")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    assert_eq!(interpolated_variables(&read("docker-compose.yml")), example);

    // The NATS cluster: three nodes, each with its volume, every password variable given.
    for node in ["nats-1", "nats-2", "nats-3"] {
        let service = &compose["services"][node];
        let env = env_map(service.get("environment"));
        for var in &password_vars {
            assert!(env.iter().any(|(k, _)| k == var), "{node} lacks {var}");
        }
        assert!(
            env.iter()
                .any(|(k, v)| k == "NATS_SERVER_NAME" && v == node)
        );
        let volume = str_of(&service["volumes"][0]);
        let named = volume.split(':').next().expect("volume");
        assert!(compose["volumes"].get(named).is_some(), "{named}");
        assert!(service["healthcheck"]["test"].is_sequence());
    }
    let nats_conf = read("deploy/nats/nats.conf");
    for node in ["nats-1", "nats-2", "nats-3"] {
        assert!(nats_conf.contains(&format!("nats-route://{node}:6222")));
    }
    assert!(nats_conf.contains("sync_interval: always"));
    assert!(nats_conf.contains("include \"permissions.conf\""));

    // Config files and bind mounts exist.
    for (_, config) in compose["configs"].as_mapping().expect("configs") {
        let file = str_of(&config["file"]);
        assert!(repo_root().join(&file).is_file(), "{file}");
    }
    for (name, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            // Short syntax `source:target[:mode]`, or the long one with a `source` key.
            let source = if volume.is_mapping() {
                str_of(&volume["source"])
            } else {
                str_of(volume)
            };
            let source = source.split(':').next().expect("source");
            if source.starts_with("./") {
                assert!(
                    repo_root().join(source).exists(),
                    "{}: {source}",
                    str_of(name)
                );
            } else {
                assert!(compose["volumes"].get(source).is_some(), "{source}");
            }
        }
        for (dependency, _) in service["depends_on"].as_mapping().into_iter().flatten() {
            assert!(services.contains_key(dependency), "{}", str_of(dependency));
        }
    }
    for required in [
        "postgres",
        "otel-collector",
        "jaeger",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(required), "{required}");
    }
    let collector = read("deploy/otel-collector.yaml");
    let collector: Value = serde_yaml::from_str(&collector).expect("collector yaml");
    assert!(collector["service"]["pipelines"]["traces"].is_mapping());
}

#[test]
fn kubernetes_manifests_name_only_existing_services_ports_variables_and_files() {
    let settings = settings_variables();
    let (password_vars, nats_users) = nats_permission_names();
    let health_names = health_services_in_protos();
    let kustomization = yaml_documents("deploy/kustomization.yaml").remove(0);
    let mut documents = Vec::new();
    for resource in kustomization["resources"].as_sequence().expect("resources") {
        let path = format!("deploy/{}", str_of(resource));
        documents.extend(yaml_documents(&path));
    }
    for generator in kustomization["configMapGenerator"]
        .as_sequence()
        .expect("generators")
    {
        for file in generator["files"].as_sequence().expect("files") {
            let file = str_of(file);
            let source = file.split('=').nth(1).unwrap_or(&file);
            assert!(
                repo_root().join("deploy").join(source).is_file(),
                "{source}"
            );
        }
    }
    let find = |kind: &str, name: &str| {
        documents
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let config_maps: Vec<String> = documents
        .iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .map(|d| str_of(&d["metadata"]["name"]))
        .collect();
    let common = find("ConfigMap", "kechuang-common");
    for (key, _) in common["data"].as_mapping().expect("data") {
        assert!(settings.contains(&str_of(key)), "{}", str_of(key));
    }
    assert_eq!(str_of(&common["data"]["KC_STREAM_REPLICAS"]), "3");

    for (name, port, port_var, health) in SERVICES {
        let config = find("ConfigMap", &format!("{name}-config"));
        for (key, _) in config["data"].as_mapping().expect("data") {
            assert!(settings.contains(&str_of(key)), "{name}: {}", str_of(key));
        }
        assert_eq!(str_of(&config["data"][port_var]), port.to_string());
        assert_eq!(str_of(&common["data"][port_var]), port.to_string());

        let service = find("Service", name);
        assert_eq!(
            service["spec"]["ports"][0]["port"].as_u64(),
            Some(port.into())
        );
        assert_eq!(service["spec"]["selector"]["app"], name);

        let deployment = find("Deployment", name);
        assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
        let pod = &deployment["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"]["app"], name);
        let container = &pod["spec"]["containers"][0];
        let args: Vec<String> = container["args"]
            .as_sequence()
            .expect("args")
            .iter()
            .map(str_of)
            .collect();
        assert_eq!(args, ["serve", name]);
        assert_eq!(
            container["ports"][0]["containerPort"].as_u64(),
            Some(port.into())
        );
        assert_eq!(
            container["ports"][0]["name"],
            service["spec"]["ports"][0]["targetPort"]
        );
        for from in container["envFrom"].as_sequence().expect("envFrom") {
            let map = str_of(&from["configMapRef"]["name"]);
            assert!(config_maps.contains(&map), "{map}");
        }
        for var in container["env"].as_sequence().expect("env") {
            let var = str_of(&var["name"]);
            // NATS_PASSWORD / POSTGRES_PASSWORD only feed $(...) in the URLs below them.
            let helper = var == "NATS_PASSWORD" || var == "POSTGRES_PASSWORD";
            assert!(
                helper || settings.contains(&var),
                "{name}: {var} is read by nothing"
            );
        }
        let env = container["env"].as_sequence().expect("env");
        let nats_url = env
            .iter()
            .find(|v| v["name"] == "KC_NATS_URL")
            .map(|v| str_of(&v["value"]))
            .expect("KC_NATS_URL");
        assert_eq!(
            nats_url,
            format!("nats://{name}:$(NATS_PASSWORD)@nats:4222")
        );
        assert!(nats_users.contains(name));
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert_eq!(
                container[probe]["grpc"]["port"].as_u64(),
                Some(port.into()),
                "{name} {probe}"
            );
            if let Some(service) = container[probe]["grpc"]["service"].as_str() {
                assert_eq!(service, health);
                assert!(health_names.contains(service));
            }
        }
        assert!(container["resources"]["requests"]["cpu"].is_string());
        assert!(container["resources"]["requests"]["memory"].is_string());
    }

    // The gateway: two replicas reaching the four Services, HTTP probes, secrets for the token
    // and CSRF keys, the database of its sessions, no NATS credentials.
    let config = find("ConfigMap", "gateway-config");
    for (key, _) in config["data"].as_mapping().expect("data") {
        assert!(settings.contains(&str_of(key)), "gateway: {}", str_of(key));
    }
    assert_eq!(
        str_of(&config["data"]["KC_GATEWAY_PORT"]),
        GATEWAY_PORT.to_string()
    );
    for (name, port, port_var, _) in SERVICES {
        assert_eq!(
            str_of(&config["data"][url_var(port_var).as_str()]),
            format!("http://{name}:{port}")
        );
    }
    let service = find("Service", "gateway");
    assert_eq!(
        service["spec"]["ports"][0]["port"].as_u64(),
        Some(GATEWAY_PORT.into())
    );
    assert_eq!(service["spec"]["selector"]["app"], "gateway");
    let deployment = find("Deployment", "gateway");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["app"], "gateway");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(strings(&container["args"]), ["serve", "gateway"]);
    let port_name = &container["ports"][0]["name"];
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(GATEWAY_PORT.into())
    );
    assert_eq!(*port_name, service["spec"]["ports"][0]["targetPort"]);
    for from in container["envFrom"].as_sequence().expect("envFrom") {
        let map = str_of(&from["configMapRef"]["name"]);
        assert!(config_maps.contains(&map), "{map}");
    }
    let env = container["env"].as_sequence().expect("env");
    for var in env {
        let var = str_of(&var["name"]);
        // POSTGRES_PASSWORD only feeds $(...) in KC_DATABASE_URL.
        assert!(
            settings.contains(&var) || var == "POSTGRES_PASSWORD",
            "gateway: {var} is read by nothing"
        );
        assert_ne!(var, "KC_NATS_URL", "gateway gets {var}");
    }
    let secret_of = |var: &str| {
        env.iter()
            .find(|v| v["name"] == var)
            .map(|v| &v["valueFrom"]["secretKeyRef"])
            .unwrap_or_else(|| panic!("gateway lacks {var}"))
    };
    assert_eq!(secret_of("POSTGRES_PASSWORD")["key"], "postgres-password");
    assert_eq!(secret_of("KC_GATEWAY_CSRF_KEY")["key"], "gateway-csrf-key");
    assert_eq!(secret_of("KC_GATEWAY_CSRF_KEY")["name"], "kechuang-secrets");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], *port_name, "{probe}");
    }
    assert_gateway_routes(&["/healthz", "/readyz"]);
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(
        read("deploy/README.md").contains("--from-literal=gateway-csrf-key="),
        "deploy/README.md must say how to create the gateway's CSRF key"
    );

    let nats = find("StatefulSet", "nats");
    assert_eq!(nats["spec"]["replicas"].as_u64(), Some(3));
    let env = nats["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .expect("env");
    for var in &password_vars {
        assert!(
            env.iter().any(|v| v["name"] == var.as_str()),
            "nats lacks {var}"
        );
    }
    find("Service", "nats");
    let conf = read("deploy/nats/nats-k8s.conf");
    for pod in ["nats-0", "nats-1", "nats-2"] {
        assert!(conf.contains(&format!("nats-route://{pod}.nats-cluster:6222")));
    }
}

#[test]
fn the_dockerfile_builds_every_binary_it_ships() {
    let dockerfile = read("Dockerfile");
    let bins = binaries();
    for bin in [
        "kechuang",
        "demand-intake",
        "matching",
        "subsidy",
        "fund-ledger",
        "kc-healthcheck",
    ] {
        assert!(bins.contains(bin), "{bin} is not a binary of the workspace");
        assert!(
            dockerfile.contains(&format!("target/release/{bin} ")),
            "{bin} is not copied"
        );
    }
    assert!(dockerfile.contains("cargo build --release --locked"));
    let exposed = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    for (_, port, _, _) in SERVICES {
        assert!(exposed.split_whitespace().any(|p| p == port.to_string()));
    }
    assert!(
        exposed
            .split_whitespace()
            .any(|p| p == GATEWAY_PORT.to_string())
    );
    let dockerignore = read(".dockerignore");
    assert!(dockerignore.lines().any(|l| l == "target/"));
}

/// Each service holds its own event signing key and no other: compose mounts its own
/// directory of the key volume, Kubernetes projects its own Secret beside the public keys.
#[test]
fn each_service_mounts_only_its_own_event_signing_key() {
    let compose = yaml_documents("docker-compose.yml").remove(0);
    for service in ["demand-intake", "matching", "subsidy", "fund-ledger"] {
        let mounts = compose["services"][service]["volumes"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{service} mounts its keys"));
        let keys = mounts
            .iter()
            .find(|m| m.is_mapping() && str_of(&m["source"]) == "event-keys")
            .unwrap_or_else(|| panic!("{service} mounts the event-keys volume"));
        assert_eq!(str_of(&keys["volume"]["subpath"]), service);
        assert_eq!(str_of(&keys["target"]), "/run/kechuang/keys");
        assert_eq!(keys["read_only"], Value::Bool(true), "{service}");

        let deployment = yaml_documents(&format!("deploy/k8s/{service}.yaml"))
            .into_iter()
            .find(|d| d["kind"] == Value::String("Deployment".into()))
            .unwrap_or_else(|| panic!("{service} has a Deployment"));
        let volumes = deployment["spec"]["template"]["spec"]["volumes"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{service} has volumes"));
        let sources: Vec<String> = volumes
            .iter()
            .filter(|v| str_of(&v["name"]) == "event-keys")
            .flat_map(|v| {
                v["projected"]["sources"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|s| {
                if s["secret"].is_mapping() {
                    format!("secret:{}", str_of(&s["secret"]["name"]))
                } else {
                    format!("configMap:{}", str_of(&s["configMap"]["name"]))
                }
            })
            .collect();
        assert_eq!(
            sources,
            [
                format!("secret:kechuang-event-key-{service}"),
                "configMap:kechuang-event-public-keys".to_string()
            ]
        );
    }
}

/// Tokens are signed by an issuer no service is: compose points every service and the
/// gateway at Keycloak's key set, and Kubernetes at the identity provider's.
#[test]
fn no_service_holds_a_token_signing_key() {
    let compose = yaml_documents("docker-compose.yml").remove(0);
    let script = strings(&compose["services"]["event-keys"]["command"]).join("\n");
    assert!(
        !script.contains("issuer"),
        "no token issuer key is made: {script}"
    );
    for service in [
        "demand-intake",
        "matching",
        "subsidy",
        "fund-ledger",
        "gateway",
    ] {
        let s = &compose["services"][service];
        let env = env_map(s.get("environment"));
        for (k, _) in &env {
            assert!(
                k != "KC_TOKEN_SIGNING_KEY" && k != "KC_JWT_SECRET" && k != "KC_TOKEN_JWKS_FILE",
                "{service} gets {k}"
            );
        }
        let jwks = env
            .iter()
            .find(|(k, _)| k == "KC_TOKEN_JWKS_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{service} lacks KC_TOKEN_JWKS_URL"));
        assert!(
            jwks.starts_with("http://keycloak:8080/realms/kechuang/"),
            "{service}: {jwks}"
        );
        assert_eq!(
            s["depends_on"]["keycloak"]["condition"], "service_healthy",
            "{service} fetches the key set at start"
        );
    }
    let common = yaml_documents("deploy/k8s/common.yaml").remove(0);
    assert!(str_of(&common["data"]["KC_TOKEN_JWKS_URL"]).starts_with("https://"));
    assert!(!str_of(&common["data"]["KC_TOKEN_ISSUER"]).is_empty());
    for service in [
        "demand-intake",
        "matching",
        "subsidy",
        "fund-ledger",
        "gateway",
    ] {
        let text = read(&format!("deploy/k8s/{service}.yaml"));
        assert!(
            !text.contains("KC_TOKEN_SIGNING_KEY") && !text.contains("KC_JWT_SECRET"),
            "{service}"
        );
    }
}
