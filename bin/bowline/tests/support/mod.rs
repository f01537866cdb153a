//! A whole mesh on loopback for end-to-end tests: `bowline echo` backends, `bowline control`
//! on a config directory, and the real Envoy as the sidecar of a `productpage` workload.
//!
//! ```ignore
//! let mesh = Mesh::builder(ProxyKind::Bowline, Ads::Delta)
//!     .backend("reviews", "v1", &[])
//!     .backend("reviews", "v2", &[])
//!     .config("routing.yaml", ROUTING)
//!     .start()
//!     .await;
//! let rsp = mesh.get("reviews", "/", &[]).await;
//! ```
//!
//! Every service gets a MESH_INTERNAL ServiceEntry on port 9080 selecting `app: <service>`,
//! and every backend a WorkloadEntry with its real (port 0) address, written to
//! `services.yaml`; the test's own files hold routing rules. Everything started is stopped
//! by PID when the mesh is dropped.

#![allow(dead_code)] // each test binary uses a different part of the harness

use anyhow::{bail, Context, Result};
use bowline_testkit::{get, wait_until, Envoy, Proc, ProxyClient, ProxyKind, Response};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const STARTUP: Duration = Duration::from_secs(60);
pub const REQUEST: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// Which ADS flavour the sidecar speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ads {
    Sotw,
    Delta,
}

struct BackendSpec {
    service: String,
    version: String,
    flags: Vec<String>,
}

pub struct MeshBuilder {
    ads: Ads,
    sidecar: ProxyKind,
    backends: Vec<BackendSpec>,
    files: Vec<(String, String)>,
    mesh_config: Option<String>,
}

/// Where a mesh keeps its MeshConfig, beside the config files (hidden: the loader skips it).
const MESH_CONFIG: &str = ".mesh-config.yaml";

pub struct Backend {
    pub service: String,
    pub version: String,
    pub addr: SocketAddr,
    pub proc: Proc,
}

/// Fields drop in order: Envoy first, then the control plane, the backends, and last the
/// config directory (so the control plane never sees its directory vanish).
pub struct Mesh {
    pub ads: Ads,
    pub sidecar: ProxyKind,
    /// The sidecar process (the real Envoy or bowline-proxy; both speak Envoy's admin API).
    pub envoy: Envoy,
    /// Envoy's `virtualOutbound` listener: where the app's `HTTP_PROXY` points.
    pub outbound: SocketAddr,
    pub control: Proc,
    pub xds_addr: SocketAddr,
    pub debug_addr: SocketAddr,
    pub backends: Vec<Backend>,
    pub dir: tempfile::TempDir,
}

impl Mesh {
    /// A mesh whose sidecar is `sidecar`, speaking `ads` to the control plane.
    pub fn builder(sidecar: ProxyKind, ads: Ads) -> MeshBuilder {
        MeshBuilder {
            ads,
            sidecar,
            backends: Vec::new(),
            files: Vec::new(),
            mesh_config: None,
        }
    }
}

pub fn bowline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bowline"))
}

impl MeshBuilder {
    /// A `bowline echo` backend for `service` at `version`, with extra echo flags.
    pub fn backend(mut self, service: &str, version: &str, flags: &[&str]) -> Self {
        self.backends.push(BackendSpec {
            service: service.into(),
            version: version.into(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// A config file (Istio YAML) written into the watched directory before start.
    pub fn config(mut self, name: &str, yaml: &str) -> Self {
        self.files.push((name.into(), yaml.into()));
        self
    }

    /// Istio's MeshConfig for the control plane (`--mesh-config`).
    pub fn mesh_config(mut self, yaml: &str) -> Self {
        self.mesh_config = Some(yaml.into());
        self
    }

    pub async fn start(self) -> Mesh {
        self.try_start().await.expect("mesh start")
    }

    async fn try_start(self) -> Result<Mesh> {
        let mut backends = Vec::new();
        for spec in &self.backends {
            let mut cmd = bowline();
            cmd.args([
                "echo",
                "--listen",
                "127.0.0.1:0",
                "--service",
                &spec.service,
            ])
            .args(["--version", &spec.version])
            .args(&spec.flags);
            let proc = Proc::spawn(&format!("{}-{}", spec.service, spec.version), cmd)?;
            let line = proc.wait_for_line("listening on ", STARTUP).await?;
            let addr = parse_addr(&line, "listening on ")?;
            backends.push(Backend {
                service: spec.service.clone(),
                version: spec.version.clone(),
                addr,
                proc,
            });
        }

        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("services.yaml"), services_yaml(&backends))?;
        for (name, text) in &self.files {
            std::fs::write(dir.path().join(name), text)?;
        }
        if let Some(mesh) = &self.mesh_config {
            std::fs::write(dir.path().join(MESH_CONFIG), mesh)?;
        }

        let (control, xds_addr, debug_addr) =
            spawn_control(dir.path(), "127.0.0.1:0", "127.0.0.1:0").await?;

        let mut cmd = bowline();
        cmd.args(["bootstrap", "envoy", "--node-id", CLIENT_NODE_ID])
            .args(["--xds-addr", &xds_addr.to_string()])
            .args(["--admin-addr", "127.0.0.1:0", "--outbound-port", "0"])
            .args(["--inbound-port", "0"]);
        if self.ads == Ads::Delta {
            cmd.arg("--delta");
        }
        let out = cmd.output().context("bowline bootstrap envoy")?;
        if !out.status.success() {
            bail!("bootstrap failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let name = format!("{:?}", self.sidecar).to_lowercase();
        let envoy = Envoy::start_kind(self.sidecar, &name, &String::from_utf8(out.stdout)?).await?;
        let outbound = envoy.listener_addr("virtualOutbound", STARTUP).await?;

        let mesh = Mesh {
            ads: self.ads,
            sidecar: self.sidecar,
            dir,
            backends,
            control,
            xds_addr,
            debug_addr,
            envoy,
            outbound,
        };
        // Ready when every service answers through the sidecar (RDS may trail LDS).
        let services: Vec<String> = mesh.backends.iter().map(|b| b.service.clone()).collect();
        for service in services {
            wait_until(STARTUP, POLL, || async {
                let rsp = mesh.get(&service, "/", &[]).await?;
                // Only a backend's answer carries this header: not Envoy's 404 or 503.
                if rsp.header("x-echo-service").is_none() {
                    bail!("{service} not routed yet: {} {}", rsp.status, rsp.text());
                }
                Ok(())
            })
            .await?;
        }
        Ok(mesh)
    }
}

/// Starts `bowline control` on `dir` and waits for its two "listening on" lines.
async fn spawn_control(
    dir: &Path,
    xds: &str,
    debug: &str,
) -> Result<(Proc, SocketAddr, SocketAddr)> {
    let mut cmd = bowline();
    // The store persists beside the files, in a hidden directory the loader skips.
    cmd.args(["control", "--config"])
        .arg(dir)
        .arg("--state-dir")
        .arg(dir.join(".state"))
        .args(["--xds-addr", xds, "--debug-addr", debug]);
    if dir.join(MESH_CONFIG).exists() {
        cmd.arg("--mesh-config").arg(dir.join(MESH_CONFIG));
    }
    let control = Proc::spawn("control", cmd)?;
    let xds_addr = parse_addr(
        &control.wait_for_line("xds listening on ", STARTUP).await?,
        "xds listening on ",
    )?;
    let debug_addr = parse_addr(
        &control
            .wait_for_line("debug listening on ", STARTUP)
            .await?,
        "debug listening on ",
    )?;
    Ok((control, xds_addr, debug_addr))
}

/// The client sidecar: the `productpage-v1` WorkloadEntry's proxy.
pub const CLIENT_NODE_ID: &str =
    "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local";

fn parse_addr(line: &str, prefix: &str) -> Result<SocketAddr> {
    let at = line.find(prefix).context("prefix")? + prefix.len();
    line[at..]
        .trim()
        .parse()
        .with_context(|| format!("address in {line:?}"))
}

/// One ServiceEntry per service (port 9080, selecting `app: <service>`) and one WorkloadEntry
/// per backend, plus the client's own `productpage-v1` WorkloadEntry.
fn services_yaml(backends: &[Backend]) -> String {
    let mut out = String::new();
    let mut services: Vec<&str> = backends.iter().map(|b| b.service.as_str()).collect();
    services.sort();
    services.dedup();
    for service in services {
        let _ = write!(
            out,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {service}}}\n\
             spec:\n  hosts: [{service}.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  \
             resolution: STATIC\n  ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  \
             workloadSelector: {{labels: {{app: {service}}}}}\n---\n"
        );
    }
    for b in backends {
        let _ = write!(
            out,
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: {s}-{v}-{p}}}\n\
             spec: {{address: {ip}, ports: {{http: {p}}}, labels: {{app: {s}, version: {v}}}, serviceAccount: {s}}}\n---\n",
            s = b.service,
            v = b.version,
            ip = b.addr.ip(),
            p = b.addr.port(),
        );
    }
    out.push_str(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: productpage-v1}\n\
         spec: {address: 127.0.0.1, labels: {app: productpage, version: v1}, serviceAccount: productpage}\n",
    );
    out
}

impl Mesh {
    /// `envoy/sotw`, `bowline/delta`: which sidecar and ADS flavour, for printed results.
    pub fn label(&self) -> String {
        format!("{:?}/{:?}", self.sidecar, self.ads).to_lowercase()
    }

    /// `GET http://<service>.default.svc.cluster.local:9080<path>` through the sidecar, on a
    /// new connection, as an app with `HTTP_PROXY` does.
    pub async fn get(
        &self,
        service: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        bowline_testkit::proxy_request(self.outbound, "GET", &url(service, path), headers, REQUEST)
            .await
    }

    /// A keep-alive client through the sidecar.
    pub fn client(&self) -> ProxyClient {
        ProxyClient::new(self.outbound)
    }

    /// Kills the control plane (SIGKILL, by PID: no goodbye to the proxies) and reaps it.
    pub fn kill_control(&mut self) {
        self.control.kill().expect("control plane killed");
    }

    /// Starts the control plane again on the same addresses and config directory.
    pub async fn restart_control(&mut self) {
        let (control, _, _) = spawn_control(
            self.dir.path(),
            &self.xds_addr.to_string(),
            &self.debug_addr.to_string(),
        )
        .await
        .expect("control plane restarts on its old addresses");
        self.control = control;
    }

    pub fn config_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_config(&self, name: &str, yaml: &str) {
        write_atomically(&self.config_path(name), yaml);
    }

    /// The control plane's `/debug/syncz`.
    pub async fn syncz(&self) -> Result<serde_json::Value> {
        self.debug_json("/debug/syncz").await
    }

    /// The control plane's `/debug/configz`.
    pub async fn configz(&self) -> Result<serde_json::Value> {
        self.debug_json("/debug/configz").await
    }

    async fn debug_json(&self, path: &str) -> Result<serde_json::Value> {
        let rsp = get(self.debug_addr, path, &[], REQUEST).await?;
        if rsp.status != 200 {
            bail!("{path}: {}", rsp.status);
        }
        Ok(rsp.json())
    }

    /// Waits until every connected proxy has ACKed everything of `generation` (and no
    /// later NACK); returns the syncz document.
    pub async fn wait_synced(&self, generation: u64) -> Result<serde_json::Value> {
        wait_until(STARTUP, POLL, || async {
            let syncz = self.syncz().await?;
            let proxies = syncz["proxies"].as_array().cloned().unwrap_or_default();
            if proxies.is_empty() {
                bail!("no proxy connected: {syncz}");
            }
            for p in &proxies {
                if p["applied_generation"].as_u64() != Some(generation) {
                    bail!("proxy not at generation {generation}: {p}");
                }
            }
            Ok(syncz)
        })
        .await
    }
}

/// The `canary` DestinationRule (subsets v1 and v2 by `version`), with a simple load-balancer
/// policy (`ROUND_ROBIN`, `RANDOM`, …) or none (the mesh default).
pub fn canary_subsets(policy: Option<&str>) -> String {
    let traffic_policy = policy
        .map(|p| format!("  trafficPolicy: {{loadBalancer: {{simple: {p}}}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: canary}}\n\
         spec:\n  host: canary\n{traffic_policy}  subsets:\n  \
         - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n"
    )
}

pub fn url(service: &str, path: &str) -> String {
    format!("http://{service}.default.svc.cluster.local:9080{path}")
}

/// Writes via a temp file and rename, as editors and Kubernetes do, so the watcher never
/// reads half a file.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The JSON lines of an access log file (none while it does not exist).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
