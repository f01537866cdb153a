//! A previous run of the same mesh that did not stop (killed, crashed): its state file says
//! what it left.

use super::{Event, UpError};
use crate::process::alive;
use crate::state::MeshState;
use std::path::Path;

/// Refuses if that run still runs; else kills its recorded processes, removes its network
/// and its state file. Nothing to do without a state file.
pub(super) fn clean_up(state_dir: &Path, on_event: &mut dyn FnMut(Event)) -> Result<(), UpError> {
    let Ok(old) = MeshState::load(state_dir) else {
        return Ok(());
    };
    if old.pid != std::process::id() && alive(old.pid) {
        return Err(UpError::AlreadyRunning {
            mesh: old.mesh,
            pid: old.pid,
        });
    }
    on_event(Event::CleaningUpEarlierRun {
        mesh: old.mesh.clone(),
    });
    for pid in old.pids() {
        if alive(pid) {
            // SAFETY: kill(2) with a PID recorded by the earlier run of this mesh.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
    if let Some(network) = old.network {
        network.teardown()?;
    }
    std::fs::remove_file(MeshState::path(state_dir))?;
    Ok(())
}
