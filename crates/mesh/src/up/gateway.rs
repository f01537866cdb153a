//! The gateways of `bowline up`: bowline-proxies on the host in Istio's router role.
//! Istio `Gateway`s whose selector matches their labels, and Gateway API `Gateway`s, become
//! their listeners; server ports are bound on the gateway's IP (127.0.0.1 for the ingress
//! gateway, the bridge for the egress gateway under capture) through the manifest's port map.

use super::instance::write_bootstrap;
use super::instance::Launch;
use super::UpError;
use crate::plan::GatewayPlan;
use crate::process::{Place, Supervisor};
use crate::state::GatewayState;
use bowline_bootstrap::build;
use bowline_identity::control::CONTROL_PLANE_NAME;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};

/// Starts the gateway proxy; its readiness is checked with the sidecars'. `ca_token` gets it
/// a workload certificate (of [`GatewaySpec::service_account`]), for mutual TLS with the
/// workloads.
///
/// [`GatewaySpec::service_account`]: crate::manifest::GatewaySpec::service_account
pub(super) fn start(
    supervisor: &mut Supervisor,
    launch: &Launch<'_>,
    plan: &GatewayPlan,
    admin_port: u16,
    ca_token: &str,
) -> Result<GatewayState, UpError> {
    let Launch {
        proxy_bin,
        state_dir,
        xds,
        ..
    } = *launch;
    let spec = &plan.spec;
    let ns = &spec.namespace;
    let node_id = plan.node_id();
    let admin = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), admin_port);
    // The sidecar bootstrap with the router's identity and gateway metadata; the control
    // plane reads LABELS (selector matching), GATEWAY_PORT_MAP and CREDENTIALS_DIR.
    let sidecar_id = format!(
        "sidecar~{}~{}.{ns}~{ns}.svc.cluster.local",
        plan.ip, spec.name
    );
    let mut bootstrap = build::sidecar(&sidecar_id, xds, admin, 0, 0, CONTROL_PLANE_NAME)
        .map_err(UpError::Bootstrap)?;
    build::node_mut(&mut bootstrap).id = node_id.clone();
    build::set_metadata(&mut bootstrap, "LABELS", json!(spec.labels));
    let port_map: Vec<String> = spec.ports.iter().map(|(s, l)| format!("{s}:{l}")).collect();
    build::set_metadata(
        &mut bootstrap,
        "GATEWAY_PORT_MAP",
        json!(port_map.join(",")),
    );
    if let Some(dir) = &spec.credentials {
        // Created when missing: TLS servers whose files are not there yet are refused
        // (with the missing path) until they are, and the rest of the gateway serves.
        let what = || format!("gateway credentials directory {}", dir.display());
        std::fs::create_dir_all(dir).map_err(UpError::io(what()))?;
        let dir = std::fs::canonicalize(dir).map_err(UpError::io(what()))?;
        build::set_metadata(
            &mut bootstrap,
            "CREDENTIALS_DIR",
            json!(dir.display().to_string()),
        );
    }
    // One file per gateway: a process reads its bootstrap after the next one is written.
    let file = state_dir.join(format!("bootstrap/{}.json", plan.label));
    std::fs::write(&file, write_bootstrap(&bootstrap)?)?;
    let pid = supervisor.spawn(
        plan.label,
        &proxy_bin.display().to_string(),
        &["-c".to_string(), file.display().to_string()],
        &[("BOWLINE_CA_TOKEN".to_string(), ca_token.to_string())],
        &Place::Host,
        None,
    )?;
    let listeners: Vec<(u16, String)> = spec
        .ports
        .iter()
        .map(|(server, local)| (*server, format!("{}:{local}", plan.ip)))
        .collect();
    let url = spec.entry.as_ref().and_then(|path| {
        let (_, addr) = listeners
            .iter()
            .find(|(server, _)| *server == 80)
            .or_else(|| listeners.first())?;
        Some(format!("http://{addr}{path}"))
    });
    Ok(GatewayState {
        node_id,
        listeners,
        admin: admin.to_string(),
        pid,
        url,
    })
}
