//! What `bowline up` is asked for beyond the manifest, how it is interrupted, and what it
//! reports while it runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How applications reach their sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureMode {
    /// Each replica in its own network namespace behind iptables REDIRECT (Istio's model).
    /// Needs root.
    Transparent,
    /// Everything on 127.0.0.1; applications reach their sidecar through `HTTP_PROXY`.
    /// Sidecars reach applications directly, so inbound policy is not enforced.
    Explicit,
}

/// Settings of one `bowline up` run. Plain data: the caller decides every default.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub capture: CaptureMode,
    /// The bowline-proxy binary, for sidecars and the gateway.
    pub proxy_bin: PathBuf,
    /// The bowline binary: applications whose command is `bowline`, the in-namespace
    /// `bowline iptables` and Envoy's `bowline sds` agent run it.
    pub self_bin: PathBuf,
    /// The Envoy binary, required when a workload asks for `sidecar: envoy`.
    pub envoy_bin: Option<PathBuf>,
    /// The control plane's debug address (/debug/syncz, /debug/configz); port 0 picks one.
    pub debug_addr: SocketAddr,
    /// Where per-mesh state lives: `<state_root>/<mesh>/` (state.json, bootstraps, the
    /// generated registry, the config store) and the default CA directory.
    pub state_root: PathBuf,
    /// The mesh CA's directory [None: `<state_root>/<mesh>-ca`, kept across runs].
    pub ca_dir: Option<PathBuf>,
    /// Lifetime of workload certificates (rotated at about half of it).
    pub cert_ttl: Duration,
    /// The instant readiness is timed from (the user's command, usually).
    pub started: Instant,
    /// Bound on `started` → every proxy ready and synced.
    pub ready_timeout: Duration,
    /// The multi-thread runtime the control plane runs on. `Mesh::start`,
    /// `RunningMesh::wait_ready` and `RunningMesh::stop` block the calling thread, which
    /// must not be one of its workers.
    pub runtime: tokio::runtime::Handle,
    /// Checked between start-up steps and while waiting for readiness.
    pub interrupt: Interrupt,
}

/// Set once the user asked the mesh to stop (SIGINT/SIGTERM, in the CLI). Clones share it.
#[derive(Debug, Clone)]
pub struct Interrupt(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Interrupt {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once triggered (at once if it already was).
    pub async fn triggered(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so waiting cannot end in a closed channel.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

/// Progress of a run, for the caller to show. Lines the CLI prints from them are what
/// scripts and tests wait for.
#[derive(Debug)]
pub enum Event {
    /// An earlier run of this mesh did not stop; its processes, namespaces and links are
    /// being removed before this one starts.
    CleaningUpEarlierRun { mesh: String },
    /// What reading the manifest's `meshConfig:` had to say short of an error.
    MeshConfigNote(bowline_config::Diagnostic),
    /// The control plane serves; workloads and proxies start next.
    ControlPlaneUp {
        mesh: String,
        capture: CaptureMode,
        /// Its xDS and CA port, TLS only (Istio's 15012; verified as istiod.istio-system.svc).
        xds_addr: SocketAddr,
        debug_addr: SocketAddr,
    },
    /// A process exited on its own after start-up.
    Exited { name: String, status: ExitStatus },
    /// Processes still running `grace` after SIGTERM, killed while stopping.
    Killed { names: Vec<String>, grace: Duration },
}
