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
    let registry = Registry::load(&args.config)
        .with_context(|| format!("cannot read config directory {}", args.config.display()))?;
    report_status(&registry);

    let xds_listener = tokio::net::TcpListener::bind(args.xds_addr)
        .await
        .with_context(|| format!("cannot bind --xds-addr {}", args.xds_addr))?;
    let debug_listener = tokio::net::TcpListener::bind(args.debug_addr)
        .await
        .with_context(|| format!("cannot bind --debug-addr {}", args.debug_addr))?;
    // These two lines are the readiness signal scripts and tests wait for.
    println!("xds listening on {}", xds_listener.local_addr()?);
    println!("debug listening on {}", debug_listener.local_addr()?);

    let server = XdsServer::new(
        MeshGenerator,
        registry.subscribe(),
        ServerOptions {
            debounce: Duration::from_millis(args.push_debounce_ms),
        },
    );
    let sync = server.sync_status();
    let routes: Vec<(String, DebugHandler)> = vec![
        ("/debug/syncz".into(), Arc::new(move || sync.to_json())),
        ("/debug/configz".into(), {
            let registry = registry.clone();
            Arc::new(move || configz(&registry))
        }),
        (
            "/ready".into(),
            Arc::new(|| serde_json::json!({"ready": true})),
        ),
    ];

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let watcher = tokio::spawn(
        registry
            .clone()
            .watch(Duration::from_millis(args.file_debounce_ms), stopped()),
    );
    let debug = tokio::spawn(serve_debug(debug_listener, routes, stopped()));
    let xds = tokio::spawn(server.serve(xds_listener, stopped()));

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    watcher.await?.context("config watch failed")?;
    debug.await?.context("debug server failed")?;
    xds.await?.context("xDS server failed")?;
    Ok(())
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
        registry.dir().display()
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
