//! A real Prometheus (Debian's `prometheus` package) scraping a test's metrics endpoint every
//! second, and PromQL through its HTTP API. Killed, its data removed, on drop.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The job name the scrape configuration gives the target.
pub const JOB: &str = "kechuang";

pub struct Prometheus {
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`, path `/metrics`) every second.
    /// Fails, saying how to install it, when there is no Prometheus: `.ci/run` installs it.
    pub async fn scraping(target: SocketAddr) -> Self {
        let binary = binary().unwrap_or_else(|| {
            panic!(
                "Prometheus is not installed: this test runs a real one. Install Debian's \
                 package (`apt-get install -y prometheus`, as .ci/run does), or set \
                 KC_PROMETHEUS to its binary"
            )
        });
        let dir =
            std::env::temp_dir().join(format!("kc-prometheus-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .expect("the configuration");
        let addr = free_addr();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("a log file");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let prometheus = Self { addr, child, dir };
        prometheus.ready().await;
        prometheus
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(get(self.addr, "/-/ready").await, Ok((200, _))) {
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready within 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The values of an instant PromQL query, each with its labels (`__name__` and the
    /// target's `job` and `instance` among them).
    pub async fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let (status, body) = get(self.addr, &path)
            .await
            .unwrap_or_else(|e| panic!("querying Prometheus: {e}"));
        let answer: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("Prometheus answered {status} with no JSON ({e}): {body}"));
        assert_eq!(answer["status"], "success", "{promql}: {answer}");
        answer["data"]["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|series| {
                let value = series["value"][1].as_str().expect("a sample");
                (series["metric"].clone(), value.parse().expect("a number"))
            })
            .collect()
    }

    /// The query's single value (write it as `sum(...)` when it has several), or none.
    pub async fn value(&self, promql: &str) -> Option<f64> {
        let values = self.query(promql).await;
        assert!(values.len() <= 1, "{promql}: several series: {values:?}");
        values.first().map(|(_, v)| *v)
    }

    /// What Prometheus logged (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `KC_PROMETHEUS`, else `prometheus` on the PATH, else Debian's `/usr/bin/prometheus`; the
/// first that answers `--version`.
fn binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("KC_PROMETHEUS")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            PathBuf::from("prometheus"),
            PathBuf::from("/usr/bin/prometheus"),
        ]);
    candidates.into_iter().find(|candidate| {
        Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A loopback address free when asked (Prometheus binds it a moment later).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A plain HTTP/1.0 GET (no chunked answers, the connection closed after it): status and body.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// `s` for a URL's query string: every byte but the unreserved ones as `%XX`.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            super::percent_encode(r#"sum(x{a="b c"})"#),
            "sum%28x%7Ba%3D%22b%20c%22%7D%29"
        );
    }
}
