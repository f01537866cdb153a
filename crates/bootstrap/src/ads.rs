//! Where and how the proxy reaches its control plane, read from a parsed bootstrap:
//! `dynamic_resources.ads_config` names a static cluster, whose endpoint is the address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bowline_xds::client::{AdsConfig, AdsFlavor};
use bowline_xds::pb::envoy::config::bootstrap::v3::Bootstrap;
use bowline_xds::pb::envoy::config::core::v3::{
    address, api_config_source::ApiType, grpc_service, socket_address, RetryPolicy,
};
use bowline_xds::pb::envoy::config::endpoint::v3::lb_endpoint;
use bowline_xds::pb::google::protobuf::Duration as ProtoDuration;
use bowline_xds::type_url;

use crate::BootstrapError;

/// The control plane as the bootstrap describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdsSettings {
    /// The static cluster `ads_config` names (`xds-grpc`).
    pub cluster_name: String,
    /// That cluster's first endpoint.
    pub endpoint: SocketAddr,
    /// `GRPC` is SotW, `DELTA_GRPC` delta.
    pub flavor: AdsFlavor,
    /// Type URLs over ADS, in subscription order: CDS if `cds_config`, then LDS if `lds_config`.
    pub types: Vec<String>,
    /// The gRPC service's `retry_policy.retry_back_off`, Envoy's reconnect backoff, if set.
    pub backoff_base: Option<Duration>,
    pub backoff_max: Option<Duration>,
    /// TLS to the control plane, from the cluster's `transport_socket`.
    pub tls: Option<AdsTls>,
}

/// How the ADS cluster's `transport_socket` says to reach the control plane over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdsTls {
    /// `validation_context.trusted_ca`: the mesh root.
    pub trusted_ca: PemSource,
    /// The DNS name the control plane's certificate must carry: `sni`, else the first exact
    /// DNS entry of `match_typed_subject_alt_names`.
    pub server_name: String,
}

/// A PEM document, in a file or inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    File(std::path::PathBuf),
    Inline(String),
}

/// Reads the ADS settings; `None` for a bootstrap without `ads_config` (static only).
pub fn ads_settings(bootstrap: &Bootstrap) -> Result<Option<AdsSettings>, BootstrapError> {
    let dynamic = bootstrap.dynamic_resources.as_ref();
    let Some(ads) = dynamic.and_then(|d| d.ads_config.as_ref()) else {
        if let Some(dynamic) = dynamic {
            for (field, source) in [
                ("cds_config", &dynamic.cds_config),
                ("lds_config", &dynamic.lds_config),
            ] {
                if source.is_some() {
                    return Err(error(
                        format!("dynamic_resources.{field}"),
                        "uses ADS, but dynamic_resources has no ads_config",
                    ));
                }
            }
        }
        return Ok(None);
    };
    let at = "dynamic_resources.ads_config";
    let flavor = match ApiType::try_from(ads.api_type) {
        Ok(ApiType::Grpc) => AdsFlavor::Sotw,
        Ok(ApiType::DeltaGrpc) => AdsFlavor::Delta,
        other => {
            let name = other.map(|t| t.as_str_name()).unwrap_or("an unknown value");
            return Err(error(
                format!("{at}.api_type"),
                format!("{name} is not supported (GRPC or DELTA_GRPC)"),
            ));
        }
    };
    let [service] = ads.grpc_services.as_slice() else {
        return Err(error(
            format!("{at}.grpc_services"),
            format!(
                "needs exactly one gRPC service, found {}",
                ads.grpc_services.len()
            ),
        ));
    };
    let Some(grpc_service::TargetSpecifier::EnvoyGrpc(envoy)) = &service.target_specifier else {
        return Err(error(format!("{at}.grpc_services[0]"), "needs envoy_grpc"));
    };
    let clusters = bootstrap
        .static_resources
        .as_ref()
        .map(|s| s.clusters.as_slice())
        .unwrap_or_default();
    let Some(index) = clusters.iter().position(|c| c.name == envoy.cluster_name) else {
        return Err(error(
            format!("{at}.grpc_services[0].envoy_grpc.cluster_name"),
            format!("no static cluster named {:?}", envoy.cluster_name),
        ));
    };
    let endpoint = first_endpoint(&clusters[index])
        .map_err(|message| error(format!("static_resources.clusters[{index}]"), message))?;
    let tls = ads_tls(&clusters[index]).map_err(|(field, message)| {
        error(
            format!("static_resources.clusters[{index}].transport_socket{field}"),
            message,
        )
    })?;
    let retry = envoy
        .retry_policy
        .as_ref()
        .or(service.retry_policy.as_ref());
    let backoff =
        |pick: fn(&RetryPolicy) -> Option<&ProtoDuration>| retry.and_then(pick).map(std_duration);
    let dynamic = dynamic.expect("ads_config came from it");
    let mut types = Vec::new();
    if dynamic.cds_config.is_some() {
        types.push(type_url::CLUSTER.to_string());
    }
    if dynamic.lds_config.is_some() {
        types.push(type_url::LISTENER.to_string());
    }
    Ok(Some(AdsSettings {
        cluster_name: envoy.cluster_name.clone(),
        endpoint,
        flavor,
        types,
        backoff_base: backoff(|r| r.retry_back_off.as_ref()?.base_interval.as_ref()),
        backoff_max: backoff(|r| r.retry_back_off.as_ref()?.max_interval.as_ref()),
        tls,
    }))
}

/// The control plane's TLS, from the ADS cluster's `transport_socket`: the server is
/// verified against a trusted CA and a DNS name; the proxy presents no certificate (the CA's
/// bearer token identifies it). Anything else there is refused by name. Errors are
/// `(field path below transport_socket, message)`.
fn ads_tls(
    cluster: &bowline_xds::pb::envoy::config::cluster::v3::Cluster,
) -> Result<Option<AdsTls>, (String, String)> {
    use bowline_xds::pb::envoy::config::core::v3::{data_source, transport_socket};
    use bowline_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
        common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
        CommonTlsContext, UpstreamTlsContext,
    };
    use bowline_xds::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
    let Some(socket) = &cluster.transport_socket else {
        return Ok(None);
    };
    let bad = |field: &str, message: &str| (field.to_string(), message.to_string());
    let Some(transport_socket::ConfigType::TypedConfig(any)) = &socket.config_type else {
        return Err(bad(".typed_config", "is required"));
    };
    let tls: UpstreamTlsContext = bowline_xds::unpack(any).map_err(|e| {
        bad(
            ".typed_config",
            &format!("an UpstreamTlsContext is required: {e}"),
        )
    })?;
    let common = tls.common_tls_context.unwrap_or_default();
    let CommonTlsContext {
        alpn_protocols,
        validation_context_type,
        tls_certificates,
        tls_certificate_sds_secret_configs,
        // Anything else is compared against its default below.
        ..
    } = &common;
    if !tls_certificates.is_empty() || !tls_certificate_sds_secret_configs.is_empty() {
        return Err(bad(
            ".common_tls_context.tls_certificates",
            "client certificates to the control plane are not supported: the CA token identifies the proxy",
        ));
    }
    let understood = CommonTlsContext {
        alpn_protocols: alpn_protocols.clone(),
        validation_context_type: validation_context_type.clone(),
        ..Default::default()
    };
    if understood != common {
        return Err(bad(
            ".common_tls_context",
            "only validation_context and alpn_protocols are supported for the control plane",
        ));
    }
    if alpn_protocols.iter().any(|p| p != "h2") {
        return Err(bad(
            ".common_tls_context.alpn_protocols",
            "only h2 is spoken to the control plane",
        ));
    }
    let Some(ValidationContextType::ValidationContext(validation)) = validation_context_type else {
        return Err(bad(
            ".common_tls_context.validation_context",
            "is required: the control plane must be verified against the mesh root",
        ));
    };
    let trusted_ca = match validation
        .trusted_ca
        .as_ref()
        .and_then(|d| d.specifier.as_ref())
    {
        Some(data_source::Specifier::Filename(path)) => PemSource::File(path.into()),
        Some(data_source::Specifier::InlineString(text)) => PemSource::Inline(text.clone()),
        _ => {
            return Err(bad(
                ".common_tls_context.validation_context.trusted_ca",
                "needs a filename or an inline_string",
            ))
        }
    };
    let dns_san = validation
        .match_typed_subject_alt_names
        .iter()
        .find(|m| m.san_type == SanType::Dns as i32)
        .and_then(|m| match m.matcher.as_ref()?.match_pattern.as_ref()? {
            MatchPattern::Exact(name) => Some(name.clone()),
            _ => None,
        });
    let server_name = match (tls.sni.is_empty(), dns_san) {
        (false, _) => tls.sni.clone(),
        (true, Some(name)) => name,
        (true, None) => {
            return Err(bad(
                ".sni",
                "is required (or an exact DNS entry in match_typed_subject_alt_names): the name the control plane's certificate must carry",
            ))
        }
    };
    Ok(Some(AdsTls {
        trusted_ca,
        server_name,
    }))
}

/// The ADS client's configuration: the bootstrap's node, endpoint, flavor, types and backoff
/// (the client's defaults where the bootstrap sets none). `None` without `ads_config`.
pub fn ads_client_config(bootstrap: &Bootstrap) -> Result<Option<AdsConfig>, BootstrapError> {
    let Some(settings) = ads_settings(bootstrap)? else {
        return Ok(None);
    };
    let node = bootstrap.node.clone().unwrap_or_default();
    let mut config = AdsConfig::new(settings.endpoint, node, settings.flavor);
    config.types = settings.types;
    if let Some(base) = settings.backoff_base {
        config.backoff_base = base;
    }
    if let Some(max) = settings.backoff_max {
        config.backoff_max = max;
    }
    Ok(Some(config))
}

fn first_endpoint(
    cluster: &bowline_xds::pb::envoy::config::cluster::v3::Cluster,
) -> Result<SocketAddr, String> {
    let socket = cluster
        .load_assignment
        .as_ref()
        .and_then(|la| la.endpoints.first())
        .and_then(|locality| locality.lb_endpoints.first())
        .and_then(|lb| match &lb.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(endpoint)) => endpoint.address.as_ref(),
            _ => None,
        })
        .and_then(|address| match &address.address {
            Some(address::Address::SocketAddress(socket)) => Some(socket),
            _ => None,
        })
        .ok_or("the ADS cluster needs an endpoint with a socket_address in load_assignment")?;
    let ip: IpAddr = socket.address.parse().map_err(|_| {
        format!(
            "the ADS cluster's address {:?} is not an IP address (DNS names are not supported)",
            socket.address
        )
    })?;
    let port = match socket.port_specifier {
        Some(socket_address::PortSpecifier::PortValue(port)) => u16::try_from(port).ok(),
        _ => None,
    };
    let port = port.ok_or("the ADS cluster's endpoint needs a port_value")?;
    Ok(SocketAddr::new(ip, port))
}

fn std_duration(d: &ProtoDuration) -> Duration {
    Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32)
}

fn error(path: String, message: impl Into<String>) -> BootstrapError {
    BootstrapError::Field {
        path,
        message: message.into(),
    }
}
