//! `bowline.yaml`: the workloads of a local mesh and where its Istio config lives.
//!
//! ```yaml
//! name: bookinfo
//! config: config              # Istio / Gateway API YAML, relative to this file
//! gateway:                    # optional: an ingress gateway (a bowline-proxy, router role)
//!   name: istio-ingressgateway
//!   namespace: istio-system
//!   labels: {istio: ingressgateway}
//!   ports: {80: 18080}        # Gateway server port -> port on 127.0.0.1
//!   credentials: certs        # credentialName NAME -> certs/NAME/tls.crt, tls.key
//!   entry: /productpage       # printed as the URL to open once ready
//! egressGateway:              # optional: an egress gateway, reachable from the workloads
//!   name: istio-egressgateway # (these are the defaults)
//!   namespace: istio-system
//!   labels: {istio: egressgateway}
//!   ports: {80: 0, 443: 0}    # 0 = a free port; default both of these
//! workloads:
//! - name: reviews-v2
//!   namespace: default        # default "default"
//!   serviceAccount: reviews   # default "default"
//!   labels: {app: reviews, version: v2}
//!   command: bowline          # "bowline" is the running bowline binary
//!   args: [echo, --listen, "0.0.0.0:${PORT}", --service, reviews, --version, v2]
//!   env: {}
//!   ports: [{name: http, port: 9080}]
//!   replicas: 1
//! ```
//!
//! Errors name the file, line, column and field, like every other config bowline reads.

use bowline_config::positions::{self, FieldIndex};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A whole local mesh.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    /// Names the mesh: its state directory, network namespaces and log prefixes.
    pub name: String,
    /// Directory of Istio / Gateway API config (watched; edits apply live). Relative paths
    /// are resolved against the manifest's directory. Default `config`.
    #[serde(default = "default_config")]
    pub config: PathBuf,
    #[serde(default)]
    pub gateway: Option<GatewaySpec>,
    /// Istio's egress gateway (the demo profile's `istio-egressgateway`): a router proxy like
    /// the ingress gateway, but listening where the workloads reach it and registered as the
    /// service `<name>.<namespace>.svc.cluster.local`, so Istio's egress-gateway config
    /// (ServiceEntry + Gateway + VirtualService through the gateway) works unchanged.
    #[serde(default)]
    pub egress_gateway: Option<GatewaySpec>,
    pub workloads: Vec<WorkloadSpec>,
    /// Istio's MeshConfig (`meshConfig:`), read by the config crate with positions; Istio's
    /// defaults when absent.
    #[serde(skip)]
    pub mesh_config: bowline_config::MeshConfig,
    /// What reading `meshConfig:` had to say short of an error (fields not applied yet).
    #[serde(skip)]
    pub mesh_config_notes: Vec<bowline_config::Diagnostic>,
}

/// A gateway: a bowline-proxy in the router role on the host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Default `istio-ingressgateway` (`istio-egressgateway` for the egress gateway).
    #[serde(default)]
    pub name: String,
    #[serde(default = "default_gateway_namespace")]
    pub namespace: String,
    /// Matched by Istio `Gateway` selectors. Default `{istio: ingressgateway}`
    /// (`{istio: egressgateway}`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Gateway server port → port bound on 127.0.0.1 (a Kubernetes Service's port →
    /// targetPort). Unlisted server ports bind their own number.
    #[serde(default)]
    pub ports: BTreeMap<u16, u16>,
    /// Directory where `credentialName: NAME` resolves to `NAME/tls.crt` and `NAME/tls.key`.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// A path on the gateway's port 80 (or first mapped port) that `bowline up` prints as
    /// the mesh's entry URL once ready, e.g. `/productpage`.
    #[serde(default)]
    pub entry: Option<String>,
}

/// One workload: a command run `replicas` times, each with its own sidecar.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSpec {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default = "default_namespace")]
    pub service_account: String,
    /// `app` names the service the workload belongs to (as a Kubernetes Service selecting
    /// it would); `version` tells subsets apart.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    #[serde(default = "one")]
    pub replicas: u32,
    /// Which proxy runs beside it: `bowline` (bowline-proxy, the default) or `envoy` (a real
    /// Envoy, with `bowline sds` serving it the workload certificate).
    #[serde(default)]
    pub sidecar: SidecarKind,
    /// `region/zone/subzone` of its replicas (their WorkloadEntries' `locality`), for
    /// locality load balancing. Default none.
    #[serde(default)]
    pub locality: String,
}

/// The sidecar proxy of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SidecarKind {
    #[default]
    Bowline,
    Envoy,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortSpec {
    /// Istio's port-name convention applies (`http`, `http-…`, `grpc-…`, `tcp-…`).
    pub name: String,
    /// The port the application serves and the service exposes.
    pub port: u16,
    /// Istio protocol name (HTTP, HTTP2, GRPC, TCP); default from the name.
    #[serde(default)]
    pub protocol: Option<String>,
}

fn default_config() -> PathBuf {
    PathBuf::from("config")
}
fn default_gateway_namespace() -> String {
    "istio-system".into()
}
impl GatewaySpec {
    /// Fills what was left out with Istio's names for the gateway of that `role`
    /// (`ingress` or `egress`): `istio-<role>gateway`, labels `{istio: <role>gateway}`; an
    /// egress gateway without ports gets 80 and 443 on free ports.
    fn with_defaults(mut self, role: &str) -> GatewaySpec {
        if self.name.is_empty() {
            self.name = format!("istio-{role}gateway");
        }
        if self.labels.is_empty() {
            self.labels = [("istio".to_string(), format!("{role}gateway"))].into();
        }
        if role == "egress" && self.ports.is_empty() {
            self.ports = [(80, 0), (443, 0)].into();
        }
        self
    }

    /// Its service account: `<name>-service-account`, as Istio's gateway charts name it.
    pub fn service_account(&self) -> String {
        format!("{}-service-account", self.name)
    }
}
fn default_namespace() -> String {
    "default".into()
}
fn one() -> u32 {
    1
}

/// A manifest that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}:{column}: {field}: {message}")]
pub struct InvalidManifest {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Field path, e.g. `workloads[1].ports[0].port`; empty for the whole document.
    pub field: String,
    pub message: String,
}

impl Manifest {
    /// Reads and checks `path`. Relative `config` and `credentials` directories become
    /// relative to the manifest's directory.
    pub fn load(path: &Path) -> Result<Manifest, InvalidManifest> {
        let text = std::fs::read_to_string(path).map_err(|e| InvalidManifest {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        let mut manifest = Manifest::parse(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        manifest.config = base.join(&manifest.config);
        for gateway in manifest
            .gateway
            .iter_mut()
            .chain(&mut manifest.egress_gateway)
        {
            gateway.credentials = gateway.credentials.as_ref().map(|c| base.join(c));
        }
        Ok(manifest)
    }

    /// Parses and checks manifest text; `file` is only used in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Manifest, InvalidManifest> {
        let at = |index: Option<&FieldIndex>, field: &str, message: String| {
            let pos = index.map(|i| i.nearest(field)).unwrap_or_default();
            InvalidManifest {
                file: file.to_path_buf(),
                line: pos.line,
                column: pos.column,
                field: field.to_string(),
                message,
            }
        };
        let (docs, error) = bowline_config::yaml::parse(text);
        if let Some(e) = error {
            return Err(InvalidManifest {
                file: file.to_path_buf(),
                line: e.pos.line,
                column: e.pos.column,
                field: String::new(),
                message: e.message,
            });
        }
        let [doc] = &docs[..] else {
            return Err(at(
                None,
                "",
                format!("expected one YAML document, found {}", docs.len()),
            ));
        };
        let (mut value, index, issues) = positions::to_json(&doc.root);
        if let Some(issue) = issues.first() {
            return Err(at(Some(&index), &issue.path, issue.message.clone()));
        }
        let mesh_value = value
            .as_object_mut()
            .and_then(|top| top.remove("meshConfig"))
            .unwrap_or_default();
        let (mesh_config, mut notes) =
            bowline_config::MeshConfig::from_value(mesh_value, &index, file, "meshConfig");
        if let Some(e) = notes.iter().find(|d| d.is_error()) {
            return Err(InvalidManifest {
                file: file.to_path_buf(),
                line: e.line,
                column: e.column,
                field: e.field.clone(),
                message: e.message.clone(),
            });
        }
        notes.retain(|d| !d.is_error());
        let mut manifest: Manifest = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = positions::field_path("", e.path());
            at(Some(&index), &field, e.inner().to_string())
        })?;
        manifest.gateway = manifest.gateway.map(|g| g.with_defaults("ingress"));
        manifest.egress_gateway = manifest.egress_gateway.map(|g| g.with_defaults("egress"));
        if let Some((field, message)) = manifest.problem() {
            return Err(at(Some(&index), &field, message));
        }
        manifest.mesh_config = mesh_config;
        manifest.mesh_config_notes = notes;
        Ok(manifest)
    }

    /// The first thing serde cannot check: names usable as DNS labels and process names,
    /// unique workloads, an `app` label, ports in range and unique per workload.
    fn problem(&self) -> Option<(String, String)> {
        if !is_dns_label(&self.name) {
            return Some(("name".into(), dns_message(&self.name)));
        }
        if let (Some(i), Some(e)) = (&self.gateway, &self.egress_gateway) {
            if (&i.namespace, &i.name) == (&e.namespace, &e.name) {
                return Some((
                    "egressGateway.name".into(),
                    format!("the ingress gateway is already called {}", i.name),
                ));
            }
        }
        if self
            .egress_gateway
            .as_ref()
            .is_some_and(|e| e.entry.is_some())
        {
            return Some((
                "egressGateway.entry".into(),
                "an egress gateway has no entry URL: workloads call out through it (`entry` \
                 belongs to `gateway`)"
                    .into(),
            ));
        }
        for (field, g) in [
            ("gateway", &self.gateway),
            ("egressGateway", &self.egress_gateway),
        ] {
            let Some(g) = g else { continue };
            for (f, value) in [("name", &g.name), ("namespace", &g.namespace)] {
                if !is_dns_label(value) {
                    return Some((format!("{field}.{f}"), dns_message(value)));
                }
            }
        }
        if self.workloads.is_empty() {
            return Some((
                "workloads".into(),
                "a mesh needs at least one workload".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, w) in self.workloads.iter().enumerate() {
            let at = |f: &str| format!("workloads[{i}]{f}");
            for (field, value) in [(".name", &w.name), (".namespace", &w.namespace)] {
                if !is_dns_label(value) {
                    return Some((at(field), dns_message(value)));
                }
            }
            if !seen.insert((w.namespace.clone(), w.name.clone())) {
                return Some((
                    at(".name"),
                    format!("workload {}/{} is declared twice", w.namespace, w.name),
                ));
            }
            match w.labels.get("app") {
                Some(app) if is_dns_label(app) => {}
                Some(app) => return Some((at(".labels.app"), dns_message(app))),
                None => {
                    return Some((
                        at(".labels"),
                        "needs an `app` label: it names the service the workload serves".into(),
                    ))
                }
            }
            if w.replicas == 0 || w.replicas > 16 {
                return Some((
                    at(".replicas"),
                    format!("{} replicas: expected 1 to 16", w.replicas),
                ));
            }
            let mut names = std::collections::BTreeSet::new();
            for (j, p) in w.ports.iter().enumerate() {
                if p.port == 0 {
                    return Some((
                        at(&format!(".ports[{j}].port")),
                        "port 0 is not a port".into(),
                    ));
                }
                if !names.insert(&p.name) {
                    return Some((
                        at(&format!(".ports[{j}].name")),
                        format!("port name {:?} is used twice", p.name),
                    ));
                }
            }
        }
        None
    }
}

/// Kubernetes' DNS label rule (RFC 1123): what namespaces, names and hosts here must be.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_message(s: &str) -> String {
    format!("{s:?} is not a DNS label (lower-case letters, digits and '-', at most 63)")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: demo
workloads:
- name: reviews-v1
  labels: {app: reviews, version: v1}
  command: bowline
  args: [echo]
  ports: [{name: http, port: 9080}]
";

    #[test]
    fn reads_a_manifest_with_defaults() {
        let m = Manifest::parse(Path::new("bowline.yaml"), GOOD).unwrap();
        assert_eq!(m.config, PathBuf::from("config"));
        let w = &m.workloads[0];
        assert_eq!(
            (w.namespace.as_str(), w.service_account.as_str()),
            ("default", "default")
        );
        assert_eq!(w.replicas, 1);
        assert!(m.gateway.is_none());
    }

    #[test]
    fn errors_name_line_column_and_field() {
        let cases = [
            (
                GOOD.replace("port: 9080", "port: 90800"),
                "workloads[0].ports[0].port",
                7,
            ),
            (
                GOOD.replace("args: [echo]", "argz: [echo]"),
                "workloads[0].argz",
                6,
            ),
            (GOOD.replace("app: reviews, ", ""), "workloads[0].labels", 4),
            (GOOD.replace("name: demo", "name: Demo"), "name", 1),
            (
                GOOD.replace("replicas", "x") + "  replicas: 0\n",
                "workloads[0].replicas",
                8,
            ),
            (
                GOOD.replace(
                    "{name: http, port: 9080}",
                    "{name: http, port: 9080}, {name: http, port: 1}",
                ),
                "workloads[0].ports[1].name",
                7,
            ),
            ("name: demo\nworkloads: []\n".to_string(), "workloads", 2),
            (
                GOOD.to_string() + "egressGateway: {entry: /x}\n",
                "egressGateway.entry",
                8,
            ),
        ];
        for (text, field, line) in cases {
            let err = Manifest::parse(Path::new("m.yaml"), &text).unwrap_err();
            assert_eq!((err.field.as_str(), err.line), (field, line), "{err}");
            assert!(
                err.to_string().starts_with(&format!("m.yaml:{line}:")),
                "{err}"
            );
        }
    }
}
