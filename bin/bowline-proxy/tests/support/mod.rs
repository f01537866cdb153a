//! Harness for bowline-proxy's own end-to-end tests: `bowline echo` backends and the static
//! one-hop bootstrap of the benchmark. (Mesh scenarios with `bowline control` live in the
//! differential suite, bin/bowline/tests, which runs them on Envoy and bowline-proxy alike.)
//! Everything started is stopped by PID on drop; every wait is bounded.

#![allow(dead_code)] // each test binary uses a different part

use anyhow::{Context, Result};
use bowline_testkit::{bowline_binary, Envoy, Proc, ProxyKind};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

pub const STARTUP: Duration = Duration::from_secs(60);
pub const REQUEST: Duration = Duration::from_secs(10);

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

/// The benchmark's two-hop mTLS pair (Envoy A, the client sidecar; Envoy B, the server
/// sidecar), HTTP/1.1 between them; `{{cert_dir}}` and ports still to fill.
pub fn mtls_templates() -> (String, String) {
    let read = |name: &str, fallback: &str| {
        std::fs::read_to_string(format!(
            "{}/../../../shared/bench/configs/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap_or_else(|_| fallback.to_string())
    };
    let client = read(
        "envoy-mtls-client.yaml.tmpl",
        include_str!("mtls_client.yaml.tmpl"),
    )
    .replace("{{peer_protocol_options}}", "")
    .replace("{{peer_alpn}}", "\"http/1.1\"");
    let server = read(
        "envoy-mtls-server.yaml.tmpl",
        include_str!("mtls_server.yaml.tmpl"),
    );
    (client, server)
}
