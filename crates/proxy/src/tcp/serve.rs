//! A connection on a tcp_proxy filter chain: pick the cluster (once) and an endpoint,
//! connect, register the connection with what it depends on, and copy bytes until either
//! side is done — or until a config push made the connection wrong and the drain time has
//! passed (see `listener::recheck`), when it is shut down both ways and counted.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::listener::live;
use crate::listener::network_rbac::record_denial;
use crate::listener::recheck::{CloseReason, ConnFacts};
use crate::state::State;
use crate::stats::{Counter, ListenerStats};
use crate::upstream::cluster::Discovery;

use super::{proxy_counted, Counts, Ended};
use crate::istio_metrics::{KnownPeer, ServiceLabels, Sides, StatsRt, TcpEdits};
use crate::listener::runtime::TcpRt;
use bowline_telemetry::access_log::AccessRecord;
use bowline_telemetry::metrics::{Reporter, TcpLabels};
use bowline_telemetry::{ResponseFlag, ResponseFlags};

/// What became of one connection, for its access lines.
#[derive(Debug, Default)]
struct Outcome {
    cluster: Option<Arc<str>>,
    upstream: Option<SocketAddr>,
    flags: ResponseFlags,
    /// Who the two sides were, when the connection never reached an upstream (Istio's
    /// metrics count it then, with the failure's flag).
    failed: Option<Parties>,
}

/// The two sides of a connection, owned (see [`Sides`]).
#[derive(Debug, Default)]
struct Parties {
    peer: Option<Arc<KnownPeer>>,
    upstream_peer: Option<Arc<KnownPeer>>,
    principal: Option<Arc<str>>,
    upstream_mtls: bool,
    /// The upstream certificate's SPIFFE id (mutual TLS to the upstream).
    upstream_principal: Option<Arc<str>>,
    service: Option<Arc<ServiceLabels>>,
}

impl Parties {
    fn sides(&self) -> Sides<'_> {
        Sides {
            peer: self.peer.as_ref(),
            upstream_peer: self.upstream_peer.as_ref(),
            downstream_principal: self.principal.as_deref(),
            upstream_mtls: self.upstream_mtls,
            upstream_principal: self.upstream_principal.as_deref(),
            service: self.service.as_ref(),
        }
    }
}

/// How often an open connection's bytes reach Istio's metrics (Istio's
/// `tcp_reporting_duration` default), besides at close.
const TCP_REPORTING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `stream` (plaintext, or TLS already terminated) with `tcp`. `accepted` says how
/// the connection came in; its `cluster` is filled in here, with the cluster picked. When
/// the connection ends, its access lines are written (if the filter has access logs).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    tcp: &TcpRt,
    state: &Arc<State>,
    accepted: ConnFacts,
) {
    let start_time = std::time::SystemTime::now();
    let started = std::time::Instant::now();
    let (peer, destination, principal) = (
        accepted.peer,
        accepted.destination,
        accepted.principal.clone(),
    );
    let server_name = accepted.server_name.clone();
    let counts = Counts::default();
    let outcome = relay(stream, tcp, state, accepted, &counts).await;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    if let (Some(istio), Some(failed)) = (&tcp.istio, &outcome.failed) {
        // Never connected: counted opened and closed at once, with the reason's flag.
        let labels = istio.tcp_labels(&failed.sides(), outcome.flags);
        let edits = istio.tcp_edits(&AccessRecord {
            upstream_cluster: outcome.cluster.as_deref(),
            ..accepted_record(
                peer,
                destination,
                principal.as_deref(),
                server_name.as_deref(),
            )
        });
        istio.tcp_opened(&labels, &edits);
        istio.tcp_closed(&labels, &edits);
    }
    if tcp.access_logs.is_empty() {
        return;
    }
    let record = AccessRecord {
        start_time: Some(start_time),
        duration: Some(started.elapsed()),
        response_flags: outcome.flags,
        bytes_received: load(&counts.from_downstream),
        bytes_sent: load(&counts.from_upstream),
        upstream_host: outcome.upstream,
        upstream_cluster: outcome.cluster.as_deref(),
        ..accepted_record(
            peer,
            destination,
            principal.as_deref(),
            server_name.as_deref(),
        )
    };
    for log in &tcp.access_logs {
        log.log(&record);
    }
}

/// What an access record knows of a connection from its accept: the addresses, the SNI and
/// the client's principal (tag overrides read it at open, the access log at close).
fn accepted_record<'a>(
    peer: SocketAddr,
    destination: SocketAddr,
    principal: Option<&'a str>,
    server_name: Option<&'a str>,
) -> AccessRecord<'a> {
    AccessRecord {
        downstream_local_address: Some(destination),
        downstream_remote_address: Some(peer),
        downstream_peer_uri_san: principal,
        requested_server_name: server_name.filter(|s| !s.is_empty()),
        ..AccessRecord::default()
    }
}

/// Picks the cluster and an endpoint, connects, and copies until the connection ends.
async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    tcp: &TcpRt,
    state: &Arc<State>,
    accepted: ConnFacts,
    counts: &Counts,
) -> Outcome {
    let tcp_model = &tcp.model;
    let mut outcome = Outcome::default();
    // What tag overrides of Istio's TCP metrics may read of the connection.
    let (peer, destination) = (accepted.peer, accepted.destination);
    let server_name = accepted.server_name.clone();
    let mut parties = Parties {
        principal: accepted.principal.clone(),
        ..Parties::default()
    };
    let (name, cluster) = {
        let snapshot = state.config.load();
        let name = tcp_model.cluster.pick(rand::random());
        let cluster = snapshot.clusters.get(name).cloned();
        if let Some(istio) = &tcp.istio {
            if istio.reporter == Reporter::Destination {
                parties.peer = snapshot.peers.get(accepted.peer.ip()).cloned();
                parties.service.clone_from(&istio.service);
            }
        }
        (Arc::<str>::from(name), cluster)
    };
    outcome.cluster = Some(name.clone());
    let Some(cluster) = cluster else {
        outcome.flags.insert(ResponseFlag::NoClusterFound);
        outcome.failed = Some(parties);
        return outcome;
    };
    if tcp
        .istio
        .as_ref()
        .is_some_and(|i| i.reporter == Reporter::Source)
    {
        parties.upstream_mtls = cluster.mtls;
        parties.service = Some(cluster.service.clone().unwrap_or_else(|| {
            let host = accepted.destination.ip().to_string();
            cluster.outside.get(&host, || {
                ServiceLabels::outside_registry(&host, &cluster.name)
            })
        }));
    }
    let addr: SocketAddr = match &cluster.discovery {
        Discovery::OriginalDst { .. } => accepted.destination,
        _ => match cluster.pick(None, rand::random(), &[]) {
            Some(endpoint) => {
                parties.upstream_peer.clone_from(&endpoint.peer);
                endpoint.addr
            }
            None => {
                cluster.stats.upstream_cx_none_healthy.inc();
                outcome.flags.insert(ResponseFlag::NoHealthyUpstream);
                outcome.failed = Some(parties);
                return outcome;
            }
        },
    };
    outcome.upstream = Some(addr);
    // Registered before connecting: a push during the connect is not missed.
    let mut registration = live::register(
        state,
        ConnFacts {
            cluster: name,
            ..accepted
        },
    );
    let connect = crate::upstream::pool::connect(
        addr,
        cluster.tls.as_ref(),
        cluster.connect_timeout,
        &cluster.stats,
    );
    // Failures are counted by `connect`.
    let Ok(upstream) = connect.await else {
        outcome
            .flags
            .insert(ResponseFlag::UpstreamConnectionFailure);
        outcome.failed = Some(parties);
        return outcome;
    };
    cluster.stats.upstream_cx_active.inc();
    if let crate::upstream::transport::Upstream::Tls(tls) = &upstream {
        parties.upstream_principal = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(bowline_identity::tls::peer_principal)
            .map(Arc::from);
    }
    let labels = tcp.istio.as_ref().map(|istio| {
        let labels = istio.tcp_labels(&parties.sides(), ResponseFlags::NONE);
        let edits = istio.tcp_edits(&AccessRecord {
            upstream_host: Some(addr),
            upstream_cluster: outcome.cluster.as_deref(),
            ..accepted_record(
                peer,
                destination,
                parties.principal.as_deref(),
                server_name.as_deref(),
            )
        });
        istio.tcp_opened(&labels, &edits);
        (istio, labels, edits)
    });
    let copy = proxy_counted(
        stream,
        upstream,
        tcp_model.idle_timeout,
        registration.closed(),
        counts,
    );
    let ended = match &labels {
        None => copy.await,
        Some((istio, labels, edits)) => {
            let mut reported = Reported::default();
            let ended = {
                let mut copy = std::pin::pin!(copy);
                let mut tick = tokio::time::interval(TCP_REPORTING_INTERVAL);
                tick.tick().await;
                loop {
                    tokio::select! {
                        ended = &mut copy => break ended,
                        _ = tick.tick() => reported.flush(istio, labels, edits, counts),
                    }
                }
            };
            reported.flush(istio, labels, edits, counts);
            istio.tcp_closed(labels, edits);
            ended
        }
    };
    cluster.stats.upstream_cx_active.dec();
    if let Ended::Stopped(reason) = ended {
        closed_by_config(state, registration.facts(), &reason);
    }
    outcome
}

/// The bytes of a connection already in Istio's metrics: each report adds what moved since.
#[derive(Default)]
struct Reported {
    sent: u64,
    received: u64,
}

impl Reported {
    /// Istio's sent bytes are those sent to the downstream (read from the upstream);
    /// received, those read from the downstream.
    fn flush(&mut self, istio: &StatsRt, labels: &TcpLabels, edits: &TcpEdits, counts: &Counts) {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let (sent, received) = (load(&counts.from_upstream), load(&counts.from_downstream));
        if sent != self.sent || received != self.received {
            istio.tcp_bytes(labels, edits, sent - self.sent, received - self.received);
            (self.sent, self.received) = (sent, received);
        }
    }
}

/// Counts and logs a connection the proxy closed because a push made it wrong.
fn closed_by_config(state: &State, facts: &ConnFacts, reason: &CloseReason) {
    let stats = state.stats.listener(&facts.listener);
    counter(&stats, reason).inc();
    match reason {
        CloseReason::RbacDenied(denied) => {
            record_denial(
                state,
                &facts.listener,
                &facts.network(),
                denied,
                "closed by config",
            );
        }
        _ => println!(
            "[access] tcp {} -> {} on {} closed by config: {} (cluster {})",
            facts.peer,
            facts.destination,
            facts.listener,
            reason.stat(),
            facts.cluster
        ),
    }
}

fn counter<'s>(stats: &'s ListenerStats, reason: &CloseReason) -> &'s Counter {
    match reason {
        CloseReason::ClusterRemoved => &stats.closed_by_config_cluster_removed,
        CloseReason::RbacDenied(_) => &stats.closed_by_config_rbac_denied,
        CloseReason::FilterChainRemoved => &stats.closed_by_config_filter_chain_removed,
    }
}
