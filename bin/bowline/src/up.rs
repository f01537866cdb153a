//! `bowline up [PATH]`: a whole mesh on this machine (see `bowline_mesh::up`). Here: flags,
//! the runtime, signals, and printing the outcome.

use anyhow::{bail, Context};
use bowline_mesh::up::{self, Bootstraps, ControlPlaneAddr, Running, Stop, UpOptions};
use bowline_mesh::Manifest;
use std::net::SocketAddr;
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
    let options = UpOptions {
        manifest_path,
        capture: match mode {
            CaptureMode::Transparent => up::CaptureMode::Transparent,
            CaptureMode::Explicit => up::CaptureMode::Explicit,
        },
        proxy_bin,
        self_bin,
        envoy_bin: args.envoy_bin.clone(),
        debug_addr: args.debug_addr,
        ca_dir: args.ca_dir.clone(),
        cert_ttl_s: args.cert_ttl_s,
        ready_timeout: args.ready_timeout,
    };
    up::start(
        manifest,
        &options,
        runtime,
        mesh,
        started,
        stop,
        &CliBootstraps,
    )
}

/// `bowline bootstrap envoy`'s builder, for the mesh's proxies.
struct CliBootstraps;

impl Bootstraps for CliBootstraps {
    fn sidecar(
        &self,
        node_id: &str,
        xds: &ControlPlaneAddr,
        admin: SocketAddr,
        outbound_port: u16,
        inbound_port: u16,
    ) -> serde_json::Value {
        let xds = crate::bootstrap::ControlPlaneAddr {
            addr: xds.addr,
            root_pem: xds.root_pem.clone(),
        };
        crate::bootstrap::sidecar(node_id, &xds, admin, outbound_port, inbound_port)
    }

    fn add_sds_cluster(&self, bootstrap: &mut serde_json::Value, socket: &str) {
        crate::bootstrap::add_sds_cluster(bootstrap, socket)
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
