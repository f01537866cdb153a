//! Helpers shared by the config crate's integration tests.
#![allow(dead_code)]

use bowline_config::{load_str, Diagnostic, Loaded};
use std::path::Path;

pub fn load(text: &str) -> Loaded {
    load_str(Path::new("test.yaml"), text)
}

/// `(code, field, line, column)` of every diagnostic, in report order.
pub fn positioned(loaded: &Loaded) -> Vec<(&'static str, String, usize, usize)> {
    loaded
        .diagnostics
        .iter()
        .map(|d| (d.code, d.field.clone(), d.line, d.column))
        .collect()
}

/// The apiVersion tests use for a kind name (`K8sGateway` = the Gateway API Gateway).
fn api_version(kind: &str) -> (&'static str, &str) {
    match kind {
        "PeerAuthentication" | "AuthorizationPolicy" | "RequestAuthentication" => {
            ("security.istio.io/v1", kind)
        }
        "K8sGateway" => ("gateway.networking.k8s.io/v1", "Gateway"),
        "Telemetry" => ("telemetry.istio.io/v1", kind),
        "HTTPRoute" | "GRPCRoute" | "ReferenceGrant" => ("gateway.networking.k8s.io/v1", kind),
        _ => ("networking.istio.io/v1", kind),
    }
}

/// One resource of `kind` named `name` in `default` with the given spec (YAML, unindented).
pub fn resource(kind: &str, name: &str, spec: &str) -> String {
    let (api, kind) = api_version(kind);
    let body: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n{body}")
}

/// `(code, field)` of the per-resource findings for one spec: cross-resource analysis
/// (BL02xx, e.g. "unknown host") and not-applied warnings (BL03xx, tested in
/// `not_applied_ledger.rs`) are left out so tables stay about validating the resource itself.
pub fn spec_findings(kind: &str, spec: &str) -> Vec<(&'static str, String)> {
    let loaded = load(&resource(kind, "t", spec));
    own(&loaded.diagnostics)
}

pub fn own(diagnostics: &[Diagnostic]) -> Vec<(&'static str, String)> {
    diagnostics
        .iter()
        .filter(|d| !d.code.starts_with("BL02") && !d.code.starts_with("BL03"))
        .map(|d| (d.code, d.field.clone()))
        .collect()
}

/// Owned `(code, field)` pairs from string literals, for comparisons.
pub fn want(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(c, f)| (*c, f.to_string())).collect()
}
