//! The control plane as a library: the config store and registry (Galley), the translator
//! and xDS server (Pilot) and the CA (Citadel), wired together and served. `bowline control`
//! runs one as its whole job; `bowline up` runs one in-process beside its workloads.
//!
//! Start-up follows parse → bind → spawn: the store is loaded first, then every port is
//! bound (so a port-0 address is known before anything is announced), then the watcher,
//! the xDS servers and the HTTP API run until [`ControlPlane::stop`].

mod api;
mod generator;
pub mod kubernetes;
pub mod resources;
mod webhook;

use anyhow::Context;
use bowline_registry::watch::{Options, Registry};
use bowline_xds_server::{ServerOptions, XdsServer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What a control plane serves and how.
pub struct Settings {
    /// Watched config directories, read together as one config.
    pub dirs: Vec<PathBuf>,
    /// Where the config store persists (what `bowline apply` wrote, and every resource's
    /// last good version); `None` keeps it in memory.
    pub state_dir: Option<PathBuf>,
    pub listen: Listen,
    /// Quiet period after a file event before the files are looked at.
    pub file_debounce: Duration,
    /// How long a file's content must be left alone before it is taken.
    pub file_settle: Duration,
    /// Quiet period after a snapshot change before proxies are pushed.
    pub push_debounce: Duration,
    pub ca: Option<MeshCa>,
    /// Istio's MeshConfig (Istio's defaults unless given).
    pub mesh: bowline_config::MeshConfig,
    /// The Kubernetes API as a source (and status, token review, injection), or none.
    pub kubernetes: Option<kubernetes::Kubernetes>,
    /// DNS names on the control plane's certificate (what proxies dial); empty: Istio's
    /// `istiod.istio-system.svc`.
    pub server_names: Vec<String>,
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
    /// The sidecar injection webhook (HTTPS, needs the CA and Kubernetes).
    pub webhook: Option<SocketAddr>,
}

/// `default` for certificates nobody asked a lifetime for; requests may ask up to Istio's
/// maximum (90 days) or the default if that is longer.
pub fn ttl_policy(default: Duration) -> bowline_identity::TtlPolicy {
    bowline_identity::TtlPolicy {
        default,
        max: default.max(Duration::from_secs(90 * 24 * 3600)),
    }
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
    /// The injection webhook's address, when served.
    pub webhook_addr: Option<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

impl ControlPlane {
    /// Loads the store (persisted state, then the directories), binds every address (port
    /// 0 picks one; the bound ones are in the result) and starts serving.
    pub async fn start(settings: Settings) -> anyhow::Result<ControlPlane> {
        let Settings {
            dirs,
            state_dir,
            listen,
            file_debounce,
            file_settle,
            push_debounce,
            ca,
            mesh,
            kubernetes,
            server_names,
        } = settings;
        let server_names = if server_names.is_empty() {
            vec![bowline_identity::control::CONTROL_PLANE_NAME.to_string()]
        } else {
            server_names
        };
        // On Kubernetes, the CA also takes pods' own service-account tokens.
        let ca = ca.map(|mut ca| {
            if let Some(k) = &kubernetes {
                let reviewer = bowline_kube::token::KubeTokenReviewer::new(
                    k.client.clone(),
                    &mesh.trust_domain,
                );
                ca.service = ca.service.with_reviewer(Arc::new(reviewer));
            }
            ca
        });
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let registry = Registry::open(Options {
            dirs,
            state_dir,
            settle: file_settle,
            mesh: Arc::new(mesh),
        })
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
                let cert = bowline_identity::control::ServerCert::issue_for(
                    &ca.ca,
                    bowline_identity::spiffe::DEFAULT_TRUST_DOMAIN,
                    &server_names,
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
        let webhook_listener = match (listen.webhook, &secure, &kubernetes) {
            (Some(addr), Some(_), Some(_)) => Some(bind(addr, "webhook").await?),
            (Some(_), _, _) => {
                anyhow::bail!(
                    "the injection webhook needs the mesh CA (its certificate) and Kubernetes"
                )
            }
            (None, _, _) => None,
        };
        let server = XdsServer::new(
            generator::MeshGenerator::default(),
            registry.subscribe(),
            ServerOptions {
                debounce: push_debounce,
                ..ServerOptions::default()
            },
        );
        let sync = server.sync_status();

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
            webhook_addr: webhook_listener
                .as_ref()
                .map(|l| l.local_addr())
                .transpose()?,
            stop,
            tasks: Vec::new(),
        };
        let watcher = registry.clone().watch(file_debounce, stopped());
        let debug = api::serve(
            debug_listener,
            api::State {
                registry: registry.clone(),
                sync: sync.clone(),
            },
            stopped(),
        );
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
        if let Some(k) = &kubernetes {
            let stopped_boxed =
                || -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
                    Box::pin(stopped())
                };
            let namespaces = kubernetes::spawn(
                k,
                control.root_pem.clone(),
                &registry,
                sync.clone(),
                stopped_boxed,
                &mut tasks,
            );
            if let (Some(listener), Some((_, cert))) = (webhook_listener, &secure) {
                let tls = cert.https_config().context("the webhook's TLS")?;
                let injector = webhook::Injector {
                    namespaces,
                    settings: Arc::new(k.inject.clone()),
                };
                let stop = stopped();
                tasks.push((
                    "injection webhook",
                    tokio::spawn(webhook::serve(listener, tls, injector, stop)),
                ));
            }
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

pub(crate) fn configz(registry: &Registry) -> serde_json::Value {
    let status = registry.status();
    let mesh = registry.snapshot().mesh.clone();
    let rejected: serde_json::Map<String, serde_json::Value> = status
        .rejected
        .iter()
        .map(|(file, diags)| {
            let lines = diags.iter().map(|d| d.to_string().into()).collect();
            (file.display().to_string(), serde_json::Value::Array(lines))
        })
        .collect();
    serde_json::json!({
        "mesh": {
            "trustDomain": mesh.trust_domain,
            "rootNamespace": mesh.root_namespace,
            "pathNormalization": format!("{:?}", mesh.path_normalization.normalization),
            "outboundTrafficPolicy": format!("{:?}", mesh.outbound_traffic_policy.mode),
        },
        "config_dir": registry.dir().display().to_string(),
        "config_dirs": registry.dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        "generation": status.generation,
        "last_reload_ms": status.last_reload_ms,
        "reloads": status.reloads,
        // The analysis runs in the background: its findings among `warnings` are of this
        // generation (at most a moment behind `generation`).
        "analysed_generation": status.analysed,
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
