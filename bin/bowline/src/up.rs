//! `bowline up [PATH]`: a whole mesh on this machine. Reads a manifest (`bowline.yaml`),
//! runs the control plane in-process, starts every workload replica with a bowline-proxy
//! sidecar (and the ingress gateway), waits until every proxy is ready and synced, prints
//! what runs where, streams prefixed logs, and on Ctrl-C or SIGTERM stops everything it
//! started and removes every namespace, veth and bridge it made.
//!
//! Capture: `transparent` (root; each replica in its own network namespace behind iptables
//! REDIRECT, Istio's model) or `explicit` (no root; everything on 127.0.0.1 and applications
//! reach their sidecar through `HTTP_PROXY`). Same config, same routing.

use crate::gateway;
use anyhow::{bail, Context};
use bowline_control::ControlPlane;
use bowline_mesh::iptables::PROXY_UID;
use bowline_mesh::manifest::SidecarKind;
use bowline_mesh::netns::Network;
use bowline_mesh::plan::{Capture, Instance, Plan};
use bowline_mesh::probe::{http_get, FreePorts};
use bowline_mesh::process::{alive, Place, Supervisor};
use bowline_mesh::state::{state_root, MeshState, WorkloadState};
use bowline_mesh::Manifest;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureMode {
    Transparent,
    Explicit,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A mesh manifest, or a directory holding `bowline.yaml`. Default: ./bowline.yaml,
    /// else examples/bookinfo (the demo, from a checkout).
    path: Option<PathBuf>,
    /// How applications reach their sidecar [default: transparent as root, else explicit].
    #[arg(long, value_enum)]
    capture: Option<CaptureMode>,
    /// The bowline-proxy binary [default: next to this binary].
    #[arg(long, env = "BOWLINE_PROXY_BIN")]
    proxy_bin: Option<PathBuf>,
    /// The Envoy binary, for workloads with `sidecar: envoy`.
    #[arg(long, env = "ENVOY_BIN")]
    envoy_bin: Option<PathBuf>,
    /// Override a gateway port mapping, SERVER_PORT=LOCAL_PORT (repeatable).
    #[arg(long = "gateway-port", value_name = "PORT=PORT", value_parser = parse_port_pair)]
    gateway_ports: Vec<(u16, u16)>,
    /// The control plane's debug address (/debug/syncz, /debug/configz).
    #[arg(long, default_value = "127.0.0.1:0")]
    debug_addr: SocketAddr,
    /// The mesh CA's directory: a root is generated there on first start and kept, or
    /// Istio's plug-in files (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) are
    /// used [default: <state root>/<mesh>-ca, kept across runs].
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// Lifetime of workload certificates, in seconds (rotated at about half of it).
    #[arg(long, value_name = "SECONDS", default_value_t = 24 * 3600)]
    cert_ttl_s: u64,
    /// Bound on waiting for every proxy to be ready and synced.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    ready_timeout: u64,
}

/// The mesh's SPIFFE trust domain (Istio's default).
const TRUST_DOMAIN: &str = "cluster.local";

/// How long processes get to drain after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub fn run(args: Args) -> ExitCode {
    let started = Instant::now();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bowline up: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Signals are watched from the very start: Ctrl-C during start-up stops what has been
    // started so far instead of killing the process and leaving namespaces behind.
    let stop = runtime.block_on(async { stop_signal() });
    let mut mesh = Running::default();
    let outcome = start(&args, &runtime, &mut mesh, started, &stop)
        .map(|()| runtime.block_on(wait_for_stop(&mut mesh, stop.clone())));
    if let Err(e) = &outcome {
        eprintln!("bowline up: {e:#}");
    }
    println!("bowline up: stopping");
    let clean = mesh.stop(&runtime);
    match (outcome, clean) {
        (Ok(()), Ok(())) => {
            println!("bowline up: stopped; every process, namespace and link removed");
            ExitCode::SUCCESS
        }
        (_, Err(e)) => {
            eprintln!("bowline up: cleanup incomplete: {e:#}");
            ExitCode::FAILURE
        }
        (Err(_), Ok(())) => ExitCode::FAILURE,
    }
}

/// Everything started so far, so that a failure half-way stops exactly that.
#[derive(Default)]
struct Running {
    supervisor: Supervisor,
    control: Option<ControlPlane>,
    network: Option<Network>,
    state_dir: Option<PathBuf>,
}

impl Running {
    fn stop(&mut self, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
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

fn start(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    mesh: &mut Running,
    started: Instant,
    stop: &Stop,
) -> anyhow::Result<()> {
    let manifest_path = manifest_path(args.path.as_deref())?;
    let mut manifest = Manifest::load(&manifest_path).map_err(anyhow::Error::msg)?;
    if let Some(gw) = &mut manifest.gateway {
        gw.ports.extend(args.gateway_ports.iter().copied());
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mode = args.capture.unwrap_or(if root {
        CaptureMode::Transparent
    } else {
        CaptureMode::Explicit
    });
    if mode == CaptureMode::Transparent && !root {
        bail!(
            "transparent capture needs root (network namespaces, iptables); use --capture explicit"
        );
    }
    let proxy_bin = proxy_binary(args.proxy_bin.as_deref())?;
    let self_bin = std::env::current_exe().context("locating the bowline binary")?;

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
    let xds = crate::bootstrap::ControlPlaneAddr {
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
        workloads.push(start_instance(
            mesh,
            &plan,
            instance,
            &self_bin,
            &proxy_bin,
            &state_dir,
            &xds,
            &token,
            args.envoy_bin.as_deref(),
        )?);
    }
    let gateway = match &manifest.gateway {
        Some(spec) => Some(gateway::start(
            &mut mesh.supervisor,
            spec,
            &proxy_bin,
            &state_dir,
            &xds,
            gateway_admin,
            &tokens.issue(bowline_identity::SpiffeId::new(
                TRUST_DOMAIN,
                &spec.namespace,
                gateway::SERVICE_ACCOUNT,
            )),
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
    wait_ready(&state, mesh, deadline, stop)?;
    state.ready_ms = Some(started.elapsed().as_millis() as u64);
    state.save(&state_dir)?;
    print_summary(&state);
    Ok(())
}

/// Network namespace (transparent), capture rules, the application, its bootstrap and its
/// sidecar.
#[allow(clippy::too_many_arguments)]
fn start_instance(
    mesh: &mut Running,
    plan: &Plan,
    instance: &Instance,
    self_bin: &Path,
    proxy_bin: &Path,
    state_dir: &Path,
    xds: &crate::bootstrap::ControlPlaneAddr,
    ca_token: &str,
    envoy_bin: Option<&Path>,
) -> anyhow::Result<WorkloadState> {
    let (app_place, proxy_place, admin_addr) = match &instance.netns {
        Some(ns) => {
            let network = mesh
                .network
                .as_mut()
                .expect("transparent mode has a network");
            network
                .add_namespace(ns, instance.ip, &plan.hosts_file(instance))
                .with_context(|| format!("creating network namespace {ns}"))?;
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", ns])
                .arg(self_bin)
                .args(["iptables", "--exclude-inbound-ports"])
                .arg(instance.sidecar.admin.to_string())
                .status()?;
            if !status.success() {
                bail!("installing capture rules in {ns} failed ({status})");
            }
            (
                Place::Netns(ns.clone()),
                Place::NetnsAs {
                    ns: ns.clone(),
                    uid: PROXY_UID,
                    gid: PROXY_UID,
                },
                SocketAddr::new(instance.ip.into(), instance.sidecar.admin),
            )
        }
        None => (
            Place::Host,
            Place::Host,
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), instance.sidecar.admin),
        ),
    };
    let program = if instance.command == "bowline" {
        self_bin.display().to_string()
    } else {
        instance.command.clone()
    };
    let env: Vec<(String, String)> = instance.env.clone().into_iter().collect();
    let pid = mesh.supervisor.spawn(
        &instance.name,
        &program,
        &instance.args,
        &env,
        &app_place,
        None,
    )?;

    let mut bootstrap = sidecar_bootstrap(instance, xds, admin_addr);
    let sidecar_name = format!("{} proxy", instance.name);
    let token_env = [("BOWLINE_CA_TOKEN".to_string(), ca_token.to_string())];
    let sidecar_pid = match instance.sidecar_kind {
        SidecarKind::Bowline => {
            let file = state_dir.join(format!("bootstrap/{}.json", instance.name));
            std::fs::write(&file, bowline_bootstrap::to_json_string(&bootstrap)?)?;
            // Handed over as stdin: the proxy's uid may not be able to open the state
            // directory.
            mesh.supervisor.spawn(
                &sidecar_name,
                &proxy_bin.display().to_string(),
                &["-c".to_string(), "/dev/stdin".to_string()],
                &token_env,
                &proxy_place,
                Some(std::fs::File::open(&file)?),
            )?
        }
        SidecarKind::Envoy => {
            // Istio's agent beside Envoy: the certificate over SDS on an abstract socket
            // (private to the namespace; named per instance for explicit mode).
            let socket = format!("@bowline-sds-{}", instance.name);
            let mut sds_env = token_env.to_vec();
            if let Some(root) = &xds.root_pem {
                sds_env.push(("BOWLINE_CA_ROOT_PEM".to_string(), root.clone()));
            }
            mesh.supervisor.spawn(
                &format!("{} sds", instance.name),
                &self_bin.display().to_string(),
                &[
                    "sds".to_string(),
                    "--ca-addr".to_string(),
                    xds.addr.to_string(),
                    "--listen".to_string(),
                    socket.clone(),
                ],
                &sds_env,
                &proxy_place,
                None,
            )?;
            crate::bootstrap::add_sds_cluster(&mut bootstrap, &socket);
            std::fs::write(
                state_dir.join(format!("bootstrap/{}.json", instance.name)),
                bowline_bootstrap::to_json_string(&bootstrap)?,
            )?;
            let envoy = envoy_bin.context(
                "a workload asks for an Envoy sidecar: pass --envoy-bin or set ENVOY_BIN",
            )?;
            mesh.supervisor.spawn(
                &sidecar_name,
                &envoy.display().to_string(),
                &[
                    "--config-yaml".to_string(),
                    bowline_bootstrap::to_json(&bootstrap)?.to_string(),
                    "--concurrency".to_string(),
                    "1".to_string(),
                    "--use-dynamic-base-id".to_string(),
                    "-l".to_string(),
                    "warning".to_string(),
                ],
                &[],
                &proxy_place,
                None,
            )?
        }
    };
    Ok(WorkloadState {
        name: instance.name.clone(),
        namespace: instance.namespace.clone(),
        ip: instance.ip.to_string(),
        ports: instance
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.service_port, p.app_port))
            .collect(),
        node_id: instance.node_id(),
        pid,
        sidecar_pid,
        sidecar_admin: admin_addr.to_string(),
        netns: instance.netns.clone(),
    })
}

/// The same bootstrap `bowline bootstrap envoy` prints, with the capture mode set.
fn sidecar_bootstrap(
    instance: &Instance,
    xds: &crate::bootstrap::ControlPlaneAddr,
    admin_addr: SocketAddr,
) -> bowline_xds::pb::envoy::config::bootstrap::v3::Bootstrap {
    let (admin, mode) = match instance.netns {
        // Reachable from the host for readiness; capture rules leave the port alone.
        Some(_) => (
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), admin_addr.port()),
            "REDIRECT",
        ),
        None => (admin_addr, "NONE"),
    };
    let mut bootstrap = crate::bootstrap::sidecar(
        &instance.node_id(),
        xds,
        admin,
        instance.sidecar.outbound,
        instance.sidecar.inbound,
    );
    crate::bootstrap::set_metadata(&mut bootstrap, "INTERCEPTION_MODE", json!(mode));
    let account = json!(instance.service_account);
    crate::bootstrap::set_metadata(&mut bootstrap, "SERVICE_ACCOUNT", account);
    bootstrap
}

/// Every proxy answers `/ready` and the control plane shows each one ACKed the current
/// generation.
fn wait_ready(
    state: &MeshState,
    mesh: &mut Running,
    deadline: Instant,
    stop: &Stop,
) -> anyhow::Result<()> {
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
    if let Some(g) = &state.gateway {
        admins.push(("gateway".into(), g.admin.parse().expect("an address")));
    }
    let mut expected: Vec<String> = state.workloads.iter().map(|w| w.node_id.clone()).collect();
    expected.extend(state.gateway.as_ref().map(|g| g.node_id.clone()));
    let debug: SocketAddr = state.debug_addr.parse()?;
    loop {
        stop.check()?;
        if let Some((name, status)) = mesh.supervisor.newly_exited().into_iter().next() {
            bail!("{name} exited during start-up ({status})");
        }
        let not_ready: Vec<&str> = admins
            .iter()
            .filter(|(_, admin)| !matches!(http_get(*admin, "/ready", probe), Ok((200, _))))
            .map(|(name, _)| name.as_str())
            .collect();
        let unsynced = match http_get(debug, "/debug/syncz", probe) {
            Ok((200, body)) => unsynced(&body, &expected),
            _ => expected.clone(),
        };
        if not_ready.is_empty() && unsynced.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "not ready in time: proxies not ready: [{}]; not synced: [{}]",
                not_ready.join(", "),
                unsynced.join(", ")
            );
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
struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    fn check(&self) -> anyhow::Result<()> {
        if *self.0.borrow() {
            bail!("interrupted during start-up");
        }
        Ok(())
    }
}

/// Starts watching SIGINT and SIGTERM (inside the runtime).
fn stop_signal() -> Stop {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(true);
    });
    Stop(rx)
}

/// Runs until SIGINT/SIGTERM, reporting processes that exit on their own.
async fn wait_for_stop(mesh: &mut Running, mut stop: Stop) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = stop.0.wait_for(|stopped| *stopped) => return,
            _ = tick.tick() => {
                for (name, status) in mesh.supervisor.newly_exited() {
                    eprintln!("bowline up: {name} exited ({status})");
                }
            }
        }
    }
}

pub(crate) fn manifest_path(path: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match path {
        Some(p) if p.is_dir() => vec![p.join("bowline.yaml")],
        Some(p) => vec![p.to_path_buf()],
        None => vec![
            "bowline.yaml".into(),
            "examples/bookinfo/bowline.yaml".into(),
        ],
    };
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no mesh manifest at {}; give `bowline up` a bowline.yaml or its directory",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        })
}

fn proxy_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .map(|dir| dir.join("bowline-proxy"))
            .context("locating bowline-proxy")?,
    };
    if !path.is_file() {
        bail!(
            "bowline-proxy not found at {} (build it: cargo build -p bowline-proxy-bin, or pass --proxy-bin)",
            path.display()
        );
    }
    Ok(path)
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

fn parse_port_pair(text: &str) -> Result<(u16, u16), String> {
    let (a, b) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected SERVER_PORT=LOCAL_PORT"))?;
    let port = |s: &str| {
        s.trim()
            .parse::<u16>()
            .map_err(|_| format!("{s:?} is not a port"))
    };
    Ok((port(a)?, port(b)?))
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
