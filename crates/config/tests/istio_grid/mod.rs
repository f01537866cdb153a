//! Reading Istio's analyzer test table (`analyzers_test.go`) and its testdata into what
//! bowline reads: Istio resources as they are; Kubernetes Services, Pods, Namespaces and
//! Secrets as the ServiceEntries, WorkloadEntries, namespaces and credentials a bowline
//! user would have for the same mesh.

use bowline_config::validate::analyze::Environment;
use bowline_config::yaml::{self, key_text, Node, Yaml};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Istio's analyzer sources and test inputs, unchanged (see shared/corpus/SOURCES.md).
pub fn analyzers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/istio/pkg/config/analysis/analyzers")
}

/// One entry of Istio's `testGrid`.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub inputs: Vec<String>,
    /// `package.Type` of the analyzer (`schema.VirtualService` for schema validation).
    pub analyzer: String,
    pub needs_mesh_config: bool,
    /// `(message type name, "Kind [namespace/]name")`.
    pub expected: Vec<(String, String)>,
}

fn quoted(line: &str) -> Vec<String> {
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The cases of `analyzers_test.go`'s `testGrid`, in order.
pub fn cases(go: &str) -> Vec<Case> {
    let grid = &go[go.find("var testGrid = []testCase{").expect("testGrid")..];
    let grid = &grid[..grid.find("\n}\n").expect("end of testGrid")];
    let mut out = Vec::new();
    let mut current: Option<Case> = None;
    for line in grid.lines() {
        if line == "\t{" {
            current = Some(Case {
                name: String::new(),
                inputs: Vec::new(),
                analyzer: String::new(),
                needs_mesh_config: false,
                expected: Vec::new(),
            });
            continue;
        }
        if line == "\t}," {
            out.extend(current.take());
            continue;
        }
        let Some(case) = current.as_mut() else {
            continue;
        };
        let text = line.trim();
        if let Some(rest) = text.strip_prefix("name:") {
            case.name = quoted(rest).concat();
        } else if text.starts_with("meshConfigFile:") || text.starts_with("meshNetworksFile:") {
            case.needs_mesh_config = true;
        } else if let Some(rest) = text.strip_prefix("analyzer:") {
            case.analyzer = match rest.split_once("CollectionValidationAnalyzer(collections.") {
                Some((_, kind)) => format!("schema.{}", kind.trim_end_matches([')', ','])),
                None => rest
                    .trim()
                    .trim_start_matches('&')
                    .trim_end_matches(',')
                    .trim_end_matches("{}")
                    .to_string(),
            };
        } else if let Some(rest) = text.strip_prefix("{msg.") {
            let (name, origin) = rest.split_once(',').expect("expected message");
            case.expected
                .push((name.to_string(), quoted(origin).concat()));
        } else if text.contains("testdata/") {
            case.inputs.extend(
                quoted(text)
                    .into_iter()
                    .filter(|q| q.starts_with("testdata/")),
            );
        }
    }
    out
}

fn to_json(node: &Node) -> Value {
    match &node.value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => Value::Number(n.clone()),
        Yaml::Str(s) | Yaml::LeadingZero(s) => Value::String(s.clone()),
        Yaml::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Map(entries) => Value::Object(
            entries
                .iter()
                .filter_map(|(k, v)| Some((key_text(k)?, to_json(v))))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// What a case's inputs become for bowline.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Multi-document text for `load_str`: Istio / Gateway API resources, and the
    /// ServiceEntries and WorkloadEntries standing in for Services and Pods.
    pub text: String,
    pub env: Environment,
    /// Kinds left out: bowline has no equivalent.
    pub dropped: BTreeSet<String>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A Kubernetes Service as the ServiceEntry bowline would have for it (Istio's analyzers
/// turn Services into ServiceEntries the same way).
fn service_entry(doc: &Value, ns: &str, n: usize) -> Value {
    let name = str_at(doc, &["metadata", "name"]);
    let ports: Vec<Value> = doc["spec"]["ports"].as_array().into_iter().flatten().map(|p| {
        let number = p["port"].as_u64().unwrap_or(0);
        let mut port = json!({"number": number, "name": p["name"].as_str().map_or(format!("tcp-{number}"), str::to_string)});
        if let Some(protocol) = p["protocol"].as_str().filter(|x| *x != "UDP" && *x != "SCTP") {
            port["protocol"] = json!(protocol);
        }
        port
    }).collect();
    let mut spec = json!({
        "hosts": [format!("{name}.{ns}.svc.cluster.local")],
        "addresses": [format!("240.240.{}.{}", n / 250, n % 250 + 1)],
        "ports": ports,
        "location": "MESH_INTERNAL",
        "resolution": "STATIC",
    });
    if let Some(selector) = doc["spec"]["selector"].as_object() {
        spec["workloadSelector"] = json!({"labels": selector});
    }
    let export = str_at(
        doc,
        &["metadata", "annotations", "networking.istio.io/exportTo"],
    );
    if !export.is_empty() {
        spec["exportTo"] = json!(export.split(',').map(str::trim).collect::<Vec<_>>());
    }
    json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// A Pod as a WorkloadEntry, labelled with the non-empty topology labels of its Node (as
/// Istio labels endpoints; a bowline user writes them on the WorkloadEntry).
fn workload_entry(doc: &Value, ns: &str, n: usize, nodes: &[Value]) -> Value {
    let mut labels = doc["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let node_name = str_at(doc, &["spec", "nodeName"]);
    let node = nodes
        .iter()
        .find(|n| !node_name.is_empty() && str_at(n, &["metadata", "name"]) == node_name);
    for key in [
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    ] {
        let value = node.map_or("", |n| str_at(n, &["metadata", "labels", key]));
        if !value.is_empty() {
            labels.insert(key.to_string(), json!(value));
        }
    }
    json!({"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
           "metadata": {"name": str_at(doc, &["metadata", "name"]), "namespace": ns},
           "spec": {"address": format!("10.0.{}.{}", n / 250, n % 250 + 1), "labels": labels}})
}

/// Reads a case's input files. The environment starts as Istio's analysis does: the
/// default ingress gateway workload (and its Service), `istio-system`; credentials are the
/// Secrets of the inputs.
pub fn read(case: &Case) -> Inputs {
    let mut inputs = Inputs {
        env: Environment {
            credentials: Some(BTreeSet::new()),
            ..Environment::default()
        },
        ..Inputs::default()
    };
    let mut docs: Vec<Value> = vec![json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
        "spec": {"selector": {"istio": "ingressgateway"}, "ports": [
            {"name": "http2", "port": 80}, {"name": "https", "port": 443},
            {"name": "tcp", "port": 31400}, {"name": "tls", "port": 15443}]}})];
    for file in &case.inputs {
        let text = std::fs::read_to_string(analyzers_dir().join(file)).expect("input file");
        let (parsed, error) = yaml::parse(&text);
        assert!(error.is_none(), "{file}: {error:?}");
        for doc in parsed
            .iter()
            .filter(|d| !d.is_empty())
            .map(|d| to_json(&d.root))
        {
            match doc["items"].as_array().filter(|_| doc["kind"] == "List") {
                Some(items) => docs.extend(items.iter().cloned()),
                None => docs.push(doc),
            }
        }
    }
    let nodes: Vec<Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Node")
        .cloned()
        .collect();
    let mut out = Vec::new();
    for (n, doc) in docs.iter().enumerate() {
        let ns = match str_at(doc, &["metadata", "namespace"]) {
            "" => "default",
            ns => ns,
        };
        let group = str_at(doc, &["apiVersion"]).split('/').next().unwrap_or("");
        let kind = str_at(doc, &["kind"]);
        match (group, kind) {
            (
                "networking.istio.io" | "security.istio.io",
                "VirtualService"
                | "DestinationRule"
                | "ServiceEntry"
                | "WorkloadEntry"
                | "Gateway"
                | "Sidecar"
                | "PeerAuthentication"
                | "AuthorizationPolicy"
                | "RequestAuthentication",
            )
            | ("gateway.networking.k8s.io", "Gateway" | "HTTPRoute" | "GRPCRoute") => {
                out.push(doc.clone())
            }
            ("v1", "Service") => out.push(service_entry(doc, ns, n)),
            ("v1", "Pod") => out.push(workload_entry(doc, ns, n, &nodes)),
            ("v1", "Node") => {}
            ("v1", "Namespace") => {
                inputs
                    .env
                    .namespaces
                    .insert(str_at(doc, &["metadata", "name"]).to_string());
            }
            ("v1", "Secret") => {
                let name = str_at(doc, &["metadata", "name"]).to_string();
                inputs
                    .env
                    .credentials
                    .get_or_insert_default()
                    .insert((ns.to_string(), name));
            }
            _ => {
                inputs.dropped.insert(kind.to_string());
            }
        }
    }
    inputs.text = out.iter().map(|d| format!("---\n{d}\n")).collect();
    inputs
}
