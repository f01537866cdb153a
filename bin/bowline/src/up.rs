//! `bowline up [PATH]`: a whole mesh on this machine, run by `bowline_mesh::up`. Here: flags,
//! signals, and printing what it reports. The printed lines are an interface: scripts and
//! tests wait for "bowline up: mesh ready in ", "bowline up: open http://" and
//! "bowline up: stopped; every process, namespace and link removed".

use crate::up_print;
use anyhow::{bail, Context};
use bowline_mesh::state::state_root;
use bowline_mesh::up::{self, Interrupt, Mesh, PartialMesh, UpOptions};
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
    let interrupt = Interrupt::default();
    runtime.block_on(async { watch_signals(interrupt.clone()) });
    // What was started, whatever failed, is stopped below.
    let (outcome, started): (anyhow::Result<()>, Option<PartialMesh>) =
        match prepare(&args, runtime.handle(), started, &interrupt) {
            Err(e) => (Err(e), None),
            Ok((path, manifest, options)) => {
                let on_event = Box::new(move |event| up_print::event(&path, event));
                match Mesh::start(manifest, options, on_event) {
                    Err(failed) => (Err(failed.error.into()), Some(failed.partial)),
                    Ok(mut mesh) => match mesh.wait_ready() {
                        Ok(state) => {
                            up_print::summary(state);
                            runtime.block_on(mesh.supervise());
                            (Ok(()), Some(mesh.into()))
                        }
                        Err(e) => (Err(e.into()), Some(mesh.into())),
                    },
                }
            }
        };
    if let Err(e) = &outcome {
        eprintln!("bowline up: {e:#}");
    }
    println!("bowline up: stopping");
    match (outcome, started.map_or(Ok(()), PartialMesh::stop)) {
        (Ok(()), Ok(())) => {
            println!("bowline up: stopped; every process, namespace and link removed");
            ExitCode::SUCCESS
        }
        (_, Err(e)) => {
            eprintln!(
                "bowline up: cleanup incomplete: {:#}",
                anyhow::Error::from(e)
            );
            ExitCode::FAILURE
        }
        (Err(_), Ok(())) => ExitCode::FAILURE,
    }
}

/// The manifest (with `--gateway-port` applied), where it was found, and the run's options.
fn prepare(
    args: &Args,
    runtime: &tokio::runtime::Handle,
    started: Instant,
    interrupt: &Interrupt,
) -> anyhow::Result<(PathBuf, Manifest, UpOptions)> {
    let path = manifest_path(args.path.as_deref())?;
    let mut manifest = Manifest::load(&path).map_err(anyhow::Error::msg)?;
    if let Some(gw) = &mut manifest.gateway {
        gw.ports.extend(args.gateway_ports.iter().copied());
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let capture = match args.capture {
        Some(CaptureMode::Transparent) => up::CaptureMode::Transparent,
        Some(CaptureMode::Explicit) => up::CaptureMode::Explicit,
        None if root => up::CaptureMode::Transparent,
        None => up::CaptureMode::Explicit,
    };
    let options = UpOptions {
        capture,
        proxy_bin: proxy_binary(args.proxy_bin.as_deref())?,
        self_bin: std::env::current_exe().context("locating the bowline binary")?,
        envoy_bin: args.envoy_bin.clone(),
        debug_addr: args.debug_addr,
        state_root: state_root(),
        ca_dir: args.ca_dir.clone(),
        cert_ttl: Duration::from_secs(args.cert_ttl_s),
        started,
        ready_timeout: Duration::from_secs(args.ready_timeout),
        runtime: runtime.clone(),
        interrupt: interrupt.clone(),
    };
    Ok((path, manifest, options))
}

/// Triggers `interrupt` on SIGINT or SIGTERM (call inside the runtime).
fn watch_signals(interrupt: Interrupt) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        interrupt.trigger();
    });
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
