//! A real Prometheus (Debian's `prometheus` package) scrapes a `bowline up` mesh through the
//! configuration `bowline up` writes (file service discovery of every proxy's admin
//! `/stats/prometheus`): every sidecar and the gateway are up, and after requests through
//! the gateway PromQL sees them counted at the gateway and at productpage's sidecar.
//!
//! Istio's standard metrics come out by Istio's names and labels: both sidecars report the
//! productpage -> details requests, and PromQL reads the latency histogram.

#[path = "up/mesh.rs"]
mod mesh;

use anyhow::{ensure, Context};
use bowline_testkit::{get, wait_until, Proc};
use mesh::UpMesh;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// Prometheus' query API answer for `query`: the result vector.
async fn query(prometheus: SocketAddr, query: &str) -> anyhow::Result<Vec<Value>> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let response = get(
        prometheus,
        &format!("/api/v1/query?query={encoded}"),
        &[],
        Duration::from_secs(5),
    )
    .await?;
    ensure!(
        response.status == 200,
        "{}: {}",
        response.status,
        response.text()
    );
    let body = response.json();
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_every_proxy_of_the_mesh() {
    let binary = which("prometheus").expect(
        "this test runs Debian's Prometheus: apt-get install --no-install-recommends prometheus",
    );
    let mesh = UpMesh::start("transparent").await;
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(mesh.state_dir().join("state.json")).unwrap(),
    )
    .unwrap();
    let config = state["scrape_config"]
        .as_str()
        .expect("a scrape config")
        .to_string();
    let proxies = state["workloads"].as_array().unwrap().len() + 1;
    // Printed after the entry URL, which is what `UpMesh::start` waited for.
    let said = mesh
        .proc
        .wait_for_line("bowline up: Prometheus: ", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        said.contains(&format!("prometheus --config.file {config} ")),
        "bowline up says where the scrape config is: {said}"
    );

    let storage = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let prometheus: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut command = Command::new(binary);
    command
        .arg(format!("--config.file={config}"))
        .arg(format!("--storage.tsdb.path={}", storage.path().display()))
        .arg(format!("--web.listen-address={prometheus}"));
    let _prometheus = Proc::spawn("prometheus", command).unwrap();
    wait_until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let ready = get(prometheus, "/-/ready", &[], Duration::from_secs(2)).await?;
            ensure!(ready.status == 200, "not ready: {}", ready.status);
            Ok(())
        },
    )
    .await
    .unwrap();

    // Every proxy scraped and up (the written config scrapes every 5 s).
    let up = wait_until(
        Duration::from_secs(40),
        Duration::from_millis(500),
        || async {
            let up = query(prometheus, "up{job=\"bowline\"} == 1").await?;
            ensure!(up.len() == proxies, "{} of {proxies} up: {up:?}", up.len());
            Ok(up)
        },
    )
    .await
    .unwrap();
    let mut kinds: Vec<&str> = up
        .iter()
        .filter_map(|s| s["metric"]["proxy"].as_str())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["gateway", "sidecar"], "{up:?}");

    for _ in 0..10 {
        mesh.page(None).await.unwrap();
    }
    // Counted where they passed: the gateway's cluster for productpage, and productpage's
    // sidecar's cluster for details.
    let counted = |who: &'static str, cluster: &'static str| {
        let q = format!(
            "sum(envoy_cluster_upstream_rq_total{{job=\"bowline\",workload=\"{who}\",envoy_cluster_name=\"{cluster}\"}})"
        );
        async move {
            wait_until(
                Duration::from_secs(40),
                Duration::from_millis(500),
                || async {
                    let result = query(prometheus, &q).await?;
                    let n = result.first().map(value).unwrap_or(0.0);
                    ensure!(n >= 10.0, "{q} = {n}");
                    Ok(n)
                },
            )
            .await
            .with_context(|| q.clone())
        }
    };
    let at_gateway = counted(
        "istio-ingressgateway",
        "outbound|9080||productpage.default.svc.cluster.local",
    )
    .await
    .unwrap();
    let at_productpage = counted(
        "productpage-v1-0",
        "outbound|9080||details.default.svc.cluster.local",
    )
    .await
    .unwrap();
    eprintln!(
        "PromQL: gateway -> productpage {at_gateway}, productpage -> details {at_productpage}"
    );

    // Istio's standard metrics: productpage -> details seen by both sidecars, each naming
    // the other side (metadata exchange), the principals from the mTLS certificates.
    let series = |q: String| async move {
        wait_until(
            Duration::from_secs(40),
            Duration::from_millis(500),
            || async {
                let result = query(prometheus, &q).await?;
                let n: f64 = result.iter().map(value).sum();
                ensure!(n >= 10.0, "{q} = {n}: {result:?}");
                Ok(result)
            },
        )
        .await
        .with_context(|| q.clone())
    };
    for reporter in ["source", "destination"] {
        let q = format!(
            "istio_requests_total{{job=\"bowline\",reporter=\"{reporter}\",source_app=\"productpage\",destination_app=\"details\",response_code=\"200\"}}"
        );
        let result = series(q).await.unwrap();
        let labels = &result[0]["metric"];
        eprintln!("{reporter}: {labels}");
        let want = [
            ("source_workload_namespace", "default"),
            ("destination_workload_namespace", "default"),
            ("source_version", "v1"),
            ("destination_version", "v1"),
            ("destination_service", "details.default.svc.cluster.local"),
            ("destination_service_name", "details"),
            ("destination_service_namespace", "default"),
            ("request_protocol", "http"),
            ("response_flags", "-"),
            ("source_cluster", "Kubernetes"),
            (
                "source_principal",
                "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
            ),
            (
                "destination_principal",
                "spiffe://cluster.local/ns/default/sa/bookinfo-details",
            ),
            (
                "connection_security_policy",
                if reporter == "destination" {
                    "mutual_tls"
                } else {
                    "unknown"
                },
            ),
        ];
        for (name, value) in want {
            assert_eq!(
                labels[name], value,
                "{reporter} reporter's {name}: {labels}"
            );
        }
        for name in ["source_workload", "destination_workload"] {
            let workload = labels[name].as_str().unwrap_or_default();
            assert!(
                workload.starts_with(if name == "source_workload" {
                    "productpage-v1"
                } else {
                    "details-v1"
                }),
                "{reporter} reporter's {name}: {labels}"
            );
        }
        // The latency histogram, by Istio's name, answers a PromQL quantile.
        let q = format!(
            "histogram_quantile(0.5, sum by (le) (istio_request_duration_milliseconds_bucket{{reporter=\"{reporter}\",destination_app=\"details\"}}))"
        );
        let p50 = query(prometheus, &q).await.unwrap();
        let p50 = p50.first().map(value).unwrap_or(f64::NAN);
        assert!(p50.is_finite() && p50 >= 0.0, "{q} = {p50}");
        eprintln!("{reporter} reporter: productpage -> details p50 {p50} ms");
    }
}

fn which(binary: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(binary))
        .find(|p| p.is_file())
}
