//! `bowline-proxy`: parse the bootstrap → bind admin and listeners → serve (and follow the
//! control plane over ADS) → drain on SIGTERM, then exit 0.

mod ads;
mod args;
mod plan;

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
        ttl: args.cert_ttl_s.map(Duration::from_secs),
    };
    bowline_identity::Agent::start(config, FIRST_CERTIFICATE_DEADLINE)
        .await
        .with_context(|| format!("no workload certificate from the CA at {ca}"))
}

async fn run(args: Args) -> Result<()> {
    // Parse: everything that can be wrong with the config is found before a socket opens.
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("read bootstrap {}", args.config.display()))?;
    let bootstrap = bowline_bootstrap::parse_bootstrap(&text)
        .with_context(|| format!("bootstrap {}", args.config.display()))?;
    let plan = plan::plan(bootstrap, &args)
        .with_context(|| format!("bootstrap {}", args.config.display()))?;

    // Bind.
    let admin = tokio::net::TcpListener::bind(plan.admin)
        .await
        .with_context(|| format!("bind admin {}", plan.admin))?;
    let admin_addr = admin.local_addr()?;
    let proxy = Arc::new(Proxy::start(&Options {
        concurrency: args.concurrency.max(1),
    })?);
    // The workload certificate comes before any config that could refer to it.
    let _agent = match &args.ca_token {
        Some(token) => {
            let agent = workload_identity(&args, token, &plan).await?;
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

    // Drain: stop following the control plane, stop accepting, let requests finish.
    let _ = stop_ads.send(());
    if let Some(task) = ads_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    let clean = proxy.drain(Duration::from_secs(args.drain_time_s)).await;
    admin_drain.start();
    if clean {
        tracing::info!("drained");
    } else {
        tracing::warn!("drain time over with connections still open; closing them");
    }
    Ok(())
}
