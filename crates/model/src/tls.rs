//! TLS termination on a filter chain: `envoy.transport_sockets.tls` with a
//! `DownstreamTlsContext`, converted once; the proxy reads the files and builds the TLS
//! configuration when it applies the listener (a file it cannot read NACKs the listener).
//!
//! Implemented: certificates from files or inline PEM, ALPN, client-certificate verification
//! against a trusted CA (`require_client_certificate`), minimum and maximum TLS versions (1.2,
//! 1.3). Everything else — SDS, OCSP, session-ticket keys, SAN matching of clients, custom
//! handshakers, cipher lists — is refused by name.

use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::TransportSocket;
use bowline_xds::pb::envoy::config::core::v3::{data_source, transport_socket, DataSource};
use bowline_xds::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, tls_parameters::TlsProtocol,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, TlsCertificate,
    TlsParameters,
};
use bowline_xds::prost::Name;
use std::path::PathBuf;

/// Where PEM text comes from.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Inline(Vec<u8>),
}

/// A TLS protocol version bowline-proxy speaks.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// Terminating TLS on a filter chain.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub struct DownstreamTls {
    pub certificate_chain: PemSource,
    pub private_key: PemSource,
    /// Offered in ALPN in this order (`h2`, `http/1.1`); empty = no ALPN.
    pub alpn: Vec<String>,
    /// Clients must present a certificate that chains to this CA.
    pub client_ca: Option<PemSource>,
    pub require_client_certificate: bool,
    /// Versions allowed (Envoy's default for servers: 1.2 to 1.3).
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
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
    refuse_unsupported!(at; tls_certificate_sds_secret_configs, tls_certificate_provider_instance,
        custom_tls_certificate_selector, tls_certificate_certificate_provider,
        tls_certificate_certificate_provider_instance, custom_handshaker, key_log);
    let [certificate] = &tls_certificates[..] else {
        return Err(at.field("tls_certificates").invalid(format!(
            "exactly one certificate is supported, found {}",
            tls_certificates.len()
        )));
    };
    let (certificate_chain, private_key) =
        certificate_pair(certificate, &at.index("tls_certificates", 0))?;
    let (min_version, max_version) = versions(tls_params.as_ref(), &at.field("tls_params"))?;
    let client_ca = match validation_context_type {
        None => None,
        Some(ValidationContextType::ValidationContext(v)) => {
            validation(v, &at.field("validation_context"))?
        }
        Some(_) => {
            return Err(at
                .field("validation_context_type")
                .unsupported_because("only an inline validation_context is implemented (no SDS)"))
        }
    };
    let require_client_certificate = require_client_certificate.as_ref().is_some_and(|b| b.value);
    if require_client_certificate && client_ca.is_none() {
        return Err(at
            .field("validation_context")
            .invalid("require_client_certificate needs a trusted_ca to verify clients against"));
    }
    Ok(DownstreamTls {
        certificate_chain,
        private_key,
        alpn: alpn_protocols.clone(),
        client_ca,
        require_client_certificate,
        min_version,
        max_version,
    })
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

fn validation(v: &CertificateValidationContext, at: &At) -> Result<Option<PemSource>, Problem> {
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
        verify_certificate_spki, verify_certificate_hash, match_typed_subject_alt_names,
        match_subject_alt_names, require_signed_certificate_timestamp, crl,
        allow_expired_certificate, trust_chain_verification, custom_validator_config,
        only_verify_leaf_cert_crl, max_verify_depth, suppress_client_ca_list);
    trusted_ca
        .as_ref()
        .map(|ca| pem_source(Some(ca), &at.field("trusted_ca")))
        .transpose()
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
        assert_eq!(tls.certificate_chain, PemSource::File("/c.pem".into()));
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
        let err = downstream(&socket(sds), &at).unwrap_err().to_string();
        assert!(err.contains("tls_certificate_sds_secret_configs"), "{err}");

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
