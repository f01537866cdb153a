//! State-of-the-world ADS as Envoy speaks it: a request per type carries every name wanted
//! (none for the CDS/LDS wildcards); an ACK repeats the response's version and nonce; a
//! changed EDS/RDS name list is a new request carrying the type's last nonce.

use super::decode::decode;
use super::record::{Kind, Shared};
use super::{absorb, arrived, AdsClient, Resubscribe, StreamEnd, Update};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use bowline_xds::pb::google::rpc::Status as RpcStatus;
use bowline_xds::prost::Message;
use std::time::Instant;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio_stream::wrappers::UnboundedReceiverStream;

/// gRPC's INVALID_ARGUMENT, the code Envoy NACKs with.
const INVALID_ARGUMENT: i32 = 3;

/// One stream, from open until it ends.
pub(crate) async fn stream(mut client: AdsClient, node: &Node, shared: &Shared) -> StreamEnd {
    let (tx, rx) = unbounded_channel();
    // Queue the first requests before awaiting the call: a server may answer headers only
    // once it has a request.
    let initial: Vec<DiscoveryRequest> = shared.with(|r| {
        Kind::ALL
            .into_iter()
            .filter(|k| matches!(k, Kind::Cds | Kind::Lds) || !r.wanted[*k as usize].is_empty())
            .map(|k| DiscoveryRequest {
                type_url: k.type_url().to_string(),
                version_info: r.last_version[k as usize].clone(),
                resource_names: r.wanted[k as usize].iter().cloned().collect(),
                ..Default::default()
            })
            .collect()
    });
    for (i, mut request) in initial.into_iter().enumerate() {
        if i == 0 {
            request.node = Some(node.clone());
        }
        let _ = tx.send(request);
    }
    let mut responses = match client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => return StreamEnd::Failed(format!("open: {status}")),
    };
    let mut nonces: [String; 4] = Default::default();
    loop {
        match responses.message().await {
            Ok(Some(response)) => on_response(response, shared, &tx, &mut nonces),
            Ok(None) => return StreamEnd::Closed,
            Err(status) => return StreamEnd::Failed(status.to_string()),
        }
    }
}

fn on_response(
    response: DiscoveryResponse,
    shared: &Shared,
    tx: &UnboundedSender<DiscoveryRequest>,
    nonces: &mut [String; 4],
) {
    let now = Instant::now();
    let bytes = response.encoded_len();
    let Some(kind) = Kind::from_type_url(&response.type_url) else {
        shared.with(|r| r.troubles.nacks += 1);
        let _ = tx.send(nack(&response, "", "type not subscribed"));
        return;
    };
    nonces[kind as usize] = response.nonce.clone();
    let decoded: Result<Vec<_>, String> = response
        .resources
        .iter()
        .map(|any| decode(kind, any, &response.version_info))
        .collect();
    let resources = match decoded {
        Ok(resources) => resources,
        Err(reason) => {
            let last_good = shared.with(|r| {
                arrived(r, kind, bytes, now);
                r.troubles.nacks += 1;
                r.acked[kind as usize] = false;
                r.last_version[kind as usize].clone()
            });
            let _ = tx.send(nack(&response, &last_good, &reason));
            return;
        }
    };
    for (any, (name, _)) in response.resources.iter().zip(&resources) {
        shared.check_probe(kind, name, any, now);
    }
    let (names, change) = shared.with(|r| {
        arrived(r, kind, bytes, now);
        let change = absorb(
            r,
            kind,
            &response.version_info,
            Update::Replace(resources),
            shared.expected_clusters,
        );
        (r.wanted[kind as usize].clone(), change)
    });
    let _ = tx.send(DiscoveryRequest {
        type_url: response.type_url.clone(),
        version_info: response.version_info.clone(),
        response_nonce: response.nonce.clone(),
        resource_names: names.into_iter().collect(),
        ..Default::default()
    });
    if let Some(Resubscribe { kind, wanted, .. }) = change {
        let version = shared.with(|r| r.last_version[kind as usize].clone());
        let _ = tx.send(DiscoveryRequest {
            type_url: kind.type_url().to_string(),
            version_info: version,
            response_nonce: nonces[kind as usize].clone(),
            resource_names: wanted.into_iter().collect(),
            ..Default::default()
        });
    }
}

fn nack(response: &DiscoveryResponse, last_good: &str, reason: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: response.type_url.clone(),
        version_info: last_good.to_string(),
        response_nonce: response.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: INVALID_ARGUMENT,
            message: reason.to_string(),
            details: Vec::new(),
        }),
        ..Default::default()
    }
}
