//! `envoy.config.core.v3` messages of a bootstrap: the node, addresses, and how to reach the
//! control plane (ADS config sources, gRPC services, retry back-off).
//!
//! A `oneof` member the writer does not know is put back into its message, so that
//! [`Obj::finish`] reports it.

use std::mem::take;

use bowline_xds::pb::envoy::config::core::v3::{
    address, api_config_source::ApiType, config_source::ConfigSourceSpecifier, grpc_service,
    socket_address, Address, AggregatedConfigSource, ApiConfigSource, ApiVersion, BackoffStrategy,
    ConfigSource, GrpcService, Node, Pipe, RetryPolicy, SocketAddress,
};
use serde_json::Value;

use super::obj::{duration, proto_struct, u32_value, Obj};
use super::Result;

pub(crate) fn node(mut n: Node) -> Result<Value> {
    let mut o = Obj::new();
    o.string("id", take(&mut n.id));
    o.string("cluster", take(&mut n.cluster));
    o.message("metadata", n.metadata.take(), proto_struct)?;
    o.finish(&n)
}

/// `socket_address` or `pipe` (a Unix socket; `@name` is abstract).
pub(crate) fn address(mut a: Address) -> Result<Value> {
    let mut o = Obj::new();
    match a.address.take() {
        Some(address::Address::SocketAddress(s)) => {
            o.message("socket_address", Some(s), socket_address)?
        }
        Some(address::Address::Pipe(p)) => o.message("pipe", Some(p), pipe)?,
        other => a.address = other,
    }
    o.finish(&a)
}

fn socket_address(mut s: SocketAddress) -> Result<Value> {
    let mut o = Obj::new();
    o.enumeration(
        "protocol",
        take(&mut s.protocol),
        socket_address::Protocol::as_str_name,
    )?;
    o.string("address", take(&mut s.address));
    match s.port_specifier.take() {
        Some(socket_address::PortSpecifier::PortValue(port)) => {
            o.insert("port_value", Value::from(port))
        }
        other => s.port_specifier = other,
    }
    o.finish(&s)
}

fn pipe(mut p: Pipe) -> Result<Value> {
    let mut o = Obj::new();
    o.string("path", take(&mut p.path));
    o.u32("mode", take(&mut p.mode));
    o.finish(&p)
}

/// A config source: `ads: {}` with its resource API version.
pub(crate) fn config_source(mut c: ConfigSource) -> Result<Value> {
    let mut o = Obj::new();
    match c.config_source_specifier.take() {
        Some(ConfigSourceSpecifier::Ads(ads)) => o.message("ads", Some(ads), aggregated)?,
        other => c.config_source_specifier = other,
    }
    o.message(
        "initial_fetch_timeout",
        c.initial_fetch_timeout.take(),
        duration,
    )?;
    o.enumeration(
        "resource_api_version",
        take(&mut c.resource_api_version),
        ApiVersion::as_str_name,
    )?;
    o.finish(&c)
}

fn aggregated(a: AggregatedConfigSource) -> Result<Value> {
    Obj::new().finish(&a)
}

/// `ads_config`: the API type and the gRPC services that reach the control plane.
pub(crate) fn api_config_source(mut a: ApiConfigSource) -> Result<Value> {
    let mut o = Obj::new();
    o.enumeration("api_type", take(&mut a.api_type), ApiType::as_str_name)?;
    o.enumeration(
        "transport_api_version",
        take(&mut a.transport_api_version),
        ApiVersion::as_str_name,
    )?;
    o.bool(
        "set_node_on_first_message_only",
        take(&mut a.set_node_on_first_message_only),
    );
    o.list("grpc_services", take(&mut a.grpc_services), grpc_service)?;
    o.finish(&a)
}

fn grpc_service(mut g: GrpcService) -> Result<Value> {
    let mut o = Obj::new();
    match g.target_specifier.take() {
        Some(grpc_service::TargetSpecifier::EnvoyGrpc(e)) => {
            o.message("envoy_grpc", Some(e), envoy_grpc)?
        }
        other => g.target_specifier = other,
    }
    o.message("timeout", g.timeout.take(), duration)?;
    o.message("retry_policy", g.retry_policy.take(), retry_policy)?;
    o.finish(&g)
}

fn envoy_grpc(mut e: grpc_service::EnvoyGrpc) -> Result<Value> {
    let mut o = Obj::new();
    o.string("cluster_name", take(&mut e.cluster_name));
    o.string("authority", take(&mut e.authority));
    o.message("retry_policy", e.retry_policy.take(), retry_policy)?;
    o.finish(&e)
}

fn retry_policy(mut r: RetryPolicy) -> Result<Value> {
    let mut o = Obj::new();
    o.message("retry_back_off", r.retry_back_off.take(), backoff_strategy)?;
    o.message("num_retries", r.num_retries.take(), u32_value)?;
    o.finish(&r)
}

fn backoff_strategy(mut b: BackoffStrategy) -> Result<Value> {
    let mut o = Obj::new();
    o.message("base_interval", b.base_interval.take(), duration)?;
    o.message("max_interval", b.max_interval.take(), duration)?;
    o.finish(&b)
}
