//! `bowline control`: the control plane. Watches a config directory (Galley), turns each
//! snapshot into per-proxy Envoy resources (Pilot) and serves them over ADS.
//!
//! Start-up follows parse → bind → spawn → drain: flags and config are read first, then both
//! ports are bound (and printed, so `--xds-addr 127.0.0.1:0` is usable), then the watcher,
//! the xDS server and the debug server run until SIGINT/SIGTERM.

use anyhow::Context;
use bowline_control::{ControlPlane, Listen, MeshCa, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Directory of Istio / Gateway API YAML or JSON files (watched; edits apply live).
    /// Optional with --kubernetes, where the API server is the source.
    #[arg(long, value_name = "DIR", required_unless_present = "kubernetes")]
    config: Option<PathBuf>,
    /// Read Services, EndpointSlices, Pods, Namespaces and the mesh config kinds from the
    /// Kubernetes API server (in-cluster, or --kubeconfig / KUBECONFIG), write status back
    /// (one replica, by Lease), and accept pods' service-account tokens at the CA.
    #[arg(long)]
    kubernetes: bool,
    /// The kubeconfig file to reach the API server with [default: in-cluster, then
    /// KUBECONFIG, then ~/.kube/config].
    #[arg(long, value_name = "FILE", requires = "kubernetes")]
    kubeconfig: Option<PathBuf>,
    /// HTTPS address of the sidecar injection webhook (`POST /inject`; Istio's 15017).
    /// Needs --kubernetes and --ca-dir.
    #[arg(long, value_name = "ADDR", requires = "kubernetes")]
    webhook_addr: Option<SocketAddr>,
    /// A DNS name the control plane's certificate carries (repeatable) [default:
    /// istiod.istio-system.svc]. On Kubernetes, the Service proxies dial:
    /// bowline.bowline-system.svc.
    #[arg(long, value_name = "NAME")]
    server_name: Vec<String>,
    /// The injection settings (images, pull policy, native sidecars, the proxy's log level
    /// and resources): `injection.yaml` of the bowline-mesh ConfigMap. --hub and --tag are
    /// the defaults it overrides.
    #[arg(long, value_name = "FILE", requires = "kubernetes")]
    injection_config: Option<PathBuf>,
    /// Image registry and tag of the injected sidecar (`<hub>/bowline-proxy:<tag>`).
    #[arg(long, env = "BOWLINE_HUB", default_value = "ghcr.io/bowline-mesh")]
    hub: String,
    #[arg(long, env = "BOWLINE_TAG", default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,
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
    /// Address for the HTTP API (Istio's 15014): /ready, /debug/syncz, /debug/configz, and
    /// the config API `bowline apply`, `get`, `delete` and `status` use. Unauthenticated:
    /// keep it on loopback.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:15014")]
    debug_addr: SocketAddr,
    /// Quiet period after a config file changes before it is reloaded: a burst of events
    /// (an editor's save, a directory sync) costs one reload. Short, because an endpoint
    /// change has 100 ms to reach the proxies, this included; a file still being written
    /// waits for `--file-settle-ms` anyway.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    file_debounce_ms: u64,
    /// How long a file's content must be left alone before it is taken: a file written in
    /// pieces is never applied halfway. Writing a file elsewhere and renaming it into place
    /// is always safe.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    file_settle_ms: u64,
    /// Where the config store persists: what `bowline apply` wrote and the last good version
    /// of every resource, so a restart serves what was serving even if a file is broken
    /// [default: a directory under the state root named after the config directory].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Istio's MeshConfig (YAML): trustDomain, pathNormalization, outboundTrafficPolicy,
    /// extensionProviders, ... [default: Istio's defaults]. Fields bowline does not apply
    /// yet are warnings; unknown fields are errors.
    #[arg(long, value_name = "FILE")]
    mesh_config: Option<PathBuf>,
    /// Quiet period after a snapshot changes before proxies are pushed.
    #[arg(long, value_name = "MS", default_value_t = 10)]
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
        webhook: args.webhook_addr,
    };
    let mesh = match &args.mesh_config {
        None => bowline_config::MeshConfig::default(),
        Some(path) => {
            let (mesh, diagnostics) = bowline_config::load_mesh_config(path);
            for d in &diagnostics {
                eprintln!("{d}");
            }
            if diagnostics.iter().any(|d| d.is_error()) {
                anyhow::bail!("the mesh config {} has errors", path.display());
            }
            mesh
        }
    };
    // On Kubernetes the API server holds the config: nothing to persist unless asked.
    let state_dir = match (&args.state_dir, &args.config) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(config)) if !args.kubernetes => Some(default_state_dir(config)),
        (None, _) => None,
    };
    let kubernetes = if args.kubernetes {
        Some(kubernetes(&args).await?)
    } else {
        None
    };
    let control = ControlPlane::start(Settings {
        dirs: args.config.iter().cloned().collect(),
        state_dir,
        listen,
        file_debounce: Duration::from_millis(args.file_debounce_ms),
        file_settle: Duration::from_millis(args.file_settle_ms),
        push_debounce: Duration::from_millis(args.push_debounce_ms),
        ca,
        mesh,
        kubernetes,
        server_names: args.server_name.clone(),
    })
    .await?;
    // These lines are the readiness signal scripts and tests wait for.
    if let Some(addr) = control.xds_addr {
        println!("xds listening on {addr}");
    }
    if let Some(addr) = control.secure_xds_addr {
        println!("secure xds listening on {addr}");
    }
    println!("debug listening on {}", control.debug_addr);
    if let Some(addr) = control.webhook_addr {
        println!("webhook listening on {addr}");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    control.stop().await
}

/// The API server client and this replica's place (POD_NAMESPACE, POD_NAME from the
/// downward API; outside a pod, `bowline-system` and the host name).
async fn kubernetes(args: &Args) -> anyhow::Result<bowline_control::kubernetes::Kubernetes> {
    use bowline_kube::kube;
    let config = match &args.kubeconfig {
        Some(file) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(file)
                .with_context(|| format!("cannot read the kubeconfig {}", file.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("the kubeconfig {}", file.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes API server: not in a pod, and no kubeconfig")?,
    };
    let client = kube::Client::try_from(config).context("the Kubernetes client")?;
    let mut inject = bowline_inject::Settings {
        hub: args.hub.clone(),
        tag: args.tag.clone(),
        // The Service's port, which proxies dial (not necessarily the one bound here).
        xds_address: format!(
            "{}:15012",
            args.server_name
                .first()
                .map(String::as_str)
                .unwrap_or("bowline.bowline-system.svc"),
        ),
        ..bowline_inject::Settings::default()
    };
    if let Some(file) = &args.injection_config {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let (docs, error) = bowline_config::yaml::parse(&text);
        if let Some(e) = error {
            anyhow::bail!("{}: {e}", file.display());
        }
        let value = docs
            .first()
            .map(|d| bowline_config::positions::to_json(&d.root).0)
            .unwrap_or_default();
        inject = bowline_inject::config_file::apply(&value, inject)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    }
    // Native sidecars need Kubernetes 1.29 (on by default there); an older server gets
    // classic ones whatever the settings say.
    match client.apiserver_version().await {
        Ok(info) => {
            let minor: u32 = info.minor.trim_end_matches('+').parse().unwrap_or(0);
            let major: u32 = info.major.parse().unwrap_or(0);
            if inject.native_sidecars && (major, minor) < (1, 29) {
                tracing::info!(version = %info.git_version, "no native sidecars before Kubernetes 1.29: injecting classic ones");
                inject.native_sidecars = false;
            }
        }
        Err(e) => tracing::warn!(
            "the API server's version is unknown ({e}): native sidecars as configured"
        ),
    }
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_string());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    Ok(bowline_control::kubernetes::Kubernetes {
        client,
        namespace: env("POD_NAMESPACE", "bowline-system"),
        pod_name: env("POD_NAME", host.trim()),
        lease_duration: Duration::from_secs(
            env("BOWLINE_LEASE_DURATION_S", "15").parse().unwrap_or(15),
        ),
        inject,
        webhook_configuration: args
            .webhook_addr
            .map(|_| "bowline-sidecar-injector".to_string()),
    })
}

/// `<state root>/control/<config dir, made a file name>`: one store per config directory.
fn default_state_dir(config: &std::path::Path) -> PathBuf {
    let absolute = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let name: String = absolute
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    bowline_mesh::state::state_root().join("control").join(name)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
