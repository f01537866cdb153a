//! The deploy manifests are valid Kubernetes objects that fit together.
//!
//! Every document of `deploy/kubernetes/*.yaml` and `deploy/crds/crds.yaml` is read with
//! bowline's own YAML reader and round-tripped through the matching k8s-openapi type: it is
//! deserialized into the typed struct, serialized back, and must equal the input once nulls
//! and empty maps are dropped on both sides, so a misspelt field (dropped by the typed struct)
//! or a mistyped one (refused) fails. A kind with no typed struct here fails too. Then the
//! objects are checked against each other (the ServiceAccount the Deployment runs as, the
//! Service the webhook calls, what the RBAC grants) and the CRDs against
//! `bowline_config::crd`.
//!
//! When `helm` is on PATH, the chart (`deploy/helm/render.sh`) is rendered and must produce
//! the same objects as `deploy/kubernetes/` (less the Namespace: `helm install
//! --create-namespace` makes it) and the CRDs; without helm that part is skipped, loudly.

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const NAMESPACE: &str = "bowline-system";

/// The control plane's arguments, as the deploy contract gives them.
const CONTROL_ARGS: &[&str] = &[
    "control",
    "--kubernetes",
    "--secure-xds-addr",
    "0.0.0.0:15012",
    "--webhook-addr",
    "0.0.0.0:15017",
    "--debug-addr",
    "0.0.0.0:15014",
    "--server-name",
    "bowline.bowline-system.svc",
    "--ca-dir",
    "/etc/cacerts",
    "--mesh-config",
    "/etc/bowline/mesh.yaml",
    "--injection-config",
    "/etc/bowline/injection.yaml",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every non-empty document of `text`, as JSON, through bowline's YAML reader.
fn documents(origin: &str, text: &str) -> Vec<Value> {
    let (docs, err) = bowline_config::yaml::parse(text);
    assert!(err.is_none(), "{origin}: {err:?}");
    docs.iter()
        .filter(|d| !d.is_empty())
        .map(|d| {
            let (value, _, issues) = bowline_config::positions::to_json(&d.root);
            assert!(issues.is_empty(), "{origin}: {issues:?}");
            value
        })
        .collect()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `deploy/kubernetes/*.yaml`, in file-name order (the order `kubectl apply -f` takes).
fn plain_manifests() -> Vec<(String, Value)> {
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut out = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in documents(&name, &text) {
            out.push((name.clone(), doc));
        }
    }
    out
}

/// Drops nulls, empty maps and what becomes empty once they are gone.
fn prune(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let kept: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|v| prune(v).unwrap_or(json!({})))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let (want, got) = (prune(doc), prune(&back));
    if want == got {
        return Ok(());
    }
    let mut diffs = Vec::new();
    diff(
        "",
        want.as_ref().unwrap_or(&Value::Null),
        got.as_ref().unwrap_or(&Value::Null),
        &mut diffs,
    );
    Err(format!(
        "differs after the typed round trip (misspelt or mistyped field?): {}",
        diffs.join("; ")
    ))
}

fn diff(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
                let p = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(&p, x, y, out),
                    (Some(x), None) => out.push(format!("{p}: {x} is dropped")),
                    (None, Some(y)) => out.push(format!("{p}: {y} appears")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if want != got => out.push(format!("{path}: {want} became {got}")),
        _ => {}
    }
}

/// Checks one document against the Kubernetes schema of its kind.
fn validate(origin: &str, doc: &Value) {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let result = match (api_version, kind) {
        ("v1", "Namespace") => round_trip::<Namespace>(doc),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(doc),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(doc),
        ("v1", "Service") => round_trip::<Service>(doc),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(doc),
        ("policy/v1", "PodDisruptionBudget") => round_trip::<PodDisruptionBudget>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(doc),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(doc)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(doc),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(doc),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
            round_trip::<MutatingWebhookConfiguration>(doc)
        }
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<CustomResourceDefinition>(doc)
        }
        _ => Err(format!(
            "no Kubernetes schema here for {api_version} {kind}: add its k8s-openapi type to validate()"
        )),
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or("?");
    if let Err(e) = result {
        panic!("{origin}: {kind} {name}: {e}");
    }
}

type Key = (String, String, String);

fn key(doc: &Value) -> Key {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&doc["kind"]),
        s(&doc["metadata"]["namespace"]),
        s(&doc["metadata"]["name"]),
    )
}

fn index(docs: &[Value]) -> BTreeMap<Key, Value> {
    let mut out = BTreeMap::new();
    for doc in docs {
        assert!(
            out.insert(key(doc), doc.clone()).is_none(),
            "{:?} appears twice",
            key(doc)
        );
    }
    out
}

fn get<'a>(
    objects: &'a BTreeMap<Key, Value>,
    kind: &str,
    namespace: &str,
    name: &str,
) -> &'a Value {
    objects
        .get(&(kind.into(), namespace.into(), name.into()))
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

#[test]
fn every_manifest_matches_its_kubernetes_schema() {
    for (origin, doc) in plain_manifests() {
        validate(&origin, &doc);
    }
    for doc in documents("crds.yaml", &read("deploy/crds/crds.yaml")) {
        validate("deploy/crds/crds.yaml", &doc);
    }
}

#[test]
fn the_round_trip_catches_misspelt_and_mistyped_fields() {
    let (_, deployment) = plain_manifests()
        .into_iter()
        .find(|(_, d)| d["kind"] == "Deployment")
        .unwrap();
    let mut misspelt = deployment.clone();
    misspelt["spec"]["template"]["spec"]["serviceAccount_Name"] = json!("bowline");
    assert!(round_trip::<Deployment>(&misspelt).is_err());
    let mut mistyped = deployment.clone();
    mistyped["spec"]["replicas"] = json!("two");
    assert!(round_trip::<Deployment>(&mistyped).is_err());
    assert!(round_trip::<Deployment>(&deployment).is_ok());
}

#[test]
fn the_manifests_fit_together() {
    let docs: Vec<Value> = plain_manifests().into_iter().map(|(_, d)| d).collect();
    let objects = index(&docs);
    assert!(objects.contains_key(&("Namespace".into(), String::new(), NAMESPACE.into())));
    for (kind, namespace, name) in objects.keys() {
        let cluster_scoped = matches!(
            kind.as_str(),
            "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "MutatingWebhookConfiguration"
        );
        assert_eq!(
            namespace.is_empty(),
            cluster_scoped,
            "{kind} {name}: namespace {namespace:?}"
        );
        assert!(cluster_scoped || namespace == NAMESPACE, "{kind} {name}");
    }

    // The Deployment: its ServiceAccount, arguments, volumes and probe.
    let deployment = get(&objects, "Deployment", NAMESPACE, "bowline");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"];
    let pod_labels = &pod["metadata"]["labels"];
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        pod_labels
    ));
    assert_eq!(pod_labels["sidecar.istio.io/inject"], "false");
    let pod_spec = &pod["spec"];
    let account = pod_spec["serviceAccountName"].as_str().unwrap();
    get(&objects, "ServiceAccount", NAMESPACE, account);
    assert_eq!(pod_spec["securityContext"]["runAsNonRoot"], true);
    let container = &pod_spec["containers"][0];
    assert_eq!(container["image"], "ghcr.io/bowline-mesh/bowline:0.1.0");
    assert_eq!(strings(&container["args"]), CONTROL_ARGS);
    let env: BTreeMap<&str, &str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(env["POD_NAME"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "metadata.namespace");
    let probe = &container["readinessProbe"]["httpGet"];
    assert_eq!(
        (probe["path"].as_str(), probe["port"].as_u64()),
        (Some("/ready"), Some(15014))
    );
    let container_ports: BTreeMap<u64, &str> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["containerPort"].as_u64().unwrap(),
                p["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        container_ports,
        BTreeMap::from([
            (15012, "grpc-xds"),
            (15014, "http-debug"),
            (15017, "https-webhook")
        ])
    );
    let volumes: BTreeMap<&str, &Value> = pod_spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mounts: BTreeMap<&str, (&str, bool)> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(volumes.contains_key(m["name"].as_str().unwrap()), "{m}");
            (
                m["mountPath"].as_str().unwrap(),
                (m["name"].as_str().unwrap(), m["readOnly"] == true),
            )
        })
        .collect();
    assert_eq!(mounts["/etc/cacerts"], ("cacerts", true));
    assert_eq!(volumes["cacerts"]["secret"]["secretName"], "cacerts");
    assert_eq!(mounts["/etc/bowline"].0, "bowline-mesh");
    let mesh_map = volumes["bowline-mesh"]["configMap"]["name"]
        .as_str()
        .unwrap();
    let mesh = get(&objects, "ConfigMap", NAMESPACE, mesh_map);
    let mesh_yaml = mesh["data"]["mesh.yaml"].as_str().expect("mesh.yaml");
    let (_, diagnostics) = bowline_config::read_mesh_config(Path::new("mesh.yaml"), mesh_yaml);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let injection = documents(
        "injection.yaml",
        mesh["data"]["injection.yaml"].as_str().unwrap(),
    );
    assert_eq!(injection[0]["hub"], "ghcr.io/bowline-mesh");
    assert_eq!(injection[0]["tag"], "0.1.0");
    // The control plane reads it as it would at start (`--injection-config`).
    let settings = bowline_inject::config_file::apply(&injection[0], Default::default())
        .expect("injection.yaml is what the control plane reads");
    assert_eq!(
        settings.proxy_resources.requests,
        ("100m".into(), "128Mi".into())
    );

    // The PodDisruptionBudget and Service select the Deployment's pods.
    let pdb = get(&objects, "PodDisruptionBudget", NAMESPACE, "bowline");
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], pod_labels));
    let service = get(&objects, "Service", NAMESPACE, "bowline");
    assert!(selects(&service["spec"]["selector"], pod_labels));
    let service_ports: BTreeMap<u64, (u64, &str)> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let target = p["targetPort"].as_u64().unwrap();
            assert!(container_ports.contains_key(&target), "{p}");
            (
                p["port"].as_u64().unwrap(),
                (target, p["name"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(service_ports[&15012], (15012, "grpc-xds"));
    assert_eq!(service_ports[&443], (15017, "https-webhook"));
    assert_eq!(service_ports[&15014], (15014, "http-debug"));

    // The webhook calls that Service on 443, as Istio's injector is called.
    let webhook = get(
        &objects,
        "MutatingWebhookConfiguration",
        "",
        "bowline-sidecar-injector",
    );
    let hooks = webhook["webhooks"].as_array().unwrap();
    assert!(hooks.len() >= 2);
    for hook in hooks {
        let name = hook["name"].as_str().unwrap();
        assert!(name.ends_with("sidecar-injector.bowline.io"), "{name}");
        let svc = &hook["clientConfig"]["service"];
        let target = get(
            &objects,
            "Service",
            svc["namespace"].as_str().unwrap(),
            svc["name"].as_str().unwrap(),
        );
        assert_eq!(target["metadata"]["name"], "bowline");
        assert_eq!(svc["port"], 443);
        assert!(service_ports.contains_key(&443));
        assert_eq!(svc["path"], "/inject");
        assert!(hook["clientConfig"].get("caBundle").is_none(), "{name}");
        assert_eq!(strings(&hook["admissionReviewVersions"]), ["v1"]);
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["reinvocationPolicy"], "Never");
        assert_eq!(
            hook["rules"],
            json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}])
        );
    }
    let namespace_hook = hooks
        .iter()
        .find(|h| h["name"] == "namespace.sidecar-injector.bowline.io")
        .unwrap();
    assert_eq!(
        namespace_hook["namespaceSelector"]["matchExpressions"][0],
        json!({"key": "istio-injection", "operator": "In", "values": ["enabled"]})
    );
    assert_eq!(
        namespace_hook["objectSelector"]["matchExpressions"][0],
        json!({"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]})
    );
    let object_hook = hooks
        .iter()
        .find(|h| h["name"] == "object.sidecar-injector.bowline.io")
        .unwrap();
    assert_eq!(
        object_hook["objectSelector"]["matchExpressions"][0],
        json!({"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]})
    );

    // The bindings bind the roles to the ServiceAccount.
    for (binding, role, namespace) in [
        ("ClusterRoleBinding", "ClusterRole", ""),
        ("RoleBinding", "Role", NAMESPACE),
    ] {
        let b = get(&objects, binding, namespace, "bowline");
        assert_eq!(b["roleRef"]["kind"], role);
        get(
            &objects,
            role,
            namespace,
            b["roleRef"]["name"].as_str().unwrap(),
        );
        let subjects = b["subjects"].as_array().unwrap();
        assert!(subjects.iter().any(|s| s["kind"] == "ServiceAccount"
            && s["name"] == account
            && s["namespace"] == NAMESPACE));
    }
    let grants = |role: &Value| -> BTreeSet<(String, String, String)> {
        let mut out = BTreeSet::new();
        for rule in role["rules"].as_array().unwrap() {
            for g in strings(&rule["apiGroups"]) {
                for r in strings(&rule["resources"]) {
                    for v in strings(&rule["verbs"]) {
                        out.insert((g.to_string(), r.to_string(), v.to_string()));
                    }
                }
            }
        }
        out
    };
    let cluster = grants(get(&objects, "ClusterRole", "", "bowline"));
    let has = |g: &str, r: &str, verbs: &[&str]| {
        for v in verbs {
            assert!(
                cluster.contains(&(g.into(), r.into(), v.to_string())),
                "ClusterRole lacks {v} {r}.{g}"
            );
        }
    };
    for r in ["services", "pods", "namespaces", "nodes"] {
        has("", r, &["get", "list", "watch"]);
    }
    has(
        "discovery.k8s.io",
        "endpointslices",
        &["get", "list", "watch"],
    );
    has("authentication.k8s.io", "tokenreviews", &["create"]);
    has(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        &["get", "update", "patch"],
    );
    has("", "configmaps", &["get", "create", "update"]);
    let mut crd_grants = BTreeSet::new();
    for k in bowline_config::crd::crd_kinds() {
        has(k.group, &k.plural, &["get", "list", "watch"]);
        has(
            k.group,
            &format!("{}/status", k.plural),
            &["update", "patch"],
        );
        crd_grants.insert((k.group.to_string(), k.plural.clone()));
        crd_grants.insert((k.group.to_string(), format!("{}/status", k.plural)));
    }
    // Nothing granted on mesh config groups beyond the kinds the CRDs define.
    for (g, r, _) in &cluster {
        if g.ends_with("istio.io") || g == "gateway.networking.k8s.io" {
            assert!(
                crd_grants.contains(&(g.clone(), r.clone())),
                "{r}.{g} is no CRD of bowline's"
            );
        }
    }
    let leases = grants(get(&objects, "Role", NAMESPACE, "bowline"));
    for v in ["get", "create", "update"] {
        assert!(leases.contains(&("coordination.k8s.io".into(), "leases".into(), v.into())));
    }
}

#[test]
fn committed_crds_are_the_generated_ones_and_the_charts_copy_is_identical() {
    let committed = read("deploy/crds/crds.yaml");
    assert_eq!(
        documents("crds.yaml", &committed),
        bowline_config::crd::custom_resource_definitions(),
        "deploy/crds/crds.yaml is not `bowline crds`: refresh with \
         UPDATE_GOLDEN=1 cargo test -p bowline --bin bowline crds"
    );
    assert!(
        read("deploy/helm/bowline/files/crds.yaml") == committed,
        "the chart's files/crds.yaml differs from deploy/crds/crds.yaml"
    );
}

fn helm() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("helm"))
        .find(|p| p.is_file())
}

fn render_chart(extra: &[&str]) -> Vec<Value> {
    let out = Command::new("bash")
        .arg(repo().join("deploy/helm/render.sh"))
        .args(extra)
        .output()
        .expect("run deploy/helm/render.sh");
    assert!(
        out.status.success(),
        "render.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = documents("helm template", &text);
    for doc in &docs {
        validate("helm template", doc);
    }
    docs
}

/// A ConfigMap's YAML values compare as the data they hold, not as text.
fn normalised(doc: &Value) -> Value {
    let mut doc = prune(doc).unwrap_or(Value::Null);
    if doc["kind"] == "ConfigMap" {
        if let Some(data) = doc.get_mut("data").and_then(Value::as_object_mut) {
            for (k, v) in data.iter_mut() {
                if k.ends_with(".yaml") {
                    let parsed = documents(k, v.as_str().unwrap());
                    *v = parsed.into_iter().next().unwrap_or(Value::Null);
                }
            }
        }
    }
    doc
}

#[test]
fn the_chart_renders_the_same_objects() {
    if helm().is_none() {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !! helm is not on PATH: the chart in deploy/helm/bowline was NOT rendered or\n\
             !! compared with deploy/kubernetes/ (only its CRD copy was checked).\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return;
    }
    let rendered = index(&render_chart(&[]));
    let mut expected = index(
        &plain_manifests()
            .into_iter()
            .map(|(_, d)| d)
            .collect::<Vec<_>>(),
    );
    expected.remove(&("Namespace".into(), String::new(), NAMESPACE.into()));
    for crd in bowline_config::crd::custom_resource_definitions() {
        expected.insert(key(&crd), crd);
    }
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the chart and deploy/kubernetes + deploy/crds make different objects"
    );
    for (k, want) in &expected {
        let got = &rendered[k];
        if normalised(got) != normalised(want) {
            let mut diffs = Vec::new();
            diff("", &normalised(want), &normalised(got), &mut diffs);
            panic!(
                "{k:?}: the chart differs from deploy/: {}",
                diffs.join("; ")
            );
        }
    }
    let deployment = &rendered[&("Deployment".into(), NAMESPACE.into(), "bowline".into())];
    assert_eq!(
        strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]),
        CONTROL_ARGS
    );
}

#[test]
fn the_charts_values_reach_the_objects() {
    if helm().is_none() {
        eprintln!("!! helm is not on PATH: chart values were NOT rendered");
        return;
    }
    let docs = render_chart(&[
        "--set",
        "hub=registry.example/mesh,tag=9.9.9,replicaCount=3,crds.install=false,imagePullPolicy=Always",
        "--set",
        "proxy.logLevel=debug,nativeSidecars=false,meshConfig.trustDomain=example.org",
        "--set-json",
        r#"nodeSelector={"kubernetes.io/os":"linux"}"#,
        "--set-json",
        r#"tolerations=[{"key":"dedicated","operator":"Exists","effect":"NoSchedule"}]"#,
        "--set-json",
        r#"affinity={"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":100,"podAffinityTerm":{"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"app":"bowline"}}}}]}}"#,
        "--set-json",
        r#"podAnnotations={"example.org/owner":"mesh-team"}"#,
        "--set-json",
        r#"resources={"requests":{"cpu":"1","memory":"1Gi"}}"#,
        "--set-json",
        r#"proxy.resources={"requests":{"cpu":"50m","memory":"64Mi"}}"#,
    ]);
    let objects = index(&docs);
    assert!(
        !objects
            .keys()
            .any(|(kind, _, _)| kind == "CustomResourceDefinition"),
        "crds.install=false still renders CRDs"
    );
    let deployment = get(&objects, "Deployment", NAMESPACE, "bowline");
    let pod = &deployment["spec"]["template"];
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        pod["metadata"]["annotations"]["example.org/owner"],
        "mesh-team"
    );
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["spec"]["tolerations"][0]["key"], "dedicated");
    assert!(pod["spec"]["affinity"]["podAntiAffinity"].is_object());
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/mesh/bowline:9.9.9");
    assert_eq!(container["imagePullPolicy"], "Always");
    // Helm merges maps given with --set into the defaults: the limits stay.
    assert_eq!(
        container["resources"]["requests"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    let mesh = get(&objects, "ConfigMap", NAMESPACE, "bowline-mesh");
    let mesh_yaml = &documents("mesh.yaml", mesh["data"]["mesh.yaml"].as_str().unwrap())[0];
    assert_eq!(mesh_yaml["trustDomain"], "example.org");
    let injection = &documents(
        "injection.yaml",
        mesh["data"]["injection.yaml"].as_str().unwrap(),
    )[0];
    assert_eq!(injection["hub"], "registry.example/mesh");
    assert_eq!(injection["tag"], "9.9.9");
    assert_eq!(injection["imagePullPolicy"], "Always");
    assert_eq!(injection["nativeSidecars"], false);
    assert_eq!(injection["proxy"]["logLevel"], "debug");
    assert_eq!(
        injection["proxy"]["resources"]["requests"],
        json!({"cpu": "50m", "memory": "64Mi"})
    );
}
