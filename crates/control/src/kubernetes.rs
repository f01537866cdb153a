//! The control plane on Kubernetes: the API server feeds the store ([`bowline_kube::KubeSource`]),
//! the CA accepts pods' service-account tokens (TokenReview), statuses are written back by
//! the replica holding the Lease, and the sidecar injector answers AdmissionReviews.

use crate::resources::{self, Proxies};
use bowline_kube::status::{writes_status, ObjectStatus, StatusWriter};
use bowline_kube::{Generations, KubeSource};
use bowline_registry::store::Source;
use bowline_registry::watch::Registry;
use bowline_xds_server::SyncStatus;
use std::time::Duration;
use tokio::sync::watch;

/// How the control plane runs on Kubernetes.
pub struct Kubernetes {
    pub client: bowline_kube::kube::Client,
    /// This replica's namespace (where the Lease lives) and pod name (its holder identity).
    pub namespace: String,
    pub pod_name: String,
    /// How long a leader's Lease keeps other replicas out (client-go's default: 15 s).
    pub lease_duration: Duration,
    /// What the injection webhook writes into pods.
    pub inject: bowline_inject::Settings,
    /// The MutatingWebhookConfiguration whose `caBundle` the leader keeps at the mesh root
    /// (Istio's `istio-sidecar-injector`; bowline's is `bowline-sidecar-injector`).
    pub webhook_configuration: Option<String>,
}

/// How many of the proxies that have not programmed an object its status names (Istio's
/// names none; a few help, a thousand in every object of a large mesh cost memory, CPU and
/// API-server writes).
const STATUS_PENDING_NAMES: usize = 5;

/// The Lease the status writer holds.
pub const STATUS_LEASE: &str = "bowline-status-leader";

/// Statuses are recomputed from the store and the proxies' ACKs at most this often, and
/// only after something changed.
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// How long after a change statuses are computed once more, for the analysis findings.
const ANALYSIS_FOLLOW_UP: Duration = Duration::from_secs(2);

/// Whether an entry came from the API server as itself (not derived from a pod).
fn from_api(source: &Source) -> bool {
    match source {
        Source::Kubernetes { path } => !path.to_string_lossy().contains("/pods/"),
        _ => false,
    }
}

/// The statuses the objects from the API should carry now.
pub fn statuses(
    registry: &Registry,
    sync: &SyncStatus,
    generations: &Generations,
) -> Vec<ObjectStatus> {
    let proxies = Proxies::from_sync(sync);
    // Gateway API objects also carry the Gateway API's own status (listeners, parents).
    let gateway_api = bowline_translate::gateway_api_status(&registry.snapshot());
    registry
        .entries_where(|e| {
            let source = e.served.as_ref().map(|s| &s.source);
            let source = source.or(e.refused.as_ref().map(|r| &r.source));
            writes_status(e.key.kind) && source.is_some_and(from_api)
        })
        .into_iter()
        .map(|e| {
            let mut status = resources::status_naming(&e, &proxies, STATUS_PENDING_NAMES);
            resources::gateway_api_status(&e, &gateway_api, &mut status);
            // Kubernetes' meaning: the object generation this status is about.
            if let Some(g) = generations.of(e.key.kind, &e.key.namespace, &e.key.name) {
                status["observedGeneration"] = g.into();
            }
            ObjectStatus {
                kind: e.key.kind,
                namespace: e.key.namespace.clone(),
                name: e.key.name.clone(),
                status,
            }
        })
        .collect()
}

/// Spawns the source, the status computation and the status writer; returns the namespace
/// labels the webhook reads.
pub fn spawn(
    k: &Kubernetes,
    root_pem: Option<String>,
    registry: &Registry,
    sync: SyncStatus,
    stopped: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    tasks: &mut Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
) -> bowline_kube::Namespaces {
    let source = KubeSource::new(
        k.client.clone(),
        registry.clone(),
        bowline_kube::Options::default(),
    );
    let (namespaces, generations) = (source.namespaces(), source.generations());
    let stop = stopped();
    tasks.push((
        "kubernetes source",
        tokio::spawn(async move { source.run(stop).await }),
    ));

    let (tx, rx) = watch::channel(Vec::new());
    let (registry, stop) = (registry.clone(), stopped());
    tasks.push((
        "kubernetes statuses",
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut snapshots = registry.subscribe();
            let mut acks = sync.changes();
            // After the last change, once more: the analysis (validationMessages) runs in
            // the background after each snapshot.
            let mut follow_up: Option<tokio::time::Instant> = None;
            loop {
                let (r, s, g) = (registry.clone(), sync.clone(), generations.clone());
                let now = tokio::task::spawn_blocking(move || statuses(&r, &s, &g)).await?;
                tx.send_if_modified(|old| {
                    let changed = *old != now;
                    if changed {
                        *old = now;
                    }
                    changed
                });
                // Nothing to do until the store or a proxy's sync state changes: an idle
                // mesh costs nothing here. Changes are taken at most every STATUS_EVERY.
                // Some(true): the store or a sync state changed; Some(false): the follow-up.
                let woke = tokio::select! {
                    () = &mut stop => return Ok(()),
                    r = snapshots.changed() => r.is_ok().then_some(true),
                    r = acks.changed() => r.is_ok().then_some(true),
                    () = async {
                        match follow_up {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    } => Some(false),
                };
                match woke {
                    None => return Ok(()),
                    Some(true) => {
                        follow_up = Some(tokio::time::Instant::now() + ANALYSIS_FOLLOW_UP)
                    }
                    Some(false) => follow_up = None,
                }
                tokio::time::sleep(STATUS_EVERY).await;
            }
        }),
    ));
    let elector = bowline_kube::lease::Elector::new(
        k.client.clone(),
        &k.namespace,
        STATUS_LEASE,
        &k.pod_name,
        k.lease_duration,
    );
    let mut writer = StatusWriter::new(k.client.clone(), elector);
    if let Some(root_pem) = root_pem {
        writer = writer.with_publish(bowline_kube::publish::Publish {
            root_pem,
            webhook_configuration: k.webhook_configuration.clone(),
            namespaces: namespaces.clone(),
        });
    }
    let stop = stopped();
    tasks.push((
        "kubernetes status writer",
        tokio::spawn(async move {
            writer.run(rx, stop).await;
            Ok(())
        }),
    ));
    namespaces
}
