//! The data plane under stress from the control plane, on the real Envoy and on
//! bowline-proxy alike: the control plane killed during load (no request may fail; after a
//! restart the proxy resyncs), and 10 config pushes a second during load (no request may
//! fail and no established connection may be reset).

mod support;

use bowline_testkit::{wait_until, ProxyClient, ProxyKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{canary_subsets, Ads, Mesh, REQUEST};

const CLIENTS: usize = 4;
/// Upper bound on requests per client, so a load loop ends even if the test forgets it.
const MAX_REQUESTS: u32 = 200_000;

fn split(v1: u32) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: canary}}
spec:
  hosts: [canary]
  http:
  - route:
    - destination: {{host: canary, subset: v1}}
      weight: {v1}
    - destination: {{host: canary, subset: v2}}
      weight: {v2}
"#,
        v2 = 100 - v1
    )
}

async fn mesh(sidecar: ProxyKind, ads: Ads) -> Mesh {
    Mesh::builder(sidecar, ads)
        .backend("canary", "v1", &[])
        .backend("canary", "v2", &[])
        .config("subsets.yaml", &canary_subsets(Some("ROUND_ROBIN")))
        .config("canary.yaml", &split(100))
        .start()
        .await
}

/// `CLIENTS` keep-alive clients sending back to back until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<ClientReport>>,
}

#[derive(Debug, Default)]
struct ClientReport {
    ok: u32,
    failures: Vec<String>,
    v2: u32,
    connections: usize,
}

impl Load {
    fn start(mesh: &Mesh) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..CLIENTS)
            .map(|_| {
                let stop = stop.clone();
                let mut client = ProxyClient::new(mesh.outbound);
                tokio::spawn(async move {
                    let mut report = ClientReport::default();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) && n < MAX_REQUESTS {
                        n += 1;
                        let url = support::url("canary", "/");
                        match client.request("GET", &url, &[], REQUEST).await {
                            Ok(rsp) if rsp.status == 200 => {
                                report.ok += 1;
                                report.v2 += u32::from(rsp.json()["version"] == "v2");
                            }
                            Ok(rsp) => {
                                report
                                    .failures
                                    .push(format!("{} {}", rsp.status, rsp.text()))
                            }
                            Err(e) => report.failures.push(format!("{e:#}")),
                        }
                    }
                    report.connections = client.connections_opened();
                    report
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops every client and adds up what they saw.
    async fn finish(self) -> ClientReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = ClientReport::default();
        for task in self.tasks {
            let r = task.await.expect("load task");
            total.ok += r.ok;
            total.v2 += r.v2;
            total.failures.extend(r.failures);
            total.connections += r.connections;
        }
        total
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_loss_on_envoy() {
    control_plane_loss(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_loss_on_bowline() {
    control_plane_loss(ProxyKind::Bowline).await;
}

/// Kill the control plane mid-load: the proxy keeps serving its last good config. Restart
/// it: the proxy reconnects, resyncs, and follows the next edit.
async fn control_plane_loss(sidecar: ProxyKind) {
    let mut mesh = mesh(sidecar, Ads::Delta).await;
    mesh.wait_synced(1).await.unwrap();
    let load = Load::start(&mesh);
    tokio::time::sleep(Duration::from_millis(300)).await; // let load build up (pacing only)

    mesh.kill_control();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await; // serve without a control plane
    mesh.restart_control().await;
    let syncz = mesh.wait_synced(1).await.unwrap();
    let resynced = killed_at.elapsed();
    assert_eq!(syncz["proxies"].as_array().unwrap().len(), 1, "{syncz}");

    // The resynced proxy follows a new edit.
    mesh.write_config("canary.yaml", &split(0));
    mesh.wait_synced(2).await.unwrap();
    let rsp = mesh.get("canary", "/", &[]).await.unwrap();
    assert_eq!(
        rsp.json()["version"],
        "v2",
        "the edit after the restart applies"
    );

    let report = load.finish().await;
    println!(
        "[{}] control plane killed during load: {} requests ok, {} failed; resynced {:?} after the kill",
        mesh.label(),
        report.ok,
        report.failures.len(),
        resynced
    );
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.ok > 100, "the load must have run: {report:?}");
    assert_eq!(
        report.connections, CLIENTS,
        "an established connection was reset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_under_load_on_envoy() {
    pushes_under_load(ProxyKind::Envoy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_under_load_on_bowline() {
    pushes_under_load(ProxyKind::Bowline).await;
}

/// 30 edits at 10 a second, alternating a route change (RDS) and a load-balancer change
/// that replaces the clusters (CDS + EDS), while keep-alive clients send back to back.
async fn pushes_under_load(sidecar: ProxyKind) {
    let mesh = mesh(sidecar, Ads::Sotw).await;
    let first = mesh.configz().await.unwrap()["generation"]
        .as_u64()
        .unwrap();
    mesh.wait_synced(first).await.unwrap();
    let load = Load::start(&mesh);

    const EDITS: u64 = 30;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for i in 0..EDITS {
        tick.tick().await;
        if i % 2 == 0 {
            mesh.write_config("canary.yaml", &split(if i % 4 == 0 { 10 } else { 90 }));
        } else {
            let policy = if i % 4 == 1 {
                "RANDOM"
            } else {
                "LEAST_REQUEST"
            };
            mesh.write_config("subsets.yaml", &canary_subsets(Some(policy)));
        }
    }
    // The last edit was a policy change; end on a known split and wait until it is applied.
    mesh.write_config("canary.yaml", &split(50));
    let generation = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let served = mesh.configz().await?["generation"].as_u64().unwrap_or(0);
            let syncz = mesh.syncz().await?;
            let applied = syncz["proxies"][0]["applied_generation"].as_u64();
            match applied {
                Some(g) if g == served && g > first + 1 => Ok(g),
                _ => anyhow::bail!("proxy at {applied:?}, control plane at {served}"),
            }
        },
    )
    .await
    .expect("the proxy did not catch up with the last edit");

    let report = load.finish().await;
    println!(
        "[{}] {EDITS} edits at 10/s under load: {} generations applied, {} requests ok ({} to v2), {} failed, {} connections for {CLIENTS} clients",
        mesh.label(),
        generation - first,
        report.ok,
        report.v2,
        report.failures.len(),
        report.connections
    );
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(
        report.v2 > 0 && report.v2 < report.ok,
        "the splits changed during the load"
    );
    assert_eq!(
        report.connections, CLIENTS,
        "an established connection was reset"
    );
    assert!(
        generation - first >= 10,
        "too few pushes were applied: {}",
        generation - first
    );
}
