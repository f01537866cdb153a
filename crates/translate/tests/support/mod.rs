//! Test helpers: meshes from YAML, proxies by workload, golden files.

#![allow(dead_code)]

pub mod bootstrap;
pub mod render;

use bowline_registry::Snapshot;
use bowline_translate::{generate, Generated, ProxyView, PushContext};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use std::path::{Path, PathBuf};

/// A snapshot from Istio YAML whose resources the config loader accepts (no errors except
/// cross-resource analysis, which never refuses a resource), so goldens show what valid
/// user config becomes.
pub fn mesh(yaml: &str) -> Snapshot {
    let loaded = bowline_config::load_str(Path::new("mesh.yaml"), yaml);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && !d.is_analysis())
        .map(|d| format!("{d:?}"))
        .collect();
    assert!(
        errors.is_empty(),
        "test mesh has errors:\n{}",
        errors.join("\n")
    );
    Snapshot::build(1, loaded.config)
}

/// A snapshot from YAML whether or not validation flags it: for checking that translation
/// never emits what Envoy refuses, even from config a user could force through.
pub fn mesh_unchecked(yaml: &str) -> Snapshot {
    let loaded = bowline_config::load_str(Path::new("mesh.yaml"), yaml);
    Snapshot::build(1, loaded.config)
}

/// The push context of a copy of `snapshot` (tests keep snapshots by value).
pub fn push(snapshot: &Snapshot) -> PushContext {
    PushContext::new(std::sync::Arc::new(snapshot.clone()))
}

/// The sidecar of `workload` in `namespace` at `ip`, as Envoy would announce itself.
pub fn node(ip: &str, workload: &str, namespace: &str) -> Node {
    let id = format!("sidecar~{ip}~{workload}.{namespace}~{namespace}.svc.cluster.local");
    let fields = [("NAMESPACE", namespace), ("INTERCEPTION_MODE", "NONE")]
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value {
                    kind: Some(Kind::StringValue(v.to_string())),
                },
            )
        })
        .collect();
    Node {
        id,
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

/// An ingress gateway as `bowline up` announces it: node type `router`, its labels, port
/// map and credentials directory in the metadata.
pub fn gateway_proxy(
    snapshot: &Snapshot,
    labels: &[(&str, &str)],
    port_map: &str,
    credentials: &str,
) -> ProxyView {
    let string = |v: &str| Value {
        kind: Some(Kind::StringValue(v.to_string())),
    };
    let labels = Struct {
        fields: labels
            .iter()
            .map(|(k, v)| (k.to_string(), string(v)))
            .collect(),
    };
    let mut fields: std::collections::BTreeMap<String, Value> = [
        ("GATEWAY_PORT_MAP", port_map),
        ("CREDENTIALS_DIR", credentials),
        ("INTERCEPTION_MODE", "NONE"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), string(v)))
    .collect();
    fields.insert(
        "LABELS".into(),
        Value {
            kind: Some(Kind::StructValue(labels)),
        },
    );
    let node = Node {
        id: "router~10.10.0.2~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
            .into(),
        metadata: Some(Struct {
            fields: fields.into_iter().collect(),
        }),
        ..Default::default()
    };
    ProxyView::from_node(&node, snapshot).expect("valid gateway node")
}

pub fn proxy(snapshot: &Snapshot, ip: &str, workload: &str, namespace: &str) -> ProxyView {
    ProxyView::from_node(&node(ip, workload, namespace), snapshot).expect("valid node")
}

/// Generates for the proxy, checks the output against the invariants Envoy enforces, and
/// compares its rendering with `tests/golden/<name>.txt` (`UPDATE_GOLDEN=1` rewrites it).
pub fn golden(
    name: &str,
    snapshot: &Snapshot,
    proxy: &ProxyView,
    sections: render::Sections,
    filter: &str,
) -> Generated {
    let generated = generate(&push(snapshot), proxy);
    let violations = bowline_translate::check(&generated);
    assert!(violations.is_empty(), "{name}: {violations:#?}");
    let text = format!(
        "# golden {name}: generated for {}{}\n{}",
        proxy.node_id,
        if filter.is_empty() {
            String::new()
        } else {
            format!(", resources named *{filter}*")
        },
        render::render(&generated, sections, filter)
    );
    compare(name, &text);
    generated
}

pub fn compare(name: &str, text: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if want != text {
        let first = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(text.lines().count()));
        let context = |s: &str| {
            s.lines()
                .skip(first.saturating_sub(3))
                .take(8)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{} differs from the generated output at line {}:\n--- golden\n{}\n--- generated\n{}\n(UPDATE_GOLDEN=1 rewrites it; review the diff)",
            path.display(),
            first + 1,
            context(&want),
            context(text)
        );
    }
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"))
}
