//! `bowline control`: the control plane. Watches a config directory (Galley), turns each
//! snapshot into per-proxy Envoy resources (Pilot) and serves them over ADS.
//!
//! Start-up follows parse → bind → spawn → drain: flags and config are read first, then both
//! ports are bound (and printed, so `--xds-addr 127.0.0.1:0` is usable), then the watcher,
//! the xDS server and the debug server run until SIGINT/SIGTERM.

use anyhow::Context;
use bowline_registry::watch::Registry;
use bowline_registry::Snapshot;
use bowline_translate::{generate, ProxyView};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::{pack, type_url};
use bowline_xds_server::{
    serve_debug, DebugHandler, Generator, Resources, ServerOptions, XdsServer,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Directory of Istio / Gateway API YAML or JSON files (watched; edits apply live).
    #[arg(long, value_name = "DIR")]
    config: PathBuf,
    /// Address for ADS (gRPC). Port 0 picks a free port; the bound address is printed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15010")]
    xds_addr: SocketAddr,
    /// Address for the debug HTTP server (/debug/syncz, /debug/configz, /ready).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15014")]
    debug_addr: SocketAddr,
    /// Quiet period after a config file changes before it is reloaded.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    file_debounce_ms: u64,
    /// Quiet period after a snapshot changes before proxies are pushed.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    push_debounce_ms: u64,
    /// Serve the mesh CA (Istio's CSR API, on the xDS port) from this directory: a root is
    /// generated there on first start (key mode 0600), or Istio's plug-in files are used.
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// Bearer tokens the CA accepts: one `TOKEN SPIFFE-ID` per line.
    #[arg(long, value_name = "FILE", requires = "ca_dir")]
    ca_tokens: Option<PathBuf>,
    /// Lifetime of issued certificates, in seconds (Istio's default: 24 h).
    #[arg(long, value_name = "SECONDS", default_value_t = 24 * 3600)]
    cert_ttl_s: u64,
}

/// The CA when `--ca-dir` is given: tokens from `--ca-tokens` (one `TOKEN SPIFFE-ID` per
/// line), certificates for `--cert-ttl-s` seconds unless a proxy asks for less.
fn ca_service(args: &Args) -> anyhow::Result<Option<bowline_identity::CertificateService>> {
    let Some(dir) = &args.ca_dir else {
        return Ok(None);
    };
    let ca = bowline_identity::Ca::load_or_create(dir)?;
    tracing::info!(source = ?ca.source, dir = %dir.display(), "CA ready");
    let tokens = bowline_identity::Tokens::default();
    if let Some(file) = &args.ca_tokens {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (token, id) = line.split_once(char::is_whitespace).with_context(|| {
                format!("{}:{}: expected `TOKEN SPIFFE-ID`", file.display(), i + 1)
            })?;
            let id = bowline_identity::SpiffeId::parse(id.trim())
                .with_context(|| format!("{}:{}", file.display(), i + 1))?;
            tokens.insert(token, id);
        }
    }
    Ok(Some(bowline_identity::CertificateService::new(
        std::sync::Arc::new(ca),
        tokens,
        ttl_policy(Duration::from_secs(args.cert_ttl_s)),
    )))
}

/// `default` for certificates nobody asked a lifetime for; requests may ask up to Istio's
/// maximum (90 days) or the default if that is longer.
pub fn ttl_policy(default: Duration) -> bowline_identity::TtlPolicy {
    bowline_identity::TtlPolicy {
        default,
        max: default.max(Duration::from_secs(90 * 24 * 3600)),
    }
}

pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bowline control: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bowline control: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let control = ControlPlane::start(
        vec![args.config.clone()],
        args.xds_addr,
        args.debug_addr,
        Duration::from_millis(args.file_debounce_ms),
        Duration::from_millis(args.push_debounce_ms),
        ca_service(&args)?,
    )
    .await?;
    // These two lines are the readiness signal scripts and tests wait for.
    println!("xds listening on {}", control.xds_addr);
    println!("debug listening on {}", control.debug_addr);
    shutdown_signal().await;
    tracing::info!("shutting down");
    control.stop().await
}

/// A running control plane: config watch, xDS server and debug server. `bowline control`
/// runs one as its whole job; `bowline up` runs one in-process beside its workloads.
pub struct ControlPlane {
    pub xds_addr: SocketAddr,
    pub debug_addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

impl ControlPlane {
    /// Loads `dirs` (validated together, watched), binds both addresses (port 0 picks one;
    /// the bound ones are in the result) and starts serving.
    pub async fn start(
        dirs: Vec<PathBuf>,
        xds_addr: SocketAddr,
        debug_addr: SocketAddr,
        file_debounce: Duration,
        push_debounce: Duration,
        ca: Option<bowline_identity::CertificateService>,
    ) -> anyhow::Result<ControlPlane> {
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let registry = Registry::load_dirs(dirs)
            .with_context(|| format!("cannot read config directory {}", shown.join(", ")))?;
        report_status(&registry);

        let xds_listener = tokio::net::TcpListener::bind(xds_addr)
            .await
            .with_context(|| format!("cannot bind the xDS address {xds_addr}"))?;
        let debug_listener = tokio::net::TcpListener::bind(debug_addr)
            .await
            .with_context(|| format!("cannot bind the debug address {debug_addr}"))?;
        let server = XdsServer::new(
            MeshGenerator,
            registry.subscribe(),
            ServerOptions {
                debounce: push_debounce,
            },
        );
        let sync = server.sync_status();
        let routes: Vec<(String, DebugHandler)> = vec![
            ("/debug/syncz".into(), {
                let sync = sync.clone();
                Arc::new(move || sync.to_json())
            }),
            ("/debug/configz".into(), {
                let registry = registry.clone();
                Arc::new(move || configz(&registry))
            }),
            (
                "/ready".into(),
                Arc::new(|| serde_json::json!({"ready": true})),
            ),
        ];

        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let control = ControlPlane {
            xds_addr: xds_listener.local_addr()?,
            debug_addr: debug_listener.local_addr()?,
            stop,
            tasks: Vec::new(),
        };
        let watcher = registry.watch(file_debounce, stopped());
        let debug = serve_debug(debug_listener, routes, stopped());
        // The CA (Istio's CSR API) shares the xDS port, as istiod's does.
        let mut routes = tonic::service::Routes::default();
        if let Some(ca) = ca {
            routes = routes.add_service(ca);
        }
        let xds = server.serve_with(xds_listener, stopped(), routes);
        Ok(ControlPlane {
            tasks: vec![
                (
                    "config watch",
                    tokio::spawn(async move { Ok(watcher.await?) }),
                ),
                (
                    "debug server",
                    tokio::spawn(async move { Ok(debug.await?) }),
                ),
                ("xDS server", tokio::spawn(async move { Ok(xds.await?) })),
            ],
            ..control
        })
    }

    /// Stops watching and serving; waits for the three tasks to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for (what, task) in self.tasks {
            task.await?.with_context(|| format!("{what} failed"))?;
        }
        Ok(())
    }
}

/// Serves every proxy from the registry's snapshot through the pure translator.
struct MeshGenerator;

impl Generator for MeshGenerator {
    type Snapshot = Snapshot;

    fn generation(snapshot: &Snapshot) -> u64 {
        snapshot.generation
    }

    fn generate(&self, snapshot: &Snapshot, node: &Node) -> Resources {
        let proxy = match ProxyView::from_node(node, snapshot) {
            Ok(proxy) => proxy,
            Err(e) => {
                tracing::warn!(node = %node.id, "cannot serve this proxy: {e}");
                return Resources::new();
            }
        };
        let generated = generate(snapshot, &proxy);
        let mut resources = Resources::new();
        let mut put = |type_url: &str, name: &str, any| {
            resources
                .entry(type_url.to_string())
                .or_default()
                .insert(name.to_string(), any);
        };
        for c in &generated.clusters {
            put(type_url::CLUSTER, &c.name, pack(c));
        }
        for e in &generated.endpoints {
            put(type_url::ENDPOINT, &e.cluster_name, pack(e));
        }
        for l in &generated.listeners {
            put(type_url::LISTENER, &l.name, pack(l));
        }
        for r in &generated.routes {
            put(type_url::ROUTE, &r.name, pack(r));
        }
        resources
    }
}

fn configz(registry: &Registry) -> serde_json::Value {
    let status = registry.status();
    let rejected: serde_json::Map<String, serde_json::Value> = status
        .rejected
        .iter()
        .map(|(file, diags)| {
            let lines = diags.iter().map(|d| d.to_string().into()).collect();
            (file.display().to_string(), serde_json::Value::Array(lines))
        })
        .collect();
    serde_json::json!({
        "config_dir": registry.dir().display().to_string(),
        "config_dirs": registry.dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        "generation": status.generation,
        "last_reload_ms": status.last_reload_ms,
        "rejected": rejected,
        "warnings": status.warnings.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    })
}

fn report_status(registry: &Registry) {
    let status = registry.status();
    for diags in status.rejected.values() {
        for d in diags {
            eprintln!("{d}");
        }
    }
    let snapshot = registry.snapshot();
    tracing::info!(
        generation = status.generation,
        services = snapshot.services.len(),
        workloads = snapshot.workloads.len(),
        refused_files = status.rejected.len(),
        "config loaded from {}",
        registry
            .dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
