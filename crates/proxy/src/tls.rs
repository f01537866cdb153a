//! TLS on the listener side: the server configuration of a filter chain (built once, when
//! the listener is applied), and the TLS inspector that reads a connection's ClientHello
//! without consuming it, so the filter chain can be chosen by SNI and ALPN first.
//!
//! rustls with the ring provider, passed explicitly (no process-wide default: two providers
//! in one binary make rustls' default selection panic).

use std::sync::Arc;
use std::time::Duration;

use bowline_model::tls::{DownstreamTls, PemSource, TlsVersion};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
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
    Arc::new(rustls::crypto::ring::default_provider())
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
    let text = pem(source)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", describe(source)))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", describe(source)));
    }
    Ok(certs)
}

fn describe(source: &PemSource) -> String {
    match source {
        PemSource::File(path) => path.display().to_string(),
        PemSource::Inline(_) => "inline PEM".into(),
    }
}

/// The rustls server configuration of a filter chain; the error says which file or value
/// is wrong (the listener is then NACKed with it).
pub fn server_config(tls: &DownstreamTls) -> Result<Arc<ServerConfig>, String> {
    let chain = certificates(&tls.certificate_chain)?;
    let key = PrivateKeyDer::from_pem_slice(&pem(&tls.private_key)?)
        .map_err(|e| format!("{}: no private key: {e}", describe(&tls.private_key)))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::V1_2, &rustls::version::TLS12),
        (TlsVersion::V1_3, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (tls.min_version..=tls.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", describe(ca)))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if tls.require_client_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key do not fit: {e}"))?;
    config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// Peeks at the connection until a whole ClientHello (or something that is not TLS) is
/// there; consumes nothing.
pub async fn inspect(stream: &TcpStream) -> ClientHelloInfo {
    let plaintext = ClientHelloInfo {
        transport_protocol: "raw_buffer",
        ..ClientHelloInfo::default()
    };
    let work = async {
        let mut buf = vec![0u8; MAX_CLIENT_HELLO];
        loop {
            let n = match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return plaintext.clone(),
                Ok(n) => n,
            };
            // A TLS record starts with the handshake content type.
            if buf[0] != 0x16 {
                return plaintext.clone();
            }
            let mut acceptor = rustls::server::Acceptor::default();
            if acceptor.read_tls(&mut &buf[..n]).is_err() {
                return plaintext.clone();
            }
            match acceptor.accept() {
                Ok(Some(accepted)) => {
                    let hello = accepted.client_hello();
                    return ClientHelloInfo {
                        transport_protocol: "tls",
                        server_name: hello.server_name().map(str::to_string),
                        alpn: hello
                            .alpn()
                            .into_iter()
                            .flatten()
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect(),
                    };
                }
                // Not all of it yet: peek again once more bytes can have arrived.
                Ok(None) if n < buf.len() => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // TLS, but not a ClientHello we can read: still TLS, no SNI.
                _ => {
                    return ClientHelloInfo {
                        transport_protocol: "tls",
                        ..ClientHelloInfo::default()
                    }
                }
            }
        }
    };
    tokio::time::timeout(INSPECT_TIMEOUT, work)
        .await
        .unwrap_or(plaintext)
}
