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

use super::{proxy_until, Ended};

/// Serves `stream` (plaintext, or TLS already terminated) with `tcp`. `accepted` says how
/// the connection came in; its `cluster` is filled in here, with the cluster picked.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    tcp: &bowline_model::TcpProxy,
    state: &Arc<State>,
    accepted: ConnFacts,
) {
    let (name, cluster) = {
        let snapshot = state.config.load();
        let name = tcp.cluster.pick(rand::random());
        let cluster = snapshot.clusters.get(name).cloned();
        (Arc::<str>::from(name), cluster)
    };
    let Some(cluster) = cluster else { return };
    let addr: SocketAddr = match &cluster.discovery {
        Discovery::OriginalDst { .. } => accepted.destination,
        _ => match cluster.pick(None, rand::random(), &[]) {
            Some(endpoint) => endpoint.addr,
            None => {
                cluster.stats.upstream_cx_none_healthy.inc();
                return;
            }
        },
    };
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
        return;
    };
    cluster.stats.upstream_cx_active.inc();
    let ended = proxy_until(stream, upstream, tcp.idle_timeout, registration.closed()).await;
    cluster.stats.upstream_cx_active.dec();
    if let Ended::Stopped(reason) = ended {
        closed_by_config(state, registration.facts(), &reason);
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
