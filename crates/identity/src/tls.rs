//! The workload identity in rustls: certificate resolvers that always hand out the current
//! certificate (so rotation needs no new TLS configuration), a client verifier that trusts
//! the mesh root, and a server verifier that checks the peer's SPIFFE id.
//!
//! rustls' own server verifier checks a DNS name, and mesh certificates carry only a URI SAN;
//! [`SanVerifier`] verifies the chain against the trust anchors, then asks the caller's
//! predicate about the URI and DNS SANs.

use crate::agent::WorkloadCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// The ring provider, passed explicitly (two providers in one binary make rustls' default
/// selection panic).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One issued certificate in the forms TLS needs, built once per rotation.
pub struct Material {
    pub cert: WorkloadCert,
    pub certified_key: Arc<CertifiedKey>,
    pub roots: Arc<RootCertStore>,
    /// Verifies clients against the mesh root; a client without a certificate is refused.
    pub client_verifier: Arc<dyn ClientCertVerifier>,
    /// The same, but a client without a certificate is let through (PERMISSIVE-style).
    pub optional_client_verifier: Arc<dyn ClientCertVerifier>,
}

impl Material {
    pub fn new(cert: WorkloadCert) -> Result<Material, String> {
        let chain = parse_certs(cert.chain_pem.join("").as_bytes())?;
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
            .map_err(|e| format!("the private key: {e}"))?;
        let certified_key = Arc::new(
            CertifiedKey::from_der(chain, key, &provider())
                .map_err(|e| format!("certificate and key do not fit: {e}"))?,
        );
        let roots = Arc::new(root_store(cert.root_pem.as_bytes())?);
        let verifier = || WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
        let client_verifier = verifier().build().map_err(|e| e.to_string())?;
        let optional_client_verifier = verifier()
            .allow_unauthenticated()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Material {
            cert,
            certified_key,
            roots,
            client_verifier,
            optional_client_verifier,
        })
    }
}

/// Handshake signature checks with the ring provider's algorithms: what every verifier
/// here does after its own certificate checks.
pub fn verify_tls12(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let algs = provider().signature_verification_algorithms;
    rustls::crypto::verify_tls12_signature(message, cert, dss, &algs)
}

pub fn verify_tls13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let algs = provider().signature_verification_algorithms;
    rustls::crypto::verify_tls13_signature(message, cert, dss, &algs)
}

pub fn supported_schemes() -> Vec<SignatureScheme> {
    provider()
        .signature_verification_algorithms
        .supported_schemes()
}

/// Accepts any server certificate: an UpstreamTlsContext without a validation context
/// (Envoy's rule: no validation context, no verification).
#[derive(Debug)]
pub struct AcceptAnyServer;

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        supported_schemes()
    }
}

/// PEM certificates.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}

/// A root store of every certificate in `pem`.
pub fn root_store(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(pem)? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    Ok(roots)
}

/// A read handle on the current workload certificate. Cheap to clone.
#[derive(Clone)]
pub struct IdentityHandle(watch::Receiver<Option<Arc<Material>>>);

impl std::fmt::Debug for IdentityHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityHandle")
    }
}

impl IdentityHandle {
    pub fn new(rx: watch::Receiver<Option<Arc<Material>>>) -> IdentityHandle {
        IdentityHandle(rx)
    }

    /// A handle that always holds `material` (tests, static certificates).
    pub fn fixed(material: Material) -> IdentityHandle {
        let (tx, rx) = watch::channel(Some(Arc::new(material)));
        // Keep the sender alive for as long as the process: the value never changes.
        std::mem::forget(tx);
        IdentityHandle(rx)
    }

    pub fn current(&self) -> Option<Arc<Material>> {
        self.0.borrow().clone()
    }

    /// Waits until the certificate changes (for tests and metrics).
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

/// Presents the current workload certificate, as a server and as a client.
#[derive(Debug, Clone)]
pub struct CurrentCert(pub IdentityHandle);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current().map(|m| m.certified_key.clone())
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.current().map(|m| m.certified_key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Verifies clients against the current mesh root.
#[derive(Debug)]
pub struct MeshClientVerifier {
    pub identity: IdentityHandle,
    /// Refuse a client that presents no certificate.
    pub required: bool,
}

impl MeshClientVerifier {
    fn inner(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        let material = self
            .identity
            .current()
            .ok_or_else(|| rustls::Error::General("no workload certificate yet".into()))?;
        Ok(if self.required {
            material.client_verifier.clone()
        } else {
            material.optional_client_verifier.clone()
        })
    }
}

impl ClientCertVerifier for MeshClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.required
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        self.inner()?
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        supported_schemes()
    }
}

/// Another client verifier, then a check of the client certificate's SANs.
pub struct SanClientVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub accept: Box<dyn Fn(&SubjectAltNames) -> bool + Send + Sync>,
}

impl std::fmt::Debug for SanClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SanClientVerifier")
    }
}

impl ClientCertVerifier for SanClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let sans = subject_alt_names(end_entity.as_ref()).map_err(rustls::Error::General)?;
        if !(self.accept)(&sans) {
            return Err(rustls::Error::General(format!(
                "client certificate SANs {:?} match none expected",
                sans.uris.iter().chain(&sans.dns).collect::<Vec<_>>()
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The subject alternative names of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectAltNames {
    pub uris: Vec<String>,
    pub dns: Vec<String>,
}

/// Where a [`SanVerifier`] gets its trust anchors.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Fixed roots (a DestinationRule's `caCertificates`).
    Roots(Arc<RootCertStore>),
    /// The mesh root of the workload identity (follows rotation).
    Mesh(IdentityHandle),
}

/// Accepts a server whose chain leads to the trust anchors and whose SANs satisfy `accept`.
pub struct SanVerifier {
    pub trust: Trust,
    pub accept: Box<dyn Fn(&SubjectAltNames) -> bool + Send + Sync>,
    /// Shown in the error when `accept` says no.
    pub expected: String,
}

impl std::fmt::Debug for SanVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SanVerifier")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for SanVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let roots = match &self.trust {
            Trust::Roots(roots) => roots.clone(),
            Trust::Mesh(identity) => identity
                .current()
                .ok_or_else(|| rustls::Error::General("no workload certificate yet".into()))?
                .roots
                .clone(),
        };
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &roots,
            intermediates,
            now,
            provider().signature_verification_algorithms.all,
        )?;
        let sans = subject_alt_names(end_entity.as_ref()).map_err(rustls::Error::General)?;
        if !(self.accept)(&sans) {
            return Err(rustls::Error::General(format!(
                "peer certificate SANs {:?} do not match {}",
                sans.uris.iter().chain(&sans.dns).collect::<Vec<_>>(),
                self.expected
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        supported_schemes()
    }
}

/// The SANs of a DER certificate.
pub fn subject_alt_names(der: &[u8]) -> Result<SubjectAltNames, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let mut out = SubjectAltNames::default();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(u) => out.uris.push(u.to_string()),
                GeneralName::DNSName(d) => out.dns.push(d.to_string()),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// What Envoy reports about a client certificate in `x-forwarded-client-cert`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertFacts {
    /// SHA-256 of the DER certificate, lower-case hex (Envoy's `Hash`).
    pub sha256: String,
    /// The subject in RFC 2253 form (`CN=a,O=b`; empty for a SPIFFE certificate without one).
    pub subject: String,
    pub uris: Vec<String>,
    pub dns: Vec<String>,
}

/// The [`CertFacts`] of a DER certificate.
pub fn cert_facts(der: &[u8]) -> Result<CertFacts, String> {
    let SubjectAltNames { uris, dns } = subject_alt_names(der)?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(CertFacts {
        sha256,
        subject: rfc2253(cert.subject()),
        uris,
        dns,
    })
}

/// A distinguished name as RFC 2253 writes it: the last RDN first, `,` between RDNs, `+`
/// within one, short attribute names where there are.
fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    use x509_parser::oid_registry as oids;
    let short = |oid: &x509_parser::der_parser::oid::Oid<'_>| -> String {
        let known = [
            (oids::OID_X509_COMMON_NAME, "CN"),
            (oids::OID_X509_ORGANIZATION_NAME, "O"),
            (oids::OID_X509_ORGANIZATIONAL_UNIT, "OU"),
            (oids::OID_X509_COUNTRY_NAME, "C"),
            (oids::OID_X509_LOCALITY_NAME, "L"),
            (oids::OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
        ];
        known
            .iter()
            .find(|(known, _)| known == oid)
            .map_or_else(|| oid.to_id_string(), |(_, short)| (*short).to_string())
    };
    let rdns: Vec<_> = name.iter_rdn().collect();
    rdns.into_iter()
        .rev()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let value = attr.as_str().unwrap_or_default();
                    format!("{}={value}", short(attr.attr_type()))
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The first URI SAN of a peer's leaf certificate: its SPIFFE id (what Envoy calls the
/// peer's principal).
pub fn peer_principal(leaf: &CertificateDer<'_>) -> Option<String> {
    subject_alt_names(leaf.as_ref())
        .ok()?
        .uris
        .into_iter()
        .next()
}

/// A PEM leaf's URI SAN and validity.
pub fn leaf_facts(pem: &str) -> Result<(String, SystemTime, SystemTime), String> {
    let der = parse_certs(pem.as_bytes())?.remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    let at = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    let identity = peer_principal(&der).ok_or("the certificate has no URI SAN")?;
    Ok((
        identity,
        at(validity.not_before.timestamp()),
        at(validity.not_after.timestamp()),
    ))
}
