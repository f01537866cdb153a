//! `bowline up`: a whole mesh on this machine. From a manifest (`bowline.yaml`) it runs the
//! control plane in-process, starts every workload replica with a bowline-proxy sidecar (and
//! the ingress gateway), waits until every proxy is ready and synced, and on stop removes
//! every process, namespace, veth and bridge it made.
//!
//! Capture: `transparent` (root; each replica in its own network namespace behind iptables
//! REDIRECT, Istio's model) or `explicit` (no root; everything on 127.0.0.1 and applications
//! reach their sidecar through `HTTP_PROXY`). Same config, same routing.

mod bootstraps;
mod gateway;
mod instance;
mod ready;

pub use bootstraps::{Bootstraps, ControlPlaneAddr};

use crate::netns::Network;
use crate::plan::{Capture, Plan};
use crate::probe::FreePorts;
use crate::process::{alive, Supervisor};
use crate::state::{state_root, MeshState};
use crate::Manifest;
use anyhow::{bail, Context};
use bowline_control::ControlPlane;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use ready::unsynced;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureMode {
    Transparent,
    Explicit,
}

/// What `bowline up` was asked for, beyond the manifest.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub manifest_path: PathBuf,
    pub capture: CaptureMode,
    pub proxy_bin: PathBuf,
    pub self_bin: PathBuf,
    pub envoy_bin: Option<PathBuf>,
    pub debug_addr: SocketAddr,
    pub ca_dir: Option<PathBuf>,
    pub cert_ttl_s: u64,
    pub ready_timeout: u64,
}

/// The mesh's SPIFFE trust domain (Istio's default).
const TRUST_DOMAIN: &str = "cluster.local";

/// How long processes get to drain after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Everything started so far, so that a failure half-way stops exactly that.
#[derive(Default)]
pub struct Running {
    pub supervisor: Supervisor,
    control: Option<ControlPlane>,
    network: Option<Network>,
    state_dir: Option<PathBuf>,
}

impl Running {
    pub fn stop(&mut self, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
        let killed = self.supervisor.stop_all(STOP_GRACE);
        if !killed.is_empty() {
            eprintln!(
                "bowline up: killed after {STOP_GRACE:?}: {}",
                killed.join(", ")
            );
        }
        if let Some(control) = self.control.take() {
            runtime.block_on(control.stop())?;
        }
        if let Some(network) = self.network.take() {
            network.teardown().context("removing the mesh network")?;
        }
        if let Some(dir) = self.state_dir.take() {
            let _ = std::fs::remove_file(MeshState::path(&dir));
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
pub fn start(
    manifest: Manifest,
    args: &UpOptions,
    runtime: &tokio::runtime::Runtime,
    mesh: &mut Running,
    started: Instant,
    stop: &Stop,
    bootstraps: &dyn Bootstraps,
) -> anyhow::Result<()> {
    let manifest_path = &args.manifest_path;
    let mode = args.capture;
    let (proxy_bin, self_bin) = (&args.proxy_bin, &args.self_bin);

    let state_dir = state_root().join(&manifest.name);
    clean_stale(&state_dir)?;
    std::fs::create_dir_all(state_dir.join("registry"))?;
    std::fs::create_dir_all(state_dir.join("bootstrap"))?;
    mesh.state_dir = Some(state_dir.clone());

    let capture = match mode {
        CaptureMode::Transparent => {
            let (network, subnet) = Network::create().context("creating the mesh bridge")?;
            mesh.network = Some(network);
            Capture::Transparent { subnet }
        }
        CaptureMode::Explicit => Capture::Explicit,
    };
    // Ports stay held until the control plane has bound its own, so it cannot take one.
    let mut ports = FreePorts::default();
    let plan = Plan::new(&manifest, capture, &mut || ports.take())?;
    let gateway_admin = ports.take();
    std::fs::write(state_dir.join("registry/mesh.yaml"), plan.registry_yaml())?;

    // Proxies in namespaces reach the control plane on the bridge; the gateway (host) too.
    let xds_ip: IpAddr = match capture {
        Capture::Transparent { subnet } => subnet.bridge_ip().into(),
        Capture::Explicit => Ipv4Addr::LOCALHOST.into(),
    };
    let ca_dir = args
        .ca_dir
        .clone()
        .unwrap_or_else(|| state_root().join(format!("{}-ca", manifest.name)));
    let ca = bowline_identity::Ca::load_or_create(&ca_dir)
        .with_context(|| format!("the mesh CA in {}", ca_dir.display()))?;
    let tokens = bowline_identity::Tokens::default();
    let mesh_ca = bowline_control::MeshCa::new(
        std::sync::Arc::new(ca),
        tokens.clone(),
        Duration::from_secs(args.cert_ttl_s),
    );
    // xDS and the CA over TLS only (Istio's 15012): tokens and config never cross the
    // bridge in clear.
    let control = runtime.block_on(ControlPlane::start(bowline_control::Settings {
        dirs: vec![manifest.config.clone(), state_dir.join("registry")],
        state_dir: Some(state_dir.join("store")),
        listen: bowline_control::Listen {
            plaintext: None,
            secure: Some(SocketAddr::new(xds_ip, 0)),
            debug: args.debug_addr,
        },
        file_debounce: Duration::from_millis(50),
        file_settle: bowline_registry::watch::DEFAULT_SETTLE,
        push_debounce: Duration::from_millis(20),
        ca: Some(mesh_ca),
        mesh: manifest.mesh_config.clone(),
    }))?;
    for note in &manifest.mesh_config_notes {
        println!("bowline up: {note}");
    }
    let xds = ControlPlaneAddr {
        addr: control
            .secure_xds_addr
            .context("the control plane has a secure port")?,
        root_pem: control.root_pem.clone(),
    };
    let (xds_addr, debug_addr) = (xds.addr, control.debug_addr);
    mesh.control = Some(control);
    drop(ports);
    println!(
        "bowline up: mesh {:?} from {}, {} capture; control plane xds {xds_addr} (TLS, istiod.istio-system.svc), debug http://{debug_addr}",
        manifest.name,
        manifest_path.display(),
        match mode {
            CaptureMode::Transparent => "transparent",
            CaptureMode::Explicit => "explicit (HTTP_PROXY)",
        },
    );
    if mode == CaptureMode::Explicit {
        // Said up front: nothing sits in front of an application in this mode.
        println!(
            "bowline up: note: with explicit capture, sidecars reach applications directly, \
             so mutual TLS, PeerAuthentication, AuthorizationPolicy and RequestAuthentication \
             are not enforced; run as root for transparent capture"
        );
    }

    let mut workloads = Vec::new();
    for instance in &plan.instances {
        stop.check()?;
        // The workload's only credential towards the CA: its SPIFFE id is bound to it here.
        let token = tokens.issue(bowline_identity::SpiffeId::new(
            TRUST_DOMAIN,
            &instance.namespace,
            &instance.service_account,
        ));
        workloads.push(instance::start_instance(
            mesh,
            &plan,
            instance,
            self_bin,
            proxy_bin,
            &state_dir,
            &xds,
            &token,
            args.envoy_bin.as_deref(),
            bootstraps,
        )?);
    }
    let gateway = match &manifest.gateway {
        Some(spec) => Some(gateway::start(
            &mut mesh.supervisor,
            spec,
            proxy_bin,
            &state_dir,
            &xds,
            gateway_admin,
            &tokens.issue(bowline_identity::SpiffeId::new(
                TRUST_DOMAIN,
                &spec.namespace,
                gateway::SERVICE_ACCOUNT,
            )),
            bootstraps,
        )?),
        None => None,
    };

    let mut state = MeshState {
        mesh: manifest.name.clone(),
        pid: std::process::id(),
        capture: format!("{mode:?}").to_lowercase(),
        config_dir: manifest.config.clone(),
        xds_addr: xds_addr.to_string(),
        debug_addr: debug_addr.to_string(),
        ready_ms: None,
        gateway,
        network: mesh.network.clone(),
        workloads,
    };
    state.save(&state_dir)?;

    let deadline = started + Duration::from_secs(args.ready_timeout);
    ready::wait_ready(&state, mesh, deadline, stop)?;
    state.ready_ms = Some(started.elapsed().as_millis() as u64);
    state.save(&state_dir)?;
    print_summary(&state);
    Ok(())
}
fn print_summary(state: &MeshState) {
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
    if let Some(g) = &state.gateway {
        let listeners: Vec<String> = g
            .listeners
            .iter()
            .map(|(port, addr)| format!("{port}->{addr}"))
            .collect();
        println!(
            "  gateway {} on {} (admin {})",
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
    println!("bowline up: Ctrl-C stops the mesh; `bowline status` shows it");
}

/// Set once SIGINT or SIGTERM arrived.
#[derive(Clone)]
pub struct Stop(pub tokio::sync::watch::Receiver<bool>);

impl Stop {
    fn check(&self) -> anyhow::Result<()> {
        if *self.0.borrow() {
            bail!("interrupted during start-up");
        }
        Ok(())
    }
}

/// A previous run's leftovers: refuse if it still runs, else remove what it recorded.
fn clean_stale(state_dir: &Path) -> anyhow::Result<()> {
    let Ok(old) = MeshState::load(state_dir) else {
        return Ok(());
    };
    if old.pid != std::process::id() && alive(old.pid) {
        bail!(
            "mesh {:?} is already running (bowline up, pid {}); stop it first",
            old.mesh,
            old.pid
        );
    }
    eprintln!(
        "bowline up: cleaning up after an earlier run of {:?} that did not stop",
        old.mesh
    );
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
