//! Incremental (delta) ADS: responses carry only added or changed resources plus the names
//! of removed ones, tracked per resource by content version.
//!
//! Unlike SotW, a delta request with a stale nonce still changes subscriptions (the client
//! will not repeat them), so only its ACK/NACK part is ignored. The first request of a type is
//! always answered, even with nothing in it, so that the client's initial fetch completes.

use std::collections::BTreeMap;

use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use bowline_xds::type_url;
use tonic::Status;

use crate::acks::{next_nonce, Acks, Reply};
use crate::diff::in_push_order;
use crate::resources::TypeSet;
use crate::status::Protocol;
use crate::stream::{Session, View};
use crate::subscription::Subscription;
use crate::wire::{DeltaResource, DeltaResponse};

pub(crate) struct Delta {
    node_id: String,
    types: BTreeMap<String, DeltaType>,
    acks: Acks,
}

/// A subscribed type.
struct DeltaType {
    subscription: Subscription,
    /// What the client holds, as far as we know: the subscribed part of `base` (the set of
    /// the last response, shared with other proxies), except for the names in `exceptions`.
    base: TypeSet,
    /// Name -> version the client holds (`None`: it holds nothing) where that differs from
    /// `base`: what it reported in `initial_resource_versions`, names it newly subscribed to,
    /// endpoints of re-created clusters. Emptied by every response.
    exceptions: BTreeMap<String, Option<String>>,
}

impl Session for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaResponse;
    const PROTOCOL: Protocol = Protocol::Delta;

    fn reply_nonce(request: &DeltaDiscoveryRequest) -> &str {
        &request.response_nonce
    }

    fn response_nonce(response: &DeltaResponse) -> &str {
        &response.nonce
    }

    fn node(request: &DeltaDiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }

    fn new(node_id: String, _view: &View) -> Self {
        Self {
            node_id,
            types: BTreeMap::new(),
            acks: Acks::default(),
        }
    }

    fn on_request(
        &mut self,
        request: DeltaDiscoveryRequest,
        view: &View,
    ) -> Result<Vec<DeltaResponse>, Status> {
        let type_url = request.type_url.as_str();
        if type_url.is_empty() {
            return Err(Status::invalid_argument(
                "DeltaDiscoveryRequest without type_url",
            ));
        }
        if !request.response_nonce.is_empty() {
            let nonce = request.response_nonce.as_str();
            let error = request.error_detail.as_ref();
            if self.acks.reply(&self.node_id, type_url, nonce, error) == Reply::Stale {
                tracing::debug!(
                    node = self.node_id,
                    r#type = type_url::short(type_url),
                    nonce,
                    "stale nonce: ACK/NACK ignored"
                );
            }
        }
        let first = match self.types.get_mut(type_url) {
            Some(state) => {
                let before = state.subscription.clone();
                let subscription = &mut state.subscription;
                subscription.delta_change(
                    &request.resource_names_subscribe,
                    &request.resource_names_unsubscribe,
                );
                // Names of `base` the client did not want (so never got) and now does.
                if subscription.is_wildcard() && !before.is_wildcard() {
                    for (name, _) in state.base.iter() {
                        if !before.wants(name) {
                            state.exceptions.insert(name.clone(), None);
                        }
                    }
                }
                // The client forgets what it unsubscribed from (`base` is read through the
                // subscription). A newly named resource is resent even if we sent it before:
                // the client may have ignored it while not asking for it.
                state.exceptions.retain(|name, _| subscription.wants(name));
                for name in &request.resource_names_subscribe {
                    state.exceptions.insert(name.clone(), None);
                }
                false
            }
            None => {
                let subscription =
                    Subscription::delta_initial(type_url, &request.resource_names_subscribe);
                // Only the first request of a type on a stream may carry what the client
                // kept from a previous stream.
                let exceptions = request
                    .initial_resource_versions
                    .into_iter()
                    .filter(|(name, _)| subscription.wants(name))
                    .map(|(name, version)| (name, Some(version)))
                    .collect();
                let state = DeltaType {
                    subscription,
                    base: TypeSet::default(),
                    exceptions,
                };
                self.types.insert(type_url.to_string(), state);
                true
            }
        };
        Ok(self.respond(type_url, view, first).into_iter().collect())
    }

    fn on_update(&mut self, _previous: &View, next: &View) -> Vec<DeltaResponse> {
        let mut out = Vec::new();
        for type_url in in_push_order(self.types.keys()) {
            let Some(response) = self.respond(&type_url, next, false) else {
                continue;
            };
            if type_url == type_url::CLUSTER {
                // Envoy re-creates each changed cluster and warms it until it gets its
                // endpoints again; it does not always re-subscribe. Forget that the proxy
                // holds those endpoints so they follow the clusters in this push (measured
                // without it: changed clusters stayed warming for the 15 s fetch timeout).
                if let Some(eds) = self.types.get_mut(type_url::ENDPOINT) {
                    for cluster in &response.resources {
                        eds.exceptions.insert(cluster.name.clone(), None);
                    }
                }
            }
            out.push(response);
        }
        out
    }

    fn acks(&self) -> &Acks {
        &self.acks
    }
}

impl Delta {
    /// The difference between what the client holds and `view` for one type, as a response;
    /// `None` when there is no difference and `always` is false.
    fn respond(&mut self, type_url: &str, view: &View, always: bool) -> Option<DeltaResponse> {
        let state = self.types.get_mut(type_url)?;
        let empty = TypeSet::default();
        let next = view.resources.get(type_url).unwrap_or(&empty);
        if state.exceptions.is_empty() && next.same(&state.base) && !always {
            return None;
        }
        let wants = |name: &str| state.subscription.wants(name);
        let held = |name: &str| -> Option<&str> {
            match state.exceptions.get(name) {
                Some(version) => version.as_deref(),
                None => state
                    .base
                    .get(name)
                    .filter(|_| wants(name))
                    .map(|r| r.version.as_str()),
            }
        };
        // Only names that differ from `base` or are exceptions can need sending.
        let changes = next.changes_since(&state.base);
        let mut candidates: Vec<&String> = changes
            .changed
            .iter()
            .map(|(name, _)| *name)
            .chain(changes.removed.iter().copied())
            .chain(state.exceptions.keys())
            .collect();
        candidates.sort();
        candidates.dedup();
        let mut resources: Vec<DeltaResource> = Vec::new();
        let mut removed_resources: Vec<String> = Vec::new();
        for name in candidates {
            match next.get(name).filter(|_| wants(name)) {
                Some(resource) if held(name) != Some(resource.version.as_str()) => {
                    resources.push(DeltaResource {
                        name: name.clone(),
                        resource: resource.clone(),
                    });
                }
                Some(_) => {}
                None if held(name).is_some() => removed_resources.push(name.clone()),
                None => {}
            }
        }
        state.base = next.clone();
        state.exceptions.clear();
        if resources.is_empty() && removed_resources.is_empty() && !always {
            return None;
        }
        let version = view.generation.to_string();
        let nonce = next_nonce();
        tracing::debug!(
            node = self.node_id,
            r#type = type_url::short(type_url),
            version,
            nonce,
            resources = resources.len(),
            removed = removed_resources.len(),
            "push"
        );
        self.acks.sent(type_url, version.clone(), nonce.clone());
        Some(DeltaResponse {
            system_version_info: version,
            resources,
            type_url: type_url.to_string(),
            removed_resources,
            nonce,
        })
    }
}
