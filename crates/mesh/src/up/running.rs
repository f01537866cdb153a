//! A started mesh and what stopping it takes. Whatever was started is recorded as it starts,
//! so a failure half-way stops exactly that.

use super::{ready, Event, Interrupt, UpError};
use crate::netns::Network;
use crate::process::Supervisor;
use crate::state::MeshState;
use bowline_control::ControlPlane;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long processes get to drain after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Receives the run's [`Event`]s.
pub type OnEvent = Box<dyn FnMut(Event) + Send>;

/// What a start got to: processes, the control plane, the network, the state file. Call
/// [`PartialMesh::stop`] to remove it; dropping it kills the processes but leaves the
/// network and state file for the next start's cleanup.
pub struct PartialMesh {
    pub(super) supervisor: Supervisor,
    pub(super) control: Option<ControlPlane>,
    pub(super) network: Option<Network>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) on_event: OnEvent,
}

/// A start that failed: why, and what had been started (stop it).
pub struct StartFailed {
    pub error: UpError,
    pub partial: PartialMesh,
}

impl std::fmt::Debug for StartFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartFailed")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A mesh whose every process is started; [`RunningMesh::wait_ready`] waits for its
/// proxies, [`RunningMesh::stop`] removes it all.
pub struct RunningMesh {
    pub(super) parts: PartialMesh,
    pub(super) state: MeshState,
    pub(super) state_dir: PathBuf,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
    pub(super) interrupt: Interrupt,
}

impl PartialMesh {
    /// SIGTERM to every process (SIGKILL after a grace period, reported as
    /// [`Event::Killed`]), then the control plane, the network (namespaces, veths, bridge)
    /// and the state file. Everything is attempted; the first failure is returned.
    pub fn stop(mut self) -> Result<(), UpError> {
        let killed = self.supervisor.stop_all(STOP_GRACE);
        if !killed.is_empty() {
            (self.on_event)(Event::Killed {
                names: killed,
                grace: STOP_GRACE,
            });
        }
        if let Some(control) = self.control.take() {
            self.runtime
                .block_on(control.stop())
                .map_err(UpError::ControlPlane)?;
        }
        if let Some(network) = self.network.take() {
            network
                .teardown()
                .map_err(UpError::io("removing the mesh network"))?;
        }
        if let Some(dir) = self.state_dir.take() {
            let _ = std::fs::remove_file(MeshState::path(&dir));
        }
        Ok(())
    }
}

impl std::fmt::Debug for RunningMesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningMesh")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A running mesh is stopped as what it started.
impl From<RunningMesh> for PartialMesh {
    fn from(mesh: RunningMesh) -> PartialMesh {
        mesh.parts
    }
}

impl RunningMesh {
    /// What runs where, as `bowline status` reads it (`ready_ms` once ready).
    pub fn state(&self) -> &MeshState {
        &self.state
    }

    /// Blocks until every proxy answers `/ready` and the control plane shows each one
    /// ACKed its current generation; records the time taken in the state file. Fails when a
    /// process exits meanwhile, on the interrupt, or at the ready timeout.
    pub fn wait_ready(&mut self) -> Result<&MeshState, UpError> {
        ready::wait_ready(
            &self.state,
            &mut self.parts.supervisor,
            self.deadline,
            &self.interrupt,
        )?;
        self.state.ready_ms = Some(self.started.elapsed().as_millis() as u64);
        self.state.save(&self.state_dir)?;
        Ok(&self.state)
    }

    /// Runs until the interrupt, reporting processes that exit on their own as
    /// [`Event::Exited`] (checked every 500 ms).
    pub async fn supervise(&mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = self.interrupt.triggered() => return,
                _ = tick.tick() => {
                    for (name, status) in self.parts.supervisor.newly_exited() {
                        (self.parts.on_event)(Event::Exited { name, status });
                    }
                }
            }
        }
    }

    /// Stops every process and removes every namespace, link and the state file
    /// ([`PartialMesh::stop`]).
    pub fn stop(self) -> Result<(), UpError> {
        self.parts.stop()
    }
}
