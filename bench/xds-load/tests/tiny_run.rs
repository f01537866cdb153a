//! A tiny run against the real `bowline` binary: 20 services × 6 proxies, once per
//! protocol. Every proxy must get the complete config, the endpoint change must reach every
//! proxy (each holds every service's cluster), and nothing may break or be NACKed. The same
//! mesh served by a stand-in Kubernetes API server (`--source kubernetes`) must do the same.

use bowline_testkit::bowline_binary;
use std::time::Duration;
use xds_load::control::ControlFlags;
use xds_load::mesh::MeshSpec;
use xds_load::scenario::{run, Options, ProtocolChoice, SourceChoice};

fn options(protocol: ProtocolChoice, source: SourceChoice) -> Options {
    Options {
        spec: MeshSpec {
            services: 20,
            endpoints: 5,
            namespaces: 10,
            sidecar_scope: false,
        },
        proxies: 6,
        protocol,
        bowline: bowline_binary(),
        timeout: Duration::from_secs(20),
        wave: 50,
        settle: Duration::from_millis(200),
        idle: Duration::from_millis(500),
        endpoint_changes: 2,
        flags: ControlFlags::default(),
        source,
    }
}

async fn tiny_run(protocol: ProtocolChoice, source: SourceChoice) {
    let r = run(&options(protocol, source))
        .await
        .expect("the run completes");
    let report = r.to_markdown();
    assert_eq!(r.complete, 6, "{report}");
    assert_eq!(r.endpoint_change.reached, 2 * 6, "{report}");
    assert_eq!(r.route_change.reached, 6, "{report}");
    assert_eq!(r.nacks, 0, "{report}");
    assert_eq!(
        (
            r.connect_failures,
            r.stream_errors,
            r.server_closed,
            r.reconnects
        ),
        (0, 0, 0, 0),
        "{report}"
    );
    assert!(r.endpoint_change.latency.max > 0.0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_mesh_over_sotw_converges_and_takes_changes() {
    tiny_run(ProtocolChoice::Sotw, SourceChoice::Files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_mesh_over_delta_converges_and_takes_changes() {
    tiny_run(ProtocolChoice::Delta, SourceChoice::Files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_mesh_from_the_kubernetes_api_converges_and_takes_changes() {
    tiny_run(ProtocolChoice::Delta, SourceChoice::Kubernetes).await;
}
