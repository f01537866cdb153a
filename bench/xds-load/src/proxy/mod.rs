//! One simulated Envoy sidecar: its own gRPC connection to the control plane, one ADS stream
//! (SotW or delta), Envoy's subscription behaviour (CDS and LDS as wildcards, then EDS for
//! the EDS clusters and RDS for the routes the listeners name), ACKs, and reconnects with
//! backoff. Every break is counted in the proxy's [`Record`].

pub mod decode;
mod delta;
pub mod record;
mod sotw;

use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use bowline_xds::pb::google::protobuf::{value, Struct, Value};
use record::{Held, Kind, Record, Shared};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

use crate::mesh::Identity;

pub(crate) type AdsClient = AggregatedDiscoveryServiceClient<Channel>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Which ADS variant a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Sotw,
    Delta,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sotw => "sotw",
            Protocol::Delta => "delta",
        }
    }
}

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The server ended it without an error.
    Closed,
    /// A gRPC status or transport error, as text.
    Failed(String),
}

/// The node as bowline's sidecar bootstraps send it (crates/bootstrap/src/build.rs): Istio's
/// id, cluster `<workload>.<ns>`, and the metadata the generators read.
pub fn node(identity: &Identity) -> Node {
    let s = |v: &str| Value {
        kind: Some(value::Kind::StringValue(v.to_string())),
    };
    let fields: BTreeMap<String, Value> = [
        ("OUTBOUND_PORT", s("15001")),
        ("INBOUND_PORT", s("15006")),
        ("INTERCEPTION_MODE", s("NONE")),
        ("NAMESPACE", s(&identity.namespace)),
        ("WORKLOAD_NAME", s(&identity.workload)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Node {
        id: identity.node_id.clone(),
        cluster: format!("{}.{}", identity.workload, identity.namespace),
        metadata: Some(Struct {
            fields: fields.into_iter().collect(),
        }),
        ..Default::default()
    }
}

/// Runs one proxy until its task is aborted: connect, stream, and on any break back off
/// (100 ms doubling to 5 s; reset after a stream that received something) and reconnect.
pub async fn run(addr: SocketAddr, protocol: Protocol, node: Node, shared: Shared) {
    let endpoint = match Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true),
        Err(_) => return,
    };
    let mut backoff = BACKOFF_FIRST;
    let mut streams = 0u64;
    loop {
        let channel = match endpoint.connect().await {
            Ok(c) => c,
            Err(error) => {
                shared.with(|r| {
                    r.troubles.connect_failures += 1;
                    r.last_error = Some(format!("connect: {error}"));
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let client = AdsClient::new(channel).max_decoding_message_size(usize::MAX);
        let before = shared.with(|r| {
            r.first_connect.get_or_insert_with(Instant::now);
            if streams > 0 {
                r.troubles.reconnects += 1;
            }
            r.responses.iter().sum::<u64>()
        });
        streams += 1;
        let end = match protocol {
            Protocol::Sotw => sotw::stream(client, &node, &shared).await,
            Protocol::Delta => delta::stream(client, &node, &shared).await,
        };
        let received = shared.with(|r| {
            match end {
                StreamEnd::Closed => r.troubles.server_closed += 1,
                StreamEnd::Failed(error) => {
                    r.troubles.stream_errors += 1;
                    r.last_error = Some(error);
                }
            }
            r.responses.iter().sum::<u64>() > before
        });
        if received {
            backoff = BACKOFF_FIRST;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// A response's resources, as the record takes them.
pub(crate) enum Update {
    /// SotW: the complete set for the type.
    Replace(Vec<(String, Held)>),
    /// Delta: these added or changed, those removed.
    Patch {
        changed: Vec<(String, Held)>,
        removed: Vec<String>,
    },
}

/// A change of the names subscribed for EDS or RDS.
pub(crate) struct Resubscribe {
    pub kind: Kind,
    pub wanted: BTreeSet<String>,
    pub before: BTreeSet<String>,
}

/// Records one accepted response of `kind` (counted, timed, held, ACKed) and returns the
/// EDS/RDS subscription change it causes, if any.
pub(crate) fn absorb(
    r: &mut Record,
    kind: Kind,
    version: &str,
    update: Update,
    expected_clusters: usize,
) -> Option<Resubscribe> {
    let held = &mut r.held[kind as usize];
    match update {
        Update::Replace(all) => *held = all.into_iter().collect(),
        Update::Patch { changed, removed } => {
            for name in removed {
                held.remove(&name);
            }
            held.extend(changed);
        }
    }
    r.last_version[kind as usize] = version.to_string();
    r.acked[kind as usize] = true;
    let dependent = match kind {
        Kind::Cds => Some(Kind::Eds),
        Kind::Lds => Some(Kind::Rds),
        _ => None,
    };
    let change = dependent.and_then(|dep| {
        let wanted: BTreeSet<String> = r.held[kind as usize]
            .values()
            .flat_map(|h| h.refs.iter().cloned())
            .collect();
        if wanted == r.wanted[dep as usize] {
            return None;
        }
        // Names no longer wanted are dropped, as Envoy drops a removed cluster's endpoints.
        r.held[dep as usize].retain(|name, _| wanted.contains(name));
        let before = &mut r.wanted[dep as usize];
        Some(Resubscribe {
            kind: dep,
            before: std::mem::replace(before, wanted.clone()),
            wanted,
        })
    });
    if r.complete_at.is_none() && r.is_complete(expected_clusters) {
        r.complete_at = Some(Instant::now());
    }
    change
}

/// Counts a response's arrival (before it is decoded): time, type, bytes.
pub(crate) fn arrived(r: &mut Record, kind: Kind, bytes: usize, now: Instant) {
    r.bytes += bytes as u64;
    r.responses[kind as usize] += 1;
    r.arrivals.push((now, kind));
}
