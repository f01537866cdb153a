//! TLS on both sides: `envoy.transport_sockets.tls` with a `DownstreamTlsContext` on a
//! filter chain (termination) or an `UpstreamTlsContext` on a cluster (origination),
//! converted once; the proxy reads the files and builds the TLS configuration when it applies
//! the listener or cluster (a file it cannot read NACKs the resource).
//!
//! Implemented: certificates from files, inline PEM or SDS; trusted CAs from files, inline PEM
//! or SDS (also Envoy's combined validation context, as Istio sends it); subject alt name
//! matching of servers (URI and DNS SANs); ALPN; SNI; client-certificate verification
//! (`require_client_certificate`); TLS 1.2 and 1.3. SDS secrets are the workload identity's:
//! bowline-proxy serves `default` (its certificate) and `ROOTCA` (the mesh root) itself,
//! whatever the `sds_config` says, as Istio's agent serves them to Envoy on a local socket.
//! Client SANs are matched too (a certificate whose SANs match none is refused in the
//! handshake). Everything else — OCSP, session-ticket keys, custom handshakers, cipher lists
//! — is refused by name.

use crate::error::{At, Problem};
use crate::matcher::{string_matcher, StringMatcher};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::TransportSocket;
use bowline_xds::pb::envoy::config::core::v3::{data_source, transport_socket, DataSource};
use bowline_xds::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    SubjectAltNameMatcher, TlsCertificate, TlsParameters, UpstreamTlsContext,
};
use bowline_xds::prost::Name;
use std::path::PathBuf;

/// Where PEM text comes from.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Inline(Vec<u8>),
}

/// The certificate a side presents.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    Pem {
        chain: PemSource,
        key: PemSource,
    },
    /// An SDS secret by name (`default`: the workload certificate).
    Sds(String),
}

/// The CA a peer's certificate must chain to.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum TrustSource {
    Pem(PemSource),
    /// An SDS secret by name (`ROOTCA`: the mesh root).
    Sds(String),
}

/// The SDS secret name of the workload certificate (Istio's).
pub const WORKLOAD_CERTIFICATE: &str = "default";
/// The SDS secret name of the mesh's trust anchor (Istio's).
pub const MESH_ROOT: &str = "ROOTCA";

/// A TLS protocol version bowline-proxy speaks.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// Terminating TLS on a filter chain.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct DownstreamTls {
    pub certificate: CertificateSource,
    /// Offered in ALPN in this order (`h2`, `http/1.1`); empty = no ALPN.
    pub alpn: Vec<String>,
    /// Clients must present a certificate that chains to this CA.
    pub client_ca: Option<TrustSource>,
    /// A client certificate must match one of these (any when empty).
    pub client_subject_alt_names: Vec<SanMatcher>,
    pub require_client_certificate: bool,
    /// Versions allowed (Envoy's default for servers: 1.2 to 1.3).
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

/// Which kind of subject alt name a matcher looks at.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanKind {
    Uri,
    Dns,
}

/// One entry of `match_typed_subject_alt_names`: the server is accepted when any SAN of
/// this kind matches.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct SanMatcher {
    pub kind: SanKind,
    pub matcher: StringMatcher,
}

/// Originating TLS to a cluster's hosts.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct UpstreamTls {
    /// Presented when the server asks (mutual TLS).
    pub certificate: Option<CertificateSource>,
    /// Without it the server's certificate is not verified (Envoy's rule).
    pub trust: Option<TrustSource>,
    /// Any one of them must match; empty = any certificate that chains to `trust`.
    pub subject_alt_names: Vec<SanMatcher>,
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// Envoy's default for clients: 1.2 to 1.2… we follow its current default, 1.2 to 1.3.
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

impl SanMatcher {
    pub fn matches(&self, uris: &[String], dns: &[String]) -> bool {
        let names = match self.kind {
            SanKind::Uri => uris,
            SanKind::Dns => dns,
        };
        names.iter().any(|n| self.matcher.matches(n))
    }
}

/// A filter chain's transport socket: `None` for plaintext (absent or raw_buffer), the TLS
/// context for `envoy.transport_sockets.tls`; anything else is refused.
pub(crate) fn downstream(ts: &TransportSocket, at: &At) -> Result<Option<DownstreamTls>, Problem> {
    let Some(transport_socket::ConfigType::TypedConfig(any)) = &ts.config_type else {
        return Err(at.field("typed_config").invalid("is required"));
    };
    let at = at.field("typed_config");
    if crate::listener::same_type(&any.type_url, &RawBuffer::type_url()) {
        return Ok(None);
    }
    if !crate::listener::same_type(&any.type_url, &DownstreamTlsContext::type_url()) {
        return Err(at.unsupported_filter(&ts.name, &any.type_url));
    }
    let ctx: DownstreamTlsContext = bowline_xds::unpack(any).map_err(|e| at.invalid(e))?;
    downstream_context(&ctx, &at).map(Some)
}

fn downstream_context(ctx: &DownstreamTlsContext, at: &At) -> Result<DownstreamTls, Problem> {
    let DownstreamTlsContext {
        common_tls_context,
        require_client_certificate,
        require_sni,
        disable_stateful_session_resumption: _,
        session_timeout,
        ocsp_staple_policy,
        full_scan_certs_on_sni_mismatch,
        prefer_client_ciphers,
        session_ticket_keys_type,
    } = ctx;
    // Stateful resumption is an optimisation whose absence a client cannot tell apart.
    refuse_unsupported!(at; require_sni, session_timeout, ocsp_staple_policy,
        full_scan_certs_on_sni_mismatch, prefer_client_ciphers, session_ticket_keys_type);
    let at = at.field("common_tls_context");
    let Some(common) = common_tls_context else {
        return Err(at.invalid("is required (a certificate to present)"));
    };
    let c = common_context(common, &at)?;
    let Some(certificate) = c.certificate else {
        return Err(at
            .field("tls_certificates")
            .invalid("a server needs a certificate (tls_certificates or an SDS secret)"));
    };
    let require_client_certificate = require_client_certificate.as_ref().is_some_and(|b| b.value);
    if require_client_certificate && c.trust.is_none() {
        return Err(at
            .field("validation_context")
            .invalid("require_client_certificate needs a trusted_ca to verify clients against"));
    }
    Ok(DownstreamTls {
        certificate,
        alpn: c.alpn,
        client_subject_alt_names: c.subject_alt_names,
        client_ca: c.trust,
        require_client_certificate,
        min_version: c.min_version,
        max_version: c.max_version,
    })
}

/// A cluster's transport socket: `None` for plaintext (raw_buffer), the TLS context for
/// `envoy.transport_sockets.tls`; anything else is refused.
pub(crate) fn upstream(ts: &TransportSocket, at: &At) -> Result<Option<UpstreamTls>, Problem> {
    let Some(transport_socket::ConfigType::TypedConfig(any)) = &ts.config_type else {
        return Err(at.field("typed_config").invalid("is required"));
    };
    let at = at.field("typed_config");
    if crate::listener::same_type(&any.type_url, &RawBuffer::type_url()) {
        return Ok(None);
    }
    if !crate::listener::same_type(&any.type_url, &UpstreamTlsContext::type_url()) {
        return Err(at.unsupported_filter(&ts.name, &any.type_url));
    }
    let ctx: UpstreamTlsContext = bowline_xds::unpack(any).map_err(|e| at.invalid(e))?;
    let UpstreamTlsContext {
        common_tls_context,
        sni,
        auto_host_sni,
        auto_sni_san_validation,
        allow_renegotiation,
        max_session_keys: _,
        enforce_rsa_key_usage: _,
    } = &ctx;
    // Session resumption and the RSA key-usage check cannot change whether a peer is accepted.
    refuse_unsupported!(at; auto_host_sni, auto_sni_san_validation, allow_renegotiation);
    let c = match common_tls_context {
        Some(common) => common_context(common, &at.field("common_tls_context"))?,
        None => Common::default(),
    };
    Ok(Some(UpstreamTls {
        certificate: c.certificate,
        trust: c.trust,
        subject_alt_names: c.subject_alt_names,
        sni: (!sni.is_empty()).then(|| sni.clone()),
        alpn: c.alpn,
        min_version: c.min_version,
        max_version: c.max_version,
    }))
}

/// What both sides read from a `CommonTlsContext`.
struct Common {
    certificate: Option<CertificateSource>,
    trust: Option<TrustSource>,
    subject_alt_names: Vec<SanMatcher>,
    alpn: Vec<String>,
    min_version: TlsVersion,
    max_version: TlsVersion,
}

impl Default for Common {
    fn default() -> Common {
        Common {
            certificate: None,
            trust: None,
            subject_alt_names: Vec::new(),
            alpn: Vec::new(),
            min_version: TlsVersion::V1_2,
            max_version: TlsVersion::V1_3,
        }
    }
}

fn common_context(common: &CommonTlsContext, at: &At) -> Result<Common, Problem> {
    let CommonTlsContext {
        tls_params,
        tls_certificates,
        tls_certificate_sds_secret_configs,
        tls_certificate_provider_instance,
        custom_tls_certificate_selector,
        tls_certificate_certificate_provider,
        tls_certificate_certificate_provider_instance,
        alpn_protocols,
        custom_handshaker,
        key_log,
        validation_context_type,
    } = common;
    refuse_unsupported!(at; tls_certificate_provider_instance,
        custom_tls_certificate_selector, tls_certificate_certificate_provider,
        tls_certificate_certificate_provider_instance, custom_handshaker, key_log);
    let certificate = match (
        &tls_certificates[..],
        &tls_certificate_sds_secret_configs[..],
    ) {
        ([], []) => None,
        ([c], []) => {
            let (chain, key) = certificate_pair(c, &at.index("tls_certificates", 0))?;
            Some(CertificateSource::Pem { chain, key })
        }
        ([], [sds]) => Some(CertificateSource::Sds(sds_name(
            sds,
            &at.index("tls_certificate_sds_secret_configs", 0),
        )?)),
        _ => {
            return Err(at
                .field("tls_certificates")
                .invalid("exactly one certificate (inline or by SDS) is supported"))
        }
    };
    let (min_version, max_version) = versions(tls_params.as_ref(), &at.field("tls_params"))?;
    let (trust, subject_alt_names) = match validation_context_type {
        None => (None, Vec::new()),
        Some(ValidationContextType::ValidationContext(v)) => {
            validation(v, &at.field("validation_context"))?
        }
        Some(ValidationContextType::ValidationContextSdsSecretConfig(sds)) => {
            let name = sds_name(sds, &at.field("validation_context_sds_secret_config"))?;
            (Some(TrustSource::Sds(name)), Vec::new())
        }
        Some(ValidationContextType::CombinedValidationContext(combined)) => {
            combined_validation(combined, &at.field("combined_validation_context"))?
        }
        Some(_) => {
            return Err(at
                .field("validation_context_type")
                .unsupported_because("certificate providers are not implemented"))
        }
    };
    Ok(Common {
        certificate,
        trust,
        subject_alt_names,
        alpn: alpn_protocols.clone(),
        min_version,
        max_version,
    })
}

fn sds_name(sds: &SdsSecretConfig, at: &At) -> Result<String, Problem> {
    if sds.name.is_empty() {
        return Err(at.field("name").invalid("must not be empty"));
    }
    Ok(sds.name.clone())
}

/// Istio's form: SAN matchers in the default context, the CA by SDS.
fn combined_validation(
    c: &CombinedCertificateValidationContext,
    at: &At,
) -> Result<(Option<TrustSource>, Vec<SanMatcher>), Problem> {
    let CombinedCertificateValidationContext {
        default_validation_context,
        validation_context_sds_secret_config,
        validation_context_certificate_provider,
        validation_context_certificate_provider_instance,
    } = c;
    refuse_unsupported!(at; validation_context_certificate_provider,
        validation_context_certificate_provider_instance);
    let (inline_ca, sans) = match default_validation_context {
        Some(v) => validation(v, &at.field("default_validation_context"))?,
        None => (None, Vec::new()),
    };
    let Some(sds) = validation_context_sds_secret_config else {
        return Err(at
            .field("validation_context_sds_secret_config")
            .invalid("is required"));
    };
    if inline_ca.is_some() {
        return Err(at
            .field("default_validation_context")
            .field("trusted_ca")
            .unsupported_because("the CA comes from the SDS secret"));
    }
    let name = sds_name(sds, &at.field("validation_context_sds_secret_config"))?;
    Ok((Some(TrustSource::Sds(name)), sans))
}

fn certificate_pair(c: &TlsCertificate, at: &At) -> Result<(PemSource, PemSource), Problem> {
    let TlsCertificate {
        certificate_chain,
        private_key,
        watched_directory,
        private_key_provider,
        password,
        ocsp_staple,
        signed_certificate_timestamp,
        tls_params,
        pkcs12,
    } = c;
    refuse_unsupported!(at; watched_directory, private_key_provider, password, ocsp_staple,
        signed_certificate_timestamp, tls_params, pkcs12);
    let chain = pem_source(certificate_chain.as_ref(), &at.field("certificate_chain"))?;
    let key = pem_source(private_key.as_ref(), &at.field("private_key"))?;
    Ok((chain, key))
}

fn pem_source(d: Option<&DataSource>, at: &At) -> Result<PemSource, Problem> {
    let Some(DataSource {
        specifier,
        watched_directory,
    }) = d
    else {
        return Err(at.invalid("is required"));
    };
    refuse_unsupported!(at; watched_directory);
    match specifier {
        Some(data_source::Specifier::Filename(f)) if !f.is_empty() => Ok(PemSource::File(f.into())),
        Some(data_source::Specifier::InlineString(s)) => {
            Ok(PemSource::Inline(s.clone().into_bytes()))
        }
        Some(data_source::Specifier::InlineBytes(b)) => Ok(PemSource::Inline(b.clone())),
        Some(data_source::Specifier::EnvironmentVariable(_)) => {
            Err(at.field("environment_variable").unsupported())
        }
        _ => Err(at.invalid("a filename or inline PEM is required")),
    }
}

fn versions(p: Option<&TlsParameters>, at: &At) -> Result<(TlsVersion, TlsVersion), Problem> {
    let Some(TlsParameters {
        tls_minimum_protocol_version,
        tls_maximum_protocol_version,
        cipher_suites,
        ecdh_curves,
        signature_algorithms,
        compliance_policies,
    }) = p
    else {
        return Ok((TlsVersion::V1_2, TlsVersion::V1_3));
    };
    refuse_unsupported!(at; cipher_suites, ecdh_curves, signature_algorithms, compliance_policies);
    let version = |v: i32, default: TlsVersion, field: &str| match TlsProtocol::try_from(v) {
        Ok(TlsProtocol::TlsAuto) => Ok(default),
        Ok(TlsProtocol::TlSv12) => Ok(TlsVersion::V1_2),
        Ok(TlsProtocol::TlSv13) => Ok(TlsVersion::V1_3),
        _ => Err(at
            .field(field)
            .unsupported_because("only TLSv1_2 and TLSv1_3 are implemented")),
    };
    let min = version(
        *tls_minimum_protocol_version,
        TlsVersion::V1_2,
        "tls_minimum_protocol_version",
    )?;
    let max = version(
        *tls_maximum_protocol_version,
        TlsVersion::V1_3,
        "tls_maximum_protocol_version",
    )?;
    if min > max {
        return Err(at.invalid("the minimum version is above the maximum"));
    }
    Ok((min, max))
}

fn validation(
    v: &CertificateValidationContext,
    at: &At,
) -> Result<(Option<TrustSource>, Vec<SanMatcher>), Problem> {
    let CertificateValidationContext {
        trusted_ca,
        ca_certificate_provider_instance,
        system_root_certs,
        watched_directory,
        verify_certificate_spki,
        verify_certificate_hash,
        match_typed_subject_alt_names,
        match_subject_alt_names,
        require_signed_certificate_timestamp,
        crl,
        allow_expired_certificate,
        trust_chain_verification,
        custom_validator_config,
        only_verify_leaf_cert_crl,
        max_verify_depth,
        suppress_client_ca_list,
    } = v;
    refuse_unsupported!(at; ca_certificate_provider_instance, system_root_certs, watched_directory,
        verify_certificate_spki, verify_certificate_hash,
        match_subject_alt_names, require_signed_certificate_timestamp, crl,
        allow_expired_certificate, trust_chain_verification, custom_validator_config,
        only_verify_leaf_cert_crl, max_verify_depth, suppress_client_ca_list);
    let trust = trusted_ca
        .as_ref()
        .map(|ca| pem_source(Some(ca), &at.field("trusted_ca")).map(TrustSource::Pem))
        .transpose()?;
    let sans = match_typed_subject_alt_names
        .iter()
        .enumerate()
        .map(|(i, m)| san_matcher(m, &at.index("match_typed_subject_alt_names", i)))
        .collect::<Result<_, _>>()?;
    Ok((trust, sans))
}

fn san_matcher(m: &SubjectAltNameMatcher, at: &At) -> Result<SanMatcher, Problem> {
    let SubjectAltNameMatcher {
        san_type,
        matcher,
        oid,
    } = m;
    refuse_unsupported!(at; oid);
    let kind = match SanType::try_from(*san_type) {
        Ok(SanType::Uri) => SanKind::Uri,
        Ok(SanType::Dns) => SanKind::Dns,
        _ => {
            return Err(at
                .field("san_type")
                .unsupported_because("only URI and DNS SANs are matched"))
        }
    };
    let Some(matcher) = matcher else {
        return Err(at.field("matcher").invalid("is required"));
    };
    Ok(SanMatcher {
        kind,
        matcher: string_matcher(matcher, &at.field("matcher"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bowline_xds::pack;
    use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::SdsSecretConfig;

    fn file(path: &str) -> Option<DataSource> {
        Some(DataSource {
            specifier: Some(data_source::Specifier::Filename(path.into())),
            ..Default::default()
        })
    }

    fn socket(ctx: DownstreamTlsContext) -> TransportSocket {
        TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(pack(&ctx))),
        }
    }

    fn context(common: CommonTlsContext) -> DownstreamTlsContext {
        DownstreamTlsContext {
            common_tls_context: Some(common),
            ..Default::default()
        }
    }

    fn certificate() -> TlsCertificate {
        TlsCertificate {
            certificate_chain: file("/c.pem"),
            private_key: file("/k.pem"),
            ..Default::default()
        }
    }

    #[test]
    fn converts_what_is_implemented_and_names_what_is_not() {
        let at = At::root("filter_chain").field("transport_socket");
        let good = context(CommonTlsContext {
            tls_certificates: vec![certificate()],
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            ..Default::default()
        });
        let tls = downstream(&socket(good), &at).unwrap().unwrap();
        assert_eq!(
            tls.certificate,
            CertificateSource::Pem {
                chain: PemSource::File("/c.pem".into()),
                key: PemSource::File("/k.pem".into())
            }
        );
        assert_eq!(
            (tls.min_version, tls.max_version),
            (TlsVersion::V1_2, TlsVersion::V1_3)
        );
        assert!(!tls.require_client_certificate && tls.client_ca.is_none());

        let sds = context(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: "default".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let tls = downstream(&socket(sds), &at).unwrap().unwrap();
        assert_eq!(tls.certificate, CertificateSource::Sds("default".into()));

        let no_ca = DownstreamTlsContext {
            require_client_certificate: Some(bowline_xds::pb::google::protobuf::BoolValue {
                value: true,
            }),
            ..context(CommonTlsContext {
                tls_certificates: vec![certificate()],
                ..Default::default()
            })
        };
        let err = downstream(&socket(no_ca), &at).unwrap_err().to_string();
        assert!(err.contains("trusted_ca"), "{err}");

        let two = context(CommonTlsContext {
            tls_certificates: vec![certificate(), certificate()],
            ..Default::default()
        });
        assert!(downstream(&socket(two), &at).is_err());
    }
}
