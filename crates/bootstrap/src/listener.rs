//! Static listeners: filter chains of an HTTP connection manager (inline routes or RDS, the
//! router and RBAC filters) or a TCP proxy.

use bowline_xds::pb::envoy::config::core::v3::{data_source, DataSource, Metadata};
use bowline_xds::pb::envoy::config::trace::v3::{
    tracing::http::ConfigType as TraceConfigType, tracing::Http as TraceHttp, zipkin_config,
    ZipkinConfig,
};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::Tracing;
use bowline_xds::pb::envoy::r#type::v3::Percent;
use bowline_xds::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use bowline_xds::pb::envoy::config::route::v3::{
    route, route_action, route_match, DirectResponseAction, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost,
};
use bowline_xds::pb::envoy::extensions::filters::http::router::v3::Router;
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{
        CodecType, ForwardClientCertDetails, PathWithEscapedSlashesAction, RouteSpecifier,
        SetCurrentClientCertDetails, UpgradeConfig,
    },
    http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use bowline_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};

use crate::any::any;
use crate::core::{
    address, common_http_protocol_options, config_source, header_value_option,
    http1_protocol_options,
};
use crate::json::{Field, Result};

pub(crate) fn listener(f: Field<'_>) -> Result<Listener> {
    f.object(|o| {
        Ok(Listener {
            name: o.or_default("name", Field::string)?,
            address: o.opt("address", address)?,
            stat_prefix: o.or_default("stat_prefix", Field::string)?,
            filter_chains: o.or_default("filter_chains", |f| f.list(filter_chain))?,
            ..Default::default()
        })
    })
}

fn filter_chain(f: Field<'_>) -> Result<FilterChain> {
    f.object(|o| {
        Ok(FilterChain {
            name: o.or_default("name", Field::string)?,
            filters: o.or_default("filters", |f| f.list(network_filter))?,
            transport_socket: o.opt("transport_socket", crate::tls::transport_socket)?,
            metadata: o.opt("metadata", metadata)?,
            ..Default::default()
        })
    })
}

fn network_filter(f: Field<'_>) -> Result<Filter> {
    f.object(|o| {
        Ok(Filter {
            name: o.or_default("name", Field::string)?,
            config_type: o
                .opt("typed_config", any)?
                .map(filter::ConfigType::TypedConfig),
        })
    })
}

/// `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`.
pub(crate) fn http_connection_manager(f: Field<'_>) -> Result<HttpConnectionManager> {
    f.object(|o| {
        o.skip("@type");
        let rds = o.opt("rds", rds)?.map(RouteSpecifier::Rds);
        let inline = o
            .opt("route_config", route_configuration)?
            .map(RouteSpecifier::RouteConfig);
        let route_specifier = match (rds, inline) {
            (Some(_), Some(_)) => {
                return Err(f.error("set one of rds and route_config, not both"));
            }
            (rds, inline) => rds.or(inline),
        };
        Ok(HttpConnectionManager {
            stat_prefix: o.or_default("stat_prefix", Field::string)?,
            codec_type: o.or_default("codec_type", |f| {
                f.enumeration(CodecType::from_str_name, "HttpConnectionManager.CodecType")
            })?,
            generate_request_id: o.opt("generate_request_id", Field::bool_value)?,
            stream_idle_timeout: o.opt("stream_idle_timeout", Field::duration)?,
            request_headers_timeout: o.opt("request_headers_timeout", Field::duration)?,
            max_request_headers_kb: o.opt("max_request_headers_kb", Field::u32_value)?,
            common_http_protocol_options: o
                .opt("common_http_protocol_options", common_http_protocol_options)?,
            http_protocol_options: o.opt("http_protocol_options", http1_protocol_options)?,
            use_remote_address: o.opt("use_remote_address", Field::bool_value)?,
            forward_client_cert_details: o.or_default("forward_client_cert_details", |f| {
                f.enumeration(
                    ForwardClientCertDetails::from_str_name,
                    "HttpConnectionManager.ForwardClientCertDetails",
                )
            })?,
            set_current_client_cert_details: o.opt(
                "set_current_client_cert_details",
                set_current_client_cert_details,
            )?,
            normalize_path: o.opt("normalize_path", Field::bool_value)?,
            merge_slashes: o.or_default("merge_slashes", Field::bool)?,
            path_with_escaped_slashes_action: o.or_default(
                "path_with_escaped_slashes_action",
                |f| {
                    f.enumeration(
                        PathWithEscapedSlashesAction::from_str_name,
                        "HttpConnectionManager.PathWithEscapedSlashesAction",
                    )
                },
            )?,
            http_filters: o.or_default("http_filters", |f| f.list(http_filter))?,
            upgrade_configs: o.or_default("upgrade_configs", |f| f.list(upgrade_config))?,
            tracing: o.opt("tracing", tracing)?,
            route_specifier,
            ..Default::default()
        })
    })
}

/// `metadata: {filter_metadata: {KEY: {…}}}` (bowline-proxy reads `istio.stats` there).
fn metadata(f: Field<'_>) -> Result<Metadata> {
    f.object(|o| {
        let filter_metadata = o.or_default("filter_metadata", |f| {
            f.map(|_, value| value.proto_struct())
        })?;
        Ok(Metadata {
            filter_metadata: filter_metadata.into_iter().collect(),
            ..Default::default()
        })
    })
}

/// The connection manager's `tracing`: sampling percentages and the tracer.
fn tracing(f: Field<'_>) -> Result<Tracing> {
    let percent = |f: Field<'_>| {
        f.object(|o| {
            Ok(Percent {
                value: o.or_default("value", |f| {
                    f.value.as_f64().ok_or_else(|| f.error("expected a number"))
                })?,
            })
        })
    };
    f.object(|o| {
        Ok(Tracing {
            random_sampling: o.opt("random_sampling", percent)?,
            client_sampling: o.opt("client_sampling", percent)?,
            overall_sampling: o.opt("overall_sampling", percent)?,
            provider: o.opt("provider", |f| {
                f.object(|o| {
                    Ok(TraceHttp {
                        name: o.or_default("name", Field::string)?,
                        config_type: o
                            .opt("typed_config", any)?
                            .map(TraceConfigType::TypedConfig),
                    })
                })
            })?,
            ..Default::default()
        })
    })
}

/// `envoy.config.trace.v3.ZipkinConfig`.
pub(crate) fn zipkin_config(f: Field<'_>) -> Result<ZipkinConfig> {
    f.object(|o| {
        o.skip("@type");
        Ok(ZipkinConfig {
            collector_cluster: o.or_default("collector_cluster", Field::string)?,
            collector_endpoint: o.or_default("collector_endpoint", Field::string)?,
            collector_hostname: o.or_default("collector_hostname", Field::string)?,
            trace_id_128bit: o.or_default("trace_id_128bit", Field::bool)?,
            shared_span_context: o.opt("shared_span_context", Field::bool_value)?,
            collector_endpoint_version: o.or_default("collector_endpoint_version", |f| {
                f.enumeration(
                    zipkin_config::CollectorEndpointVersion::from_str_name,
                    "ZipkinConfig.CollectorEndpointVersion",
                )
            })?,
            ..Default::default()
        })
    })
}

fn rds(f: Field<'_>) -> Result<Rds> {
    f.object(|o| {
        Ok(Rds {
            config_source: o.opt("config_source", config_source)?,
            route_config_name: o.or_default("route_config_name", Field::string)?,
        })
    })
}

/// Which parts of the client certificate go into `x-forwarded-client-cert`.
fn set_current_client_cert_details(f: Field<'_>) -> Result<SetCurrentClientCertDetails> {
    f.object(|o| {
        Ok(SetCurrentClientCertDetails {
            subject: o.opt("subject", Field::bool_value)?,
            cert: o.or_default("cert", Field::bool)?,
            chain: o.or_default("chain", Field::bool)?,
            dns: o.or_default("dns", Field::bool)?,
            uri: o.or_default("uri", Field::bool)?,
            issuer: o.or_default("issuer", Field::bool)?,
            ..Default::default()
        })
    })
}

/// `upgrade_configs[]`: which `Upgrade:` types (e.g. `websocket`) the listener tunnels.
fn upgrade_config(f: Field<'_>) -> Result<UpgradeConfig> {
    f.object(|o| {
        Ok(UpgradeConfig {
            upgrade_type: o.or_default("upgrade_type", Field::string)?,
            enabled: o.opt("enabled", Field::bool_value)?,
            ..Default::default()
        })
    })
}

fn http_filter(f: Field<'_>) -> Result<HttpFilter> {
    f.object(|o| {
        Ok(HttpFilter {
            name: o.or_default("name", Field::string)?,
            is_optional: o.or_default("is_optional", Field::bool)?,
            config_type: o
                .opt("typed_config", any)?
                .map(http_filter::ConfigType::TypedConfig),
            ..Default::default()
        })
    })
}

/// `envoy.extensions.filters.http.router.v3.Router`.
pub(crate) fn router(f: Field<'_>) -> Result<Router> {
    f.object(|o| {
        o.skip("@type");
        Ok(Router {
            dynamic_stats: o.opt("dynamic_stats", Field::bool_value)?,
            suppress_envoy_headers: o.or_default("suppress_envoy_headers", Field::bool)?,
            ..Default::default()
        })
    })
}

/// `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`.
pub(crate) fn tcp_proxy(f: Field<'_>) -> Result<TcpProxy> {
    f.object(|o| {
        o.skip("@type");
        Ok(TcpProxy {
            stat_prefix: o.or_default("stat_prefix", Field::string)?,
            cluster_specifier: o
                .opt("cluster", Field::string)?
                .map(tcp_proxy::ClusterSpecifier::Cluster),
            idle_timeout: o.opt("idle_timeout", Field::duration)?,
            ..Default::default()
        })
    })
}

pub(crate) fn route_configuration(f: Field<'_>) -> Result<RouteConfiguration> {
    f.object(|o| {
        Ok(RouteConfiguration {
            name: o.or_default("name", Field::string)?,
            virtual_hosts: o.or_default("virtual_hosts", |f| f.list(virtual_host))?,
            ..Default::default()
        })
    })
}

fn virtual_host(f: Field<'_>) -> Result<VirtualHost> {
    f.object(|o| {
        Ok(VirtualHost {
            name: o.or_default("name", Field::string)?,
            domains: o.or_default("domains", Field::strings)?,
            routes: o.or_default("routes", |f| f.list(route))?,
            request_headers_to_add: o
                .or_default("request_headers_to_add", |f| f.list(header_value_option))?,
            response_headers_to_add: o
                .or_default("response_headers_to_add", |f| f.list(header_value_option))?,
            ..Default::default()
        })
    })
}

fn route(f: Field<'_>) -> Result<Route> {
    f.object(|o| {
        let forward = o.opt("route", route_action)?.map(route::Action::Route);
        let direct = o
            .opt("direct_response", direct_response)?
            .map(route::Action::DirectResponse);
        Ok(Route {
            name: o.or_default("name", Field::string)?,
            r#match: o.opt("match", route_match)?,
            action: f.one_of(vec![("route", forward), ("direct_response", direct)])?,
            request_headers_to_add: o
                .or_default("request_headers_to_add", |f| f.list(header_value_option))?,
            request_headers_to_remove: o.or_default("request_headers_to_remove", Field::strings)?,
            response_headers_to_add: o
                .or_default("response_headers_to_add", |f| f.list(header_value_option))?,
            response_headers_to_remove: o
                .or_default("response_headers_to_remove", Field::strings)?,
            ..Default::default()
        })
    })
}

/// `direct_response`: a status and an optional inline body.
fn direct_response(f: Field<'_>) -> Result<DirectResponseAction> {
    f.object(|o| {
        Ok(DirectResponseAction {
            status: o.or_default("status", Field::u32)?,
            body: o.opt("body", |f| {
                f.object(|o| {
                    Ok(DataSource {
                        specifier: o
                            .opt("inline_string", Field::string)?
                            .map(data_source::Specifier::InlineString),
                        ..Default::default()
                    })
                })
            })?,
            ..Default::default()
        })
    })
}

fn route_match(f: Field<'_>) -> Result<RouteMatch> {
    f.object(|o| {
        let prefix = o.opt("prefix", Field::string)?;
        let path = o.opt("path", Field::string)?;
        let path_specifier = match (prefix, path) {
            (Some(_), Some(_)) => return Err(f.error("set one of prefix and path, not both")),
            (Some(prefix), None) => Some(route_match::PathSpecifier::Prefix(prefix)),
            (None, Some(path)) => Some(route_match::PathSpecifier::Path(path)),
            (None, None) => None,
        };
        Ok(RouteMatch {
            path_specifier,
            ..Default::default()
        })
    })
}

fn route_action(f: Field<'_>) -> Result<RouteAction> {
    f.object(|o| {
        Ok(RouteAction {
            cluster_specifier: o
                .opt("cluster", Field::string)?
                .map(route_action::ClusterSpecifier::Cluster),
            timeout: o.opt("timeout", Field::duration)?,
            prefix_rewrite: o.or_default("prefix_rewrite", Field::string)?,
            max_stream_duration: o.opt("max_stream_duration", |f| {
                f.object(|o| {
                    Ok(route_action::MaxStreamDuration {
                        grpc_timeout_header_max: o
                            .opt("grpc_timeout_header_max", Field::duration)?,
                        ..Default::default()
                    })
                })
            })?,
            ..Default::default()
        })
    })
}
