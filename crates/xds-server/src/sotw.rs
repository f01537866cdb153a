//! State-of-the-world ADS: every response carries all subscribed resources of its type.
//!
//! Rules (xds_protocol.rst): a request with a nonce is an ACK or NACK and is not answered
//! unless it changes the subscribed names; a stale nonce is ignored; a first request (no
//! nonce) is always answered. `version_info` is the generation at which the type last changed
//! for this proxy, so an unchanged type keeps its version across snapshots. CDS and LDS
//! responses carry the whole set; the other types carry only what changed.

use std::collections::BTreeMap;

use bowline_xds::pb::envoy::config::core::v3::Node;
use std::sync::Arc;

use bowline_xds::pb::envoy::service::discovery::v3::DiscoveryRequest;
use bowline_xds::type_url;
use tonic::Status;

use crate::acks::{next_nonce, Acks, Reply};
use crate::diff::in_push_order;
use crate::resources::{Packed, TypeSet};
use crate::status::Protocol;
use crate::stream::{Session, View};
use crate::subscription::Subscription;
use crate::wire::SotwResponse;

pub(crate) struct Sotw {
    node_id: String,
    types: BTreeMap<String, SotwType>,
    /// Generation at which each type's resources last changed for this proxy.
    type_versions: BTreeMap<String, u64>,
    /// Version of a type that has not changed since the stream opened.
    initial_generation: u64,
    acks: Acks,
}

/// A requested type.
struct SotwType {
    subscription: Subscription,
    /// The set the last response was taken from: the proxy holds its subscribed part.
    sent: TypeSet,
}

impl Session for Sotw {
    type Request = DiscoveryRequest;
    type Response = SotwResponse;
    const PROTOCOL: Protocol = Protocol::Sotw;

    fn reply_nonce(request: &DiscoveryRequest) -> &str {
        &request.response_nonce
    }

    fn response_nonce(response: &SotwResponse) -> &str {
        &response.nonce
    }

    fn node(request: &DiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }

    fn new(node_id: String, view: &View) -> Self {
        Self {
            node_id,
            types: BTreeMap::new(),
            type_versions: BTreeMap::new(),
            initial_generation: view.generation,
            acks: Acks::default(),
        }
    }

    fn on_request(
        &mut self,
        request: DiscoveryRequest,
        view: &View,
    ) -> Result<Vec<SotwResponse>, Status> {
        let type_url = request.type_url.as_str();
        if type_url.is_empty() {
            return Err(Status::invalid_argument(
                "DiscoveryRequest without type_url",
            ));
        }
        let previous = self.types.get(type_url).map(|t| &t.subscription);
        let subscription = Subscription::sotw(type_url, previous, &request.resource_names);
        // A nonce for a type never answered on this stream cannot be a reply to us (e.g. a
        // client carrying it over a reconnect): treat the request as a first request.
        if previous.is_some() && !request.response_nonce.is_empty() {
            let nonce = request.response_nonce.as_str();
            let error = request.error_detail.as_ref();
            if self.acks.reply(&self.node_id, type_url, nonce, error) == Reply::Stale {
                tracing::debug!(
                    node = self.node_id,
                    r#type = type_url::short(type_url),
                    nonce,
                    "ignoring stale nonce"
                );
                return Ok(Vec::new());
            }
            if previous == Some(&subscription) {
                return Ok(Vec::new());
            }
        }
        let state = SotwType {
            subscription,
            sent: TypeSet::default(),
        };
        self.types.insert(type_url.to_string(), state);
        Ok(vec![self.respond(type_url, view, None)])
    }

    fn on_update(&mut self, previous: &View, next: &View) -> Vec<SotwResponse> {
        for changed in next.resources.changed_types(&previous.resources) {
            self.type_versions.insert(changed, next.generation);
        }
        let mut out = Vec::new();
        // Clusters pushed in this update: Envoy re-creates each and warms it until it gets
        // its endpoints again; its follow-up EDS request names the same resources, which a
        // SotW server must not answer. So their endpoints follow in this push, as Istio does
        // (without this, measured: changed clusters warmed for Envoy's 15 s fetch timeout).
        let mut pushed_clusters: Vec<String> = Vec::new();
        for type_url in in_push_order(self.types.keys()) {
            let empty = TypeSet::default();
            let set = next.resources.get(&type_url).unwrap_or(&empty);
            let state = &self.types[&type_url];
            let wants = |name: &str| state.subscription.wants(name);
            let changes = set.changes_since(&state.sent);
            let changed: Vec<String> = changes
                .changed
                .iter()
                .filter(|(name, _)| wants(name))
                .map(|(name, _)| (*name).clone())
                .collect();
            let removed = changes.removed.iter().any(|name| wants(name));
            if type_url::is_wildcard(&type_url) {
                // CDS and LDS: every response is the complete set.
                if !changed.is_empty() || removed {
                    if type_url == type_url::CLUSTER {
                        pushed_clusters = changed;
                    }
                    out.push(self.respond(&type_url, next, None));
                }
                continue;
            }
            // EDS, RDS and the rest: only what changed travels (xds_protocol.rst: only
            // Listener and Cluster responses must carry the whole state of the world).
            let mut names = changed;
            if type_url == type_url::ENDPOINT {
                names.extend(
                    pushed_clusters
                        .iter()
                        .filter(|name| wants(name) && set.contains(name))
                        .cloned(),
                );
                names.sort();
                names.dedup();
            }
            if names.is_empty() {
                // Nothing the proxy holds changed: remember the set so the next diff is short.
                if let Some(state) = self.types.get_mut(&type_url) {
                    state.sent = set.clone();
                }
            } else {
                out.push(self.respond(&type_url, next, Some(&names)));
            }
        }
        out
    }

    fn acks(&self) -> &Acks {
        &self.acks
    }
}

impl Sotw {
    /// Builds the response for a requested type from `view`: the named resources, or every
    /// subscribed one when `only` is `None`. Books `view`'s set as what the proxy holds.
    fn respond(&mut self, type_url: &str, view: &View, only: Option<&[String]>) -> SotwResponse {
        let empty = TypeSet::default();
        let set = view.resources.get(type_url).unwrap_or(&empty);
        let resources: Vec<Arc<Packed>> = match (only, self.types.get(type_url)) {
            (Some(names), _) => names
                .iter()
                .filter_map(|name| set.get(name))
                .cloned()
                .collect(),
            (None, Some(state)) => set
                .iter()
                .filter(|(name, _)| state.subscription.wants(name))
                .map(|(_, r)| r.clone())
                .collect(),
            (None, None) => Vec::new(),
        };
        let version = self
            .type_versions
            .get(type_url)
            .copied()
            .unwrap_or(self.initial_generation)
            .to_string();
        let nonce = next_nonce();
        tracing::debug!(
            node = self.node_id,
            r#type = type_url::short(type_url),
            version,
            nonce,
            resources = resources.len(),
            "push"
        );
        if let Some(state) = self.types.get_mut(type_url) {
            state.sent = set.clone();
        }
        self.acks.sent(type_url, version.clone(), nonce.clone());
        SotwResponse {
            version_info: version,
            resources,
            type_url: type_url.to_string(),
            nonce,
        }
    }
}
