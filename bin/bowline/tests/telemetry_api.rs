//! The Telemetry API's CEL parts, end to end through `bowline control`:
//! - an access-log provider's `filter.expression` logs only the requests it is true for, and
//!   the same requests on a real Envoy sidecar and on bowline-proxy (Envoy's CEL access-log
//!   filter, and bowline-proxy's evaluation of it);
//! - metric `tagOverrides` change `istio_requests_total`'s labels on bowline-proxy (Envoy
//!   sidecars have no Istio metrics): a label removed, one added from `request.method`.

mod support;

use bowline_testkit::{wait_until, ProxyKind};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::{json_lines as lines, Ads, Mesh};

/// A mesh whose client sidecar logs, through provider `filtered`, the requests that failed
/// or carry `x-log: yes`, and whose request counts carry the method instead of the protocol.
async fn mesh(sidecar: ProxyKind, log: &Path) -> Mesh {
    Mesh::builder(sidecar, Ads::Delta)
        .backend("ok", "v1", &[])
        .config(
            "telemetry.yaml",
            r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: empty}
spec:
  hosts: [empty.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: empty}}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: filtered}]
    filter: {expression: "response.code >= 500 || request.headers['x-log'] == 'yes'"}
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        request_protocol: {operation: REMOVE}
        request_method: {value: request.method}
"#,
        )
        .mesh_config(&format!(
            "extensionProviders:\n- name: filtered\n  envoyFileAccessLog:\n    path: {}\n    logFormat: {{labels: {{code: '%RESPONSE_CODE%', authority: '%REQ(:AUTHORITY)%', path: '%REQ(:PATH)%'}}}}\n",
            log.display()
        ))
        .start()
        .await
}

/// (service, path, request headers, expected status).
type Request = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    u16,
);

/// The requests' paths the client sidecar logged, once the sentinel (the last request,
/// which the filter lets through) is in: a sink writes in order.
async fn logged(sidecar: ProxyKind) -> (Vec<String>, Mesh) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mesh = mesh(sidecar, &log).await;
    let requests: [Request; 5] = [
        ("ok", "/quiet", &[], 200),
        ("empty", "/failed", &[], 503),
        ("ok", "/asked", &[("x-log", "yes")], 200),
        ("ok", "/declined", &[("x-log", "no")], 200),
        ("empty", "/sentinel", &[], 503),
    ];
    for (service, path, headers, status) in requests {
        let response = mesh.get(service, path, headers).await.unwrap();
        assert_eq!(response.status, status, "{sidecar:?} {service}{path}");
    }
    let ours = |l: &Value| {
        l["authority"]
            .as_str()
            .is_some_and(|a| a.starts_with("ok") || a.starts_with("empty"))
    };
    let paths = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let all: Vec<Value> = lines(&log).into_iter().filter(ours).collect();
        async move {
            anyhow::ensure!(
                all.last().is_some_and(|l| l["path"] == "/sentinel"),
                "no sentinel line yet: {all:?}"
            );
            Ok(all
                .iter()
                .map(|l| format!("{} {}", l["code"], l["path"].as_str().unwrap_or("")))
                .collect::<Vec<String>>())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{sidecar:?}: {e:#}"));
    drop(dir);
    (paths, mesh)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_log_filter_logs_the_same_requests_on_envoy_and_bowline_proxy() {
    let want = ["503 /failed", "200 /asked", "503 /sentinel"];
    let (envoy, _envoy_mesh) = logged(ProxyKind::Envoy).await;
    assert_eq!(envoy, want, "Envoy's CEL filter");
    let (bowline, mesh) = logged(ProxyKind::Bowline).await;
    assert_eq!(bowline, want, "bowline-proxy's");

    // The same mesh's tag overrides, on bowline-proxy's request counts.
    let text = bowline_testkit::get(
        mesh.envoy.admin_addr(),
        "/stats/prometheus",
        &[],
        Duration::from_secs(5),
    )
    .await
    .unwrap()
    .text();
    let counts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{") && l.contains("reporter=\"source\""))
        .collect();
    assert!(!counts.is_empty(), "{text}");
    for line in &counts {
        assert!(line.contains("request_method=\"GET\""), "{line}");
        assert!(!line.contains("request_protocol="), "removed: {line}");
    }
    let duration = text
        .lines()
        .find(|l| l.starts_with("istio_request_duration_milliseconds_count{"))
        .expect("a duration series");
    assert!(
        duration.contains("request_protocol=\"http\"") && !duration.contains("request_method"),
        "the duration keeps Istio's labels: {duration}"
    );
}
