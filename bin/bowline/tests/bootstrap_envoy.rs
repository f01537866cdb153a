//! `bowline bootstrap envoy` output is accepted by the real Envoy (SotW and delta), and a node
//! id that is not Istio's form is refused with exit 2 and a hint.

use bowline_testkit::Envoy;
use std::process::{Command, Output};

const NODE_ID: &str = "sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local";

fn bootstrap(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bowline"))
        .args([
            "bootstrap",
            "envoy",
            "--xds-addr",
            "127.0.0.1:15010",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .output()
        .expect("run bowline bootstrap envoy")
}

fn bootstrap_yaml(extra: &[&str]) -> String {
    let output = bootstrap(extra);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn sotw_bootstrap_is_valid_for_envoy() {
    let yaml = bootstrap_yaml(&["--node-id", NODE_ID, "--outbound-port", "0"]);
    for needle in [
        "api_type: GRPC\n",
        "cluster: reviews-v1.default\n",
        "OUTBOUND_PORT: \"0\"\n",
        "INBOUND_PORT: \"15006\"\n",
        "INTERCEPTION_MODE: NONE\n",
        "NAMESPACE: default\n",
        "WORKLOAD_NAME: reviews-v1\n",
        "http2_protocol_options:",
        "port_value: 15010\n",
    ] {
        assert!(yaml.contains(needle), "missing {needle:?} in:\n{yaml}");
    }
    Envoy::validate(&yaml).unwrap();
}

#[test]
fn delta_bootstrap_is_valid_for_envoy() {
    let yaml = bootstrap_yaml(&[
        "--node-id",
        NODE_ID,
        "--outbound-port",
        "15001",
        "--inbound-port",
        "0",
        "--delta",
        "--cluster",
        "reviews",
    ]);
    for needle in [
        "api_type: DELTA_GRPC\n",
        "cluster: reviews\n",
        "OUTBOUND_PORT: \"15001\"\n",
        "INBOUND_PORT: \"0\"\n",
    ] {
        assert!(yaml.contains(needle), "missing {needle:?} in:\n{yaml}");
    }
    Envoy::validate(&yaml).unwrap();
}

#[test]
fn bad_node_id_exits_2_with_a_hint() {
    let output = bootstrap(&["--node-id", "reviews-v1", "--outbound-port", "15001"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--node-id") && stderr.contains("hint: use sidecar~<ip>~"),
        "{stderr}"
    );
}

#[tokio::test]
async fn envoy_starts_from_the_bootstrap_and_asks_for_config() {
    // No control plane listens on the xDS address: Envoy must still start, serve admin, and
    // stay not-ready while it waits for its initial CDS/LDS.
    let yaml = bootstrap_yaml(&["--node-id", NODE_ID, "--outbound-port", "0", "--delta"]);
    let envoy = Envoy::start(&yaml).await.unwrap();
    let info = envoy.get_admin("/server_info").await.unwrap();
    assert!(info.contains(NODE_ID), "{info}");
    let err = envoy
        .wait_ready(std::time::Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("503"), "{err:#}");
}
