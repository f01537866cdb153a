//! Two sidecars, one of each kind, in one `bowline up` mesh under transparent capture:
//! productpage on a real Envoy, the rest on bowline-proxy. Tests run clients inside a
//! workload's network namespace (`ip netns exec`), so its connections are captured like the
//! application's, and read each sidecar's admin stats.

#![allow(dead_code)]

use super::mesh::UpMesh;
use anyhow::Context;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

/// The bookinfo mesh under transparent capture with productpage on a real Envoy sidecar and
/// the rest on bowline-proxy, and what the tests need to know of it.
pub struct TwoSidecars {
    pub mesh: UpMesh,
    pub state: Value,
    /// The bridge's own address: this machine, outside the registry.
    pub bridge: IpAddr,
    /// (who, network namespace) of productpage (Envoy) and details (bowline-proxy).
    pub clients: [(&'static str, String); 2],
}

impl TwoSidecars {
    pub async fn start() -> TwoSidecars {
        TwoSidecars::start_with(&|m| m.to_string()).await
    }

    /// [`start`](Self::start) with a further edit of the manifest.
    pub async fn start_with(edit: &dyn Fn(&str) -> String) -> TwoSidecars {
        let envoy = bowline_testkit::envoy_binary();
        let mesh = UpMesh::start_with(
            "transparent",
            &["--envoy-bin", envoy.to_str().unwrap()],
            "warn",
            &|m| {
                edit(&m.replace(
                    "- name: productpage-v1\n  serviceAccount: bookinfo-productpage\n",
                    "- name: productpage-v1\n  serviceAccount: bookinfo-productpage\n  sidecar: envoy\n",
                ))
            },
        )
        .await;
        let state: Value = serde_json::from_str(
            &std::fs::read_to_string(mesh.state_dir().join("state.json")).unwrap(),
        )
        .unwrap();
        let bridge: IpAddr = state["network"]["bridge_ip"]
            .as_str()
            .context("the mesh's bridge address")
            .unwrap()
            .parse()
            .unwrap();
        let clients = [
            (
                "productpage (Envoy)",
                workload_field(&state, "productpage-v1-0", "netns"),
            ),
            (
                "details (bowline-proxy)",
                workload_field(&state, "details-v1-0", "netns"),
            ),
        ];
        TwoSidecars {
            mesh,
            state,
            bridge,
            clients,
        }
    }
}

/// A workload's field from the mesh state (`ip`, `netns`, `sidecar_admin`).
pub fn workload_field(state: &Value, name: &str, field: &str) -> String {
    state["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .and_then(|w| w[field].as_str())
        .unwrap_or_else(|| panic!("{name}.{field}"))
        .to_string()
}

/// Runs a bash script in `netns` (bounded) and returns its stdout.
pub async fn in_netns(netns: &str, script: String) -> anyhow::Result<String> {
    let netns = netns.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["10", "ip", "netns", "exec", &netns, "bash", "-c", &script])
            .output()
    })
    .await??;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Counters from a sidecar's admin `/stats` whose name ends with `suffix`, summed (Envoy
/// names listener stats by address, bowline-proxy by listener name).
pub async fn stat(admin: &str, suffix: &str) -> u64 {
    let admin: SocketAddr = admin.parse().unwrap();
    let text = bowline_testkit::get(admin, "/stats", &[], Duration::from_secs(5))
        .await
        .unwrap()
        .text();
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| k.ends_with(suffix))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}
