//! The HTTP connection manager every HTTP filter chain runs, and the network filters.

use crate::proto::{ads_config_source, bool_value};
use crate::routes::filters::{CORS_FILTER, FAULT_FILTER, ROUTER_FILTER};
use crate::telemetry::{envoy_access_logs, FileLog, Mode};
use bowline_config::mesh_config::Normalization;
use bowline_xds::pack;
use bowline_xds::pb::envoy::config::core::v3::Http1ProtocolOptions;
use bowline_xds::pb::envoy::config::listener::v3::{filter, Filter};
use bowline_xds::pb::envoy::config::route::v3::RouteConfiguration;
use bowline_xds::pb::envoy::extensions::filters::http::cors::v3::Cors;
use bowline_xds::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use bowline_xds::pb::envoy::extensions::filters::http::router::v3::Router;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{
        CodecType, ForwardClientCertDetails, PathWithEscapedSlashesAction, RouteSpecifier,
        SetCurrentClientCertDetails,
    },
    http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;

pub(crate) const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";
pub(crate) const TCP_PROXY_FILTER: &str = "envoy.filters.network.tcp_proxy";

/// Where the connection manager gets its routes.
pub(crate) enum Routes {
    /// Over ADS, by route configuration name.
    Rds(String),
    /// Inline (inbound: one fixed route to the local application).
    Inline(Box<RouteConfiguration>),
}

/// Which side of the mesh a connection manager serves: it decides the route filters and
/// what becomes of `x-forwarded-client-cert`, as Istio sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// A sidecar's outbound traffic: the application's own XFCC is removed (Envoy's
    /// default, SANITIZE).
    Outbound,
    /// A sidecar's inbound traffic, one fixed route to the application: the caller's
    /// certificate is appended to XFCC (APPEND_FORWARD), so the application learns the
    /// caller's SPIFFE id.
    Inbound,
    /// An ingress gateway: whatever a client sent is replaced (SANITIZE_SET) — a client
    /// cannot claim a mesh identity by sending the header.
    Gateway,
}

impl Side {
    /// The Telemetry `match.mode` this side answers to, as Istio maps listener classes:
    /// outbound and gateways are the CLIENT, inbound the SERVER.
    pub(crate) fn mode(self) -> Mode {
        match self {
            Side::Outbound | Side::Gateway => Mode::Client,
            Side::Inbound => Mode::Server,
        }
    }
}

/// A connection manager: codec sniffed (HTTP/1.1 or h2c), the fault and CORS filters
/// (configured per route) before the router except inbound, Istio's `BASE` path
/// normalisation (RFC 3986 normalisation, slashes kept, escaped slashes untouched),
/// absolute-form request URLs accepted (what an `HTTP_PROXY` client sends), websocket
/// upgrades allowed, and XFCC as [`Side`] says.
/// The connection manager's path options for MeshConfig `pathNormalization`, as istiod
/// sets them: NONE leaves paths alone; BASE (the default) normalises RFC 3986 dot segments;
/// MERGE_SLASHES also merges repeated slashes; DECODE_AND_MERGE_SLASHES also decodes
/// escaped slashes and backslashes before both.
fn path_options(normalization: Normalization) -> (bool, bool, PathWithEscapedSlashesAction) {
    match normalization {
        Normalization::None => (false, false, PathWithEscapedSlashesAction::KeepUnchanged),
        Normalization::Default | Normalization::Base => {
            (true, false, PathWithEscapedSlashesAction::KeepUnchanged)
        }
        Normalization::MergeSlashes => (true, true, PathWithEscapedSlashesAction::KeepUnchanged),
        Normalization::DecodeAndMergeSlashes => {
            (true, true, PathWithEscapedSlashesAction::UnescapeAndForward)
        }
    }
}

/// `access_log`: the file access logs resolved for the proxy and this side
/// ([`crate::PushContext::access_logs`]); none by default.
pub(crate) fn http_connection_manager(
    stat_prefix: String,
    routes: Routes,
    side: Side,
    normalization: Normalization,
    access_log: &[FileLog],
) -> Filter {
    let (normalize_path, merge_slashes, escaped_slashes) = path_options(normalization);
    let mut http_filters = Vec::new();
    if side != Side::Inbound {
        http_filters.push(http_filter(FAULT_FILTER, pack(&HttpFault::default())));
        http_filters.push(http_filter(CORS_FILTER, pack(&Cors::default())));
    }
    http_filters.push(router_filter());
    let route_specifier = match routes {
        Routes::Rds(name) => RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: name,
        }),
        Routes::Inline(config) => RouteSpecifier::RouteConfig(*config),
    };
    let hcm = HttpConnectionManager {
        codec_type: CodecType::Auto as i32,
        stat_prefix,
        http_filters,
        route_specifier: Some(route_specifier),
        use_remote_address: bool_value(false),
        normalize_path: bool_value(normalize_path),
        merge_slashes,
        path_with_escaped_slashes_action: escaped_slashes as i32,
        http_protocol_options: Some(Http1ProtocolOptions {
            allow_absolute_url: bool_value(true),
            ..Default::default()
        }),
        upgrade_configs: vec![
            bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::UpgradeConfig {
                upgrade_type: "websocket".into(),
                ..Default::default()
            },
        ],
        forward_client_cert_details: match side {
            Side::Outbound => ForwardClientCertDetails::Sanitize,
            Side::Inbound => ForwardClientCertDetails::AppendForward,
            Side::Gateway => ForwardClientCertDetails::SanitizeSet,
        } as i32,
        set_current_client_cert_details: (side != Side::Outbound).then_some(
            SetCurrentClientCertDetails {
                subject: bool_value(true),
                uri: true,
                dns: true,
                ..Default::default()
            },
        ),
        access_log: envoy_access_logs(access_log),
        ..Default::default()
    };
    network_filter(HCM_FILTER, pack(&hcm))
}

/// Puts `filters` at the front of an HTTP connection manager's filter list (security
/// filters run before the route's own and the router).
pub(crate) fn prepend_filters(hcm: &mut Filter, filters: Vec<HttpFilter>) {
    if filters.is_empty() {
        return;
    }
    let Some(filter::ConfigType::TypedConfig(any)) = &mut hcm.config_type else {
        return;
    };
    let Ok(mut config) = bowline_xds::unpack::<HttpConnectionManager>(any) else {
        return;
    };
    config.http_filters.splice(0..0, filters);
    *any = pack(&config);
}

/// A tcp_proxy filter writing `access_log` (see [`http_connection_manager`]).
pub(crate) fn tcp_proxy_filter(proxy: &TcpProxy, access_log: &[FileLog]) -> Filter {
    if access_log.is_empty() {
        return network_filter(TCP_PROXY_FILTER, pack(proxy));
    }
    let logged = TcpProxy {
        access_log: envoy_access_logs(access_log),
        ..proxy.clone()
    };
    network_filter(TCP_PROXY_FILTER, pack(&logged))
}

/// The router, the last HTTP filter of every connection manager (Envoy's and gRPC's).
pub(crate) fn router_filter() -> HttpFilter {
    http_filter(ROUTER_FILTER, pack(&Router::default()))
}

fn http_filter(name: &str, config: bowline_xds::pb::google::protobuf::Any) -> HttpFilter {
    HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

pub(crate) fn network_filter(name: &str, config: bowline_xds::pb::google::protobuf::Any) -> Filter {
    Filter {
        name: name.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(config)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_path_normalization_sets_the_connection_manager_as_istiod_does() {
        use PathWithEscapedSlashesAction::{KeepUnchanged, UnescapeAndForward};
        let cases = [
            (Normalization::None, (false, false, KeepUnchanged)),
            (Normalization::Default, (true, false, KeepUnchanged)),
            (Normalization::Base, (true, false, KeepUnchanged)),
            (Normalization::MergeSlashes, (true, true, KeepUnchanged)),
            (
                Normalization::DecodeAndMergeSlashes,
                (true, true, UnescapeAndForward),
            ),
        ];
        for (mode, want) in cases {
            assert_eq!(path_options(mode), want, "{mode:?}");
        }
    }
}
