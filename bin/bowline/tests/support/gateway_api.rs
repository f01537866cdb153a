//! A bowline ingress gateway for the Gateway API conformance scenarios: the conformance
//! backends as `bowline echo` processes, a control plane on a config directory holding the
//! conformance base Gateways, the backend adapter and one scenario's manifests, and the
//! gateway itself as bowline-proxy in Istio's router role.
//!
//! The adapter: the conformance base defines backends as Kubernetes Services + Deployments
//! (e.g. `infra-backend-v1` in `gateway-conformance-infra`, port 8080). bowline runs no
//! Pods and reads no Services, so each such Service becomes a ServiceEntry for
//! `<name>.<namespace>.svc.cluster.local` with the Service's ports (HTTP, or GRPC for
//! `appProtocol: kubernetes.io/h2c`) selecting `app: <name>`, and a WorkloadEntry pointing
//! at a `bowline echo --service <name> --version <namespace>` on 127.0.0.1 — so "which pod
//! answered" is the echo's `x-echo-service` and "in which namespace" its `x-echo-version`.
//! Manifests are written one document per file, unchanged except that
//! `{GATEWAY_CLASS_NAME}` is filled in (as the suite does); documents of plain Kubernetes
//! kinds (Namespace, Service, ...) are left out (bowline refuses them; the adapter stands
//! in for the Services).
//!
//! Gateway listener ports are mapped to free ports (`GATEWAY_PORT_MAP <port>:0`); requests
//! carry the `Host` a client of the real port would send (`127.0.0.1` for port 80,
//! `127.0.0.1:<port>` otherwise) unless the scenario gives one.

use crate::support::{bowline, REQUEST, STARTUP};
use anyhow::{bail, Context, Result};
use bowline_testkit::{get, wait_until, Envoy, Proc, ProxyKind};
use serde_json::json;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(20);

/// Where the conformance suite's manifests are (an unchanged upstream copy).
pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/gateway-api/conformance")
}

/// The documents of a multi-document YAML text, verbatim.
pub fn documents(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            out.push(String::new());
        } else {
            let last = out.last_mut().expect("never empty");
            last.push_str(line);
            last.push('\n');
        }
    }
    out.into_iter()
        .filter(|d| d.lines().any(|l| l.starts_with("kind:")))
        .collect()
}

/// A top-level scalar (`kind`, `apiVersion`) of a document.
pub fn top(doc: &str, key: &str) -> Option<String> {
    doc.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// A `metadata` scalar (`name`, `namespace`) of a document.
pub fn meta(doc: &str, key: &str) -> Option<String> {
    let mut in_meta = false;
    for l in doc.lines() {
        if l.starts_with("metadata:") {
            in_meta = true;
        } else if in_meta && !l.starts_with(' ') {
            return None;
        } else if in_meta {
            if let Some(v) = l.trim_start().strip_prefix(&format!("{key}:")) {
                if l.len() - l.trim_start().len() == 2 {
                    return Some(v.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    None
}

/// True for documents bowline reads (the Gateway API and Istio groups).
pub fn is_mesh_config(doc: &str) -> bool {
    top(doc, "apiVersion").is_some_and(|v| v.contains(".io/") || v.contains("k8s.io/"))
        && !top(doc, "apiVersion").is_some_and(|v| v.starts_with("discovery.k8s.io"))
}

/// One conformance backend Service, served by a `bowline echo`.
pub struct Backend {
    pub namespace: String,
    pub name: String,
    /// (port, grpc)
    pub ports: Vec<(u16, bool)>,
    pub addr: SocketAddr,
    /// Held so the echo is stopped when the backend is dropped.
    #[allow(dead_code)]
    pub proc: Proc,
}

/// The backend Services of the conformance base (HTTP and gRPC echo backends; the TLS,
/// TCP and DNS ones are not needed by HTTPRoute/GRPCRoute core scenarios), each started.
pub async fn start_backends() -> Result<Vec<Backend>> {
    let base = std::fs::read_to_string(corpus().join("base/manifests.yaml"))?;
    let mut out = Vec::new();
    for doc in documents(&base) {
        if top(&doc, "kind").as_deref() != Some("Service") {
            continue;
        }
        let name = meta(&doc, "name").context("Service name")?;
        let namespace = meta(&doc, "namespace").context("Service namespace")?;
        if !(name.contains("backend") && !name.contains("tls") && !name.contains("tcp")) {
            continue;
        }
        let grpc = doc.contains("kubernetes.io/h2c") && name.starts_with("grpc");
        let ports: Vec<(u16, bool)> = doc
            .lines()
            .filter_map(|l| l.trim().strip_prefix("port:"))
            .filter_map(|p| p.trim().parse().ok())
            .map(|p| (p, grpc))
            .collect();
        let mut cmd = bowline();
        cmd.args(["echo", "--listen", "127.0.0.1:0", "--service", &name])
            .args(["--version", &namespace]);
        let proc = Proc::spawn(&name, cmd)?;
        let line = proc.wait_for_line("listening on ", STARTUP).await?;
        let addr = line
            .split("listening on ")
            .nth(1)
            .context("address")?
            .trim()
            .parse()?;
        out.push(Backend {
            namespace,
            name,
            ports,
            addr,
            proc,
        });
    }
    Ok(out)
}

/// The ServiceEntry + WorkloadEntry standing for each backend Service (see the module docs).
pub fn adapter_yaml(backends: &[Backend]) -> String {
    let mut out = String::new();
    for b in backends {
        let ports: Vec<String> = b
            .ports
            .iter()
            .map(|(p, grpc)| {
                let protocol = if *grpc { "GRPC" } else { "HTTP" };
                format!(
                    "{{number: {p}, name: port-{p}, protocol: {protocol}, targetPort: {}}}",
                    b.addr.port()
                )
            })
            .collect();
        let _ = write!(
            out,
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
             metadata: {{name: {n}, namespace: {ns}}}\n\
             spec:\n  hosts: [{n}.{ns}.svc.cluster.local]\n  location: MESH_INTERNAL\n  \
             resolution: STATIC\n  ports: [{ports}]\n  workloadSelector: {{labels: {{app: {n}}}}}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n\
             metadata: {{name: {n}, namespace: {ns}}}\n\
             spec: {{address: {ip}, labels: {{app: {n}}}}}\n---\n",
            n = b.name,
            ns = b.namespace,
            ports = ports.join(", "),
            ip = b.addr.ip(),
        );
    }
    out
}

/// A control plane and a bowline-proxy gateway on one config directory.
pub struct Gateway {
    pub proxy: Envoy,
    /// Held so the control plane is stopped when the gateway is dropped.
    #[allow(dead_code)]
    pub control: Proc,
    pub debug_addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts on `dir` (already holding the config); the gateway maps each of `ports` to a
    /// free port. Ready when the proxy has applied the control plane's generation. The
    /// gateway is bowline-proxy, or the real Envoy with `BOWLINE_CONFORMANCE_PROXY=envoy`.
    pub async fn start(dir: tempfile::TempDir, ports: &[u32]) -> Result<Gateway> {
        let mut cmd = bowline();
        cmd.args(["control", "--config"]).arg(dir.path()).args([
            "--xds-addr",
            "127.0.0.1:0",
            "--debug-addr",
            "127.0.0.1:0",
        ]);
        let control = Proc::spawn("control", cmd)?;
        let addr = |line: String, prefix: &str| -> Result<SocketAddr> {
            Ok(line
                .split(prefix)
                .nth(1)
                .context("address")?
                .trim()
                .parse()?)
        };
        let xds = addr(
            control.wait_for_line("xds listening on ", STARTUP).await?,
            "xds listening on ",
        )?;
        let debug_addr = addr(
            control
                .wait_for_line("debug listening on ", STARTUP)
                .await?,
            "debug listening on ",
        )?;
        let port_map: Vec<String> = ports.iter().map(|p| format!("{p}:0")).collect();
        let ns = "gateway-conformance-infra";
        let bootstrap = json!({
            "node": {
                "id": format!("router~127.0.0.1~conformance-gateway.{ns}~{ns}.svc.cluster.local"),
                "cluster": format!("conformance-gateway.{ns}"),
                "metadata": {
                    "NAMESPACE": ns,
                    "LABELS": {"app": "conformance-gateway"},
                    "GATEWAY_PORT_MAP": port_map.join(","),
                },
            },
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "DELTA_GRPC",
                    "transport_api_version": "V3",
                    "set_node_on_first_message_only": true,
                    "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
                },
                "cds_config": {"ads": {}, "resource_api_version": "V3"},
                "lds_config": {"ads": {}, "resource_api_version": "V3"},
            },
            "static_resources": {"clusters": [{
                "name": "xds-grpc",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": xds.ip().to_string(), "port_value": xds.port()}}}}]}]},
                "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }},
            }]},
        });
        let kind = match std::env::var("BOWLINE_CONFORMANCE_PROXY").as_deref() {
            Ok("envoy") => ProxyKind::Envoy,
            _ => ProxyKind::Bowline,
        };
        let proxy = Envoy::start_kind(kind, "gateway", &bootstrap.to_string()).await?;
        let gw = Gateway {
            proxy,
            control,
            debug_addr,
            dir,
        };
        gw.wait_synced(0).await?;
        Ok(gw)
    }

    /// Waits until the control plane is past `after` and the gateway applied its generation.
    pub async fn wait_synced(&self, after: u64) -> Result<u64> {
        wait_until(STARTUP, POLL, || async {
            let syncz = self.debug("/debug/syncz").await?;
            let generation = syncz["generation"].as_u64().unwrap_or(0);
            if generation <= after {
                bail!("control plane still at generation {generation}");
            }
            let proxies = syncz["proxies"].as_array().cloned().unwrap_or_default();
            if proxies.is_empty()
                || proxies
                    .iter()
                    .any(|p| p["applied_generation"].as_u64() != Some(generation))
            {
                bail!("gateway not at generation {generation}: {syncz}");
            }
            Ok(generation)
        })
        .await
    }

    pub async fn debug(&self, path: &str) -> Result<serde_json::Value> {
        let rsp = get(self.debug_addr, path, &[], REQUEST).await?;
        if rsp.status != 200 {
            bail!("{path}: {}", rsp.status);
        }
        Ok(rsp.json())
    }

    /// Where the gateway listener of Gateway port `port` is bound.
    pub async fn addr(&self, port: u32) -> Result<SocketAddr> {
        self.proxy
            .listener_addr(&format!("0.0.0.0_{port}"), Duration::from_secs(10))
            .await
    }

    /// The files the control plane refused, with their diagnostics.
    pub async fn rejected(&self) -> Result<serde_json::Value> {
        Ok(self.debug("/debug/configz").await?["rejected"].clone())
    }
}
