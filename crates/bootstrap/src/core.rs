//! `envoy.config.core.v3` messages of the supported subset: node, addresses, config sources,
//! gRPC services, HTTP protocol options, headers to add.

use bowline_xds::pb::envoy::config::core::v3::{
    address, api_config_source::ApiType, config_source::ConfigSourceSpecifier, grpc_service,
    header_value_option::HeaderAppendAction, socket_address, Address, AggregatedConfigSource,
    ApiConfigSource, ApiVersion, BackoffStrategy, ConfigSource, GrpcService, HeaderValue,
    HeaderValueOption, Http1ProtocolOptions, HttpProtocolOptions, Locality, Node, Pipe,
    RetryPolicy, SocketAddress,
};

use crate::json::{Field, Result};

pub(crate) fn node(f: Field<'_>) -> Result<Node> {
    f.object(|o| {
        Ok(Node {
            id: o.or_default("id", Field::string)?,
            cluster: o.or_default("cluster", Field::string)?,
            metadata: o.opt("metadata", Field::proto_struct)?,
            locality: o.opt("locality", locality)?,
            ..Default::default()
        })
    })
}

pub(crate) fn locality(f: Field<'_>) -> Result<Locality> {
    f.object(|o| {
        Ok(Locality {
            region: o.or_default("region", Field::string)?,
            zone: o.or_default("zone", Field::string)?,
            sub_zone: o.or_default("sub_zone", Field::string)?,
        })
    })
}

/// `{socket_address: {address, port_value, protocol}}` or `{pipe: {path, mode}}` (a Unix
/// socket, which Envoy's SDS cluster names; bowline-proxy's model refuses it with its reason).
pub(crate) fn address(f: Field<'_>) -> Result<Address> {
    let (socket, pipe) = f.object(|o| {
        Ok((
            o.opt("socket_address", socket_address)?,
            o.opt("pipe", pipe)?,
        ))
    })?;
    let socket = socket.map(address::Address::SocketAddress);
    let pipe = pipe.map(address::Address::Pipe);
    let address = f.one_of(vec![("socket_address", socket), ("pipe", pipe)])?;
    let address = address.ok_or_else(|| f.error("an address needs socket_address or pipe"))?;
    Ok(Address {
        address: Some(address),
    })
}

fn pipe(f: Field<'_>) -> Result<Pipe> {
    f.object(|o| {
        Ok(Pipe {
            path: o.or_default("path", Field::string)?,
            mode: o.or_default("mode", Field::u32)?,
        })
    })
}

fn socket_address(f: Field<'_>) -> Result<SocketAddress> {
    f.object(|o| {
        let address = o.opt("address", Field::string)?;
        let port = o.opt("port_value", Field::u32)?;
        let protocol = o.or_default("protocol", |f| {
            f.enumeration(
                socket_address::Protocol::from_str_name,
                "SocketAddress.Protocol",
            )
        })?;
        let address = address.ok_or_else(|| f.error("socket_address needs address"))?;
        let port = port.ok_or_else(|| f.error("socket_address needs port_value"))?;
        if port > u32::from(u16::MAX) {
            return Err(f.error(format!("port_value {port} is not a port (0 to 65535)")));
        }
        Ok(SocketAddress {
            address,
            protocol,
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })
    })
}

/// `ads: {}` (the only source supported for CDS, LDS, EDS and RDS), with the usual options.
pub(crate) fn config_source(f: Field<'_>) -> Result<ConfigSource> {
    f.object(|o| {
        let ads = o.opt("ads", |f| f.object(|_| Ok(AggregatedConfigSource {})))?;
        let source = ConfigSource {
            resource_api_version: o.or_default("resource_api_version", api_version)?,
            initial_fetch_timeout: o.opt("initial_fetch_timeout", Field::duration)?,
            config_source_specifier: ads.map(ConfigSourceSpecifier::Ads),
            ..Default::default()
        };
        if source.config_source_specifier.is_none() {
            return Err(f.error("a config source needs ads: {} (the only source supported)"));
        }
        Ok(source)
    })
}

fn api_version(f: Field<'_>) -> Result<i32> {
    f.enumeration(ApiVersion::from_str_name, "ApiVersion")
}

/// The `ads_config` of `dynamic_resources`: GRPC or DELTA_GRPC to one Envoy gRPC cluster.
pub(crate) fn api_config_source(f: Field<'_>) -> Result<ApiConfigSource> {
    f.object(|o| {
        Ok(ApiConfigSource {
            api_type: o.or_default("api_type", |f| {
                f.enumeration(ApiType::from_str_name, "ApiConfigSource.ApiType")
            })?,
            transport_api_version: o.or_default("transport_api_version", api_version)?,
            set_node_on_first_message_only: o
                .or_default("set_node_on_first_message_only", Field::bool)?,
            grpc_services: o.or_default("grpc_services", |f| f.list(grpc_service))?,
            ..Default::default()
        })
    })
}

fn grpc_service(f: Field<'_>) -> Result<GrpcService> {
    f.object(|o| {
        let envoy_grpc = o.opt("envoy_grpc", envoy_grpc)?;
        let envoy_grpc = envoy_grpc.ok_or_else(|| {
            f.error("a gRPC service needs envoy_grpc (google_grpc is not supported)")
        })?;
        Ok(GrpcService {
            timeout: o.opt("timeout", Field::duration)?,
            retry_policy: o.opt("retry_policy", retry_policy)?,
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(envoy_grpc)),
            ..Default::default()
        })
    })
}

fn envoy_grpc(f: Field<'_>) -> Result<grpc_service::EnvoyGrpc> {
    f.object(|o| {
        Ok(grpc_service::EnvoyGrpc {
            cluster_name: o.or_default("cluster_name", Field::string)?,
            authority: o.or_default("authority", Field::string)?,
            retry_policy: o.opt("retry_policy", retry_policy)?,
            ..Default::default()
        })
    })
}

fn retry_policy(f: Field<'_>) -> Result<RetryPolicy> {
    f.object(|o| {
        Ok(RetryPolicy {
            retry_back_off: o.opt("retry_back_off", backoff_strategy)?,
            num_retries: o.opt("num_retries", Field::u32_value)?,
            ..Default::default()
        })
    })
}

fn backoff_strategy(f: Field<'_>) -> Result<BackoffStrategy> {
    f.object(|o| {
        Ok(BackoffStrategy {
            base_interval: o.opt("base_interval", Field::duration)?,
            max_interval: o.opt("max_interval", Field::duration)?,
        })
    })
}

/// `common_http_protocol_options` of a connection manager or of an upstream cluster.
pub(crate) fn common_http_protocol_options(f: Field<'_>) -> Result<HttpProtocolOptions> {
    f.object(|o| {
        Ok(HttpProtocolOptions {
            idle_timeout: o.opt("idle_timeout", Field::duration)?,
            max_requests_per_connection: o.opt("max_requests_per_connection", Field::u32_value)?,
            max_headers_count: o.opt("max_headers_count", Field::u32_value)?,
            ..Default::default()
        })
    })
}

/// `http_protocol_options` (HTTP/1) of a connection manager or of an upstream cluster.
pub(crate) fn http1_protocol_options(f: Field<'_>) -> Result<Http1ProtocolOptions> {
    f.object(|o| {
        Ok(Http1ProtocolOptions {
            allow_absolute_url: o.opt("allow_absolute_url", Field::bool_value)?,
            accept_http_10: o.or_default("accept_http_10", Field::bool)?,
            ..Default::default()
        })
    })
}

/// One of a route's or virtual host's `request_headers_to_add` / `response_headers_to_add`.
pub(crate) fn header_value_option(f: Field<'_>) -> Result<HeaderValueOption> {
    f.object(|o| {
        Ok(HeaderValueOption {
            header: o.opt("header", |f| {
                f.object(|o| {
                    Ok(HeaderValue {
                        key: o.or_default("key", Field::string)?,
                        value: o.or_default("value", Field::string)?,
                        ..Default::default()
                    })
                })
            })?,
            append_action: o.or_default("append_action", |f| {
                f.enumeration(
                    HeaderAppendAction::from_str_name,
                    "HeaderValueOption.HeaderAppendAction",
                )
            })?,
            keep_empty_value: o.or_default("keep_empty_value", Field::bool)?,
            ..Default::default()
        })
    })
}
