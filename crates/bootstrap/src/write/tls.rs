//! `Any` by its type URL, and the upstream TLS of the control plane's cluster: transport
//! socket, `UpstreamTlsContext` (SNI, ALPN, trusted CA, SAN matchers).

use std::mem::take;

use bowline_xds::pb::envoy::config::core::v3::{
    data_source, transport_socket, DataSource, TransportSocket,
};
use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, UpstreamTlsContext,
};
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use bowline_xds::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::prost::{Message, Name};
use bowline_xds::unpack;
use serde_json::{Map, Value};

use super::cluster::http_protocol_options;
use super::obj::Obj;
use super::{Result, WriteError};

/// `{"@type": url, ...fields}` for the message types a bootstrap's `Any`s hold here.
pub(crate) fn any(a: Any) -> Result<Value> {
    let name = a.type_url.rsplit('/').next().unwrap_or_default();
    let fields = if name == HttpProtocolOptions::full_name() {
        http_protocol_options(decode(&a)?)?
    } else if name == UpstreamTlsContext::full_name() {
        upstream_tls_context(decode(&a)?)?
    } else {
        return Err(WriteError::here(format!(
            "the bootstrap writer does not write an Any of type {:?} (it writes {} and {})",
            a.type_url,
            HttpProtocolOptions::full_name(),
            UpstreamTlsContext::full_name()
        )));
    };
    let mut map = Map::new();
    map.insert("@type".to_string(), Value::String(a.type_url));
    if let Value::Object(fields) = fields {
        map.extend(fields);
    }
    Ok(Value::Object(map))
}

fn decode<T: Message + Name + Default>(a: &Any) -> Result<T> {
    unpack(a).map_err(|e| WriteError::here(e.to_string()))
}

pub(crate) fn transport_socket(mut t: TransportSocket) -> Result<Value> {
    let mut o = Obj::new();
    o.string("name", take(&mut t.name));
    match t.config_type.take() {
        Some(transport_socket::ConfigType::TypedConfig(a)) => {
            o.message("typed_config", Some(a), any)?
        }
        other => t.config_type = other,
    }
    o.finish(&t)
}

fn upstream_tls_context(mut u: UpstreamTlsContext) -> Result<Value> {
    let mut o = Obj::new();
    o.string("sni", take(&mut u.sni));
    o.message(
        "common_tls_context",
        u.common_tls_context.take(),
        common_tls_context,
    )?;
    o.finish(&u)
}

fn common_tls_context(mut c: CommonTlsContext) -> Result<Value> {
    let mut o = Obj::new();
    o.strings("alpn_protocols", take(&mut c.alpn_protocols));
    match c.validation_context_type.take() {
        Some(ValidationContextType::ValidationContext(v)) => {
            o.message("validation_context", Some(v), validation_context)?
        }
        other => c.validation_context_type = other,
    }
    o.finish(&c)
}

fn validation_context(mut v: CertificateValidationContext) -> Result<Value> {
    let mut o = Obj::new();
    o.message("trusted_ca", v.trusted_ca.take(), data_source)?;
    o.list(
        "match_typed_subject_alt_names",
        take(&mut v.match_typed_subject_alt_names),
        san_matcher,
    )?;
    o.finish(&v)
}

fn data_source(mut d: DataSource) -> Result<Value> {
    let mut o = Obj::new();
    match d.specifier.take() {
        Some(data_source::Specifier::Filename(f)) => o.insert("filename", Value::String(f)),
        Some(data_source::Specifier::InlineString(s)) => {
            o.insert("inline_string", Value::String(s))
        }
        other => d.specifier = other,
    }
    o.finish(&d)
}

fn san_matcher(mut s: SubjectAltNameMatcher) -> Result<Value> {
    let mut o = Obj::new();
    o.enumeration("san_type", take(&mut s.san_type), SanType::as_str_name)?;
    o.message("matcher", s.matcher.take(), string_matcher)?;
    o.finish(&s)
}

fn string_matcher(mut m: StringMatcher) -> Result<Value> {
    let mut o = Obj::new();
    match m.match_pattern.take() {
        Some(MatchPattern::Exact(s)) => o.insert("exact", Value::String(s)),
        Some(MatchPattern::Prefix(s)) => o.insert("prefix", Value::String(s)),
        Some(MatchPattern::Suffix(s)) => o.insert("suffix", Value::String(s)),
        other => m.match_pattern = other,
    }
    o.bool("ignore_case", take(&mut m.ignore_case));
    o.finish(&m)
}
