//! Status written back to the API server: each mesh config object gets what `bowline get`
//! shows for it (accepted or refused with the reasons, and "programmed on N of M proxies")
//! in its `status` subresource, by one replica — the one holding the Lease — while every
//! replica serves xDS on its own. Only objects whose status changed are patched.

use crate::lease::Elector;
use crate::publish::{Publish, Published};
use bowline_config::Kind;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use std::collections::HashMap;
use tokio::sync::watch;

/// The status one object should carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectStatus {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub status: Value,
}

/// Whether bowline writes a kind's status: mesh config yes; Services (and the pods behind
/// WorkloadEntries it derives) belong to Kubernetes.
pub fn writes_status(kind: Kind) -> bool {
    kind != Kind::Service
}

/// Patches statuses while this replica leads.
pub struct StatusWriter {
    client: Client,
    elector: Elector,
    leading: watch::Sender<bool>,
    publish: Option<Publish>,
}

impl StatusWriter {
    pub fn new(client: Client, elector: Elector) -> StatusWriter {
        StatusWriter {
            client,
            elector,
            leading: watch::channel(false).0,
            publish: None,
        }
    }

    /// Also publishes the root (ConfigMaps, the webhook's caBundle) while leading, at each
    /// lease renewal.
    pub fn with_publish(mut self, publish: Publish) -> StatusWriter {
        self.publish = Some(publish);
        self
    }

    /// Whether this replica leads (and so writes status).
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Follows `statuses` until `shutdown`; the lease is tried and renewed every
    /// [`Elector::renew_every`].
    pub async fn run(
        self,
        mut statuses: watch::Receiver<Vec<ObjectStatus>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut written: HashMap<(Kind, String, String), Value> = HashMap::new();
        let mut published = Published::default();
        let mut renew = tokio::time::interval(self.elector.renew_every());
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = renew.tick() => {
                    let leads = match self.elector.try_lead().await {
                        Ok(leads) => leads,
                        Err(e) => {
                            tracing::warn!("kubernetes: the status lease: {e}");
                            false
                        }
                    };
                    if leads != *self.leading.borrow() {
                        tracing::info!(leads, "kubernetes: status writer lease");
                        // A new leader does not know what the last one wrote.
                        written.clear();
                        published = Published::default();
                        self.leading.send_replace(leads);
                    }
                    if let (true, Some(publish)) = (leads, &self.publish) {
                        publish.publish(&self.client, &mut published).await;
                    }
                }
                changed = statuses.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            if *self.leading.borrow() {
                let current = statuses.borrow_and_update().clone();
                self.write(&current, &mut written).await;
            }
        }
    }

    async fn write(
        &self,
        statuses: &[ObjectStatus],
        written: &mut HashMap<(Kind, String, String), Value>,
    ) {
        for s in statuses.iter().filter(|s| writes_status(s.kind)) {
            let key = (s.kind, s.namespace.clone(), s.name.clone());
            if written.get(&key) == Some(&s.status) {
                continue;
            }
            let gvk = GroupVersionKind::gvk(s.kind.group(), "v1", s.kind.as_str());
            let resource = ApiResource::from_gvk_with_plural(&gvk, s.kind.plural());
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &s.namespace, &resource);
            let patch = json!({"status": s.status});
            match api
                .patch_status(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    written.insert(key, s.status.clone());
                }
                // Gone since: its delete event is on its way.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => tracing::warn!(
                    "kubernetes: status of {} {}/{}: {e}",
                    s.kind.as_str(),
                    s.namespace,
                    s.name
                ),
            }
        }
        let current: std::collections::HashSet<(Kind, &str, &str)> = statuses
            .iter()
            .map(|s| (s.kind, s.namespace.as_str(), s.name.as_str()))
            .collect();
        written.retain(|k, _| current.contains(&(k.0, k.1.as_str(), k.2.as_str())));
    }
}
