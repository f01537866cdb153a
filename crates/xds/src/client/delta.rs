//! Incremental (delta) xDS on the wire.
//!
//! The first request of a type on a stream subscribes to all its names (none for a wildcard)
//! and reports `initial_resource_versions` of what is held, so a reconnect is not sent what
//! the proxy already has; later requests subscribe and unsubscribe only what changed. An ACK
//! is the response's nonce; a NACK adds an `error_detail`.

use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Status, Streaming};

use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use crate::pb::google::rpc::Status as RpcStatus;

use super::handler::{AdsHandler, Resource};
use super::run::{AdsGrpc, Wire};
use super::sotw::INVALID_ARGUMENT;
use super::state::{check_type, Change, Received, State, StreamState};

pub(crate) struct Delta;

impl Wire for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;

    async fn open(
        mut client: AdsGrpc,
        requests: UnboundedReceiverStream<DeltaDiscoveryRequest>,
    ) -> Result<Streaming<DeltaDiscoveryResponse>, Status> {
        Ok(client
            .delta_aggregated_resources(requests)
            .await?
            .into_inner())
    }

    fn set_node(request: &mut DeltaDiscoveryRequest, node: &Node) {
        request.node = Some(node.clone());
    }

    fn initial(state: &State, stream: &mut StreamState) -> Vec<DeltaDiscoveryRequest> {
        state
            .order
            .iter()
            .filter(|type_url| state.wanted(type_url))
            .map(|type_url| first_request(state, stream, type_url))
            .collect()
    }

    fn on_response<H: AdsHandler>(
        state: &mut State,
        stream: &mut StreamState,
        handler: &mut H,
        response: DeltaDiscoveryResponse,
    ) -> Vec<DeltaDiscoveryRequest> {
        let DeltaDiscoveryResponse {
            system_version_info,
            resources,
            type_url,
            removed_resources,
            nonce,
            ..
        } = response;
        stream.nonces.insert(type_url.clone(), nonce.clone());
        let mut received = Received {
            type_url: type_url.clone(),
            version: system_version_info,
            nonce: nonce.clone(),
            resources: Vec::new(),
            refused: Vec::new(),
            removed: removed_resources,
            sotw: false,
        };
        for resource in resources {
            let Some(any) = resource.resource else {
                let reason = "resource without a body".to_string();
                received.refused.push((resource.name, reason));
                continue;
            };
            match check_type(&type_url, &resource.name, &any) {
                Ok(()) => received.resources.push(Resource {
                    name: resource.name,
                    version: resource.version,
                    resource: any,
                }),
                Err(refused) => received.refused.push(refused),
            }
        }
        let verdict = state.receive(handler, received);

        let reply = DeltaDiscoveryRequest {
            type_url,
            response_nonce: nonce,
            error_detail: verdict.nack.map(|message| RpcStatus {
                code: INVALID_ARGUMENT,
                message,
                details: Vec::new(),
            }),
            ..Default::default()
        };
        let mut out = vec![reply];
        out.extend(changes(state, stream, verdict.changes));
        out
    }
}

/// The first request of a type on a stream: every name, and what is held of them.
fn first_request(state: &State, stream: &mut StreamState, type_url: &str) -> DeltaDiscoveryRequest {
    stream.requested.insert(type_url.to_string());
    let t = &state.types[type_url];
    DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        // Empty for a wildcard: the legacy wildcard form every server understands.
        resource_names_subscribe: t.names.iter().cloned().collect(),
        initial_resource_versions: t
            .resources
            .iter()
            .map(|(name, version)| (name.clone(), version.clone()))
            .collect(),
        ..Default::default()
    }
}

/// Requests for types whose names changed: the differences, or a first request.
fn changes(
    state: &State,
    stream: &mut StreamState,
    changes: Vec<Change>,
) -> Vec<DeltaDiscoveryRequest> {
    let mut out = Vec::new();
    for change in changes {
        if stream.requested.contains(&change.type_url) {
            out.push(DeltaDiscoveryRequest {
                type_url: change.type_url,
                resource_names_subscribe: change.added,
                resource_names_unsubscribe: change.removed,
                ..Default::default()
            });
        } else if state.wanted(&change.type_url) {
            out.push(first_request(state, stream, &change.type_url));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::Recorder;
    use crate::pack;
    use crate::pb::envoy::config::cluster::v3::Cluster;
    use crate::pb::envoy::service::discovery::v3::Resource as WireResource;
    use crate::type_url::{CLUSTER, ENDPOINT};

    fn response(version: &str, names: &[&str], removed: &[&str]) -> DeltaDiscoveryResponse {
        DeltaDiscoveryResponse {
            system_version_info: version.into(),
            resources: names
                .iter()
                .map(|n| WireResource {
                    name: n.to_string(),
                    version: format!("{n}@{version}"),
                    resource: Some(pack(&Cluster {
                        name: n.to_string(),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            type_url: CLUSTER.into(),
            removed_resources: removed.iter().map(|s| s.to_string()).collect(),
            nonce: format!("nonce-{version}"),
            ..Default::default()
        }
    }

    #[test]
    fn a_reconnect_reports_what_is_held_and_resubscribes_named_types() {
        let mut state = State::new(&[CLUSTER.into()]);
        let mut stream = StreamState::default();
        let mut handler = Recorder {
            need: Some(vec!["a"]),
            ..Default::default()
        };
        let out = Delta::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response("1", &["a", "b"], &[]),
        );
        assert_eq!(out[0].response_nonce, "nonce-1");
        assert!(out[0].error_detail.is_none());
        assert_eq!(out[1].type_url, ENDPOINT);
        assert_eq!(out[1].resource_names_subscribe, ["a"]);

        handler.need = None;
        Delta::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response("2", &[], &["b"]),
        );
        assert_eq!(handler.updates.last().unwrap().removed, ["b"]);

        let again = Delta::initial(&state, &mut StreamState::default());
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].type_url, CLUSTER);
        assert!(again[0].resource_names_subscribe.is_empty());
        assert_eq!(
            again[0]
                .initial_resource_versions
                .get("a")
                .map(String::as_str),
            Some("a@1")
        );
        assert_eq!(again[0].initial_resource_versions.len(), 1);
        assert_eq!(again[1].type_url, ENDPOINT);
        assert_eq!(again[1].resource_names_subscribe, ["a"]);
    }

    #[test]
    fn later_subscription_changes_are_differences() {
        let mut state = State::new(&[CLUSTER.into()]);
        let mut stream = StreamState::default();
        let mut handler = Recorder {
            need: Some(vec!["a", "b"]),
            ..Default::default()
        };
        Delta::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response("1", &["a"], &[]),
        );
        handler.need = Some(vec!["b", "c"]);
        let out = Delta::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response("2", &["c"], &[]),
        );
        assert_eq!(out[1].resource_names_subscribe, ["c"]);
        assert_eq!(out[1].resource_names_unsubscribe, ["a"]);
        assert!(out[1].initial_resource_versions.is_empty());
    }

    #[test]
    fn a_resource_without_body_is_refused_by_name() {
        let mut state = State::new(&[CLUSTER.into()]);
        let mut stream = StreamState::default();
        let mut handler = Recorder::default();
        let mut bad = response("1", &["a", "b"], &[]);
        bad.resources[1].resource = None;
        let out = Delta::on_response(&mut state, &mut stream, &mut handler, bad);
        let message = &out[0].error_detail.as_ref().unwrap().message;
        assert!(message.ends_with("b: resource without a body"), "{message}");
        assert_eq!(handler.updates[0].resources.len(), 1);
    }
}
