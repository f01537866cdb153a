//! TLS on both sides: the server configuration of a filter chain (built once, when the
//! listener is applied), the client side of a cluster (built when the cluster is), and the TLS inspector that reads a connection's ClientHello
//! without consuming it, so the filter chain can be chosen by SNI and ALPN first.
//!
//! rustls with the ring provider, passed explicitly (no process-wide default: two providers
//! in one binary make rustls' default selection panic).

use std::sync::Arc;
use std::time::Duration;

use bowline_identity::tls::{
    AcceptAnyServer, CurrentCert, MeshClientVerifier, SanClientVerifier, SanVerifier, Trust,
};
use bowline_identity::IdentityHandle;
use bowline_model::tls::{
    CertificateSource, DownstreamTls, PemSource, TlsVersion, TrustSource, UpstreamTls, MESH_ROOT,
    WORKLOAD_CERTIFICATE,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig};
use tokio::net::TcpStream;

/// What the inspector learnt from a connection's first bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloInfo {
    /// `tls` or `raw_buffer`.
    pub transport_protocol: &'static str,
    pub server_name: Option<String>,
    pub alpn: Vec<String>,
}

/// Bound on waiting for a complete ClientHello (Envoy's listener_filters_timeout is 15 s;
/// a client that sends nothing that long is treated as plaintext, as Envoy does).
const INSPECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A ClientHello larger than this is not inspected (Envoy's default maximum is 16 KiB).
const MAX_CLIENT_HELLO: usize = 16 * 1024;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    bowline_identity::tls::provider()
}

/// Reads the PEM of `source`.
fn pem(source: &PemSource) -> Result<Vec<u8>, String> {
    match source {
        PemSource::Inline(bytes) => Ok(bytes.clone()),
        PemSource::File(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
    }
}

fn certificates(source: &PemSource) -> Result<Vec<CertificateDer<'static>>, String> {
    bowline_identity::tls::parse_certs(&pem(source)?)
        .map_err(|e| format!("{}: {e}", describe(source)))
}

fn describe(source: &PemSource) -> String {
    match source {
        PemSource::File(path) => path.display().to_string(),
        PemSource::Inline(_) => "inline PEM".into(),
    }
}

/// The workload identity behind an SDS secret name: `default` and `ROOTCA` are served by the
/// proxy's own agent (Istio's names); anything else, or no agent, is an error naming why.
fn sds<'a>(
    name: &str,
    expected: &str,
    identity: Option<&'a IdentityHandle>,
) -> Result<&'a IdentityHandle, String> {
    if name != expected {
        return Err(format!(
            "SDS secret {name:?} is not known: bowline-proxy serves {WORKLOAD_CERTIFICATE:?} \
             and {MESH_ROOT:?} from its workload identity"
        ));
    }
    identity.ok_or_else(|| {
        format!(
            "SDS secret {name:?}: this proxy has no workload identity \
             (start it with --ca-token, and --ca-addr unless the CA is the xDS server)"
        )
    })
}

fn versions(min: TlsVersion, max: TlsVersion) -> Vec<&'static rustls::SupportedProtocolVersion> {
    [
        (TlsVersion::V1_2, &rustls::version::TLS12),
        (TlsVersion::V1_3, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, v)| v)
    .collect()
}

/// A certificate and key from PEM sources.
fn certified_key(chain: &PemSource, key: &PemSource) -> Result<Arc<CertifiedKey>, String> {
    let chain = certificates(chain)?;
    let key = PrivateKeyDer::from_pem_slice(&pem(key)?)
        .map_err(|e| format!("{}: no private key: {e}", describe(key)))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|e| format!("certificate and key do not fit: {e}"))
}

/// Always the same certificate (one from files or inline PEM).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl rustls::client::ResolvesClientCert for Fixed {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The rustls server configuration of a filter chain; the error says which file, value or
/// secret is wrong (the listener is then NACKed with it).
pub fn server_config(
    tls: &DownstreamTls,
    identity: Option<&IdentityHandle>,
) -> Result<Arc<ServerConfig>, String> {
    let resolver: Arc<dyn rustls::server::ResolvesServerCert> = match &tls.certificate {
        CertificateSource::Pem { chain, key } => Arc::new(Fixed(certified_key(chain, key)?)),
        CertificateSource::Sds(name) => Arc::new(CurrentCert(
            sds(name, WORKLOAD_CERTIFICATE, identity)?.clone(),
        )),
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions(tls.min_version, tls.max_version))
        .map_err(|e| e.to_string())?;
    let verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> = match &tls.client_ca
    {
        Some(TrustSource::Pem(ca)) => {
            let roots = bowline_identity::tls::root_store(&pem(ca)?)
                .map_err(|e| format!("{}: {e}", describe(ca)))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if tls.require_client_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            Some(verifier.build().map_err(|e| e.to_string())?)
        }
        Some(TrustSource::Sds(name)) => Some(Arc::new(MeshClientVerifier {
            identity: sds(name, MESH_ROOT, identity)?.clone(),
            required: tls.require_client_certificate,
        })),
        None => None,
    };
    let builder = match verifier {
        Some(inner) if !tls.client_subject_alt_names.is_empty() => {
            let matchers = tls.client_subject_alt_names.clone();
            builder.with_client_cert_verifier(Arc::new(SanClientVerifier {
                inner,
                accept: Box::new(move |sans| {
                    matchers.iter().any(|m| m.matches(&sans.uris, &sans.dns))
                }),
            }))
        }
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// Where a filter chain's own certificate comes from, for the URI SANs it names this proxy by
/// (`By=` in `x-forwarded-client-cert`).
#[derive(Debug, Clone)]
pub enum LocalCert {
    Fixed(Vec<String>),
    /// The workload certificate, which rotates: read at each connection.
    Workload(IdentityHandle),
}

impl LocalCert {
    pub fn new(
        tls: &DownstreamTls,
        identity: Option<&IdentityHandle>,
    ) -> Result<LocalCert, String> {
        match &tls.certificate {
            CertificateSource::Pem { chain, .. } => {
                let uris = certificates(chain)?
                    .first()
                    .and_then(|leaf| bowline_identity::tls::subject_alt_names(leaf).ok())
                    .map(|sans| sans.uris)
                    .unwrap_or_default();
                Ok(LocalCert::Fixed(uris))
            }
            CertificateSource::Sds(name) => Ok(LocalCert::Workload(
                sds(name, WORKLOAD_CERTIFICATE, identity)?.clone(),
            )),
        }
    }

    pub fn uris(&self) -> Vec<String> {
        match self {
            LocalCert::Fixed(uris) => uris.clone(),
            LocalCert::Workload(identity) => identity
                .current()
                .and_then(|m| {
                    let leaf = m.certified_key.cert.first()?;
                    bowline_identity::tls::subject_alt_names(leaf).ok()
                })
                .map(|sans| sans.uris)
                .unwrap_or_default(),
        }
    }
}

/// Originating TLS to a cluster's hosts: the connector and the name sent as SNI.
#[derive(Clone)]
pub struct UpstreamTlsRt {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: ServerName<'static>,
    /// Equal for equal TLS settings: pooled connections are shared only between clusters
    /// whose settings agree (never 0, which stands for plaintext).
    pub key: u64,
}

impl std::fmt::Debug for UpstreamTlsRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTlsRt")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The client side of a cluster's TLS; errors name the file or secret (the cluster is then
/// NACKed with it).
pub fn client_config(
    tls: &UpstreamTls,
    identity: Option<&IdentityHandle>,
) -> Result<UpstreamTlsRt, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions(tls.min_version, tls.max_version))
        .map_err(|e| e.to_string())?
        .dangerous();
    let trust = match &tls.trust {
        None => None,
        Some(TrustSource::Pem(ca)) => Some(Trust::Roots(Arc::new(
            bowline_identity::tls::root_store(&pem(ca)?)
                .map_err(|e| format!("{}: {e}", describe(ca)))?,
        ))),
        Some(TrustSource::Sds(name)) => Some(Trust::Mesh(sds(name, MESH_ROOT, identity)?.clone())),
    };
    let builder = match trust {
        // Envoy's rule: without a validation context the server is not verified.
        None => builder.with_custom_certificate_verifier(Arc::new(AcceptAnyServer)),
        Some(trust) => {
            let matchers = tls.subject_alt_names.clone();
            let expected = matchers
                .iter()
                .map(|m| format!("{:?}", m.matcher.pattern))
                .collect::<Vec<_>>()
                .join(" or ");
            builder.with_custom_certificate_verifier(Arc::new(SanVerifier {
                trust,
                accept: Box::new(move |sans| {
                    matchers.is_empty() || matchers.iter().any(|m| m.matches(&sans.uris, &sans.dns))
                }),
                expected,
            }))
        }
    };
    let mut config = match &tls.certificate {
        None => builder.with_no_client_auth(),
        Some(CertificateSource::Pem { chain, key }) => {
            builder.with_client_cert_resolver(Arc::new(Fixed(certified_key(chain, key)?)))
        }
        Some(CertificateSource::Sds(name)) => builder.with_client_cert_resolver(Arc::new(
            CurrentCert(sds(name, WORKLOAD_CERTIFICATE, identity)?.clone()),
        )),
    };
    config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    // Without an SNI name the IP-address form is used, and rustls sends no SNI for it.
    let server_name = match &tls.sni {
        Some(sni) => ServerName::try_from(sni.clone()).map_err(|e| format!("sni {sni:?}: {e}"))?,
        None => ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into()),
    };
    config.enable_sni = tls.sni.is_some();
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{tls:?}").hash(&mut h);
        h.finish() | 1
    };
    Ok(UpstreamTlsRt {
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name,
        key,
    })
}

/// Peeks at the connection until a whole ClientHello (or something that is not TLS) is
/// there; consumes nothing.
pub async fn inspect(stream: &TcpStream) -> ClientHelloInfo {
    let work = async {
        let mut buf = vec![0u8; MAX_CLIENT_HELLO];
        let mut n = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return plaintext(),
            Ok(n) => n,
        };
        loop {
            if let Some(info) = client_hello_info(&buf[..n]) {
                return info;
            }
            // Not all of it yet: peek again once more bytes have arrived.
            n = match crate::listener::peek::peek_more(stream, &mut buf, n).await {
                Ok(0) | Err(_) => return plaintext(),
                Ok(more) => more,
            };
        }
    };
    tokio::time::timeout(INSPECT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| plaintext())
}

fn plaintext() -> ClientHelloInfo {
    ClientHelloInfo {
        transport_protocol: "raw_buffer",
        ..ClientHelloInfo::default()
    }
}

/// What a connection's first bytes say, or `None` while they are the start of a
/// ClientHello that is not complete yet (fewer than [`MAX_CLIENT_HELLO`] bytes). The pure
/// part of [`inspect`].
pub(crate) fn client_hello_info(bytes: &[u8]) -> Option<ClientHelloInfo> {
    // A TLS record starts with the handshake content type.
    match bytes.first() {
        None => return None,
        Some(&b) if b != 0x16 => return Some(plaintext()),
        Some(_) => {}
    }
    let mut acceptor = rustls::server::Acceptor::default();
    // `read_tls` takes at most 4 KiB a call: feed it everything peeked.
    let mut rd = bytes;
    while !rd.is_empty() {
        match acceptor.read_tls(&mut rd) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return Some(plaintext()),
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => {
            let hello = accepted.client_hello();
            Some(ClientHelloInfo {
                transport_protocol: "tls",
                server_name: hello.server_name().map(str::to_string),
                alpn: hello
                    .alpn()
                    .into_iter()
                    .flatten()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect(),
            })
        }
        Ok(None) if bytes.len() < MAX_CLIENT_HELLO => None,
        // TLS, but not a ClientHello we can read: still TLS, no SNI.
        _ => Some(ClientHelloInfo {
            transport_protocol: "tls",
            ..ClientHelloInfo::default()
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// How a test client is configured, and what the inspector must report for its hello.
    pub(crate) struct Hello {
        pub bytes: Vec<u8>,
        pub info: ClientHelloInfo,
    }

    pub(crate) fn client_hello(
        server_name: &str,
        alpn: &[&[u8]],
        tls12_only: bool,
        max_fragment: Option<usize>,
    ) -> Hello {
        use rustls::pki_types::ServerName;
        let builder =
            rustls::ClientConfig::builder_with_provider(bowline_identity::tls::provider());
        let builder = if tls12_only {
            builder.with_protocol_versions(&[&rustls::version::TLS12])
        } else {
            builder.with_safe_default_protocol_versions()
        };
        let mut config = builder
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.max_fragment_size = max_fragment;
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut bytes = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut bytes).unwrap();
        }
        let is_ip = server_name.parse::<std::net::IpAddr>().is_ok();
        Hello {
            bytes,
            info: ClientHelloInfo {
                transport_protocol: "tls",
                server_name: (!is_ip).then(|| server_name.to_string()),
                alpn: alpn
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect(),
            },
        }
    }

    /// A ClientHello of several KiB (many ALPN values; post-quantum key shares and session
    /// tickets make them large too).
    fn big_hello() -> Hello {
        let alpn: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{i:03}-{}", "p".repeat(44)).into_bytes())
            .collect();
        let alpn: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
        client_hello("big.example", &alpn, false, None)
    }

    /// Found by fuzzing: rustls' `read_tls` takes at most 4 KiB per call, and the inspector
    /// called it once, so a longer ClientHello never completed: the inspector waited for
    /// bytes the client would never send (it waits for the ServerHello) until its 15 s
    /// timeout, then served the connection as plaintext.
    #[test]
    fn a_client_hello_longer_than_one_read_is_inspected() {
        let hello = big_hello();
        assert!(hello.bytes.len() > 4096, "{}", hello.bytes.len());
        assert_eq!(client_hello_info(&hello.bytes), Some(hello.info));
    }

    #[tokio::test]
    async fn a_long_client_hello_on_a_socket_is_inspected_at_once() {
        use tokio::io::AsyncWriteExt;
        let hello = big_hello();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        client.write_all(&hello.bytes).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(inspect(&server).await, hello.info);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
