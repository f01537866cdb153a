//! Istio's own injector corpus (`pkg/kube/inject/testdata/inject`): for every input `X.yaml`
//! that has Istio's output `X.yaml.injected`, bowline's injection (with
//! [`Policy::Offline`], as `istioctl kube-inject` ignores namespace labels):
//!
//! 1. decides as Istio did: a pod template is injected iff Istio's output has an
//!    `istio-proxy` container;
//! 2. captures as Istio did: the user-given sets of `bowline-init`'s flags equal those of
//!    Istio's `istio-init` (or `istio-validation`) `-i -x -b -d -o -q`;
//! 3. writes objects that round-trip through the `k8s_openapi` types;
//! 4. is idempotent;
//! 5. rewrites every httpGet probe of an application container to `/app-health/...` on
//!    15020, listing the original (named port resolved) in `BOWLINE_APP_PROBERS`, and lists
//!    the same originals as Istio's `ISTIO_KUBE_APP_PROBERS` does for HTTP probes.
//!
//! Files where Istio's result depends on something bowline does not read are listed below,
//! each with its reason; those files still go through checks 3 to 5.

use bowline_inject::{inject_object, Policy, Settings};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpus/istio/pkg/kube/inject/testdata/inject"
);

/// Files whose injection decision is not compared: Istio's decision comes from an
/// `inject.istio.io/templates` template other than `sidecar`, which bowline does not read.
const DECISION_NOT_COMPARED: &[(&str, &str)] = &[
    ("custom-template.yaml", "template `custom` from the test's custom-template.iop.yaml values: no istio-proxy in Istio's output"),
    ("grpc-simple.yaml", "template `grpc-simple` (proxyless gRPC): Istio adds no proxy container"),
    ("grpc-agent.yaml", "template `grpc-agent`: Istio adds its agent without capture; bowline has one sidecar shape"),
    ("gateway.yaml", "template `gateway`: Istio fills the pod's own istio-proxy container as a gateway"),
    ("gateway-spire.yaml", "templates `gateway,spire`: Istio fills the pod's own istio-proxy container as a gateway"),
    ("gateway-with-default-container.yaml", "template `gateway`: Istio fills the pod's own istio-proxy container as a gateway"),
    ("merge-probers.yaml", "already injected by Istio (sidecar.istio.io/status): Istio re-injects its own proxy; bowline leaves the pod to it rather than add a second proxy and capture"),
];

/// Files Istio injects and bowline refuses, with what bowline's error must say.
const EXPECTED_ERRORS: &[(&str, &str, &str)] = &[(
    "hello-openshift-tproxy.yaml",
    "sidecar.istio.io/interceptionMode: TPROXY is not supported",
    "TPROXY interception: the contract makes it an injection error (bowline captures with REDIRECT)",
)];

/// Files whose capture flags are not compared, and why.
const CAPTURE_NOT_COMPARED: &[(&str, &str)] = &[
    ("traffic-params.yaml", "the ranges and ports come from the test's injector values, not annotations"),
    ("status_params.yaml", "the test's values set Istio's status port to 123 (excluded inbound); bowline's is fixed at 15020"),
    ("kubevirtInterfaces.yaml", "the test's values set Istio's status port to 123 (excluded inbound); bowline's is fixed at 15020"),
    ("reroute-virtual-interfaces.yaml", "the test's values set Istio's status port to 123 (excluded inbound); bowline's is fixed at 15020"),
    ("status_annotations.yaml", "status.sidecar.istio.io/port: 123 moves Istio's status port; bowline's is fixed at 15020"),
    ("proxy-override.yaml", "the pod brings its own istio-init, which Istio merges into its output (no arguments left)"),
];

/// Inputs Istio refuses (no `.injected` file): bowline must refuse them too.
const BAD_INPUTS: &[(&str, &str)] = &[
    (
        "traffic-annotations-bad-excludeinboundports.yaml",
        "traffic.sidecar.istio.io/excludeInboundPorts",
    ),
    (
        "traffic-annotations-bad-excludeipranges.yaml",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges",
    ),
    (
        "traffic-annotations-bad-excludeoutboundports.yaml",
        "traffic.sidecar.istio.io/excludeOutboundPorts",
    ),
    (
        "traffic-annotations-bad-includeinboundports.yaml",
        "traffic.sidecar.istio.io/includeInboundPorts",
    ),
    (
        "traffic-annotations-bad-includeipranges.yaml",
        "traffic.sidecar.istio.io/includeOutboundIPRanges",
    ),
];

/// Istio's own inbound exclusions (`-d`), added to every pod: bowline's defaults cover them.
const ISTIO_EXCLUDED_INBOUND: [&str; 3] = ["15090", "15021", "15020"];
const BOWLINE_EXCLUDED_INBOUND: [&str; 6] = ["15000", "15001", "15006", "15020", "15021", "15090"];

fn corpus() -> PathBuf {
    let dir = PathBuf::from(CORPUS);
    assert!(
        dir.is_dir(),
        "Istio's injector corpus is missing at {} (see shared/corpus)",
        dir.display()
    );
    dir
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (docs, err) = bowline_config::yaml::parse(&text);
    assert!(err.is_none(), "{}: {err:?}", path.display());
    docs.iter()
        .filter(|d| !d.is_empty())
        .map(|d| bowline_config::positions::to_json(&d.root).0)
        .collect()
}

/// The pod templates of an object, with where they are.
fn templates(object: &Value) -> Vec<(String, &Value)> {
    let kind = object["kind"].as_str().unwrap_or("");
    match kind {
        "List" => object["items"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .flat_map(|(i, item)| {
                templates(item)
                    .into_iter()
                    .map(move |(path, t)| (format!("items[{i}].{path}"), t))
            })
            .collect(),
        "Pod" => vec![("pod".to_string(), object)],
        "CronJob" => vec![(
            "spec.jobTemplate.spec.template".to_string(),
            &object["spec"]["jobTemplate"]["spec"]["template"],
        )],
        _ => match object.get("spec").and_then(|s| s.get("template")) {
            Some(t) => vec![("spec.template".to_string(), t)],
            None => Vec::new(),
        },
    }
}

fn containers(template: &Value) -> impl Iterator<Item = &Value> {
    let spec = &template["spec"];
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |f| spec[f].as_array().into_iter().flatten())
}

fn container<'a>(template: &'a Value, name: &str) -> Option<&'a Value> {
    containers(template).find(|c| c["name"] == name)
}

fn env(container: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_string)
}

/// The value sets of capture flags, from istio-iptables' short flags or bowline's long ones.
fn capture_sets(
    args: &[String],
    flags: &[(&str, &str)],
) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (name, flag) in flags {
        let key: &'static str = match *name {
            "i" => "include outbound ranges",
            "x" => "exclude outbound ranges",
            "b" => "include inbound ports",
            "d" => "exclude inbound ports",
            "o" => "exclude outbound ports",
            _ => "include outbound ports",
        };
        let value = args
            .iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_default();
        let items: BTreeSet<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        out.insert(key, items);
    }
    out
}

const ISTIO_FLAGS: [(&str, &str); 6] = [
    ("i", "-i"),
    ("x", "-x"),
    ("b", "-b"),
    ("d", "-d"),
    ("o", "-o"),
    ("q", "-q"),
];
const BOWLINE_FLAGS: [(&str, &str); 6] = [
    ("i", "--include-outbound-ip-ranges"),
    ("x", "--exclude-outbound-ip-ranges"),
    ("b", "--include-inbound-ports"),
    ("d", "--exclude-inbound-ports"),
    ("o", "--exclude-outbound-ports"),
    ("q", "--include-outbound-ports"),
];

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// Removes nulls, empty objects and empty arrays, recursively.
fn prune(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(map) => {
            let out: Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let out: Vec<Value> = items
                .iter()
                .map(|v| prune(v).unwrap_or(Value::Null))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(value: &Value, what: &str) {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if let Some(at) = first_difference(&prune(value), &prune(&back), String::new()) {
        panic!("{what}: does not round-trip through its k8s-openapi type: {at}");
    }
}

/// Where two values first differ (a JSON pointer and both sides), or `None` when equal.
fn first_difference(ours: &Option<Value>, typed: &Option<Value>, at: String) -> Option<String> {
    match (ours, typed) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(&a.get(k).cloned(), &b.get(k).cloned(), format!("{at}/{k}"))
            })
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| {
                first_difference(&Some(x.clone()), &Some(y.clone()), format!("{at}/{i}"))
            })
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("at {at:?}: written {a:?}, typed {b:?}")),
    }
}

/// Check 3: the object round-trips through its typed form.
fn check_schema(object: &Value, what: &str) {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    match object["kind"].as_str().unwrap_or("") {
        "Pod" => round_trip::<core::Pod>(object, what),
        "Service" => round_trip::<core::Service>(object, what),
        "ReplicationController" => round_trip::<core::ReplicationController>(object, what),
        "Deployment" => round_trip::<apps::Deployment>(object, what),
        "ReplicaSet" => round_trip::<apps::ReplicaSet>(object, what),
        "StatefulSet" => round_trip::<apps::StatefulSet>(object, what),
        "DaemonSet" => round_trip::<apps::DaemonSet>(object, what),
        "Job" => round_trip::<batch::Job>(object, what),
        "CronJob" => round_trip::<batch::CronJob>(object, what),
        "DeploymentConfig" => round_trip::<core::PodTemplateSpec>(
            &object["spec"]["template"],
            &format!("{what} spec.template"),
        ),
        "List" => {
            for (i, item) in object["items"].as_array().into_iter().flatten().enumerate() {
                check_schema(item, &format!("{what} items[{i}]"));
            }
        }
        other => panic!("{what}: no schema check for kind {other:?}"),
    }
}

/// Check 5 for one injected template.
fn check_probes(input: &Value, ours: &Value, istio: &Value, what: &str) -> usize {
    let rewrite =
        input["metadata"]["annotations"]["sidecar.istio.io/rewriteAppHTTPProbers"] != "false";
    let proxy =
        container(ours, "bowline-proxy").unwrap_or_else(|| panic!("{what}: no bowline-proxy"));
    let probers: Map<String, Value> = env(proxy, "BOWLINE_APP_PROBERS")
        .map(|text| {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{what}: BOWLINE_APP_PROBERS: {e}"))
        })
        .unwrap_or_default();
    let mut checked = 0;
    for original in containers(input) {
        let name = original["name"].as_str().unwrap();
        let native = original["restartPolicy"] == "Always";
        let is_app = name != "istio-proxy"
            && (native
                || input["spec"]["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["name"] == name));
        if !is_app {
            continue;
        }
        let now = container(ours, name).unwrap();
        for (field, kind) in [
            ("livenessProbe", "livez"),
            ("readinessProbe", "readyz"),
            ("startupProbe", "startupz"),
        ] {
            let Some(http) = original[field].get("httpGet") else {
                continue;
            };
            let path = format!("/app-health/{name}/{kind}");
            if !rewrite {
                assert_eq!(
                    now[field], original[field],
                    "{what}: {name} {field} changed with rewriting off"
                );
                continue;
            }
            assert_eq!(
                now[field]["httpGet"],
                serde_json::json!({"path": path, "port": 15020}),
                "{what}: {name} {field}"
            );
            let entry = probers
                .get(&path)
                .unwrap_or_else(|| panic!("{what}: {path} not in BOWLINE_APP_PROBERS"));
            let already = http["path"] == path.as_str() && http["port"] == 15020;
            if !already {
                let mut want = http.clone();
                if let Some(port_name) = http["port"].as_str() {
                    let port = original["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| p["name"] == port_name)
                        .map(|p| p["containerPort"].clone())
                        .unwrap_or_else(|| panic!("{what}: {name}: no port named {port_name}"));
                    want["port"] = port;
                }
                assert_eq!(entry["httpGet"], want, "{what}: {path}");
                assert_eq!(
                    entry.get("timeoutSeconds"),
                    original[field].get("timeoutSeconds"),
                    "{what}: {path}"
                );
            }
            checked += 1;
        }
    }
    if !rewrite {
        assert!(
            probers.is_empty(),
            "{what}: BOWLINE_APP_PROBERS with rewriting off"
        );
    }
    // Istio lists the same originals for HTTP probes.
    let istio_probers: Map<String, Value> = containers(istio)
        .find_map(|c| env(c, "ISTIO_KUBE_APP_PROBERS"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or_default();
    for (path, entry) in istio_probers {
        if entry.get("httpGet").is_some() && path.starts_with("/app-health/") {
            assert_eq!(
                probers.get(&path),
                Some(&entry),
                "{what}: {path} differs from Istio's"
            );
        }
    }
    checked
}

/// Check 2 for one template Istio captured.
fn check_capture(ours: &Value, istio: &Value, what: &str) -> bool {
    let Some(istio_init) = ["istio-init", "istio-validation"]
        .iter()
        .find_map(|n| container(istio, n))
    else {
        // No capture in Istio's output (interceptionMode NONE): none in ours either.
        assert!(
            container(ours, "bowline-init").is_none(),
            "{what}: Istio does not capture, bowline does"
        );
        return false;
    };
    let ours_init = container(ours, "bowline-init")
        .unwrap_or_else(|| panic!("{what}: Istio captures, bowline-init missing"));
    let mut want = capture_sets(&strings(&istio_init["args"]), &ISTIO_FLAGS);
    let mut got = capture_sets(&strings(&ours_init["args"]), &BOWLINE_FLAGS);
    let excluded = "exclude inbound ports";
    want.get_mut(excluded)
        .unwrap()
        .retain(|p| !ISTIO_EXCLUDED_INBOUND.contains(&p.as_str()));
    let ours_excluded = got.get_mut(excluded).unwrap();
    for port in BOWLINE_EXCLUDED_INBOUND {
        assert!(
            ours_excluded.remove(port),
            "{what}: default excluded port {port} missing"
        );
    }
    assert_eq!(got, want, "{what}: capture differs from Istio's");
    true
}

#[derive(Default)]
struct Summary {
    files: usize,
    templates: usize,
    injected: usize,
    skipped: BTreeMap<String, usize>,
    captures: usize,
    probes: usize,
    listed: usize,
    errors: usize,
}

#[test]
fn istio_injector_corpus() {
    let dir = corpus();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p.to_string_lossy().ends_with(".iop.yaml")
        })
        .filter(|p| p.with_extension("yaml.injected").exists())
        .collect();
    inputs.sort();
    let listed: BTreeSet<&str> = DECISION_NOT_COMPARED
        .iter()
        .chain(CAPTURE_NOT_COMPARED)
        .map(|(f, _)| *f)
        .chain(EXPECTED_ERRORS.iter().map(|(f, _, _)| *f))
        .collect();
    for file in &listed {
        assert!(
            dir.join(file).exists(),
            "listed file {file} is not in the corpus"
        );
    }
    let settings = Settings::default();
    let mut summary = Summary::default();
    let mut agreement: BTreeMap<String, &str> = BTreeMap::new();
    for input_path in &inputs {
        let file = input_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        summary.files += 1;
        let inputs = documents(input_path);
        let outputs = documents(&input_path.with_extension("yaml.injected"));
        assert_eq!(
            inputs.len(),
            outputs.len(),
            "{file}: document counts differ"
        );
        if let Some((_, message, _)) = EXPECTED_ERRORS.iter().find(|(f, _, _)| *f == file) {
            let err = inputs
                .iter()
                .find_map(|d| inject_object(d, &settings, &Policy::Offline).err())
                .unwrap_or_else(|| panic!("{file}: expected an error"));
            assert!(err.to_string().contains(message), "{file}: {err}");
            summary.errors += 1;
            continue;
        }
        let compare_decision = !DECISION_NOT_COMPARED.iter().any(|(f, _)| *f == file);
        let compare_capture =
            compare_decision && !CAPTURE_NOT_COMPARED.iter().any(|(f, _)| *f == file);
        if !compare_decision || !compare_capture {
            summary.listed += 1;
        }
        let mut decision_agrees = true;
        for (index, (input, istio)) in inputs.iter().zip(&outputs).enumerate() {
            let what = format!("{file}[{index}]");
            let ours = inject_object(input, &settings, &Policy::Offline)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            check_schema(&ours, &what);
            assert_eq!(
                inject_object(&ours, &settings, &Policy::Offline).unwrap(),
                ours,
                "{what}: not idempotent"
            );
            let (ins, mine, theirs) = (templates(input), templates(&ours), templates(istio));
            assert_eq!(ins.len(), theirs.len(), "{what}: template counts differ");
            for (((path, input_t), (_, ours_t)), (_, istio_t)) in ins.iter().zip(&mine).zip(&theirs)
            {
                let what = format!("{what} {path}");
                summary.templates += 1;
                let we_inject = container(ours_t, "bowline-proxy").is_some();
                let istio_injects = container(istio_t, "istio-proxy").is_some();
                if compare_decision {
                    assert_eq!(
                        we_inject, istio_injects,
                        "{what}: injection decision differs from Istio's"
                    );
                }
                decision_agrees &= we_inject == istio_injects;
                if !we_inject {
                    assert_eq!(ours_t, input_t, "{what}: skipped but changed");
                    let reason = match bowline_inject::decide(
                        &input_t["metadata"],
                        &input_t["spec"],
                        &Policy::Offline,
                    ) {
                        bowline_inject::Decision::Skip(why) => why,
                        bowline_inject::Decision::Inject => {
                            panic!("{what}: decided to inject but did not")
                        }
                    };
                    *summary.skipped.entry(reason).or_default() += 1;
                    continue;
                }
                summary.injected += 1;
                if compare_capture && check_capture(ours_t, istio_t, &what) {
                    summary.captures += 1;
                }
                summary.probes += check_probes(input_t, ours_t, istio_t, &what);
            }
        }
        if !compare_decision {
            let verdict = if decision_agrees {
                "agrees anyway"
            } else {
                "differs"
            };
            agreement.insert(file.clone(), verdict);
        }
    }
    let mut bad = 0;
    for (file, annotation) in BAD_INPUTS {
        for doc in documents(&dir.join(file)) {
            let err = inject_object(&doc, &settings, &Policy::Offline).expect_err(file);
            assert!(err.to_string().contains(annotation), "{file}: {err}");
            bad += 1;
        }
    }
    let skipped: Vec<String> = summary
        .skipped
        .iter()
        .map(|(why, n)| format!("{n}× {why}"))
        .collect();
    println!(
        "inject corpus: {} files, {} templates, {} injected, skipped: [{}], {} captures and {} probes compared, {} files listed as not comparable, {} expected error(s), {} bad inputs refused",
        summary.files,
        summary.templates,
        summary.injected,
        skipped.join("; "),
        summary.captures,
        summary.probes,
        summary.listed,
        summary.errors,
        bad,
    );
    for (file, why) in DECISION_NOT_COMPARED {
        let verdict = agreement.get(*file).copied().unwrap_or("?");
        println!("  decision not compared ({verdict}): {file}: {why}");
    }
    for (file, why) in CAPTURE_NOT_COMPARED {
        println!("  capture not compared: {file}: {why}");
    }
    for (file, _, why) in EXPECTED_ERRORS {
        println!("  refused: {file}: {why}");
    }
}
