//! Live config edits against the sidecar (the real Envoy and bowline-proxy alike): an edit of
//! the config directory reroutes within a second with no failed request, and a broken edit is refused while routing stays and every
//! proxy stays ACKed at the last good generation. Over SotW and delta ADS.

mod support;

use bowline_testkit::{wait_until, ProxyKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{canary_subsets, Ads, Mesh, REQUEST, STARTUP};

fn route_to(subset: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: canary}}
spec:
  hosts: [canary]
  http:
  - route:
    - destination: {{host: canary, subset: {subset}}}
"#
    )
}

/// A broken edit of the same file: a weight over 100 and a duration that is not one.
const BROKEN: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: canary}
spec:
  hosts: [canary]
  http:
  - timeout: soon
    route:
    - destination: {host: canary, subset: v1}
      weight: 150
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_on_envoy_over_sotw() {
    live_edits(ProxyKind::Envoy, Ads::Sotw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_on_envoy_over_delta() {
    live_edits(ProxyKind::Envoy, Ads::Delta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_on_bowline_over_sotw() {
    live_edits(ProxyKind::Bowline, Ads::Sotw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_edits_on_bowline_over_delta() {
    live_edits(ProxyKind::Bowline, Ads::Delta).await;
}

async fn live_edits(sidecar: ProxyKind, ads: Ads) {
    let mesh = Mesh::builder(sidecar, ads)
        .backend("canary", "v1", &[])
        .backend("canary", "v2", &[])
        .config("subsets.yaml", &canary_subsets(None))
        .config("canary.yaml", &route_to("v1"))
        .start()
        .await;
    let first = mesh.configz().await.unwrap()["generation"]
        .as_u64()
        .unwrap();
    mesh.wait_synced(first).await.unwrap();

    an_edit_reroutes_within_a_second_without_failures(&mesh, first).await;
    a_changed_cluster_warms_at_once(&mesh).await;
    a_broken_edit_is_refused_and_routing_stays(&mesh).await;
}

/// Requests run back to back on one keep-alive connection while the file is rewritten; the
/// time from the write to the first answer from v2 is the edit-to-routing latency.
async fn an_edit_reroutes_within_a_second_without_failures(mesh: &Mesh, first: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let outbound = mesh.outbound;
    let load = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut client = bowline_testkit::ProxyClient::new(outbound);
            let mut n = 0u32;
            // Bounded: at most 100k requests, and the test stops it well before.
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                let rsp = client
                    .request("GET", &support::url("canary", "/"), &[], REQUEST)
                    .await;
                let outcome =
                    rsp.map(|r| (r.status, r.json()["version"].as_str().map(String::from)));
                let _ = seen_tx.send((Instant::now(), outcome.map_err(|e| e.to_string())));
                n += 1;
            }
        }
    });

    // Let some v1 traffic flow first.
    let mut before = 0;
    while before < 20 {
        let (_, outcome) = seen_rx.recv().await.unwrap();
        assert_eq!(outcome.unwrap().1.as_deref(), Some("v1"));
        before += 1;
    }

    let edited_at = Instant::now();
    mesh.write_config("canary.yaml", &route_to("v2"));
    let mut switched_at = None;
    let mut after_switch = 0;
    let mut total = 0;
    while after_switch < 50 {
        let (at, outcome) = tokio::time::timeout(STARTUP, seen_rx.recv())
            .await
            .expect("requests stopped flowing")
            .unwrap();
        let (status, version) = outcome.expect("a request failed during the edit");
        assert_eq!(status, 200, "a request failed during the edit");
        total += 1;
        match (version.as_deref(), switched_at) {
            (Some("v2"), None) => switched_at = Some(at),
            (Some("v2"), Some(_)) => after_switch += 1,
            (Some("v1"), Some(_)) => panic!("routing flipped back to v1 after the switch"),
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let latency = switched_at.unwrap() - edited_at;
    println!(
        "[{}] edit → routing changed in {latency:?} ({total} requests during the change, 0 failed)",
        mesh.label()
    );
    assert!(
        latency < Duration::from_secs(3),
        "edit took {latency:?} to apply"
    );

    let syncz = mesh.wait_synced(first + 1).await.unwrap();
    let acked_at = Instant::now() - edited_at;
    println!(
        "[{}] edit → every proxy ACKed generation {} within {acked_at:?}",
        mesh.label(),
        first + 1
    );
    assert_no_nack(&syncz);
}

/// A DestinationRule edit changes the clusters themselves. Envoy then re-creates and warms
/// each changed cluster, which needs its endpoints again: a server that did not resend them
/// would leave the new clusters warming until Envoy's 15 s initial-fetch timeout.
async fn a_changed_cluster_warms_at_once(mesh: &Mesh) {
    let before = mesh.configz().await.unwrap()["generation"]
        .as_u64()
        .unwrap();
    let edited_at = Instant::now();
    mesh.write_config("subsets.yaml", &canary_subsets(Some("RANDOM")));
    // Bounded well under Envoy's 15 s initial-fetch timeout, so waiting it out fails.
    wait_until(
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async {
            match mesh.sidecar {
                ProxyKind::Envoy => {
                    let clusters = mesh
                        .envoy
                        .get_admin("/config_dump?resource=dynamic_active_clusters")
                        .await?;
                    if !clusters.contains("RANDOM") {
                        anyhow::bail!("the RANDOM policy is not active yet");
                    }
                    let stats = mesh
                        .envoy
                        .get_admin("/stats?filter=cluster_manager.warming_clusters")
                        .await?;
                    if !stats.contains("warming_clusters: 0") {
                        anyhow::bail!("clusters still warming: {stats}");
                    }
                }
                ProxyKind::Bowline => {
                    // bowline-proxy swaps a cluster in whole, endpoints included: the new policy
                    // is active once its config dump shows it with endpoints.
                    let dump: serde_json::Value =
                        serde_json::from_str(&mesh.envoy.get_admin("/config_dump").await?)?;
                    // Envoy's shape: configs[1] is the ClustersConfigDump.
                    let clusters = dump["configs"][1]["dynamic_active_clusters"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let canary: Vec<_> = clusters
                        .iter()
                        .filter(|c| {
                            c["cluster"]["name"]
                                .as_str()
                                .is_some_and(|n| n.ends_with("|canary.default.svc.cluster.local"))
                        })
                        .collect();
                    if canary.is_empty()
                        || canary.iter().any(|c| {
                            c["cluster"]["lb"] != "Random"
                                || c["endpoints"].as_array().is_none_or(|e| e.is_empty())
                        })
                    {
                        anyhow::bail!(
                            "canary clusters not all RANDOM with endpoints yet: {canary:?}"
                        );
                    }
                }
            }
            Ok(())
        },
    )
    .await
    .unwrap();
    println!(
        "[{}] DestinationRule edit → changed clusters active in {:?}",
        mesh.label(),
        edited_at.elapsed()
    );
    let syncz = tokio::time::timeout(Duration::from_secs(5), mesh.wait_synced(before + 1))
        .await
        .expect("the proxy did not ACK the cluster change within 5s")
        .unwrap();
    assert_no_nack(&syncz);
    let rsp = mesh.get("canary", "/", &[]).await.unwrap();
    assert_eq!(rsp.status, 200);
}

async fn a_broken_edit_is_refused_and_routing_stays(mesh: &Mesh) {
    let good = mesh.configz().await.unwrap()["generation"]
        .as_u64()
        .unwrap();
    mesh.write_config("canary.yaml", BROKEN);
    let configz = wait_until(STARTUP, Duration::from_millis(20), || async {
        let configz = mesh.configz().await?;
        if configz["rejected"].as_object().is_none_or(|r| r.is_empty()) {
            anyhow::bail!("edit not refused yet: {configz}");
        }
        Ok(configz)
    })
    .await
    .unwrap();
    let diagnostics = configz["rejected"].to_string();
    println!("[{}] broken edit refused: {diagnostics}", mesh.label());
    assert!(diagnostics.contains("canary.yaml"), "{diagnostics}");
    assert!(
        diagnostics.contains("spec.http[0].timeout"),
        "names the field: {diagnostics}"
    );
    assert_eq!(
        configz["generation"], good,
        "a refused edit must not move the generation"
    );

    let mut client = mesh.client();
    for _ in 0..50 {
        let rsp = client
            .request("GET", &support::url("canary", "/"), &[], REQUEST)
            .await
            .unwrap();
        assert_eq!(rsp.status, 200);
        assert_eq!(
            rsp.json()["version"],
            "v2",
            "routing must stay at the last good config"
        );
    }
    let syncz = mesh.wait_synced(good).await.unwrap();
    assert_no_nack(&syncz);
    assert_eq!(syncz["generation"], good);
}

fn assert_no_nack(syncz: &serde_json::Value) {
    for proxy in syncz["proxies"].as_array().unwrap() {
        for (ty, state) in proxy["types"].as_object().unwrap() {
            assert!(state["last_nack"].is_null(), "{ty} was NACKed: {proxy}");
        }
    }
}
