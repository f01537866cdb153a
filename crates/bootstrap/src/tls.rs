//! `transport_socket` with `envoy.transport_sockets.tls` in a bootstrap: the TLS contexts of
//! static listeners and clusters (files or inline PEM, trusted CA, SAN matchers, ALPN, SNI,
//! TLS versions) — what a sidecar pair with fixed certificates needs (the benchmark's
//! two-hop mTLS configs). SDS references are an xDS matter and are not read here.

use bowline_xds::pb::envoy::config::core::v3::{
    data_source, transport_socket, DataSource, TransportSocket,
};
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, SubjectAltNameMatcher, TlsCertificate, TlsParameters, UpstreamTlsContext,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};

use crate::any::any;
use crate::json::{Field, Result};

pub(crate) fn transport_socket(f: Field<'_>) -> Result<TransportSocket> {
    f.object(|o| {
        Ok(TransportSocket {
            name: o.or_default("name", Field::string)?,
            config_type: o
                .opt("typed_config", any)?
                .map(transport_socket::ConfigType::TypedConfig),
        })
    })
}

/// `envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`.
pub(crate) fn upstream_tls_context(f: Field<'_>) -> Result<UpstreamTlsContext> {
    f.object(|o| {
        o.skip("@type");
        Ok(UpstreamTlsContext {
            common_tls_context: o.opt("common_tls_context", common_tls_context)?,
            sni: o.or_default("sni", Field::string)?,
            ..Default::default()
        })
    })
}

/// `envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`.
pub(crate) fn downstream_tls_context(f: Field<'_>) -> Result<DownstreamTlsContext> {
    f.object(|o| {
        o.skip("@type");
        Ok(DownstreamTlsContext {
            common_tls_context: o.opt("common_tls_context", common_tls_context)?,
            require_client_certificate: o.opt("require_client_certificate", Field::bool_value)?,
            ..Default::default()
        })
    })
}

fn common_tls_context(f: Field<'_>) -> Result<CommonTlsContext> {
    f.object(|o| {
        Ok(CommonTlsContext {
            tls_params: o.opt("tls_params", tls_params)?,
            alpn_protocols: o.or_default("alpn_protocols", Field::strings)?,
            tls_certificates: o.or_default("tls_certificates", |f| f.list(tls_certificate))?,
            validation_context_type: o
                .opt("validation_context", validation_context)?
                .map(ValidationContextType::ValidationContext),
            ..Default::default()
        })
    })
}

fn tls_params(f: Field<'_>) -> Result<TlsParameters> {
    f.object(|o| {
        let version = |f: Field<'_>| f.enumeration(TlsProtocol::from_str_name, "TlsProtocol");
        Ok(TlsParameters {
            tls_minimum_protocol_version: o.or_default("tls_minimum_protocol_version", version)?,
            tls_maximum_protocol_version: o.or_default("tls_maximum_protocol_version", version)?,
            ..Default::default()
        })
    })
}

fn tls_certificate(f: Field<'_>) -> Result<TlsCertificate> {
    f.object(|o| {
        Ok(TlsCertificate {
            certificate_chain: o.opt("certificate_chain", data_source)?,
            private_key: o.opt("private_key", data_source)?,
            ..Default::default()
        })
    })
}

fn validation_context(f: Field<'_>) -> Result<CertificateValidationContext> {
    f.object(|o| {
        Ok(CertificateValidationContext {
            trusted_ca: o.opt("trusted_ca", data_source)?,
            match_typed_subject_alt_names: o
                .or_default("match_typed_subject_alt_names", |f| f.list(san_matcher))?,
            ..Default::default()
        })
    })
}

fn san_matcher(f: Field<'_>) -> Result<SubjectAltNameMatcher> {
    f.object(|o| {
        Ok(SubjectAltNameMatcher {
            san_type: o.or_default("san_type", |f| {
                f.enumeration(SanType::from_str_name, "SubjectAltNameMatcher.SanType")
            })?,
            matcher: o.opt("matcher", string_matcher)?,
            ..Default::default()
        })
    })
}

fn string_matcher(f: Field<'_>) -> Result<StringMatcher> {
    f.object(|o| {
        let exact = o.opt("exact", Field::string)?.map(MatchPattern::Exact);
        let prefix = o.opt("prefix", Field::string)?.map(MatchPattern::Prefix);
        let suffix = o.opt("suffix", Field::string)?.map(MatchPattern::Suffix);
        Ok(StringMatcher {
            match_pattern: exact.or(prefix).or(suffix),
            ignore_case: o.or_default("ignore_case", Field::bool)?,
        })
    })
}

fn data_source(f: Field<'_>) -> Result<DataSource> {
    f.object(|o| {
        let file = o
            .opt("filename", Field::string)?
            .map(data_source::Specifier::Filename);
        let inline = o
            .opt("inline_string", Field::string)?
            .map(data_source::Specifier::InlineString);
        Ok(DataSource {
            specifier: file.or(inline),
            ..Default::default()
        })
    })
}
