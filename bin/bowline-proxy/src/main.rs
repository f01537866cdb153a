//! `bowline-proxy`: parse the bootstrap → bind admin and listeners → serve (and follow the
//! control plane over ADS) → drain on SIGTERM, then exit 0.
//!
//! With `--sidecar` (Kubernetes) the bootstrap is built from the pod's environment
//! ([`sidecar`]), the status port serves readiness and the application's probes
//! ([`status`]), and SIGTERM drains inbound first: readiness 503 at once, `virtualInbound`
//! stops accepting, outbound keeps serving for `BOWLINE_DRAIN_DURATION`, then the usual
//! drain.

mod ads;
mod args;
mod plan;
mod probe;
mod resolve;
mod sidecar;
mod status;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bowline_proxy::drain::Drain;
use bowline_proxy::{Options, Proxy};
use bowline_xds::client::AdsClient;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

use args::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(args.log_filter()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The control thread (admin, ADS, signals) is single-threaded: the data path runs on the
    // workers.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bowline-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bowline-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long the first certificate may take (the CA may still be starting).
const FIRST_CERTIFICATE_DEADLINE: Duration = Duration::from_secs(30);

async fn workload_identity(
    args: &Args,
    token: &str,
    token_file: Option<std::path::PathBuf>,
    plan: &plan::Plan,
) -> Result<bowline_identity::Agent> {
    // The CA is the xDS server unless told otherwise, and then shares its TLS.
    let ca = match args.ca_addr {
        Some(addr) => bowline_identity::api::CaEndpoint { addr, tls: None },
        None => bowline_identity::api::CaEndpoint {
            addr: plan
                .ads
                .as_ref()
                .map(|a| a.endpoint)
                .context("--ca-token needs --ca-addr when there is no xDS server")?,
            tls: plan.control_tls.clone(),
        },
    };
    let config = bowline_identity::AgentConfig {
        ca: ca.clone(),
        token: token.to_string(),
        token_file,
        ttl: args.cert_ttl_s.map(Duration::from_secs),
    };
    bowline_identity::Agent::start(config, FIRST_CERTIFICATE_DEADLINE)
        .await
        .with_context(|| format!("no workload certificate from the CA at {ca}"))
}

/// Sidecar mode's parts, read and checked before any socket opens.
struct Sidecar {
    env: sidecar::SidecarEnv,
    probers: probe::Probers,
}

/// Sidecar mode's environment and probers (None without `--sidecar`): all checked before
/// any socket opens.
fn sidecar_mode(args: &Args) -> Result<Option<Sidecar>> {
    if !args.sidecar {
        return Ok(None);
    }
    if let Some(path) = &args.config {
        anyhow::bail!(
            "--sidecar builds its bootstrap from the environment: drop --config-path {} (or BOWLINE_CONFIG)",
            path.display()
        );
    }
    let env = sidecar::SidecarEnv::read(|name| match name {
        // `--xds-addr` or BOWLINE_XDS_ADDR, as clap read it.
        sidecar::XDS_ADDR => args.xds_addr.as_ref().map(ToString::to_string),
        _ => std::env::var(name).ok(),
    })?;
    let probers = match &env.app_probers {
        Some(json) => probe::parse(json)?,
        None => probe::Probers::new(),
    };
    Ok(Some(Sidecar { env, probers }))
}

/// The bootstrap file's plan, or in sidecar mode the one built from the environment (the
/// control plane's name resolved first).
async fn start_plan(args: &Args, sidecar: Option<&Sidecar>) -> Result<plan::Plan> {
    if let Some(Sidecar { env, .. }) = sidecar {
        let xds = resolve::resolve(&env.xds, Some(env.instance_ip), resolve::RESOLVE_DEADLINE)
            .await
            .context(sidecar::XDS_ADDR)?;
        if env.root_file.is_none() {
            tracing::warn!(
                "{} is not set: the control plane is reached in plaintext",
                sidecar::CA_ROOT_FILE
            );
        }
        let bootstrap = env.bootstrap(xds, sidecar::ADMIN_ADDR);
        return plan::plan(bootstrap, args, None).context("the sidecar bootstrap");
    }
    let path = args
        .config
        .as_ref()
        .context("--config-path (a bootstrap file) is required unless --sidecar")?;
    // Parse: everything that can be wrong with the config is found before a socket opens.
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read bootstrap {}", path.display()))?;
    let bootstrap = bowline_bootstrap::parse_bootstrap(&text)
        .with_context(|| format!("bootstrap {}", path.display()))?;
    let xds_addr = match &args.xds_addr {
        Some(target) => Some(resolve::resolve(target, None, resolve::RESOLVE_DEADLINE).await?),
        None => None,
    };
    plan::plan(bootstrap, args, xds_addr).with_context(|| format!("bootstrap {}", path.display()))
}

/// The CA token: `--ca-token` / BOWLINE_CA_TOKEN, else (sidecar mode) the projected token
/// in BOWLINE_CA_TOKEN_FILE, read now to fail early; the agent reads that file again at each
/// renewal, since the kubelet rotates it.
fn ca_token(args: &Args, sidecar: Option<&Sidecar>) -> Result<Option<String>> {
    if let Some(token) = &args.ca_token {
        return Ok(Some(token.clone()));
    }
    let Some(sidecar) = sidecar else {
        return Ok(None);
    };
    let Some(path) = &sidecar.env.token_file else {
        tracing::warn!(
            "{} is not set: no workload certificate",
            sidecar::CA_TOKEN_FILE
        );
        return Ok(None);
    };
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("{} {}", sidecar::CA_TOKEN_FILE, path.display()))?;
    let token = token.trim();
    if token.is_empty() {
        anyhow::bail!("{} {} is empty", sidecar::CA_TOKEN_FILE, path.display());
    }
    Ok(Some(token.to_owned()))
}

/// The token file the agent re-reads at renewal: sidecar mode's, unless `--ca-token` gave
/// a fixed token.
fn token_file(args: &Args, sidecar: Option<&Sidecar>) -> Option<std::path::PathBuf> {
    match &args.ca_token {
        Some(_) => None,
        None => sidecar.and_then(|s| s.env.token_file.clone()),
    }
}

async fn run(args: Args) -> Result<()> {
    let sidecar = sidecar_mode(&args)?;
    let proxy = Arc::new(Proxy::start(&Options {
        concurrency: args.concurrency.max(1),
    })?);

    // Sidecar mode: the status port comes first, so the application's probes are answered
    // (and readiness says 503) while the proxy still resolves the control plane and waits
    // for its certificate, as pilot-agent's status port does.
    let draining = status::Draining::default();
    let (stop_status, status_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(sidecar) = &sidecar {
        let server = status::StatusServer::new(
            sidecar.env.status_addr,
            proxy.state().clone(),
            sidecar.probers.clone(),
            sidecar.env.instance_ip,
            draining.clone(),
        )
        .await
        .with_context(|| format!("bind status port {}", sidecar.env.status_addr))?;
        let status_addr = server.local_addr()?;
        tracing::info!(probes = sidecar.probers.len(), "application probes");
        // The address last, alone: tests read it from this line.
        tracing::info!("status listening on {status_addr}");
        tokio::spawn(server.run(async {
            let _ = status_stopped.await;
        }));
    }

    let plan = start_plan(&args, sidecar.as_ref()).await?;
    let ca_token = ca_token(&args, sidecar.as_ref())?;

    // Bind.
    let admin = tokio::net::TcpListener::bind(plan.admin)
        .await
        .with_context(|| format!("bind admin {}", plan.admin))?;
    let admin_addr = admin.local_addr()?;
    // The workload certificate comes before any config that could refer to it.
    let _agent = match &ca_token {
        Some(token) => {
            let agent =
                workload_identity(&args, token, token_file(&args, sidecar.as_ref()), &plan).await?;
            proxy.state().set_identity(agent.handle());
            Some(agent)
        }
        None => None,
    };
    let errors = proxy.apply(plan.statics);
    if let Some(error) = errors.into_iter().next() {
        return Err(error).context("static listener");
    }
    if let Some(path) = &args.admin_address_path {
        // Written whole, then renamed: a reader never sees half an address.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, admin_addr.to_string())
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("write {}", path.display()))?;
    }
    tracing::info!(%admin_addr, "admin listening");

    // Spawn.
    let admin_drain = Drain::new();
    tokio::spawn(bowline_proxy::admin::serve(
        admin,
        proxy.state().clone(),
        admin_drain.watch(),
    ));
    // A connection a config push makes wrong (its cluster removed, its network policy now
    // denying it) is closed after the same drain time as a shutdown's.
    proxy
        .state()
        .live
        .set_drain_time(Duration::from_secs(args.drain_time_s));
    let (stop_ads, ads_stopped) = tokio::sync::oneshot::channel::<()>();
    let ads_task = match plan.ads {
        Some(config) => {
            tracing::info!(xds = %config.endpoint, flavor = ?config.flavor, node = %config.node.id, "following the control plane");
            let client = AdsClient::new(config, ads::Handler::new(proxy.clone()));
            Some(tokio::spawn(client.run(async {
                let _ = ads_stopped.await;
            })))
        }
        None => {
            proxy.state().set_ready();
            None
        }
    };

    // Serve until asked to stop.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: draining"),
        _ = sigint.recv() => tracing::info!("SIGINT: draining"),
        () = proxy.state().shutdown_requested() => tracing::info!("quitquitquit: draining"),
    }

    // Sidecar mode: not ready from now on, so the endpoint leaves the Service before
    // anything stops serving.
    draining.start();

    // Drain: stop following the control plane, stop accepting, let requests finish.
    let _ = stop_ads.send(());
    if let Some(mut task) = ads_task {
        if tokio::time::timeout(Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            // No update may apply from here on (one could bring back a drained listener).
            task.abort();
        }
    }
    if let Some(sidecar) = &sidecar {
        drain_inbound_first(&proxy, sidecar.env.drain_duration).await;
    }
    let clean = proxy.drain(Duration::from_secs(args.drain_time_s)).await;
    admin_drain.start();
    let _ = stop_status.send(());
    if clean {
        tracing::info!("drained");
    } else {
        tracing::warn!("drain time over with connections still open; closing them");
    }
    Ok(())
}

/// Sidecar mode's first drain step: the inbound listeners (`virtualInbound`) stop accepting
/// (their established connections are told to finish), while outbound keeps serving for
/// `outbound_for` (the application may still be finishing requests that call out).
///
/// The inbound listeners are removed from the configuration (ADS has stopped, so nothing
/// brings them back): bowline-proxy's listener manager then drains them as it drains any
/// removed listener.
async fn drain_inbound_first(proxy: &Proxy, outbound_for: Duration) {
    let inbound: Vec<String> = proxy
        .state()
        .config
        .load()
        .listeners
        .keys()
        .filter(|name| name.starts_with(INBOUND_LISTENER))
        .cloned()
        .collect();
    tracing::info!(listeners = ?inbound, outbound_for = ?outbound_for, "draining inbound first");
    let errors = proxy.apply(bowline_proxy::Change {
        removed_listeners: inbound,
        ..Default::default()
    });
    for error in errors {
        tracing::warn!(%error, "while draining inbound");
    }
    tokio::time::sleep(outbound_for).await;
}

/// The inbound listener's name, as the control plane (and Istio) call it.
const INBOUND_LISTENER: &str = "virtualInbound";
