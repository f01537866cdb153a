//! Harness for bowline-proxy's end-to-end tests: `bowline echo` backends, the static
//! one-hop bootstrap of the benchmark, and a small mesh (`bowline control` + `bowline
//! bootstrap envoy`) with bowline-proxy as the sidecar. Everything started is stopped by PID
//! on drop; every wait is bounded.

#![allow(dead_code)] // each test binary uses a different part

use anyhow::{bail, Context, Result};
use bowline_testkit::{bowline_binary, wait_until, Envoy, Proc, ProxyClient, ProxyKind, Response};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

pub const STARTUP: Duration = Duration::from_secs(60);
pub const REQUEST: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// A `bowline echo` backend.
pub struct Backend {
    pub addr: SocketAddr,
    pub proc: Proc,
}

pub async fn echo(service: &str, version: &str) -> Result<Backend> {
    echo_with(service, version, &[]).await
}

/// A `bowline echo` backend with extra flags (`--fail-rate 0.5`).
pub async fn echo_with(service: &str, version: &str, flags: &[&str]) -> Result<Backend> {
    let mut cmd = Command::new(bowline_binary());
    cmd.args([
        "echo",
        "--listen",
        "127.0.0.1:0",
        "--service",
        service,
        "--version",
        version,
    ]);
    cmd.args(flags);
    let proc = Proc::spawn(&format!("{service}-{version}"), cmd)?;
    let line = proc.wait_for_line("listening on ", STARTUP).await?;
    let addr = parse_addr(&line, "listening on ")?;
    Ok(Backend { addr, proc })
}

pub fn parse_addr(line: &str, prefix: &str) -> Result<SocketAddr> {
    let at = line.find(prefix).context("prefix")? + prefix.len();
    line[at..]
        .trim()
        .parse()
        .with_context(|| format!("address in {line:?}"))
}

/// The benchmark's one-hop Envoy bootstrap with ports filled in (0 = pick one).
pub fn one_hop_bootstrap(upstream: SocketAddr) -> String {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/bench/configs/envoy-1hop.yaml.tmpl"
    ))
    .unwrap_or_else(|_| include_str!("one_hop.yaml.tmpl").to_string());
    template
        .replace("{{admin_port}}", "0")
        .replace("{{listen_port}}", "0")
        .replace("{{upstream_port}}", &upstream.port().to_string())
}

/// Starts bowline-proxy on a bootstrap, the way the test kit starts Envoy.
pub async fn proxy(bootstrap: &str) -> Result<Envoy> {
    Envoy::start_kind(ProxyKind::Bowline, "bowline-proxy", bootstrap).await
}

/// Which ADS flavour the sidecar speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ads {
    Sotw,
    Delta,
}

/// `bowline control` on a config directory, echo backends per (service, version), and
/// bowline-proxy as the sidecar of `productpage-v1`. Drops the proxy first.
pub struct Mesh {
    pub sidecar: Envoy,
    pub outbound: SocketAddr,
    pub control: Proc,
    pub backends: Vec<Backend>,
    pub dir: tempfile::TempDir,
}

pub const CLIENT_NODE_ID: &str =
    "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local";

impl Mesh {
    /// Backends are (service, version, echo flags).
    pub async fn start(
        ads: Ads,
        backends: &[(&str, &str, &[&str])],
        routing: &str,
    ) -> Result<Mesh> {
        let mut started = Vec::new();
        let mut services = String::new();
        for (service, version, flags) in backends {
            let b = echo_with(service, version, flags).await?;
            let _ = write!(
                services,
                "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
                 metadata: {{name: {service}-{version}}}\n\
                 spec: {{address: {ip}, ports: {{http: {p}}}, labels: {{app: {service}, version: {version}}}, serviceAccount: {service}}}\n---\n",
                ip = b.addr.ip(),
                p = b.addr.port(),
            );
            started.push(b);
        }
        let mut names: Vec<&str> = backends.iter().map(|(s, _, _)| *s).collect();
        names.sort();
        names.dedup();
        for service in &names {
            let _ = write!(
                services,
                "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {service}}}\n\
                 spec:\n  hosts: [{service}.default.svc.cluster.local]\n  location: MESH_INTERNAL\n  \
                 resolution: STATIC\n  ports: [{{number: 9080, name: http, protocol: HTTP}}]\n  \
                 workloadSelector: {{labels: {{app: {service}}}}}\n---\n"
            );
        }
        services.push_str(
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: productpage-v1}\n\
             spec: {address: 127.0.0.1, labels: {app: productpage, version: v1}, serviceAccount: productpage}\n",
        );
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("services.yaml"), services)?;
        std::fs::write(dir.path().join("routing.yaml"), routing)?;

        let mut cmd = Command::new(bowline_binary());
        cmd.args(["control", "--config"]).arg(dir.path()).args([
            "--xds-addr",
            "127.0.0.1:0",
            "--debug-addr",
            "127.0.0.1:0",
        ]);
        let control = Proc::spawn("control", cmd)?;
        let xds = parse_addr(
            &control.wait_for_line("xds listening on ", STARTUP).await?,
            "xds listening on ",
        )?;

        let mut cmd = Command::new(bowline_binary());
        cmd.args(["bootstrap", "envoy", "--node-id", CLIENT_NODE_ID])
            .args(["--xds-addr", &xds.to_string()])
            .args([
                "--admin-addr",
                "127.0.0.1:0",
                "--outbound-port",
                "0",
                "--inbound-port",
                "0",
            ]);
        if ads == Ads::Delta {
            cmd.arg("--delta");
        }
        let out = cmd.output().context("bowline bootstrap envoy")?;
        if !out.status.success() {
            bail!("bootstrap failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let sidecar = proxy(&String::from_utf8(out.stdout)?).await?;
        sidecar
            .wait_ready(STARTUP)
            .await
            .with_context(|| sidecar.logs())?;
        let outbound = sidecar.listener_addr("virtualOutbound", STARTUP).await?;
        let mesh = Mesh {
            sidecar,
            outbound,
            control,
            backends: started,
            dir,
        };
        for service in names {
            wait_until(STARTUP, POLL, || async {
                let rsp = mesh.get(service, "/", &[]).await?;
                if rsp.header("x-echo-service").is_none() {
                    bail!("{service} not routed yet: {} {}", rsp.status, rsp.text());
                }
                Ok(())
            })
            .await
            .with_context(|| mesh.sidecar.logs())?;
        }
        Ok(mesh)
    }

    pub async fn get(
        &self,
        service: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        bowline_testkit::proxy_request(self.outbound, "GET", &url(service, path), headers, REQUEST)
            .await
    }

    pub fn client(&self) -> ProxyClient {
        ProxyClient::new(self.outbound)
    }
}

pub fn url(service: &str, path: &str) -> String {
    format!("http://{service}.default.svc.cluster.local:9080{path}")
}
