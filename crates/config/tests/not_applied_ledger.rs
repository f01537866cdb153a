//! Keeps the not-applied ledger true (see `validate::not_applied`):
//!
//! - every field of every spec type has an entry: the types are walked through serde itself
//!   (a probe key in each object makes `deny_unknown_fields` list the fields), so a field
//!   added to a spec struct fails here until the ledger says what bowline does with it;
//! - no entry names a field that does not exist;
//! - every `Applied` entry names a test that exists in the workspace (`fn <name>(`);
//! - every `NotApplied` entry warns: for each, a document setting the field (built from its path) gets the warning, and the
//!   warnings on real documents (Istio's valid CRD inputs, bowline's examples and test
//!   inputs) all come from ledger entries;
//! - every field those documents set has a status.

use bowline_config::positions::{field_path, join};
use bowline_config::validate::not_applied::{
    entry_for, ledger, not_applied, path_matches, spec_json, Status, When,
};
use bowline_config::Severity;
use bowline_config::{gateway_api, istio, load_paths, Kind, Resource};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const PROBE: &str = "__probe__";

/// One step from a spec to a field: a struct field, a list item or a map value.
#[derive(Clone, Copy)]
enum Step<'a> {
    Field(&'a str),
    Item,
    /// A map value; `true` when the map's keys are numbers (port-keyed maps).
    Value(bool),
}

/// A field of the schema: its path pattern, and whether it is untyped JSON (any value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SchemaField {
    pattern: String,
    untyped: bool,
}

/// What the value at a position of `T` is, found by deserialising a probe there.
enum Shape {
    Struct(Vec<String>),
    List,
    Map { numeric_keys: bool },
    Leaf,
    Untyped,
}

fn document(steps: &[Step<'_>], probe: Value) -> Value {
    steps.iter().rev().fold(probe, |inner, step| match step {
        Step::Field(name) => json!({ *name: inner }),
        Step::Item => json!([inner]),
        Step::Value(true) => json!({ "1": inner }),
        Step::Value(false) => json!({ "k": inner }),
    })
}

fn concrete(steps: &[Step<'_>]) -> String {
    steps.iter().fold(String::new(), |path, step| match step {
        Step::Field(name) => join(&path, name),
        Step::Item => format!("{path}[0]"),
        Step::Value(true) => join(&path, "1"),
        Step::Value(false) => join(&path, "k"),
    })
}

fn pattern(steps: &[Step<'_>]) -> String {
    steps
        .iter()
        .fold("spec".to_string(), |path, step| match step {
            Step::Field(name) => join(&path, name),
            Step::Item => format!("{path}[*]"),
            Step::Value(_) => join(&path, "*"),
        })
}

fn shape<T: DeserializeOwned>(steps: &[Step<'_>]) -> Shape {
    let doc = document(steps, json!({ PROBE: 1 }));
    let Err(e) = serde_path_to_error::deserialize::<_, T>(doc) else {
        return Shape::Untyped;
    };
    let message = e.inner().to_string();
    let at = field_path("", e.path());
    let here = concrete(steps);
    if let Some(rest) = message.strip_prefix(&format!("unknown field `{PROBE}`")) {
        return Shape::Struct(
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect(),
        );
    }
    if message.starts_with(&format!("unknown variant `{PROBE}`")) {
        return Shape::Leaf;
    }
    // The probe was accepted and a required field elsewhere is missing: any value fits.
    if message.starts_with("missing field") {
        return Shape::Untyped;
    }
    if at == join(&here, PROBE) {
        return Shape::Map {
            numeric_keys: false,
        };
    }
    assert_eq!(at, here, "probe of {here} failed elsewhere: {message}");
    if message.contains("expected a sequence") {
        Shape::List
    } else if message.contains("key to be a number") {
        // The key itself was refused: a map keyed by numbers.
        Shape::Map { numeric_keys: true }
    } else {
        Shape::Leaf
    }
}

/// Adds every field below `steps` to `out`; `false` when the position is itself a leaf (a
/// list or map of leaves is a leaf too: its items have no fields of their own).
fn fields_below<T: DeserializeOwned>(steps: &[Step<'_>], out: &mut Vec<SchemaField>) -> bool {
    assert!(
        steps.len() < 24,
        "runaway schema walk at {}",
        pattern(steps)
    );
    let nested = |step: Step<'_>, out: &mut Vec<SchemaField>| {
        let mut next = steps.to_vec();
        next.push(step);
        fields_below::<T>(&next, out)
    };
    match shape::<T>(steps) {
        Shape::Struct(names) => {
            for name in &names {
                let mut next = steps.to_vec();
                next.push(Step::Field(name));
                let before = out.len();
                if !fields_below::<T>(&next, out) {
                    let untyped = matches!(shape::<T>(&next), Shape::Untyped);
                    out.insert(
                        before,
                        SchemaField {
                            pattern: pattern(&next),
                            untyped,
                        },
                    );
                }
            }
            true
        }
        Shape::List => nested(Step::Item, out),
        Shape::Map { numeric_keys } => nested(Step::Value(numeric_keys), out),
        Shape::Leaf | Shape::Untyped => false,
    }
}

fn schema<T: DeserializeOwned>() -> Vec<SchemaField> {
    let mut out = Vec::new();
    fields_below::<T>(&[], &mut out);
    out
}

fn kinds() -> Vec<(Kind, Vec<SchemaField>)> {
    vec![
        (Kind::VirtualService, schema::<istio::VirtualService>()),
        (Kind::DestinationRule, schema::<istio::DestinationRule>()),
        (Kind::ServiceEntry, schema::<istio::ServiceEntry>()),
        (Kind::WorkloadEntry, schema::<istio::WorkloadEntry>()),
        (Kind::Gateway, schema::<istio::Gateway>()),
        (Kind::Sidecar, schema::<istio::Sidecar>()),
        (
            Kind::PeerAuthentication,
            schema::<istio::PeerAuthentication>(),
        ),
        (
            Kind::AuthorizationPolicy,
            schema::<istio::AuthorizationPolicy>(),
        ),
        (
            Kind::RequestAuthentication,
            schema::<istio::RequestAuthentication>(),
        ),
        (Kind::Telemetry, schema::<istio::Telemetry>()),
        (Kind::K8sGateway, schema::<gateway_api::Gateway>()),
        (Kind::HttpRoute, schema::<gateway_api::HttpRoute>()),
        (Kind::GrpcRoute, schema::<gateway_api::GrpcRoute>()),
    ]
}

/// `a.b[*].c` and its ancestors, longest first.
fn ancestors(pattern: &str) -> Vec<&str> {
    let mut out = vec![pattern];
    let mut path = pattern;
    while let Some(parent) = bowline_config::positions::parent(path) {
        if parent.is_empty() {
            break;
        }
        out.push(parent);
        path = parent;
    }
    out
}

#[test]
fn the_schema_walk_finds_nested_typed_and_untyped_fields() {
    let vs: Vec<String> = schema::<istio::VirtualService>()
        .into_iter()
        .map(|f| f.pattern)
        .collect();
    for want in [
        "spec.hosts",
        "spec.http[*].match[*].headers",
        "spec.http[*].route[*].destination.port.number",
        "spec.http[*].fault.abort.percentage.value",
        "spec.tls[*].match[*].sniHosts",
    ] {
        assert!(vs.iter().any(|p| p == want), "{want} missing from {vs:#?}");
    }
    let pa = schema::<istio::PeerAuthentication>();
    assert!(pa.iter().any(|f| f.pattern == "spec.portLevelMtls.*.mode"));
    let dr = schema::<istio::DestinationRule>();
    let locality = dr
        .iter()
        .find(|f| f.pattern == "spec.trafficPolicy.loadBalancer.zoneAwareLbSetting")
        .unwrap();
    assert!(locality.untyped);
}

#[test]
fn every_schema_field_is_in_the_ledger_and_every_entry_in_the_schema() {
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for (kind, fields) in kinds() {
        let entries: Vec<_> = ledger().iter().filter(|e| e.kind == kind).collect();
        for field in &fields {
            let exact = entries.iter().any(|e| e.path == field.pattern);
            let under_unapplied = ancestors(&field.pattern).iter().any(|a| {
                entries.iter().any(|e| {
                    e.path == *a
                        && matches!(e.status, Status::NotApplied { .. })
                        && e.when == When::Always
                })
            });
            if !exact && !under_unapplied {
                missing.push(format!("{kind} {}", field.pattern));
            }
        }
        for e in &entries {
            let known = e.path == "spec"
                || fields.iter().any(|f| {
                    f.pattern == e.path
                        || f.pattern.starts_with(&format!("{}.", e.path))
                        || f.pattern.starts_with(&format!("{}[", e.path))
                        || (f.untyped && e.path.starts_with(&format!("{}.", f.pattern)))
                });
            if !known {
                stale.push(format!("{kind} {}", e.path));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields with no ledger entry:\n{}",
        missing.join("\n")
    );
    assert!(
        stale.is_empty(),
        "ledger entries for no field:\n{}",
        stale.join("\n")
    );
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_sources(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            rust_sources(&path, out);
        } else if name.ends_with(".rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

#[test]
fn applied_entries_name_tests_that_exist() {
    let mut sources = String::new();
    rust_sources(&repo().join("crates"), &mut sources);
    rust_sources(&repo().join("bin"), &mut sources);
    let mut absent = BTreeSet::new();
    for e in ledger() {
        match e.status {
            Status::Applied { shown_by } => {
                if !sources.contains(&format!("fn {shown_by}(")) {
                    absent.insert(format!("{} {} -> fn {shown_by}", e.kind, e.path));
                }
            }
            Status::NotApplied { reason } | Status::Implicit { how: reason } => {
                assert!(reason.len() > 20, "{} {}: say why", e.kind, e.path)
            }
            Status::Refused => {}
        }
    }
    assert!(
        absent.is_empty(),
        "tests named by the ledger but not found:\n{}",
        absent.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// Every resource of the documents the ledger is checked against.
fn documents() -> Vec<Resource> {
    let corpus = repo().join("../shared/corpus/istio/pkg/config/validation/testdata/crds");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-valid.yaml"))
        .collect();
    paths.sort();
    paths.push(repo().join("crates/translate/tests/inputs"));
    paths.push(repo().join("crates/config/tests/fixtures"));
    paths.push(repo().join("examples"));
    let loaded = load_paths(&paths);
    assert!(loaded.config.resources.len() > 100, "too few documents");
    loaded
        .config
        .resources
        .into_iter()
        .map(std::sync::Arc::unwrap_or_clone)
        .collect()
}

/// `apiVersion` and `kind` of a document of `kind`.
fn type_meta(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
            ("security.istio.io/v1", kind.as_str())
        }
        Kind::K8sGateway | Kind::HttpRoute | Kind::GrpcRoute => {
            ("gateway.networking.k8s.io/v1", kind.as_str())
        }
        Kind::Telemetry => ("telemetry.istio.io/v1", kind.as_str()),
        _ => ("networking.istio.io/v1", kind.as_str()),
    }
}

/// A spec setting the field at `pattern` (`[*]` → one item, `*` → key `k`) to `leaf`, and
/// that field's concrete path.
fn setting(pattern: &str, leaf: Value) -> (Value, String) {
    let mut concrete = String::from("spec");
    let mut steps: Vec<&str> = Vec::new();
    for part in pattern
        .trim_start_matches("spec")
        .split('.')
        .filter(|p| !p.is_empty())
    {
        let mut rest = part;
        while let Some(open) = rest.find("[*]") {
            if open > 0 {
                steps.push(&rest[..open]);
            }
            steps.push("[*]");
            rest = &rest[open + 3..];
        }
        if !rest.is_empty() {
            steps.push(rest);
        }
    }
    for step in &steps {
        match *step {
            "[*]" => concrete.push_str("[0]"),
            "*" => concrete = join(&concrete, "k"),
            key => concrete = join(&concrete, key),
        }
    }
    let spec = steps.iter().rev().fold(leaf, |inner, step| match *step {
        "[*]" => json!([inner]),
        "*" => json!({ "k": inner }),
        key => json!({ key: inner }),
    });
    (spec, concrete)
}

#[test]
fn every_unapplied_entry_warns_on_a_document_that_sets_it() {
    let mut silent = Vec::new();
    for e in ledger() {
        if !matches!(e.status, Status::NotApplied { .. }) {
            continue;
        }
        let candidates: Vec<Value> = match e.when {
            When::OneOf(values) => values.iter().map(|v| json!(v)).collect(),
            When::NoneOf(_) => vec![json!("SomethingElse")],
            When::Always => vec![
                json!({}),
                json!("x"),
                json!(1),
                json!(true),
                json!(["x"]),
                json!([503]),
                json!([{}]),
                json!({"x": "y"}),
                json!("1s"),
                json!({"kind": "Gateway", "name": "g"}),
                json!([{"kind": "Gateway", "name": "g"}]),
            ],
        };
        let (api_version, kind) = type_meta(e.kind);
        let warned = candidates.into_iter().any(|leaf| {
            let (spec, field) = setting(&e.path, leaf);
            let doc = json!({
                "apiVersion": api_version, "kind": kind,
                "metadata": {"name": "t", "namespace": "default"}, "spec": spec,
            });
            let loaded = bowline_config::load_str(Path::new("t.yaml"), &doc.to_string());
            loaded
                .diagnostics
                .iter()
                // The ledger's BL0301, or a check's own BL0117 for the same field (the
                // ledger then stays quiet rather than say it twice).
                .any(|d| {
                    matches!(d.code, "BL0301" | "BL0117")
                        && field.starts_with(d.field.as_str())
                        && d.severity == Severity::Warning
                })
        });
        if !warned {
            silent.push(format!("{} {} ({:?})", e.kind, e.path, e.when));
        }
    }
    assert!(
        silent.is_empty(),
        "not-applied entries that warned on no document setting them:\n{}",
        silent.join("\n")
    );
}

#[test]
fn warnings_on_real_documents_come_from_ledger_entries() {
    let mut warned = 0;
    for r in documents() {
        for finding in not_applied(&r) {
            let value = lookup(&spec_json(&r.spec), &finding.field);
            let entry = entry_for(r.kind(), &finding.field, &value).expect("warned by an entry");
            assert!(path_matches(&entry.path, &finding.field));
            assert!(matches!(entry.status, Status::NotApplied { .. }));
            warned += 1;
        }
    }
    // Istio's own inputs use fields bowline does not apply (e.g. localityLbSetting).
    assert!(warned > 0);
}

#[test]
fn every_field_the_documents_set_has_a_status() {
    let mut unknown = BTreeSet::new();
    for r in documents() {
        let mut leaves = Vec::new();
        collect_leaves("spec", &spec_json(&r.spec), &mut leaves);
        for (path, value) in leaves {
            let decided = ancestors(&path)
                .iter()
                .any(|p| entry_for(r.kind(), p, &value).is_some());
            if !decided {
                unknown.insert(format!("{} {path}", r.kind()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "fields set with no status:\n{}",
        unknown.into_iter().collect::<Vec<_>>().join("\n")
    );
}

fn collect_leaves(path: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                collect_leaves(&join(path, k), v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                collect_leaves(&format!("{path}[{i}]"), v, out);
            }
        }
        // An empty spec sets nothing.
        _ if path == "spec" => {}
        _ => out.push((path.to_string(), value.clone())),
    }
}

/// The value at a concrete field path of a spec (`spec.servers[1].tls.mode`).
fn lookup(spec: &Value, path: &str) -> Value {
    let mut leaves = Vec::new();
    collect_leaves("spec", spec, &mut leaves);
    leaves
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, v)| v)
        .unwrap_or(Value::Null)
}
