//! What `bowline up` prints from its mesh's events and state. The lines are an interface:
//! scripts and tests wait for "bowline up: mesh ready in ", "bowline up: open http://" and
//! the control plane line; keep them byte-identical.

use bowline_mesh::state::MeshState;
use bowline_mesh::up::{CaptureMode, Event};
use std::path::Path;

/// Progress lines: stdout for what a user waits for, stderr for trouble.
pub fn event(manifest_path: &Path, event: Event) {
    match event {
        Event::CleaningUpEarlierRun { mesh } => {
            eprintln!("bowline up: cleaning up after an earlier run of {mesh:?} that did not stop")
        }
        Event::MeshConfigNote(note) => println!("bowline up: {note}"),
        Event::ControlPlaneUp {
            mesh,
            capture,
            xds_addr,
            debug_addr,
        } => {
            let explicit = capture == CaptureMode::Explicit;
            println!(
                "bowline up: mesh {mesh:?} from {}, {} capture; control plane xds {xds_addr} (TLS, istiod.istio-system.svc), debug http://{debug_addr}",
                manifest_path.display(),
                if explicit { "explicit (HTTP_PROXY)" } else { "transparent" },
            );
            if explicit {
                // Said up front: nothing sits in front of an application in this mode.
                println!(
                    "bowline up: note: with explicit capture, sidecars reach applications directly, \
                     so mutual TLS, PeerAuthentication, AuthorizationPolicy and RequestAuthentication \
                     are not enforced; run as root for transparent capture"
                );
            }
        }
        Event::Exited { name, status } => eprintln!("bowline up: {name} exited ({status})"),
        Event::Killed { names, grace } => {
            eprintln!("bowline up: killed after {grace:?}: {}", names.join(", "))
        }
    }
}

/// What runs where, once every proxy is ready.
pub fn summary(state: &MeshState) {
    println!(
        "  {:<22} {:<14} {:<12} {:<18} SIDECAR ADMIN",
        "WORKLOAD", "NAMESPACE", "IP", "PORTS"
    );
    for w in &state.workloads {
        let ports: Vec<String> = w
            .ports
            .iter()
            .map(|(name, port, app)| {
                if port == app {
                    format!("{name}:{port}")
                } else {
                    format!("{name}:{port}->{app}")
                }
            })
            .collect();
        println!(
            "  {:<22} {:<14} {:<12} {:<18} {}",
            w.name,
            w.namespace,
            w.ip,
            ports.join(","),
            w.sidecar_admin
        );
    }
    for (name, g) in state.gateways() {
        let listeners: Vec<String> = g
            .listeners
            .iter()
            .map(|(port, addr)| format!("{port}->{addr}"))
            .collect();
        println!(
            "  {name} {} on {} (admin {})",
            g.node_id,
            listeners.join(", "),
            g.admin
        );
    }
    println!(
        "bowline up: mesh ready in {} ms: every proxy ready and synced",
        state.ready_ms.unwrap_or_default()
    );
    if let Some(url) = state.gateway.as_ref().and_then(|g| g.url.as_ref()) {
        println!("bowline up: open {url}");
    }
    if let Some(config) = &state.scrape_config {
        println!(
            "bowline up: Prometheus: prometheus --config.file {} scrapes every proxy",
            config.display()
        );
    }
    println!("bowline up: Ctrl-C stops the mesh; `bowline status` shows it");
}
