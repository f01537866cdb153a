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
