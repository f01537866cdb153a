//! Prometheus scrape targets for a running mesh: every sidecar's and gateway's admin
//! `/stats/prometheus`, as a file service discovery document (`targets.json`) and a
//! Prometheus configuration that reads it (`prometheus.yml`), both under the mesh's state
//! directory: `prometheus --config.file <state dir>/prometheus/prometheus.yml` scrapes the
//! mesh. The targets file is rewritten whenever the mesh starts; Prometheus re-reads it.

use crate::state::MeshState;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// How often the written configuration scrapes (Prometheus' default is 1 minute: too slow to
/// watch a demo).
const SCRAPE_INTERVAL: &str = "5s";

/// Writes `prometheus/targets.json` and `prometheus/prometheus.yml` under `state_dir`;
/// returns the configuration's path.
pub(super) fn write(state_dir: &Path, state: &MeshState) -> std::io::Result<PathBuf> {
    let dir = state_dir.join("prometheus");
    std::fs::create_dir_all(&dir)?;
    let targets_path = dir.join("targets.json");
    let tmp = dir.join("targets.json.tmp");
    let text = serde_json::to_string_pretty(&targets(state)).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    // Renamed into place: Prometheus never reads half a file.
    std::fs::rename(&tmp, &targets_path)?;
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config(&targets_path))?;
    Ok(config_path)
}

/// One file_sd group per proxy, labelled with what it serves.
fn targets(state: &MeshState) -> Value {
    let mut groups: Vec<Value> = state
        .workloads
        .iter()
        .map(|w| {
            json!({
                "targets": [w.sidecar_admin],
                "labels": {
                    "mesh": state.mesh,
                    "proxy": "sidecar",
                    "workload": w.name,
                    "namespace": w.namespace,
                    "__metrics_path__": "/stats/prometheus",
                },
            })
        })
        .collect();
    for (name, g) in state.gateways() {
        // Istio's node id: `router~<ip>~<name>.<namespace>~<domain>`.
        let (workload, namespace) = g
            .node_id
            .split('~')
            .nth(2)
            .and_then(|w| w.split_once('.'))
            .unwrap_or((name, ""));
        groups.push(json!({
            "targets": [g.admin],
            "labels": {
                "mesh": state.mesh,
                "proxy": name,
                "workload": workload,
                "namespace": namespace,
                "__metrics_path__": "/stats/prometheus",
            },
        }));
    }
    Value::Array(groups)
}

fn config(targets: &Path) -> String {
    format!(
        "# Written by `bowline up`: scrapes every proxy of the mesh (file service discovery).\n\
         global:\n  scrape_interval: {SCRAPE_INTERVAL}\n\
         scrape_configs:\n\
         - job_name: bowline\n  file_sd_configs:\n  - files: [{:?}]\n",
        targets.display().to_string()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{GatewayState, WorkloadState};

    #[test]
    fn one_group_per_proxy_with_its_admin_and_metrics_path() {
        let state = MeshState {
            mesh: "demo".into(),
            pid: 1,
            capture: "transparent".into(),
            config_dir: "/c".into(),
            xds_addr: "10.213.0.1:1".into(),
            debug_addr: "127.0.0.1:2".into(),
            ready_ms: None,
            scrape_config: None,
            gateway: Some(GatewayState {
                node_id: "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local".into(),
                listeners: vec![],
                admin: "127.0.0.1:3".into(),
                pid: 2,
                url: None,
            }),
            egress_gateway: None,
            network: None,
            workloads: vec![WorkloadState {
                name: "details-v1-0".into(),
                namespace: "default".into(),
                ip: "10.213.0.3".into(),
                ports: vec![],
                node_id: String::new(),
                pid: 3,
                sidecar_pid: 4,
                sidecar_admin: "10.213.0.3:15000".into(),
                netns: None,
            }],
        };
        let groups = targets(&state);
        assert_eq!(groups.as_array().unwrap().len(), 2);
        assert_eq!(groups[0]["targets"][0], "10.213.0.3:15000");
        assert_eq!(groups[0]["labels"]["workload"], "details-v1-0");
        assert_eq!(groups[0]["labels"]["__metrics_path__"], "/stats/prometheus");
        assert_eq!(groups[1]["targets"][0], "127.0.0.1:3");
        assert_eq!(groups[1]["labels"]["proxy"], "gateway");
        assert_eq!(groups[1]["labels"]["workload"], "istio-ingressgateway");
        assert_eq!(groups[1]["labels"]["namespace"], "istio-system");
        assert!(config(Path::new("/s/prometheus/targets.json"))
            .contains("files: [\"/s/prometheus/targets.json\"]"));
    }
}
