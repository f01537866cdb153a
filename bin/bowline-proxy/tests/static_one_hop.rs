//! bowline-proxy started from the benchmark's one-hop Envoy bootstrap, in front of a real
//! `bowline echo`: it proxies, keeps connections alive, answers 404 and 400 like Envoy,
//! refuses bad config naming the resource, and drains on SIGTERM.

mod support;

use std::process::Command;
use std::time::Duration;

use bowline_testkit::{bowline_proxy_binary, get, send_raw, ProxyClient};
use support::{echo, one_hop_bootstrap, proxy, REQUEST, STARTUP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hop_proxies_with_keep_alive() {
    let backend = echo("app", "v1").await.unwrap();
    let mut sidecar = proxy(&one_hop_bootstrap(backend.addr)).await.unwrap();
    sidecar.wait_ready(STARTUP).await.unwrap();
    let entry = sidecar
        .listener_addr("ingress_http", STARTUP)
        .await
        .unwrap();

    let mut client = ProxyClient::new(entry);
    for i in 0..50 {
        let rsp = client
            .request("GET", &format!("http://app.local/n/{i}"), &[], REQUEST)
            .await
            .unwrap();
        assert_eq!(rsp.status, 200, "{}", rsp.text());
        assert_eq!(rsp.json()["path"], format!("/n/{i}"));
        assert_eq!(
            rsp.json()["host"],
            "app.local",
            "Host follows the absolute URI"
        );
    }
    assert_eq!(
        client.connections_opened(),
        1,
        "one client connection for 50 requests"
    );

    let stats = sidecar.get_admin("/stats/prometheus").await.unwrap();
    assert!(
        stats.contains("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"upstream\"} 50"),
        "{stats}"
    );
    assert!(
        stats.contains("envoy_cluster_upstream_cx_total{envoy_cluster_name=\"upstream\"} 1"),
        "upstream keep-alive: {stats}"
    );

    let answer = send_raw(entry, b"NOT HTTP AT ALL\r\n\r\n", REQUEST)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");

    let status = sidecar.proc().terminate(Duration::from_secs(10)).unwrap();
    assert!(
        status.success(),
        "SIGTERM drains and exits 0: {status}\n{}",
        sidecar.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_hosts_and_paths_are_404() {
    let backend = echo("app", "v1").await.unwrap();
    let bootstrap = one_hop_bootstrap(backend.addr)
        .replace("domains: [\"*\"]", "domains: [\"app.local\"]")
        .replace("prefix: \"/\"", "prefix: \"/api\"");
    let sidecar = proxy(&bootstrap).await.unwrap();
    sidecar.wait_ready(STARTUP).await.unwrap();
    let entry = sidecar
        .listener_addr("ingress_http", STARTUP)
        .await
        .unwrap();
    let ok = get(entry, "/api/x", &[("host", "app.local")], REQUEST)
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    let other_host = get(entry, "/api/x", &[("host", "other.local")], REQUEST)
        .await
        .unwrap();
    assert_eq!(other_host.status, 404);
    let other_path = get(entry, "/elsewhere", &[("host", "app.local")], REQUEST)
        .await
        .unwrap();
    assert_eq!(other_path.status, 404);
}

#[test]
fn a_bad_static_resource_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    let bootstrap = one_hop_bootstrap("127.0.0.1:9".parse().unwrap())
        .replace("port_value: 9 }", "port_value: 70000 }");
    std::fs::write(&config, bootstrap).unwrap();
    let out = Command::new(bowline_proxy_binary())
        .arg("-c")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("static_resources.clusters[0]") && stderr.contains("70000"),
        "names the resource and the value: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish() {
    let backend = echo("app", "v1").await.unwrap();
    let mut sidecar = proxy(&one_hop_bootstrap(backend.addr)).await.unwrap();
    sidecar.wait_ready(STARTUP).await.unwrap();
    let entry = sidecar
        .listener_addr("ingress_http", STARTUP)
        .await
        .unwrap();
    let in_flight = tokio::spawn(get(entry, "/slow", &[("x-echo-delay", "1s")], REQUEST));
    bowline_testkit::wait_until(STARTUP, Duration::from_millis(10), || async {
        let stats = sidecar.get_admin("/stats").await?;
        anyhow::ensure!(
            stats.contains("http.ingress_http.downstream_rq_active: 1"),
            "not in flight yet"
        );
        Ok(())
    })
    .await
    .unwrap();
    let status = sidecar.proc().terminate(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}");
    let rsp = in_flight.await.unwrap().unwrap();
    assert_eq!(
        rsp.status, 200,
        "the request in flight at SIGTERM completed"
    );
    assert!(
        get(entry, "/", &[], Duration::from_secs(1)).await.is_err(),
        "no longer accepting"
    );
}
