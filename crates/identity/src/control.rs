//! The control plane over TLS, as istiod's port 15012: xDS and the CA's CSR API (whose
//! requests carry each workload's bearer token) travel encrypted, and a proxy talks only to
//! the control plane the mesh root vouches for.
//!
//! - The server's certificate comes from the mesh CA itself: the SPIFFE id of istiod's
//!   service account and the DNS name clients dial (`istiod.istio-system.svc`, Istio's), renewed
//!   at half its lifetime without a restart.
//! - Clients (bowline-proxy's ADS client and CA agent, `bowline sds`) verify the chain against
//!   the mesh root and the name, and speak HTTP/2 over it (ALPN `h2`, as Envoy's `xds-grpc`
//!   cluster does). There are no client certificates: the token authenticates the caller.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::ca::{Ca, CaError};
use crate::spiffe::SpiffeId;
use crate::tls::{parse_certs, provider, root_store};

/// The name clients dial and check (Istio's istiod service name).
pub const CONTROL_PLANE_NAME: &str = "istiod.istio-system.svc";

/// The control plane's SPIFFE id (istiod's service account).
pub fn control_plane_id(trust_domain: &str) -> SpiffeId {
    SpiffeId::new(trust_domain, "istio-system", "istiod")
}

/// How long a TLS handshake with the control plane may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Server

/// The control plane's certificate, issued by the mesh CA and renewed in place.
#[derive(Debug)]
pub struct ServerCert {
    current: RwLock<Arc<CertifiedKey>>,
    /// The DNS names it carries (renewals keep them).
    names: Vec<String>,
}

impl ServerCert {
    /// Issues the first certificate (valid `ttl`) for [`CONTROL_PLANE_NAME`].
    pub fn issue(ca: &Ca, trust_domain: &str, ttl: Duration) -> Result<Arc<ServerCert>, CaError> {
        ServerCert::issue_for(ca, trust_domain, &[CONTROL_PLANE_NAME.to_string()], ttl)
    }

    /// Issues the first certificate (valid `ttl`) for the DNS names clients dial (on
    /// Kubernetes, the control plane's Service name, e.g. `bowline.bowline-system.svc`).
    pub fn issue_for(
        ca: &Ca,
        trust_domain: &str,
        names: &[String],
        ttl: Duration,
    ) -> Result<Arc<ServerCert>, CaError> {
        let key = certified(ca, trust_domain, names, ttl)?;
        Ok(Arc::new(ServerCert {
            current: RwLock::new(key),
            names: names.to_vec(),
        }))
    }

    /// Renews the certificate every half `ttl`, until the returned task is aborted. A failed
    /// renewal is logged and retried at the next turn; the current certificate keeps serving.
    pub fn renew_every_half(
        self: &Arc<Self>,
        ca: Arc<Ca>,
        trust_domain: String,
        ttl: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 2).await;
                match certified(&ca, &trust_domain, &this.names, ttl) {
                    Ok(key) => *this.current.write().unwrap_or_else(|e| e.into_inner()) = key,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the control plane's certificate")
                    }
                }
            }
        })
    }

    /// The rustls server configuration that presents this certificate (ALPN `h2`).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// The same certificate for an HTTPS server that also speaks HTTP/1.1 (the admission
    /// webhook: the API server may call it either way).
    pub fn https_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn certified(
    ca: &Ca,
    trust_domain: &str,
    names: &[String],
    ttl: Duration,
) -> Result<Arc<CertifiedKey>, CaError> {
    let id = control_plane_id(trust_domain);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (chain, key) = ca.issue_server(&id, &names, ttl)?;
    let certs = parse_certs(chain.concat().as_bytes()).map_err(CaError::Signing)?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| CaError::Signing(e.to_string()))?;
    CertifiedKey::from_der(certs, key, &provider())
        .map(Arc::new)
        .map_err(|e| CaError::Signing(e.to_string()))
}

/// A TLS connection accepted by the control plane, in the form tonic serves.
pub struct TlsConn(pub tokio_rustls::server::TlsStream<TcpStream>);

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = Option<SocketAddr>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.peer_addr().ok()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Accepts TLS connections on `listener` until it fails: each handshake runs on its own task
/// (bounded by [`HANDSHAKE_TIMEOUT`]), so a client that stalls its ClientHello holds up no
/// one; finished ones come out of the returned stream.
pub fn accept_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "control plane: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            if tx.is_closed() {
                return;
            }
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(TlsConn(tls))).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "control plane: TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(%peer, "control plane: TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

// ---------------------------------------------------------------------------------------
// Client

/// How a client reaches the control plane over TLS: the mesh root it trusts and the name it
/// checks.
#[derive(Clone)]
pub struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the PEM roots in `root_pem`; checks the server's certificate names
    /// `server_name` (a DNS name, [`CONTROL_PLANE_NAME`] for bowline's control plane).
    pub fn new(root_pem: &[u8], server_name: &str) -> Result<ClientTls, String> {
        let roots = root_store(root_pem)?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| format!("server name {server_name:?}: {e}"))?;
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// A gRPC channel to `addr` over TLS (connected lazily by tonic, on first use and after
    /// failures).
    pub async fn channel(
        &self,
        addr: SocketAddr,
        connect_timeout: Duration,
    ) -> Result<tonic::transport::Channel, tonic::transport::Error> {
        let tls = self.clone();
        let connector = tower::service_fn(move |_: http::Uri| {
            let tls = tls.clone();
            async move {
                let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
                let _ = tcp.set_nodelay(true);
                let stream = tokio::time::timeout(
                    HANDSHAKE_TIMEOUT,
                    tls.connector.connect(tls.server_name.clone(), tcp),
                )
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
                Ok::<_, io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("a socket address is a valid URI")
            .connect_timeout(connect_timeout)
            .connect_with_connector(connector)
            .await
    }
}

/// A gRPC channel to the control plane at `addr`: over TLS when `tls` is given, else plain
/// (local tools and tests only).
pub async fn channel(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    connect_timeout: Duration,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    match tls {
        Some(tls) => tls.channel(addr, connect_timeout).await,
        None => {
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("a socket address is a valid URI")
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true)
                .connect()
                .await
        }
    }
}
