//! `bowline up` as a library: a whole mesh on this machine from a manifest (`bowline.yaml`).
//! [`Mesh::start`] runs the control plane in-process, starts every workload replica with a
//! bowline-proxy sidecar (and the ingress gateway) and records the state file;
//! [`RunningMesh::wait_ready`] waits until every proxy is ready and synced;
//! [`RunningMesh::stop`] removes every process, namespace, veth and bridge it made. Progress
//! is reported as [`Event`]s; the caller prints them.
//!
//! Capture: `transparent` (root; each replica in its own network namespace behind iptables
//! REDIRECT, Istio's model) or `explicit` (no root; everything on 127.0.0.1 and applications
//! reach their sidecar through `HTTP_PROXY`). Same config, same routing.

mod error;
mod gateway;
mod instance;
mod options;
mod ready;
mod running;
mod scrape;
mod stale;

pub use bowline_bootstrap::build::ControlPlaneAddr;
pub use error::UpError;
pub use options::{CaptureMode, Event, Interrupt, UpOptions};
pub use ready::unsynced;
pub use running::{OnEvent, PartialMesh, RunningMesh, StartFailed};

use crate::netns::Network;
use crate::plan::{Capture, GatewayPlan, Plan};
use crate::probe::FreePorts;
use crate::process::Supervisor;
use crate::state::MeshState;
use crate::Manifest;
use bowline_control::ControlPlane;
use instance::Launch;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The mesh's SPIFFE trust domain (Istio's default).
const TRUST_DOMAIN: &str = "cluster.local";

/// Starts meshes; see the module documentation.
pub struct Mesh;

impl Mesh {
    /// Starts `manifest`'s mesh: cleans up after an earlier run of it that did not stop (or
    /// refuses if one still runs), creates the network (transparent capture), writes the
    /// plan's registry, starts the CA and the control plane, then every replica and the
    /// gateway, and saves the state file. Blocks the calling thread. On failure, what had
    /// started comes back in [`StartFailed::partial`], to be stopped (boxed: it is large).
    pub fn start(
        manifest: Manifest,
        options: UpOptions,
        on_event: OnEvent,
    ) -> Result<RunningMesh, Box<StartFailed>> {
        let mut partial = PartialMesh {
            supervisor: Supervisor::default(),
            control: None,
            network: None,
            state_dir: None,
            runtime: options.runtime.clone(),
            on_event,
        };
        match start(manifest, &options, &mut partial) {
            Ok((state, state_dir)) => Ok(RunningMesh {
                parts: partial,
                state,
                state_dir,
                started: options.started,
                deadline: options.started + options.ready_timeout,
                interrupt: options.interrupt,
            }),
            Err(error) => Err(Box::new(StartFailed { error, partial })),
        }
    }
}

/// Each step records what it started in `mesh` before the next one can fail.
fn start(
    manifest: Manifest,
    options: &UpOptions,
    mesh: &mut PartialMesh,
) -> Result<(MeshState, std::path::PathBuf), UpError> {
    // SAFETY: geteuid has no preconditions.
    if options.capture == CaptureMode::Transparent && unsafe { libc::geteuid() } != 0 {
        return Err(UpError::NeedsRoot);
    }
    let state_dir = options.state_root.join(&manifest.name);
    stale::clean_up(&state_dir, &mut mesh.on_event)?;
    std::fs::create_dir_all(state_dir.join("registry"))?;
    std::fs::create_dir_all(state_dir.join("bootstrap"))?;
    mesh.state_dir = Some(state_dir.clone());

    let capture = match options.capture {
        CaptureMode::Transparent => {
            let (network, subnet) =
                Network::create().map_err(UpError::io("creating the mesh bridge"))?;
            mesh.network = Some(network);
            Capture::Transparent { subnet }
        }
        CaptureMode::Explicit => Capture::Explicit,
    };
    // Ports stay held until the control plane has bound its own, so it cannot take one.
    let mut ports = FreePorts::default();
    let plan = Plan::new(&manifest, capture, &mut || ports.take())?;
    let gateway_admins = [ports.take(), ports.take()];
    std::fs::write(state_dir.join("registry/mesh.yaml"), plan.registry_yaml())?;

    // Proxies in namespaces reach the control plane on the bridge; the gateway (host) too.
    let xds_ip: IpAddr = match capture {
        Capture::Transparent { subnet } => subnet.bridge_ip().into(),
        Capture::Explicit => Ipv4Addr::LOCALHOST.into(),
    };
    let ca_dir = options
        .ca_dir
        .clone()
        .unwrap_or_else(|| options.state_root.join(format!("{}-ca", manifest.name)));
    let ca = bowline_identity::Ca::load_or_create(&ca_dir).map_err(|source| UpError::Ca {
        dir: ca_dir.clone(),
        source,
    })?;
    let tokens = bowline_identity::Tokens::default();
    let mesh_ca =
        bowline_control::MeshCa::new(std::sync::Arc::new(ca), tokens.clone(), options.cert_ttl);
    // xDS and the CA over TLS only (Istio's 15012): tokens and config never cross the
    // bridge in clear.
    let control = options
        .runtime
        .block_on(ControlPlane::start(bowline_control::Settings {
            dirs: vec![manifest.config.clone(), state_dir.join("registry")],
            state_dir: Some(state_dir.join("store")),
            listen: bowline_control::Listen {
                plaintext: None,
                secure: Some(SocketAddr::new(xds_ip, 0)),
                debug: options.debug_addr,
                webhook: None,
            },
            file_debounce: Duration::from_millis(20),
            file_settle: bowline_registry::watch::DEFAULT_SETTLE,
            push_debounce: Duration::from_millis(10),
            ca: Some(mesh_ca),
            mesh: manifest.mesh_config.clone(),
            kubernetes: None,
            server_names: Vec::new(),
        }))
        .map_err(UpError::ControlPlane)?;
    for note in &manifest.mesh_config_notes {
        (mesh.on_event)(Event::MeshConfigNote(note.clone()));
    }
    let secure_xds_addr = control.secure_xds_addr;
    let xds = ControlPlaneAddr {
        addr: secure_xds_addr.ok_or(UpError::NoSecurePort)?,
        root_pem: control.root_pem.clone(),
    };
    let debug_addr = control.debug_addr;
    mesh.control = Some(control);
    drop(ports);
    (mesh.on_event)(Event::ControlPlaneUp {
        mesh: manifest.name.clone(),
        capture: options.capture,
        xds_addr: xds.addr,
        debug_addr,
    });

    let launch = Launch {
        plan: &plan,
        self_bin: &options.self_bin,
        proxy_bin: &options.proxy_bin,
        envoy_bin: options.envoy_bin.as_deref(),
        state_dir: &state_dir,
        xds: &xds,
    };
    let mut workloads = Vec::new();
    for instance in &plan.instances {
        if options.interrupt.is_triggered() {
            return Err(UpError::Interrupted);
        }
        // The workload's only credential towards the CA: its SPIFFE id is bound to it here.
        let token = tokens.issue(bowline_identity::SpiffeId::new(
            TRUST_DOMAIN,
            &instance.namespace,
            &instance.service_account,
        ));
        workloads.push(instance::start_instance(mesh, &launch, instance, &token)?);
    }
    let mut start_gateway = |plan: &Option<GatewayPlan>, admin: u16| {
        let Some(g) = plan else { return Ok(None) };
        if options.interrupt.is_triggered() {
            return Err(UpError::Interrupted);
        }
        let token = tokens.issue(bowline_identity::SpiffeId::new(
            TRUST_DOMAIN,
            &g.spec.namespace,
            &g.spec.service_account(),
        ));
        gateway::start(&mut mesh.supervisor, &launch, g, admin, &token).map(Some)
    };
    let gateway = start_gateway(&plan.ingress, gateway_admins[0])?;
    let egress_gateway = start_gateway(&plan.egress, gateway_admins[1])?;

    let state = MeshState {
        mesh: manifest.name.clone(),
        pid: std::process::id(),
        capture: match options.capture {
            CaptureMode::Transparent => "transparent",
            CaptureMode::Explicit => "explicit",
        }
        .to_string(),
        config_dir: manifest.config.clone(),
        xds_addr: xds.addr.to_string(),
        debug_addr: debug_addr.to_string(),
        ready_ms: None,
        scrape_config: None,
        gateway,
        egress_gateway,
        network: mesh.network.clone(),
        workloads,
    };
    let mut state = state;
    state.scrape_config = Some(scrape::write(&state_dir, &state)?);
    state.save(&state_dir)?;
    Ok((state, state_dir))
}
