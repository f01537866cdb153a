//! Status written back to the API server: each mesh config object gets what `bowline get`
//! shows for it (accepted or refused with the reasons, and "programmed on N of M proxies")
//! in its `status` subresource, by one replica — the one holding the Lease — while every
//! replica serves xDS on its own. Only objects whose status changed are patched.

use crate::lease::Elector;
use crate::publish::{Publish, Published};
use bowline_config::Kind;
use kube::api::{DynamicObject, Patch, PatchParams};
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

/// What was last sent for one object: the status as computed, and as sent (with times).
struct Written {
    computed: Value,
    sent: Value,
}

/// `status` with every condition's `lastTransitionTime` (Kubernetes' Condition requires
/// it), at the top and nested (a route's `parents[].conditions`, a Gateway's
/// `listeners[].conditions`): kept from what was sent before at the same place while the
/// condition's `status` is unchanged, `now` when it changed or is new.
pub fn stamp_transitions(status: &Value, before: Option<&Value>, now: &str) -> Value {
    let mut out = status.clone();
    stamp(&mut out, before, now);
    out
}

fn stamp(value: &mut Value, before: Option<&Value>, now: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let was = before.and_then(|b| b.get(key));
                if key == "conditions" {
                    stamp_conditions(child, was, now);
                } else {
                    stamp(child, was, now);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                stamp(item, before.and_then(|b| b.get(i)), now);
            }
        }
        _ => {}
    }
}

fn stamp_conditions(conditions: &mut Value, before: Option<&Value>, now: &str) {
    let Some(conditions) = conditions.as_array_mut() else {
        return;
    };
    for c in conditions {
        let previous = before
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|p| p["type"] == c["type"]));
        let time = match previous {
            Some(p) if p["status"] == c["status"] && p["lastTransitionTime"].is_string() => {
                p["lastTransitionTime"].clone()
            }
            _ => Value::from(now),
        };
        c["lastTransitionTime"] = time;
    }
}

fn now_rfc3339() -> String {
    // Seconds, as the API server stores metav1.Time.
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
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
        let mut written: HashMap<(Kind, String, String), Written> = HashMap::new();
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
        written: &mut HashMap<(Kind, String, String), Written>,
    ) {
        for s in statuses.iter().filter(|s| writes_status(s.kind)) {
            let key = (s.kind, s.namespace.clone(), s.name.clone());
            let before = written.get(&key);
            if before.is_some_and(|w| w.computed == s.status) {
                continue;
            }
            let stamped = stamp_transitions(&s.status, before.map(|w| &w.sent), &now_rfc3339());
            let resource = crate::source::api_resource(s.kind);
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &s.namespace, &resource);
            let patch = json!({"status": stamped});
            match api
                .patch_status(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    written.insert(
                        key,
                        Written {
                            computed: s.status.clone(),
                            sent: stamped,
                        },
                    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_times_move_only_when_a_condition_changes() {
        let accepted = |programmed: &str| {
            json!({"conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "accepted"},
                {"type": "Programmed", "status": programmed, "reason": "x", "message": "y"}]})
        };
        let first = stamp_transitions(&accepted("False"), None, "2026-12-07T08:00:00Z");
        assert_eq!(
            first["conditions"][0]["lastTransitionTime"],
            "2026-12-07T08:00:00Z"
        );
        let second = stamp_transitions(&accepted("True"), Some(&first), "2026-12-07T08:00:05Z");
        assert_eq!(
            second["conditions"][0]["lastTransitionTime"],
            "2026-12-07T08:00:00Z"
        );
        assert_eq!(
            second["conditions"][1]["lastTransitionTime"],
            "2026-12-07T08:00:05Z"
        );
    }
}
