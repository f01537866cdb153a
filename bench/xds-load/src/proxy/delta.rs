//! Delta (incremental) ADS as Envoy speaks it: a wildcard subscription for CDS and LDS, then
//! `resource_names_subscribe`/`_unsubscribe` for EDS and RDS as the names change; an ACK is
//! the response's nonce alone. On a new stream the proxy tells the server what it holds
//! (`initial_resource_versions`), as Envoy does after a reconnect.

use super::decode::decode;
use super::record::{Kind, Shared};
use super::{absorb, arrived, AdsClient, Resubscribe, StreamEnd, Update};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
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
    let initial: Vec<DeltaDiscoveryRequest> = shared.with(|r| {
        Kind::ALL
            .into_iter()
            .filter(|k| matches!(k, Kind::Cds | Kind::Lds) || !r.wanted[*k as usize].is_empty())
            .map(|k| DeltaDiscoveryRequest {
                type_url: k.type_url().to_string(),
                resource_names_subscribe: r.wanted[k as usize].iter().cloned().collect(),
                initial_resource_versions: r.held[k as usize]
                    .iter()
                    .map(|(name, held)| (name.clone(), held.version.clone()))
                    .collect(),
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
        .delta_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => return StreamEnd::Failed(format!("open: {status}")),
    };
    loop {
        match responses.message().await {
            Ok(Some(response)) => on_response(response, shared, &tx),
            Ok(None) => return StreamEnd::Closed,
            Err(status) => return StreamEnd::Failed(status.to_string()),
        }
    }
}

fn on_response(
    response: DeltaDiscoveryResponse,
    shared: &Shared,
    tx: &UnboundedSender<DeltaDiscoveryRequest>,
) {
    let now = Instant::now();
    let bytes = response.encoded_len();
    let Some(kind) = Kind::from_type_url(&response.type_url) else {
        shared.with(|r| r.troubles.nacks += 1);
        let _ = tx.send(nack(&response, "type not subscribed"));
        return;
    };
    let decoded: Result<Vec<_>, String> = response
        .resources
        .iter()
        .map(|res| {
            let any = res
                .resource
                .as_ref()
                .ok_or_else(|| format!("resource {:?} has no body", res.name))?;
            let (name, held) = decode(kind, any, &res.version)?;
            if !res.name.is_empty() && res.name != name {
                return Err(format!("resource {:?} carries {name:?}", res.name));
            }
            Ok((name, held))
        })
        .collect();
    let changed = match decoded {
        Ok(changed) => changed,
        Err(reason) => {
            shared.with(|r| {
                arrived(r, kind, bytes, now);
                r.troubles.nacks += 1;
                r.acked[kind as usize] = false;
            });
            let _ = tx.send(nack(&response, &reason));
            return;
        }
    };
    for (res, (name, _)) in response.resources.iter().zip(&changed) {
        if let Some(any) = &res.resource {
            shared.check_probe(kind, name, any, now);
        }
    }
    let change = shared.with(|r| {
        arrived(r, kind, bytes, now);
        let update = Update::Patch {
            changed,
            removed: response.removed_resources.clone(),
        };
        absorb(
            r,
            kind,
            &response.system_version_info,
            update,
            shared.expected_clusters,
        )
    });
    let _ = tx.send(DeltaDiscoveryRequest {
        type_url: response.type_url.clone(),
        response_nonce: response.nonce.clone(),
        ..Default::default()
    });
    if let Some(Resubscribe {
        kind,
        wanted,
        before,
    }) = change
    {
        let _ = tx.send(DeltaDiscoveryRequest {
            type_url: kind.type_url().to_string(),
            resource_names_subscribe: wanted.difference(&before).cloned().collect(),
            resource_names_unsubscribe: before.difference(&wanted).cloned().collect(),
            ..Default::default()
        });
    }
}

fn nack(response: &DeltaDiscoveryResponse, reason: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: response.type_url.clone(),
        response_nonce: response.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: INVALID_ARGUMENT,
            message: reason.to_string(),
            details: Vec::new(),
        }),
        ..Default::default()
    }
}
