//! Why `bowline up` could not start, wait or stop. Messages are the operator's: what failed,
//! where, and a hint; the source chain (print with `{:#}` through anyhow) gives the cause.

use crate::plan::PlanError;
use std::path::PathBuf;
use std::process::ExitStatus;

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(
        "transparent capture needs root (network namespaces, iptables); use --capture explicit"
    )]
    NeedsRoot,
    #[error("mesh {mesh:?} is already running (bowline up, pid {pid}); stop it first")]
    AlreadyRunning { mesh: String, pid: u32 },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("the mesh CA in {}", dir.display())]
    Ca {
        dir: PathBuf,
        #[source]
        source: bowline_identity::CaError,
    },
    /// Starting or stopping the in-process control plane.
    #[error(transparent)]
    ControlPlane(anyhow::Error),
    #[error("the control plane has a secure port")]
    NoSecurePort,
    /// Building or writing a proxy's bootstrap.
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    #[error("installing capture rules in {ns} failed ({status})")]
    CaptureRules { ns: String, status: ExitStatus },
    #[error("a workload asks for an Envoy sidecar: pass --envoy-bin or set ENVOY_BIN")]
    NoEnvoy,
    #[error("interrupted during start-up")]
    Interrupted,
    #[error("{name} exited during start-up ({status})")]
    ExitedDuringStartUp { name: String, status: ExitStatus },
    #[error(
        "not ready in time: proxies not ready: [{}]; not synced: [{}]",
        not_ready.join(", "),
        unsynced.join(", ")
    )]
    NotReady {
        /// Proxies whose `/ready` did not answer 200.
        not_ready: Vec<String>,
        /// Node ids that had not ACKed the control plane's current generation.
        unsynced: Vec<String>,
    },
    /// A file, directory, namespace or link operation, with what it was for.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A file or process operation whose error names what failed by itself.
    #[error(transparent)]
    Os(#[from] std::io::Error),
}

impl UpError {
    /// An I/O error with what the operation was for.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UpError {
        let what = what.into();
        move |source| UpError::Io { what, source }
    }
}
