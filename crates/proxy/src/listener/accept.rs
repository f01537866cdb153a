//! The accept loop of one listener on one worker: accept, find the original destination,
//! read the ClientHello (TLS inspector) or the request line (HTTP inspector) when the
//! listener asks for it, select the filter chain (a
//! pure model decision), terminate TLS when the chain says so, and hand the connection to
//! HTTP or TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use bowline_model::ConnectionInfo;

use super::original_dst::destination;
use super::recheck::ConnFacts;
use super::runtime::Chain;
use crate::drain::DrainWatch;
use crate::http::conn::Conn;
use crate::http::xfcc::ClientCert;
use crate::state::State;
use crate::tls::{self, ClientHelloInfo};
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
    // Read before the config: a later update then shows as a newer generation.
    let listeners_seen = state.listeners_generation();
    let Some(listener) = state.config.load().listeners.get(name).cloned() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let dest = destination(&stream, local, listener.model.use_original_dst);
    let tracked = drain.track();
    let drain = drain.clone();
    let state = state.clone();
    let pool = pool.clone();
    tokio::spawn(async move {
        let Some(hello) = inspect(&stream, dest.port(), &listener).await else {
            return;
        };
        let alpn: Vec<&str> = hello.alpn.iter().map(String::as_str).collect();
        let info = ConnectionInfo {
            destination: dest,
            source: peer,
            server_name: hello.server_name.as_deref(),
            transport_protocol: hello.transport_protocol,
            application_protocols: &alpn,
        };
        let selected = listener.model.select_chain(&info);
        let chain_name = selected.map(|c| c.name.clone()).unwrap_or_default();
        let Some(chain) = selected.and_then(|c| listener.chain_of(c)).cloned() else {
            listener.stats.no_filter_chain_match.inc();
            return;
        };
        let stats = listener.stats.clone();
        stats.downstream_cx_total.inc();
        stats.downstream_cx_active.inc();
        let tls_config = chain.tls_for(&hello.alpn);
        let target = Target {
            state,
            pool,
            peer,
            dest,
            drain,
            tls: chain.tls.is_some(),
            peer_principal: None,
            client_cert: None,
            listener: Arc::from(listener.model.name.as_str()),
            chain: Arc::from(chain_name.as_str()),
            listeners_seen,
            network_rbac: chain.network_rbac.clone(),
            listener_address: listener.model.address,
            hello,
        };
        match tls_config {
            Some(config) => match TlsAcceptor::from(config).accept(stream).await {
                Ok(tls) => {
                    stats.ssl_handshake.inc();
                    let leaf = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first());
                    let peer_principal = leaf
                        .and_then(bowline_identity::tls::peer_principal)
                        .map(Arc::from);
                    // What x-forwarded-client-cert says of this connection.
                    let client_cert = match (&chain.filter, leaf) {
                        (Chain::Http(_), Some(leaf)) => {
                            bowline_identity::tls::cert_facts(leaf).ok().map(|peer| {
                                Arc::new(ClientCert {
                                    by: chain
                                        .local_cert
                                        .as_ref()
                                        .map(|c| c.uris())
                                        .unwrap_or_default(),
                                    peer,
                                })
                            })
                        }
                        _ => None,
                    };
                    let target = Target {
                        peer_principal,
                        client_cert,
                        ..target
                    };
                    serve(tls, chain.filter, target).await
                }
                Err(e) => {
                    stats.ssl_handshake_error.inc();
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                }
            },
            None => serve(stream, chain.filter, target).await,
        }
        stats.downstream_cx_active.dec();
        drop(tracked);
    });
}

/// Where a connection's filter chain runs.
struct Target {
    state: Arc<State>,
    pool: Pool,
    peer: SocketAddr,
    dest: SocketAddr,
    drain: DrainWatch,
    tls: bool,
    /// The URI SAN of the client's certificate (mutual TLS): its SPIFFE id.
    peer_principal: Option<Arc<str>>,
    client_cert: Option<Arc<ClientCert>>,
    listener: Arc<str>,
    chain: Arc<str>,
    /// The listeners generation the chain was chosen at.
    listeners_seen: u64,
    network_rbac: Arc<[bowline_model::rbac::Rbac]>,
    /// The address the listener was configured with (see `recheck::ConnFacts`).
    listener_address: SocketAddr,
    /// What the listener filters found (chain selection's input).
    hello: ClientHelloInfo,
}

/// Runs the chain's network filter on `stream` (plaintext, or TLS already terminated).
async fn serve<S>(stream: S, chain: Chain, t: Target)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let facts = super::network_rbac::NetworkFacts {
        peer: t.peer,
        destination: t.dest,
        principal: t.peer_principal.as_deref(),
    };
    if !super::network_rbac::allowed(&t.state, &t.network_rbac, &t.listener, &facts) {
        // Envoy closes a connection its network RBAC denies.
        return;
    }
    match chain {
        Chain::Http(http) => {
            http.stats.downstream_cx_total.inc();
            http.stats.downstream_cx_active.inc();
            let stats = http.stats.clone();
            let conn = Arc::new(Conn {
                state: t.state,
                http,
                pool: t.pool,
                peer: t.peer,
                destination: t.dest,
                tls: t.tls,
                peer_principal: t.peer_principal,
                client_cert: t.client_cert,
                listener: t.listener,
                chain: t.chain,
                listeners_seen: t.listeners_seen,
            });
            crate::http::server::serve(stream, conn, t.drain).await;
            stats.downstream_cx_active.dec();
        }
        Chain::Tcp(tcp) => {
            let accepted = ConnFacts {
                listener: t.listener,
                listener_address: t.listener_address,
                chain: t.chain,
                cluster: Arc::from(""),
                peer: t.peer,
                destination: t.dest,
                principal: t.peer_principal,
                server_name: t.hello.server_name,
                transport_protocol: t.hello.transport_protocol,
                application_protocols: t.hello.alpn,
            };
            crate::tcp::serve::serve(stream, &tcp, &t.state, accepted).await
        }
    }
}

/// The listener filters, in Envoy's order and bounded by the listener's
/// `listener_filters_timeout`: the TLS inspector (transport, SNI, ALPN), then the HTTP
/// inspector on plaintext (the application protocol, as ALPN would name it), each unless
/// its `filter_disabled` covers the destination port. `None` when the connection is to be
/// closed: inspection timed out and the listener does not continue on timeout.
async fn inspect(
    stream: &TcpStream,
    port: u16,
    listener: &super::runtime::ListenerRt,
) -> Option<ClientHelloInfo> {
    let model = &listener.model;
    let runs = |on: bool, disabled: &Option<bowline_model::PortPredicate>| {
        on && disabled.as_ref().is_none_or(|d| !d.matches(port))
    };
    let plaintext = || ClientHelloInfo {
        transport_protocol: "raw_buffer",
        ..ClientHelloInfo::default()
    };
    let work = async {
        // Without a TLS inspector every connection is plaintext with no SNI (Envoy's rule).
        let mut hello = if runs(model.tls_inspector, &model.tls_inspector_disabled) {
            tls::inspect(stream).await
        } else {
            plaintext()
        };
        if runs(model.http_inspector, &model.http_inspector_disabled)
            && hello.transport_protocol == "raw_buffer"
        {
            let found = super::http_inspect::inspect(stream).await;
            let stats = &listener.stats;
            match found {
                Some("http/1.0") => stats.http_inspector_http10_found.inc(),
                Some("http/1.1") => stats.http_inspector_http11_found.inc(),
                Some(_) => stats.http_inspector_http2_found.inc(),
                None => stats.http_inspector_http_not_found.inc(),
            }
            if let Some(protocol) = found {
                hello.alpn = vec![protocol.to_string()];
            }
        }
        hello
    };
    let Some(limit) = model.inspection_timeout else {
        return Some(work.await);
    };
    match tokio::time::timeout(limit, work).await {
        Ok(hello) => Some(hello),
        Err(_) => {
            listener.stats.downstream_pre_cx_timeout.inc();
            model.continue_on_inspection_timeout.then(plaintext)
        }
    }
}
