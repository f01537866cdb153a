//! Rewriting the application's HTTP probes through the proxy's status port, as Istio's
//! `rewriteAppHTTPProbers` does: the kubelet's probe goes to
//! `:15020/app-health/<container>/<livez|readyz|startupz>`, and the proxy runs the original
//! (listed in `BOWLINE_APP_PROBERS`) from inside the pod, so it works under mTLS.

use crate::names::STATUS_PORT;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The probe fields and their `/app-health` suffix.
pub const KINDS: [(&str, &str); 3] = [
    ("livenessProbe", "livez"),
    ("readinessProbe", "readyz"),
    ("startupProbe", "startupz"),
];

/// Env names under which an earlier injection (Istio's or ours) listed original probes.
const EARLIER_PROBERS: [&str; 2] = ["ISTIO_KUBE_APP_PROBERS", crate::names::PROBERS_ENV];

/// The application containers whose probes are rewritten: every container except Istio's
/// `istio-proxy` and ours, and the native sidecars among the init containers (those with
/// `restartPolicy: Always`), as Istio's injector does. Returns (field, index) pairs.
pub fn app_containers(spec: &Value) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    for field in ["initContainers", "containers"] {
        let Some(list) = spec.get(field).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in list.iter().enumerate() {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if is_proxy(name) {
                continue;
            }
            let native = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            if field == "containers" || native {
                out.push((field, i));
            }
        }
    }
    out
}

/// Istio's proxy container or ours.
pub fn is_proxy(name: &str) -> bool {
    name == "istio-proxy" || name == crate::names::PROXY_CONTAINER
}

/// The `/app-health` path of one probe.
pub fn health_path(container: &str, kind: &str) -> String {
    format!("/app-health/{container}/{kind}")
}

/// Rewrites the httpGet probes of the application containers of `spec` in place and
/// returns the originals, keyed by their `/app-health` path (`BOWLINE_APP_PROBERS`), or
/// `None` when there were none.
///
/// Each original is `{"httpGet": <its httpGet, a named port resolved to the container's
/// number>, "timeoutSeconds": <when set>}`; the new probe keeps every other field of the
/// probe (timing, thresholds) and has `httpGet: {path, port: 15020}` (the status port is
/// plain HTTP, so scheme, host and headers belong to the original only). A probe whose named
/// port matches no port of its container is left alone (Kubernetes would refuse it anyway),
/// as Istio does. A probe already rewritten (by Istio's injector, in a pod injected before)
/// stays as it is, and its original is carried over from the earlier injection's list when
/// that list has it.
pub fn rewrite(spec: &mut Value) -> Option<String> {
    let earlier = earlier_probers(spec);
    let mut probers: BTreeMap<String, Value> = BTreeMap::new();
    for (field, index) in app_containers(spec) {
        let container = &mut spec[field][index];
        let name = container["name"].as_str().unwrap_or("").to_string();
        let ports = container.get("ports").cloned().unwrap_or(Value::Null);
        for (probe_field, kind) in KINDS {
            let Some(probe) = container.get_mut(probe_field) else {
                continue;
            };
            let Some(http) = probe.get("httpGet") else {
                continue;
            };
            let path = health_path(&name, kind);
            if is_rewritten(http, &path) {
                if let Some(original) = earlier.get(&path) {
                    probers.insert(path, original.clone());
                }
                continue;
            }
            let Some(original) = original_prober(probe, &ports) else {
                continue;
            };
            probe["httpGet"] = json!({ "path": path, "port": STATUS_PORT });
            probers.insert(path, original);
        }
    }
    if probers.is_empty() {
        return None;
    }
    Some(serde_json::to_string(&probers).expect("JSON values serialize"))
}

/// Whether `httpGet` already goes to `path` on the status port.
pub fn is_rewritten(http: &Value, path: &str) -> bool {
    http.get("path").and_then(Value::as_str) == Some(path)
        && port_number(http.get("port")) == Some(STATUS_PORT as i64)
}

fn port_number(port: Option<&Value>) -> Option<i64> {
    match port? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The `BOWLINE_APP_PROBERS` entry for one probe, or `None` if its port cannot be resolved.
fn original_prober(probe: &Value, ports: &Value) -> Option<Value> {
    let mut http = probe.get("httpGet")?.as_object()?.clone();
    let port = match http.get("port")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => named_port(ports, s)?,
        },
        _ => return None,
    };
    http.insert("port".to_string(), json!(port));
    let mut entry = Map::new();
    entry.insert("httpGet".to_string(), sorted(Value::Object(http)));
    if let Some(timeout) = probe.get("timeoutSeconds") {
        entry.insert("timeoutSeconds".to_string(), timeout.clone());
    }
    Some(Value::Object(entry))
}

/// `containerPort` of the port named `name`.
fn named_port(ports: &Value, name: &str) -> Option<i64> {
    ports
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))?
        .get("containerPort")?
        .as_i64()
}

/// Keys in sorted order, recursively (the env value is then deterministic).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let ordered: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().collect())
        }
        other => other,
    }
}

/// The probers an earlier injection listed in any container's env.
fn earlier_probers(spec: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for field in ["initContainers", "containers"] {
        for c in spec
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for env in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                let name = env.get("name").and_then(Value::as_str).unwrap_or("");
                if !EARLIER_PROBERS.contains(&name) {
                    continue;
                }
                let text = env.get("value").and_then(Value::as_str).unwrap_or("");
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
                    out.extend(map);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({
            "containers": [
                {
                    "name": "app",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 5},
                    "readinessProbe": {"httpGet": {"port": 3333, "scheme": "HTTPS", "host": "localhost"}},
                    "startupProbe": {"tcpSocket": {"port": 80}},
                },
                {
                    "name": "other",
                    "readinessProbe": {"httpGet": {"port": "nope"}},
                    "livenessProbe": {"exec": {"command": ["true"]}},
                },
                {"name": "istio-proxy", "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}},
            ],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "startupProbe": {"httpGet": {"port": "9090"}}},
                {"name": "plain-init", "readinessProbe": {"httpGet": {"port": 1}}},
            ],
        })
    }

    #[test]
    fn rewrites_http_probes() {
        let mut s = spec();
        let probers = rewrite(&mut s).unwrap();
        assert_eq!(
            probers,
            r#"{"/app-health/app/livez":{"httpGet":{"path":"/healthz","port":8080,"scheme":"HTTP"},"timeoutSeconds":1},"/app-health/app/readyz":{"httpGet":{"host":"localhost","port":3333,"scheme":"HTTPS"}},"/app-health/side/startupz":{"httpGet":{"port":9090}}}"#
        );
        let app = &s["containers"][0];
        assert_eq!(
            app["livenessProbe"],
            json!({"httpGet": {"path": "/app-health/app/livez", "port": 15020}, "timeoutSeconds": 1, "periodSeconds": 5})
        );
        assert_eq!(
            app["readinessProbe"]["httpGet"],
            json!({"path": "/app-health/app/readyz", "port": 15020})
        );
        assert_eq!(app["startupProbe"], json!({"tcpSocket": {"port": 80}}));
        // Unresolvable named port, exec probe, Istio's proxy and plain init containers: untouched.
        assert_eq!(s["containers"][1], spec()["containers"][1]);
        assert_eq!(s["containers"][2], spec()["containers"][2]);
        assert_eq!(s["initContainers"][1], spec()["initContainers"][1]);
        // Again: nothing left to rewrite, no originals known.
        let mut again = s.clone();
        assert_eq!(rewrite(&mut again), None);
        assert_eq!(again, s);
    }

    #[test]
    fn carries_over_earlier_originals() {
        let mut s = json!({"containers": [
            {"name": "hello", "livenessProbe": {"httpGet": {"path": "/app-health/hello/livez", "port": 15020}}},
            {"name": "istio-proxy", "env": [{"name": "ISTIO_KUBE_APP_PROBERS", "value": "{\"/app-health/hello/livez\":{\"httpGet\":{\"port\":80}}}"}]},
        ]});
        let before = s.clone();
        assert_eq!(
            rewrite(&mut s).unwrap(),
            r#"{"/app-health/hello/livez":{"httpGet":{"port":80}}}"#
        );
        assert_eq!(s, before);
    }

    #[test]
    fn none_without_http_probes() {
        let mut s = json!({"containers": [{"name": "a", "image": "x"}]});
        assert_eq!(rewrite(&mut s), None);
    }
}
