//! Access logs from MeshConfig (`accessLogFile`, `accessLogEncoding: JSON`, Istio's default
//! JSON format), end to end through `bowline control` and the same config on a real Envoy
//! sidecar and on bowline-proxy: an answered request and three that fail — no healthy
//! upstream (`UH`), the upstream resetting the connection before answering (`UC`), the route
//! timeout (`UT`) — each give one JSON line at the client sidecar, with the same flag, status,
//! route, cluster and details on both proxies. bowline-proxy also counts each in
//! `istio_requests_total` under the same flag.

mod support;

use bowline_testkit::{wait_until, ProxyKind};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use support::{json_lines as lines, Ads, Mesh};
use tokio::io::AsyncReadExt;

/// A server that reads a request and closes the connection without answering.
async fn resetting_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
        }
    });
    addr
}

/// (service, path, request headers).
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Each case's request and the client sidecar's access line for it.
async fn run(sidecar: ProxyKind) -> Vec<(String, Value)> {
    let logs = tempfile::tempdir().unwrap();
    let path = logs.path().join("access.log");
    let reset = resetting_server().await;
    let mesh = Mesh::builder(sidecar, Ads::Delta)
        .backend("ok", "v1", &[])
        .config(
            "failing.yaml",
            &format!(
                r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: empty}}
spec:
  hosts: [empty.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: empty}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reset}}
spec:
  hosts: [reset.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: slow}}
spec:
  hosts: [ok.default.svc.cluster.local]
  http:
  - match: [{{uri: {{prefix: /slow}}}}]
    timeout: 0.2s
    route: [{{destination: {{host: ok.default.svc.cluster.local}}}}]
  - route: [{{destination: {{host: ok.default.svc.cluster.local}}}}]
"#,
                port = reset.port()
            ),
        )
        .mesh_config(&format!(
            "accessLogFile: {}\naccessLogEncoding: JSON\n",
            path.display()
        ))
        .start()
        .await;
    let cases: [Case; 4] = [
        ("ok", "/fine", &[]),
        ("empty", "/", &[]),
        ("reset", "/", &[]),
        ("ok", "/slow", &[("x-echo-delay", "2s")]),
    ];
    let mut seen = Vec::new();
    for (n, (service, path_and_query, headers)) in cases.iter().enumerate() {
        let response = mesh.get(service, path_and_query, headers).await.unwrap();
        eprintln!(
            "{sidecar:?} {service}{path_and_query}: {} {}",
            response.status,
            response.text()
        );
        // The client sidecar's line for this request (ours are the only requests on it
        // after start-up, but start-up probes may have logged lines before: match the path).
        let want = format!("{service}{path_and_query}");
        let line = wait_until(
            Duration::from_secs(10),
            Duration::from_millis(50),
            || async {
                lines(&path)
                    .into_iter()
                    .rev()
                    .find(|l| {
                        l["authority"]
                            .as_str()
                            .is_some_and(|a| a.starts_with(service))
                            && l["path"] == *path_and_query
                    })
                    .ok_or_else(|| anyhow::anyhow!("no line for {want} yet (case {n})"))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{sidecar:?}: {e:#}\n{:?}", lines(&path)));
        eprintln!("{sidecar:?} {want}: {} {line}", response.status);
        assert_eq!(line["response_code"], response.status, "{line}");
        seen.push((want, line));
    }
    if sidecar == ProxyKind::Bowline {
        istio_metrics_have_the_flags(mesh.envoy.admin_addr()).await;
    }
    seen
}

/// bowline-proxy's Istio metrics count each failure under its response flag and code
/// (the client sidecar reports as `source`). Envoy sidecars have no Istio metrics.
async fn istio_metrics_have_the_flags(admin: SocketAddr) {
    let text = bowline_testkit::get(admin, "/stats/prometheus", &[], Duration::from_secs(5))
        .await
        .unwrap()
        .text();
    for (service, code, flags) in [
        ("ok", "200", "-"),
        ("empty", "503", "UH"),
        ("reset", "503", "UC"),
        ("ok", "504", "UT"),
    ] {
        let host = format!("destination_service=\"{service}.default.svc.cluster.local\"");
        let labels = [
            "istio_requests_total{reporter=\"source\"".to_string(),
            host,
            format!("response_code=\"{code}\""),
            format!("response_flags=\"{flags}\""),
        ];
        assert!(
            text.lines()
                .any(|l| labels.iter().all(|want| l.contains(want.as_str()))),
            "no istio_requests_total series with {labels:?} in:\n{}",
            text.lines()
                .filter(|l| l.starts_with("istio_requests_total"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_have_the_same_response_flags_on_envoy_and_bowline_proxy() {
    let envoy = run(ProxyKind::Envoy).await;
    let bowline = run(ProxyKind::Bowline).await;
    let expected = [
        ("ok/fine", 200, "-"),
        ("empty/", 503, "UH"),
        ("reset/", 503, "UC"),
        ("ok/slow", 504, "UT"),
    ];
    for (((want, status, flags), (_, e)), (_, b)) in expected.iter().zip(&envoy).zip(&bowline) {
        for (who, line) in [("envoy", e), ("bowline", b)] {
            assert_eq!(line["response_flags"], *flags, "{who} {want}: {line}");
            assert_eq!(line["response_code"], *status, "{who} {want}: {line}");
        }
        for key in [
            "response_flags",
            "response_code",
            "response_code_details",
            "upstream_cluster",
            "route_name",
            "method",
            "path",
            "protocol",
        ] {
            assert_eq!(
                e[key], b[key],
                "{want}: {key} differs\nenvoy   {e}\nbowline {b}"
            );
        }
    }
}
