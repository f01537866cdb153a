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
    /// Plaintext address for ADS and the CA (gRPC, Istio's 15010): for local tools and
    /// tests. Default: 127.0.0.1:15010 without --ca-dir, none with it (then only the secure
    /// port serves). Port 0 picks a free port; the bound address is printed.
    #[arg(long, value_name = "ADDR")]
    xds_addr: Option<SocketAddr>,
    /// TLS address for ADS and the CA (Istio's 15012), with a certificate the mesh CA issues
    /// for the control plane (istiod.istio-system.svc): proxies verify it against the mesh
    /// root. Needs --ca-dir.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:15012",
        requires = "ca_dir"
    )]
    secure_xds_addr: SocketAddr,
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
fn mesh_ca(args: &Args) -> anyhow::Result<Option<MeshCa>> {
    let Some(dir) = &args.ca_dir else {
        return Ok(None);
    };
    let ca = Arc::new(bowline_identity::Ca::load_or_create(dir)?);
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
    let ttl = Duration::from_secs(args.cert_ttl_s);
    Ok(Some(MeshCa::new(ca, tokens, ttl)))
}

/// The mesh CA as the control plane serves it: the CSR API, and the certificate of the
/// control plane's own secure port.
pub struct MeshCa {
    pub ca: Arc<bowline_identity::Ca>,
    pub service: bowline_identity::CertificateService,
    /// Lifetime of the control plane's own certificate (renewed at half of it).
    pub server_ttl: Duration,
}

impl MeshCa {
    pub fn new(
        ca: Arc<bowline_identity::Ca>,
        tokens: bowline_identity::Tokens,
        ttl: Duration,
    ) -> MeshCa {
        MeshCa {
            service: bowline_identity::CertificateService::new(ca.clone(), tokens, ttl_policy(ttl)),
            ca,
            server_ttl: ttl,
        }
    }
}

/// Where the control plane listens.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    /// Plaintext xDS and CA: only when asked for (local tools and tests).
    pub plaintext: Option<SocketAddr>,
    /// xDS and CA over TLS (needs the CA, which issues the certificate).
    pub secure: Option<SocketAddr>,
    pub debug: SocketAddr,
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
    let ca = mesh_ca(&args)?;
    let listen = Listen {
        plaintext: match (&ca, args.xds_addr) {
            (None, None) => Some(SocketAddr::from(([127, 0, 0, 1], 15010))),
            (_, asked) => asked,
        },
        secure: ca.as_ref().map(|_| args.secure_xds_addr),
        debug: args.debug_addr,
    };
    let control = ControlPlane::start(
        vec![args.config.clone()],
        listen,
        Duration::from_millis(args.file_debounce_ms),
        Duration::from_millis(args.push_debounce_ms),
        ca,
    )
    .await?;
    // These lines are the readiness signal scripts and tests wait for.
    if let Some(addr) = control.xds_addr {
        println!("xds listening on {addr}");
    }
    if let Some(addr) = control.secure_xds_addr {
        println!("secure xds listening on {addr}");
    }
    println!("debug listening on {}", control.debug_addr);
    shutdown_signal().await;
    tracing::info!("shutting down");
    control.stop().await
}

/// A running control plane: config watch, xDS server and debug server. `bowline control`
/// runs one as its whole job; `bowline up` runs one in-process beside its workloads.
pub struct ControlPlane {
    /// The plaintext xDS address, when one was asked for.
    pub xds_addr: Option<SocketAddr>,
    /// The TLS xDS address, when the control plane is the CA.
    pub secure_xds_addr: Option<SocketAddr>,
    /// The mesh root proxies verify the secure port against.
    pub root_pem: Option<String>,
    pub debug_addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

impl ControlPlane {
    /// Loads `dirs` (validated together, watched), binds both addresses (port 0 picks one;
    /// the bound ones are in the result) and starts serving.
    pub async fn start(
        dirs: Vec<PathBuf>,
        listen: Listen,
        file_debounce: Duration,
        push_debounce: Duration,
        ca: Option<MeshCa>,
    ) -> anyhow::Result<ControlPlane> {
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let registry = Registry::load_dirs(dirs)
            .with_context(|| format!("cannot read config directory {}", shown.join(", ")))?;
        report_status(&registry);

        let bind = |addr: SocketAddr, what: &'static str| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind the {what} address {addr}"))
        };
        let xds_listener = match listen.plaintext {
            Some(addr) => Some(bind(addr, "xDS").await?),
            None => None,
        };
        let secure = match (listen.secure, &ca) {
            (Some(addr), Some(ca)) => {
                let cert = bowline_identity::control::ServerCert::issue(
                    &ca.ca,
                    bowline_identity::spiffe::DEFAULT_TRUST_DOMAIN,
                    ca.server_ttl,
                )
                .context("the control plane's certificate")?;
                Some((bind(addr, "secure xDS").await?, cert))
            }
            (Some(_), None) => anyhow::bail!("a secure xDS port needs the mesh CA"),
            (None, _) => None,
        };
        if xds_listener.is_none() && secure.is_none() {
            anyhow::bail!("nothing to serve xDS on: give a plaintext or a secure address");
        }
        let debug_listener = bind(listen.debug, "debug").await?;
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
            xds_addr: xds_listener.as_ref().map(|l| l.local_addr()).transpose()?,
            secure_xds_addr: secure.as_ref().map(|(l, _)| l.local_addr()).transpose()?,
            root_pem: ca.as_ref().map(|ca| ca.ca.root_pem().to_string()),
            debug_addr: debug_listener.local_addr()?,
            stop,
            tasks: Vec::new(),
        };
        let watcher = registry.watch(file_debounce, stopped());
        let debug = serve_debug(debug_listener, routes, stopped());
        // The CA (Istio's CSR API) shares the xDS ports, as istiod's does.
        let routes = || {
            let routes = tonic::service::Routes::default();
            match &ca {
                Some(ca) => routes.add_service(ca.service.clone()),
                None => routes,
            }
        };
        let mut tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)> = vec![
            (
                "config watch",
                tokio::spawn(async move { Ok(watcher.await?) }),
            ),
            (
                "debug server",
                tokio::spawn(async move { Ok(debug.await?) }),
            ),
        ];
        if let Some(listener) = xds_listener {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let (server, stop, routes) = (server.clone(), stopped(), routes());
            tasks.push((
                "xDS server",
                tokio::spawn(
                    async move { Ok(server.serve_incoming(incoming, stop, routes).await?) },
                ),
            ));
        }
        if let Some((listener, cert)) = secure {
            let ca = ca.as_ref().expect("a secure port has the CA");
            let renewal = cert.renew_every_half(
                ca.ca.clone(),
                bowline_identity::spiffe::DEFAULT_TRUST_DOMAIN.to_string(),
                ca.server_ttl,
            );
            let tls = cert.server_config().context("the control plane's TLS")?;
            let incoming = bowline_identity::control::accept_tls(listener, tls);
            let (server, stop, routes) = (server.clone(), stopped(), routes());
            tasks.push((
                "secure xDS server",
                tokio::spawn(async move {
                    let served = server.serve_incoming(incoming, stop, routes).await;
                    renewal.abort();
                    Ok(served?)
                }),
            ));
        }
        Ok(ControlPlane { tasks, ..control })
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
        "reloads": status.reloads,
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
