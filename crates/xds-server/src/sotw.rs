//! State-of-the-world ADS: every response carries all subscribed resources of its type.
//!
//! Rules (xds_protocol.rst): a request with a nonce is an ACK or NACK and is not answered
//! unless it changes the subscribed names; a stale nonce is ignored; a first request (no
//! nonce) is always answered. `version_info` is the generation at which the type last changed
//! for this proxy, so an unchanged type keeps its version across snapshots.

use std::collections::BTreeMap;

use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use bowline_xds::type_url;
use tonic::Status;

use crate::acks::{next_nonce, Acks, Reply};
use crate::diff::{changed_types, in_push_order, resource_version};
use crate::status::Protocol;
use crate::stream::{Session, View};
use crate::subscription::Subscription;

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
    /// Name -> resource version of the last response, to tell whether a new view changes it.
    sent: BTreeMap<String, String>,
}

impl Session for Sotw {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    const PROTOCOL: Protocol = Protocol::Sotw;

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
    ) -> Result<Vec<DiscoveryResponse>, Status> {
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
            sent: BTreeMap::new(),
        };
        self.types.insert(type_url.to_string(), state);
        Ok(vec![self.respond(type_url, view)])
    }

    fn on_update(&mut self, previous: &View, next: &View) -> Vec<DiscoveryResponse> {
        for changed in changed_types(&previous.resources, &next.resources) {
            self.type_versions.insert(changed, next.generation);
        }
        let mut out = Vec::new();
        let mut clusters_pushed = false;
        for type_url in in_push_order(self.types.keys()) {
            // Envoy re-creates every changed cluster and warms it until it gets endpoints
            // again; its follow-up EDS request names the same resources, which a SotW server
            // must not answer. So endpoints follow every cluster push, as Istio does (without
            // this, measured: changed clusters warmed for Envoy's 15 s initial-fetch timeout).
            let follows_clusters = type_url == type_url::ENDPOINT && clusters_pushed;
            if follows_clusters || self.sent_versions(&type_url, next) != self.types[&type_url].sent
            {
                clusters_pushed |= type_url == type_url::CLUSTER;
                out.push(self.respond(&type_url, next));
            }
        }
        out
    }

    fn acks(&self) -> &Acks {
        &self.acks
    }
}

impl Sotw {
    /// Name -> version of what a response of this type would carry for `view`.
    fn sent_versions(&self, type_url: &str, view: &View) -> BTreeMap<String, String> {
        let Some(state) = self.types.get(type_url) else {
            return BTreeMap::new();
        };
        view.resources
            .get(type_url)
            .into_iter()
            .flatten()
            .filter(|(name, _)| state.subscription.wants(name))
            .map(|(name, resource)| (name.clone(), resource_version(resource)))
            .collect()
    }

    /// Builds the response for a requested type from `view` and books it as sent.
    fn respond(&mut self, type_url: &str, view: &View) -> DiscoveryResponse {
        let sent = self.sent_versions(type_url, view);
        let resources = view
            .resources
            .get(type_url)
            .into_iter()
            .flatten()
            .filter(|(name, _)| sent.contains_key(*name))
            .map(|(_, resource)| resource.clone())
            .collect::<Vec<_>>();
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
            state.sent = sent;
        }
        self.acks.sent(type_url, version.clone(), nonce.clone());
        DiscoveryResponse {
            version_info: version,
            resources,
            type_url: type_url.to_string(),
            nonce,
            ..Default::default()
        }
    }
}
