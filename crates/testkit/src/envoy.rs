//! [`Envoy`]: the real Envoy, started from a bootstrap, observed through its admin API.

use crate::{bowline_proxy_binary, envoy_binary, get, wait_until, Proc};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// How long [`Envoy::start`] waits for Envoy to publish its admin address.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Which proxy runs as the sidecar: the real Envoy, or bowline's own proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Envoy,
    Bowline,
}

impl ProxyKind {
    /// Both, for differential tests.
    pub const ALL: [ProxyKind; 2] = [ProxyKind::Envoy, ProxyKind::Bowline];

    pub fn binary(self) -> std::path::PathBuf {
        match self {
            ProxyKind::Envoy => envoy_binary(),
            ProxyKind::Bowline => bowline_proxy_binary(),
        }
    }
}

/// A running Envoy (`--concurrency 1`, `-l info`, a dynamic base id so several run at once,
/// access logs flushed every 100 ms).
/// Its logs go through a [`Proc`]; it is stopped by PID on drop.
pub struct Envoy {
    proc: Proc,
    admin: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy with `bootstrap_yaml` (written to a temp dir) and waits, up to
    /// [`START_TIMEOUT`], until it has bound its admin listener. The bootstrap's admin address
    /// may use port 0. It does not wait for readiness: see [`Envoy::wait_ready`].
    pub async fn start(bootstrap_yaml: &str) -> Result<Envoy> {
        Envoy::start_named("envoy", bootstrap_yaml).await
    }

    /// Like [`Envoy::start`], with `name` prefixing its log lines (for tests with several).
    pub async fn start_named(name: &str, bootstrap_yaml: &str) -> Result<Envoy> {
        Envoy::start_kind(ProxyKind::Envoy, name, bootstrap_yaml).await
    }

    /// Starts the proxy `kind` from the same bootstrap, with the same flags: bowline-proxy
    /// takes Envoy's command line (`-c`, `--admin-address-path`, `--concurrency`, `-l`), so
    /// everything below works on both and a test can run one scenario against each.
    pub async fn start_kind(kind: ProxyKind, name: &str, bootstrap_yaml: &str) -> Result<Envoy> {
        let dir = tempfile::tempdir().context("tempdir")?;
        let config = dir.path().join("bootstrap.yaml");
        let admin_file = dir.path().join("admin-address");
        std::fs::write(&config, bootstrap_yaml).context("write bootstrap")?;
        let mut command = Command::new(kind.binary());
        command
            .arg("-c")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .args(["--concurrency", "1", "--use-dynamic-base-id", "-l", "info"])
            // Access log lines reach their files within 100 ms (Envoy's default is 10 s).
            .args(["--file-flush-interval-msec", "100"]);
        let mut proc = Proc::spawn(name, command)?;
        let admin = wait_until(START_TIMEOUT, POLL, || {
            let exited = proc.try_exit_status();
            let text = std::fs::read_to_string(&admin_file);
            async move {
                if let Ok(Some(status)) = exited {
                    bail!("envoy exited ({status}) before binding its admin listener");
                }
                let text = text.context("admin address file not written yet")?;
                text.trim()
                    .parse::<SocketAddr>()
                    .with_context(|| format!("admin address {text:?}"))
            }
        })
        .await
        .with_context(|| format!("start {name}; logs:\n{}", proc.logs()))?;
        Ok(Envoy {
            proc,
            admin,
            _dir: dir,
        })
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The process guard (PID, logs, terminate).
    pub fn proc(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// Everything Envoy logged so far.
    pub fn logs(&self) -> String {
        self.proc.logs()
    }

    /// GETs admin `path` (e.g. `/config_dump`) and returns the body; a status other than
    /// 200 is an error carrying the body.
    pub async fn get_admin(&self, path: &str) -> Result<String> {
        let response = get(self.admin, path, &[], ADMIN_REQUEST_TIMEOUT).await?;
        if response.status != 200 {
            bail!(
                "admin {path}: status {}: {}",
                response.status,
                response.text()
            );
        }
        Ok(response.text())
    }

    /// Polls admin `/listeners?format=json` until listener `name` is there and returns the
    /// address it is bound to (the port Envoy picked when the config said 0). Bounded by
    /// `timeout`.
    pub async fn listener_addr(&self, name: &str, timeout: Duration) -> Result<SocketAddr> {
        wait_until(timeout, POLL, || async {
            let listeners: serde_json::Value =
                serde_json::from_str(&self.get_admin("/listeners?format=json").await?)?;
            find_listener(&listeners, name)
        })
        .await
        .with_context(|| format!("listener {name:?} in envoy at admin {}", self.admin))
    }

    /// Polls admin `/ready` until it answers 200 (`LIVE`). With dynamic resources Envoy is
    /// ready only after its initial CDS/LDS arrived, so this also waits for the control plane.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        wait_until(timeout, POLL, || async {
            let response = get(self.admin, "/ready", &[], ADMIN_REQUEST_TIMEOUT).await?;
            if response.status != 200 {
                bail!("/ready: {} {}", response.status, response.text().trim());
            }
            Ok(())
        })
        .await
        .with_context(|| format!("envoy at admin {} never became ready", self.admin))
    }

    /// Runs `envoy --mode validate` on `bootstrap_yaml`; the error carries Envoy's output.
    pub fn validate(bootstrap_yaml: &str) -> Result<()> {
        let dir = tempfile::tempdir().context("tempdir")?;
        let config = dir.path().join("bootstrap.yaml");
        std::fs::write(&config, bootstrap_yaml).context("write bootstrap")?;
        let output = Command::new(envoy_binary())
            .args(["--mode", "validate", "-l", "warning", "-c"])
            .arg(&config)
            .output()
            .context("run envoy --mode validate")?;
        if !output.status.success() {
            bail!(
                "envoy rejected the bootstrap ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

fn find_listener(listeners: &serde_json::Value, name: &str) -> Result<SocketAddr> {
    let statuses = listeners["listener_statuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(listener) = statuses.iter().find(|l| l["name"] == name) else {
        let names: Vec<&str> = statuses.iter().filter_map(|l| l["name"].as_str()).collect();
        bail!("no listener {name:?} yet; listeners: {names:?}");
    };
    let socket = &listener["local_address"]["socket_address"];
    let (Some(ip), Some(port)) = (socket["address"].as_str(), socket["port_value"].as_u64()) else {
        bail!("listener {name:?} has no socket address: {listener}");
    };
    Ok(SocketAddr::new(ip.parse()?, u16::try_from(port)?))
}
