//! State-of-the-world on the wire.
//!
//! Every request of a type carries the complete list of names wanted (empty for a wildcard),
//! so a changed list is how names are (un)subscribed. An ACK repeats the response's
//! `version_info` and nonce; a NACK carries the last good `version_info`, the nonce and an
//! `error_detail`. A first request on a new stream carries the last ACKed version and no nonce.

use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Status, Streaming};

use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use crate::pb::google::rpc::Status as RpcStatus;

use super::handler::{AdsHandler, Resource};
use super::run::{AdsGrpc, Wire};
use super::state::{name_resource, Change, Received, State, StreamState};

/// gRPC's INVALID_ARGUMENT, the code Envoy NACKs with.
pub(crate) const INVALID_ARGUMENT: i32 = 3;

pub(crate) struct Sotw;

impl Wire for Sotw {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;

    async fn open(
        mut client: AdsGrpc,
        requests: UnboundedReceiverStream<DiscoveryRequest>,
    ) -> Result<Streaming<DiscoveryResponse>, Status> {
        Ok(client
            .stream_aggregated_resources(requests)
            .await?
            .into_inner())
    }

    fn set_node(request: &mut DiscoveryRequest, node: &Node) {
        request.node = Some(node.clone());
    }

    fn initial(state: &State, stream: &mut StreamState) -> Vec<DiscoveryRequest> {
        state
            .order
            .iter()
            .filter(|type_url| state.wanted(type_url))
            .map(|type_url| {
                stream.requested.insert(type_url.clone());
                request(state, stream, type_url)
            })
            .collect()
    }

    fn on_response<H: AdsHandler>(
        state: &mut State,
        stream: &mut StreamState,
        handler: &mut H,
        response: DiscoveryResponse,
    ) -> Vec<DiscoveryRequest> {
        let DiscoveryResponse {
            version_info,
            resources,
            type_url,
            nonce,
            ..
        } = response;
        stream.nonces.insert(type_url.clone(), nonce.clone());
        let mut received = Received {
            type_url: type_url.clone(),
            version: version_info.clone(),
            nonce: nonce.clone(),
            resources: Vec::new(),
            refused: Vec::new(),
            removed: Vec::new(),
            sotw: true,
        };
        for (index, any) in resources.into_iter().enumerate() {
            match name_resource(&type_url, any, index) {
                Ok((name, resource)) => received.resources.push(Resource {
                    name,
                    version: version_info.clone(),
                    resource,
                }),
                Err(refused) => received.refused.push(refused),
            }
        }
        let verdict = state.receive(handler, received);

        let mut reply = request(state, stream, &type_url);
        reply.response_nonce = nonce;
        match verdict.nack {
            None => reply.version_info = version_info,
            Some(message) => {
                reply.error_detail = Some(RpcStatus {
                    code: INVALID_ARGUMENT,
                    message,
                    details: Vec::new(),
                })
            }
        }
        let mut out = vec![reply];
        out.extend(changes(state, stream, verdict.changes));
        out
    }
}

/// Requests for types whose names changed: the whole new list, with the latest nonce of the
/// type on this stream (if any) so the server pairs it with what it sent.
fn changes(state: &State, stream: &mut StreamState, changes: Vec<Change>) -> Vec<DiscoveryRequest> {
    let mut out = Vec::new();
    for change in changes {
        // Nothing wanted and nothing asked yet on this stream: nothing to say.
        if stream.requested.contains(&change.type_url) || state.wanted(&change.type_url) {
            stream.requested.insert(change.type_url.clone());
            out.push(request(state, stream, &change.type_url));
        }
    }
    out
}

/// A request for `type_url` as things stand: its names, last ACKed version and latest nonce.
fn request(state: &State, stream: &StreamState, type_url: &str) -> DiscoveryRequest {
    let t = state.types.get(type_url);
    DiscoveryRequest {
        version_info: t.and_then(|t| t.acked_version.clone()).unwrap_or_default(),
        resource_names: t
            .filter(|t| !t.wildcard)
            .map(|t| t.names.iter().cloned().collect())
            .unwrap_or_default(),
        type_url: type_url.to_string(),
        response_nonce: stream.nonces.get(type_url).cloned().unwrap_or_default(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::Recorder;
    use crate::pack;
    use crate::pb::envoy::config::cluster::v3::Cluster;
    use crate::type_url::{CLUSTER, ENDPOINT, LISTENER};

    fn response(type_url: &str, version: &str, names: &[&str]) -> DiscoveryResponse {
        DiscoveryResponse {
            version_info: version.into(),
            resources: names
                .iter()
                .map(|n| {
                    pack(&Cluster {
                        name: n.to_string(),
                        ..Default::default()
                    })
                })
                .collect(),
            type_url: type_url.into(),
            nonce: format!("nonce-{version}"),
            ..Default::default()
        }
    }

    #[test]
    fn first_requests_are_wildcards_in_configured_order_and_resume_the_acked_version() {
        let mut state = State::new(&[CLUSTER.into(), LISTENER.into()]);
        let mut stream = StreamState::default();
        let first = Sotw::initial(&state, &mut stream);
        let types: Vec<&str> = first.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(types, [CLUSTER, LISTENER]);
        assert!(first.iter().all(|r| r.resource_names.is_empty()
            && r.response_nonce.is_empty()
            && r.version_info.is_empty()));

        let mut handler = Recorder::default();
        Sotw::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response(CLUSTER, "7", &["a"]),
        );
        let again = Sotw::initial(&state, &mut StreamState::default());
        assert_eq!(again[0].version_info, "7");
        assert!(
            again[0].response_nonce.is_empty(),
            "nonces do not survive a stream"
        );
    }

    #[test]
    fn ack_then_the_eds_names_the_handler_needs() {
        let mut state = State::new(&[CLUSTER.into()]);
        let mut stream = StreamState::default();
        Sotw::initial(&state, &mut stream);
        let mut handler = Recorder {
            need: Some(vec!["a", "b"]),
            ..Default::default()
        };
        let out = Sotw::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response(CLUSTER, "1", &["a", "b"]),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(
            (
                out[0].type_url.as_str(),
                out[0].version_info.as_str(),
                out[0].response_nonce.as_str()
            ),
            (CLUSTER, "1", "nonce-1")
        );
        assert!(out[0].error_detail.is_none());
        assert_eq!(
            (out[1].type_url.as_str(), out[1].resource_names.clone()),
            (ENDPOINT, vec!["a".to_string(), "b".into()])
        );
        assert!(
            out[1].response_nonce.is_empty(),
            "first EDS request on this stream"
        );

        // Same names again: just the ACK.
        let out = Sotw::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response(CLUSTER, "2", &["a", "b"]),
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_nack_keeps_the_last_good_version_and_names_the_bad_resource() {
        let mut state = State::new(&[CLUSTER.into()]);
        let mut stream = StreamState::default();
        let mut handler = Recorder::default();
        Sotw::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response(CLUSTER, "1", &["a"]),
        );
        handler.reject = Some("bad".into());
        let out = Sotw::on_response(
            &mut state,
            &mut stream,
            &mut handler,
            response(CLUSTER, "2", &["a", "bad"]),
        );
        let nack = &out[0];
        assert_eq!(nack.version_info, "1");
        assert_eq!(nack.response_nonce, "nonce-2");
        let detail = nack.error_detail.as_ref().expect("error_detail");
        assert_eq!(detail.code, INVALID_ARGUMENT);
        assert!(
            detail.message.ends_with("bad: test says no"),
            "{}",
            detail.message
        );
    }
}
