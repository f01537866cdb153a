//! Readiness of a started mesh: every proxy answers `/ready` and the control plane's
//! `/debug/syncz` shows each one ACKed the current generation.

use super::{Interrupt, UpError};
use crate::probe::http_get;
use crate::process::Supervisor;
use crate::state::MeshState;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Every proxy answers `/ready` and the control plane shows each one ACKed the current
/// generation.
pub(super) fn wait_ready(
    state: &MeshState,
    supervisor: &mut Supervisor,
    deadline: Instant,
    interrupt: &Interrupt,
) -> Result<(), UpError> {
    let probe = Duration::from_millis(500);
    let mut admins: Vec<(String, SocketAddr)> = state
        .workloads
        .iter()
        .map(|w| {
            (
                format!("{} proxy", w.name),
                w.sidecar_admin.parse().expect("an address"),
            )
        })
        .collect();
    for (name, g) in state.gateways() {
        admins.push((name.into(), g.admin.parse().expect("an address")));
    }
    let mut expected: Vec<String> = state.workloads.iter().map(|w| w.node_id.clone()).collect();
    expected.extend(state.gateways().map(|(_, g)| g.node_id.clone()));
    let debug: SocketAddr = state.debug_addr.parse().expect("an address");
    loop {
        if interrupt.is_triggered() {
            return Err(UpError::Interrupted);
        }
        if let Some((name, status)) = supervisor.newly_exited().into_iter().next() {
            return Err(UpError::ExitedDuringStartUp { name, status });
        }
        let not_ready: Vec<String> = admins
            .iter()
            .filter(|(_, admin)| !matches!(http_get(*admin, "/ready", probe), Ok((200, _))))
            .map(|(name, _)| name.clone())
            .collect();
        let unsynced = match http_get(debug, "/debug/syncz", probe) {
            Ok((200, body)) => unsynced(&body, &expected),
            _ => expected.clone(),
        };
        if not_ready.is_empty() && unsynced.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(UpError::NotReady {
                not_ready,
                unsynced,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Node ids among `expected` that have not ACKed the current generation in a
/// `/debug/syncz` document.
pub fn unsynced(syncz: &str, expected: &[String]) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(syncz) else {
        return expected.to_vec();
    };
    let generation = doc["generation"].as_u64();
    expected
        .iter()
        .filter(|id| {
            !doc["proxies"].as_array().into_iter().flatten().any(|p| {
                p["node_id"] == json!(id) && p["applied_generation"].as_u64() == generation
            })
        })
        .cloned()
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_lists_proxies_behind_the_generation() {
        let syncz = r#"{"generation": 3, "proxies": [
            {"node_id": "a", "applied_generation": 3},
            {"node_id": "b", "applied_generation": 2},
            {"node_id": "c", "applied_generation": null}]}"#;
        let ids: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(unsynced(syncz, &ids), ["b", "c", "d"]);
        assert_eq!(unsynced("not json", &ids[..1]), ["a"]);
    }
}
