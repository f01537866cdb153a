//! Static clusters: discovery type, connect timeout, load assignment, upstream HTTP protocol
//! options (in `typed_extension_protocol_options`), TCP keepalive and transport socket.

use std::mem::take;

use bowline_xds::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster, UpstreamConnectionOptions,
};
use bowline_xds::pb::envoy::config::core::v3::{
    Http2ProtocolOptions, KeepaliveSettings, TcpKeepalive,
};
use bowline_xds::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use bowline_xds::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use serde_json::Value;

use super::core::address;
use super::obj::{duration, enum_value, u32_value, Obj};
use super::tls::{any, transport_socket};
use super::Result;

pub(crate) fn cluster(mut c: Cluster) -> Result<Value> {
    let mut o = Obj::new();
    o.string("name", take(&mut c.name));
    match c.cluster_discovery_type.take() {
        Some(ClusterDiscoveryType::Type(t)) => {
            let t = enum_value(t, DiscoveryType::as_str_name).map_err(|e| e.within("type"))?;
            o.insert("type", t);
        }
        other => c.cluster_discovery_type = other,
    }
    o.message("connect_timeout", c.connect_timeout.take(), duration)?;
    o.message("load_assignment", c.load_assignment.take(), load_assignment)?;
    o.map(
        "typed_extension_protocol_options",
        take(&mut c.typed_extension_protocol_options),
        any,
    )?;
    o.message(
        "upstream_connection_options",
        c.upstream_connection_options.take(),
        upstream_connection_options,
    )?;
    o.message(
        "transport_socket",
        c.transport_socket.take(),
        transport_socket,
    )?;
    o.finish(&c)
}

fn load_assignment(mut l: ClusterLoadAssignment) -> Result<Value> {
    let mut o = Obj::new();
    o.string("cluster_name", take(&mut l.cluster_name));
    o.list("endpoints", take(&mut l.endpoints), locality_lb_endpoints)?;
    o.finish(&l)
}

fn locality_lb_endpoints(mut l: LocalityLbEndpoints) -> Result<Value> {
    let mut o = Obj::new();
    o.list("lb_endpoints", take(&mut l.lb_endpoints), lb_endpoint)?;
    o.message(
        "load_balancing_weight",
        l.load_balancing_weight.take(),
        u32_value,
    )?;
    o.u32("priority", take(&mut l.priority));
    o.finish(&l)
}

fn lb_endpoint(mut l: LbEndpoint) -> Result<Value> {
    let mut o = Obj::new();
    match l.host_identifier.take() {
        Some(lb_endpoint::HostIdentifier::Endpoint(e)) => {
            o.message("endpoint", Some(e), endpoint)?
        }
        other => l.host_identifier = other,
    }
    o.message(
        "load_balancing_weight",
        l.load_balancing_weight.take(),
        u32_value,
    )?;
    o.finish(&l)
}

fn endpoint(mut e: Endpoint) -> Result<Value> {
    let mut o = Obj::new();
    o.message("address", e.address.take(), address)?;
    o.string("hostname", take(&mut e.hostname));
    o.finish(&e)
}

fn upstream_connection_options(mut u: UpstreamConnectionOptions) -> Result<Value> {
    let mut o = Obj::new();
    o.message("tcp_keepalive", u.tcp_keepalive.take(), tcp_keepalive)?;
    o.finish(&u)
}

fn tcp_keepalive(mut t: TcpKeepalive) -> Result<Value> {
    let mut o = Obj::new();
    o.message("keepalive_probes", t.keepalive_probes.take(), u32_value)?;
    o.message("keepalive_time", t.keepalive_time.take(), u32_value)?;
    o.message("keepalive_interval", t.keepalive_interval.take(), u32_value)?;
    o.finish(&t)
}

/// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`, without its `@type` (see
/// [`any`]).
pub(crate) fn http_protocol_options(mut h: HttpProtocolOptions) -> Result<Value> {
    let mut o = Obj::new();
    match h.upstream_protocol_options.take() {
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => {
            o.message("explicit_http_config", Some(e), explicit_http_config)?
        }
        other => h.upstream_protocol_options = other,
    }
    o.finish(&h)
}

fn explicit_http_config(mut e: ExplicitHttpConfig) -> Result<Value> {
    let mut o = Obj::new();
    match e.protocol_config.take() {
        Some(ProtocolConfig::Http2ProtocolOptions(h2)) => {
            o.message("http2_protocol_options", Some(h2), http2_protocol_options)?
        }
        other => e.protocol_config = other,
    }
    o.finish(&e)
}

fn http2_protocol_options(mut h: Http2ProtocolOptions) -> Result<Value> {
    let mut o = Obj::new();
    o.message(
        "max_concurrent_streams",
        h.max_concurrent_streams.take(),
        u32_value,
    )?;
    o.message(
        "connection_keepalive",
        h.connection_keepalive.take(),
        keepalive_settings,
    )?;
    o.finish(&h)
}

fn keepalive_settings(mut k: KeepaliveSettings) -> Result<Value> {
    let mut o = Obj::new();
    o.message("interval", k.interval.take(), duration)?;
    o.message("timeout", k.timeout.take(), duration)?;
    o.finish(&k)
}
