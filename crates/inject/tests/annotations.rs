//! What each pod annotation does to the injected pod, end to end through `inject_object`.

use bowline_inject::{inject_object, InjectError, Policy, Settings};
use serde_json::{json, Value};

fn deployment(annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {
            "metadata": {"labels": {"app": "web"}, "annotations": annotations},
            "spec": {"containers": [
                {"name": "web", "image": "web:1", "ports": [{"name": "http", "containerPort": 8080}],
                 "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}, "timeoutSeconds": 2},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}},
                {"name": "log", "image": "log:1"},
            ]},
        }},
    })
}

fn inject(annotations: Value) -> Result<Value, InjectError> {
    inject_object(
        &deployment(annotations),
        &Settings::default(),
        &Policy::Offline,
    )
    .map(|d| d["spec"]["template"].clone())
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn proxy(template: &Value) -> Value {
    let spec = &template["spec"];
    ["initContainers", "containers"]
        .iter()
        .flat_map(|f| spec[*f].as_array().into_iter().flatten())
        .find(|c| c["name"] == "bowline-proxy")
        .cloned()
        .expect("bowline-proxy")
}

fn env(container: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_string)
}

type Check = fn(&Value) -> Result<(), String>;

fn expect(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

#[test]
fn annotation_table() {
    let cases: Vec<(&str, Value, Check)> = vec![
        ("defaults", json!({}), |t| {
            let p = proxy(t);
            expect(
                names(&t["spec"]["initContainers"]) == ["bowline-init", "bowline-proxy"],
                || names(&t["spec"]["initContainers"]).join(","),
            )?;
            expect(p["restartPolicy"] == "Always", || {
                p["restartPolicy"].to_string()
            })?;
            expect(
                p["resources"]
                    == json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2000m", "memory": "1Gi"}}),
                || p["resources"].to_string(),
            )?;
            expect(
                p["args"] == json!(["--sidecar", "--log-level", "warning"]),
                || p["args"].to_string(),
            )?;
            expect(
                p["image"]
                    == format!(
                        "ghcr.io/bowline-mesh/bowline-proxy:{}",
                        env!("CARGO_PKG_VERSION")
                    ),
                || p["image"].to_string(),
            )
        }),
        (
            "resources",
            json!({
                "sidecar.istio.io/proxyCPU": "200m", "sidecar.istio.io/proxyMemory": "1Gi",
                "sidecar.istio.io/proxyCPULimit": "1", "sidecar.istio.io/proxyMemoryLimit": "2Gi",
            }),
            |t| {
                let r = &proxy(t)["resources"];
                expect(
                    *r == json!({"requests": {"cpu": "200m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}),
                    || r.to_string(),
                )
            },
        ),
        (
            "log level",
            json!({"sidecar.istio.io/logLevel": "debug"}),
            |t| {
                let a = &proxy(t)["args"];
                expect(*a == json!(["--sidecar", "--log-level", "debug"]), || {
                    a.to_string()
                })
            },
        ),
        (
            "proxy image",
            json!({"sidecar.istio.io/proxyImage": "registry.example/proxy:debug"}),
            |t| {
                let i = &proxy(t)["image"];
                expect(*i == "registry.example/proxy:debug", || i.to_string())
            },
        ),
        (
            "nativeSidecar false: classic, last",
            json!({"sidecar.istio.io/nativeSidecar": "false"}),
            |t| {
                expect(
                    names(&t["spec"]["initContainers"]) == ["bowline-init"],
                    || names(&t["spec"]["initContainers"]).join(","),
                )?;
                expect(
                    names(&t["spec"]["containers"]) == ["web", "log", "bowline-proxy"],
                    || names(&t["spec"]["containers"]).join(","),
                )?;
                expect(proxy(t).get("restartPolicy").is_none(), || {
                    "restartPolicy on a classic sidecar".into()
                })?;
                let status = t["metadata"]["annotations"]["sidecar.bowline.io/status"]
                    .as_str()
                    .unwrap()
                    .to_string();
                expect(status.contains(r#""containers":["bowline-proxy"]"#), || {
                    status
                })
            },
        ),
        (
            "holdApplicationUntilProxyStarts: classic, first",
            json!({
                "sidecar.istio.io/nativeSidecar": "false",
                "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true",
            }),
            |t| {
                expect(
                    names(&t["spec"]["containers"]) == ["bowline-proxy", "web", "log"],
                    || names(&t["spec"]["containers"]).join(","),
                )?;
                let d = &t["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"];
                expect(*d == "web", || d.to_string())
            },
        ),
        (
            "rewriteAppHTTPProbers false",
            json!({"sidecar.istio.io/rewriteAppHTTPProbers": "false"}),
            |t| {
                let web = &t["spec"]["containers"][0];
                expect(
                    web["livenessProbe"]["httpGet"] == json!({"path": "/live", "port": "http"}),
                    || web["livenessProbe"].to_string(),
                )?;
                expect(env(&proxy(t), "BOWLINE_APP_PROBERS").is_none(), || {
                    "BOWLINE_APP_PROBERS set".into()
                })
            },
        ),
        ("probes rewritten", json!({}), |t| {
            let web = &t["spec"]["containers"][0];
            expect(
                web["livenessProbe"]
                    == json!({"httpGet": {"path": "/app-health/web/livez", "port": 15020}, "timeoutSeconds": 2}),
                || web["livenessProbe"].to_string(),
            )?;
            let probers = env(&proxy(t), "BOWLINE_APP_PROBERS").unwrap_or_default();
            expect(
                probers
                    == r#"{"/app-health/web/livez":{"httpGet":{"path":"/live","port":8080},"timeoutSeconds":2},"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}}}"#,
                || probers,
            )
        }),
        (
            "proxy config as JSON env, concurrency, drain",
            json!({
                "proxy.istio.io/config": "{\"concurrency\": 4, \"terminationDrainDuration\": \"30s\"}",
            }),
            |t| {
                let p = proxy(t);
                expect(
                    p["args"]
                        == json!(["--sidecar", "--log-level", "warning", "--concurrency", "4"]),
                    || p["args"].to_string(),
                )?;
                expect(
                    env(&p, "BOWLINE_DRAIN_DURATION").as_deref() == Some("30s"),
                    || format!("{:?}", env(&p, "BOWLINE_DRAIN_DURATION")),
                )?;
                expect(
                    env(&p, "PROXY_CONFIG").as_deref()
                        == Some(r#"{"concurrency":4,"terminationDrainDuration":"30s"}"#),
                    || format!("{:?}", env(&p, "PROXY_CONFIG")),
                )
            },
        ),
        (
            "capture annotations",
            json!({
                "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/8",
                "traffic.sidecar.istio.io/excludeInboundPorts": "9090",
            }),
            |t| {
                let args = &t["spec"]["initContainers"][0]["args"];
                expect(
                    *args
                        == json!([
                            "iptables",
                            "--include-outbound-ip-ranges",
                            "*",
                            "--exclude-outbound-ip-ranges",
                            "10.0.0.0/8",
                            "--include-inbound-ports",
                            "*",
                            "--exclude-inbound-ports",
                            "15000,15001,15006,15020,15021,15090,9090"
                        ]),
                    || args.to_string(),
                )
            },
        ),
        ("metadata", json!({}), |t| {
            let a = &t["metadata"]["annotations"];
            let l = &t["metadata"]["labels"];
            expect(
                a["prometheus.io/scrape"] == "true"
                    && a["prometheus.io/port"] == "15020"
                    && a["prometheus.io/path"] == "/stats/prometheus",
                || a.to_string(),
            )?;
            expect(
                a["kubectl.kubernetes.io/default-container"] == "web",
                || a.to_string(),
            )?;
            expect(
                l["security.istio.io/tlsMode"] == "istio"
                    && l["service.istio.io/canonical-name"] == "web"
                    && l["service.istio.io/canonical-revision"] == "latest",
                || l.to_string(),
            )
        }),
    ];
    for (name, annotations, check) in cases {
        let template = inject(annotations).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(what) = check(&template) {
            panic!("{name}: {what}");
        }
    }
}

#[test]
fn annotation_errors() {
    let cases = [
        (json!({"sidecar.istio.io/interceptionMode": "TPROXY"}),
         "Deployment shop/web: spec.template: annotation sidecar.istio.io/interceptionMode: TPROXY is not supported (bowline captures with REDIRECT)"),
        (json!({"proxy.istio.io/config": "{\"concurrency\": "}), "annotation proxy.istio.io/config: "),
        (json!({"proxy.istio.io/config": "a:\n- b"}), "line 2: lists are not supported"),
        (json!({"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/40"}), "\"10.0.0.0/40\" is not a CIDR"),
        (json!({"traffic.sidecar.istio.io/excludeInboundPorts": "http"}), "\"http\" is not a port"),
        (json!({"sidecar.istio.io/proxyMemory": "lots"}), "annotation sidecar.istio.io/proxyMemory: \"lots\" is not valid"),
    ];
    for (annotations, want) in cases {
        let err = inject(annotations.clone()).expect_err(&annotations.to_string());
        assert!(err.to_string().contains(want), "{annotations}: {err}");
    }
}
