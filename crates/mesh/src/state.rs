//! What a running `bowline up` writes for `bowline status` and for the next start's cleanup:
//! `<state dir>/<mesh>/state.json`.

use crate::netns::Network;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshState {
    pub mesh: String,
    /// PID of the `bowline up` process.
    pub pid: u32,
    /// `transparent` or `explicit`.
    pub capture: String,
    pub config_dir: PathBuf,
    pub xds_addr: String,
    pub debug_addr: String,
    /// Milliseconds from the command's start to every proxy ready and synced.
    pub ready_ms: Option<u64>,
    /// A Prometheus configuration scraping every proxy (see `up::scrape`).
    #[serde(default)]
    pub scrape_config: Option<PathBuf>,
    /// The ingress gateway.
    pub gateway: Option<GatewayState>,
    #[serde(default)]
    pub egress_gateway: Option<GatewayState>,
    pub network: Option<Network>,
    pub workloads: Vec<WorkloadState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayState {
    pub node_id: String,
    /// Gateway server port → bound address.
    pub listeners: Vec<(u16, String)>,
    pub admin: String,
    pub pid: u32,
    /// The demo's entry URL, when the manifest names one.
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadState {
    pub name: String,
    pub namespace: String,
    pub ip: String,
    /// (port name, service port, application port).
    pub ports: Vec<(String, u16, u16)>,
    pub node_id: String,
    pub pid: u32,
    pub sidecar_pid: u32,
    pub sidecar_admin: String,
    pub netns: Option<String>,
}

/// Root of per-mesh state: `$BOWLINE_STATE_DIR`, else `/run/bowline` for root, else
/// `$XDG_RUNTIME_DIR/bowline`, else `/tmp/bowline-<uid>`.
pub fn state_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("BOWLINE_STATE_DIR") {
        return PathBuf::from(dir);
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/bowline");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join("bowline"),
        None => PathBuf::from(format!("/tmp/bowline-{uid}")),
    }
}

impl MeshState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub fn load(dir: &Path) -> std::io::Result<MeshState> {
        let text = std::fs::read_to_string(MeshState::path(dir))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Written to a temporary file then renamed, so a reader never sees half of it.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("state.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, MeshState::path(dir))
    }

    /// The gateways that run, each with its name in messages (`gateway`, `egress-gateway`).
    pub fn gateways(&self) -> impl Iterator<Item = (&'static str, &GatewayState)> {
        [
            ("gateway", &self.gateway),
            ("egress-gateway", &self.egress_gateway),
        ]
        .into_iter()
        .filter_map(|(name, g)| g.as_ref().map(|g| (name, g)))
    }

    /// Every PID this mesh started.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .workloads
            .iter()
            .flat_map(|w| [w.pid, w.sidecar_pid])
            .collect();
        pids.extend(self.gateways().map(|(_, g)| g.pid));
        pids
    }
}
