//! The accept loop of one listener on one worker: accept, find the original destination,
//! select the filter chain (a pure model decision), and hand the connection to HTTP or TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use bowline_model::ConnectionInfo;

use super::original_dst::destination;
use super::runtime::Chain;
use crate::drain::DrainWatch;
use crate::http::router::Conn;
use crate::state::State;
use crate::upstream::cluster::Discovery;
use crate::upstream::pool::Pool;

/// Accepts on `listener` (named `name` in the config) until `drain` fires. Connections
/// keep running after that, tracked by `drain`, until they finish.
pub async fn run(
    listener: TcpListener,
    name: String,
    state: Arc<State>,
    pool: Pool,
    mut drain: DrainWatch,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = drain.signaled() => return,
        };
        match accepted {
            Ok((stream, peer)) => dispatch(stream, peer, &name, &state, &pool, &drain),
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn dispatch(
    stream: TcpStream,
    peer: SocketAddr,
    name: &str,
    state: &Arc<State>,
    pool: &Pool,
    drain: &DrainWatch,
) {
    let Some(listener) = state.config.load().listeners.get(name).cloned() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let dest = destination(&stream, local, listener.model.use_original_dst);
    let info = ConnectionInfo {
        destination: dest,
        source: peer,
        server_name: None,
        transport_protocol: "raw_buffer",
        application_protocols: &[],
    };
    let Some(chain) = listener
        .model
        .select_chain(&info)
        .and_then(|c| listener.chain_of(c))
        .cloned()
    else {
        listener.stats.no_filter_chain_match.inc();
        return;
    };
    let stats = listener.stats.clone();
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    let tracked = drain.track();
    let drain = drain.clone();
    let state = state.clone();
    let pool = pool.clone();
    tokio::spawn(async move {
        match chain {
            Chain::Http(http) => {
                http.stats.downstream_cx_total.inc();
                http.stats.downstream_cx_active.inc();
                let stats = http.stats.clone();
                let conn = Arc::new(Conn {
                    state,
                    http,
                    pool,
                    peer,
                    destination: dest,
                });
                crate::http::server::serve(stream, conn, drain).await;
                stats.downstream_cx_active.dec();
            }
            Chain::Tcp(tcp) => serve_tcp(stream, dest, &tcp, &state).await,
        }
        stats.downstream_cx_active.dec();
        drop(tracked);
    });
}

async fn serve_tcp(
    stream: TcpStream,
    dest: SocketAddr,
    tcp: &bowline_model::TcpProxy,
    state: &State,
) {
    let cluster = {
        let snapshot = state.config.load();
        snapshot
            .clusters
            .get(tcp.cluster.pick(rand::random()))
            .cloned()
    };
    let Some(cluster) = cluster else { return };
    let addr = match &cluster.discovery {
        Discovery::OriginalDst { .. } => dest,
        _ => match cluster.pick(None, rand::random(), &[]) {
            Some(endpoint) => endpoint.addr,
            None => {
                cluster.stats.upstream_cx_none_healthy.inc();
                return;
            }
        },
    };
    let connect = tokio::time::timeout(cluster.connect_timeout, TcpStream::connect(addr)).await;
    let Ok(Ok(upstream)) = connect else {
        cluster.stats.upstream_cx_connect_fail.inc();
        return;
    };
    let _ = upstream.set_nodelay(true);
    cluster.stats.upstream_cx_total.inc();
    cluster.stats.upstream_cx_active.inc();
    let _ = crate::tcp::proxy(stream, upstream, tcp.idle_timeout).await;
    cluster.stats.upstream_cx_active.dec();
}
