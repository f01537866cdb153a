//! `google.protobuf.Any` in JSON: an object whose `@type` picks the message, whose other
//! fields are that message's. Mapped by `@type`, then packed with [`bowline_xds::pack`].

use bowline_xds::pack;
use bowline_xds::pb::google::protobuf::Any;
use serde_json::Value;

use crate::cluster::http_protocol_options;
use crate::json::{Field, Result};
use crate::listener::{http_connection_manager, router, tcp_proxy};

const HCM: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER: &str = "envoy.extensions.filters.http.router.v3.Router";
const RBAC: &str = "envoy.extensions.filters.http.rbac.v3.RBAC";
const TCP_PROXY: &str = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const UPSTREAM_TLS: &str = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const DOWNSTREAM_TLS: &str = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const ZIPKIN: &str = "envoy.config.trace.v3.ZipkinConfig";

/// The message types an `Any` may hold in a bootstrap.
pub const SUPPORTED_TYPES: [&str; 8] = [
    HCM,
    ROUTER,
    RBAC,
    TCP_PROXY,
    HTTP_PROTOCOL_OPTIONS,
    UPSTREAM_TLS,
    DOWNSTREAM_TLS,
    ZIPKIN,
];

pub(crate) fn any(f: Field<'_>) -> Result<Any> {
    let Value::Object(map) = f.value else {
        return Err(f.error("expected an object with \"@type\""));
    };
    let Some(type_url) = map.get("@type") else {
        return Err(f.error("an Any needs \"@type\""));
    };
    let Some(type_url) = type_url.as_str() else {
        return Err(f.error("\"@type\" must be a string"));
    };
    // As in protobuf, only what follows the last '/' names the message.
    let name = type_url.rsplit('/').next().unwrap_or_default();
    match name {
        HCM => http_connection_manager(f).map(|m| pack(&m)),
        ROUTER => router(f).map(|m| pack(&m)),
        RBAC => crate::rbac::rbac(f).map(|m| pack(&m)),
        TCP_PROXY => tcp_proxy(f).map(|m| pack(&m)),
        HTTP_PROTOCOL_OPTIONS => http_protocol_options(f).map(|m| pack(&m)),
        UPSTREAM_TLS => crate::tls::upstream_tls_context(f).map(|m| pack(&m)),
        DOWNSTREAM_TLS => crate::tls::downstream_tls_context(f).map(|m| pack(&m)),
        ZIPKIN => crate::listener::zipkin_config(f).map(|m| pack(&m)),
        _ => Err(f.error(format!(
            "unsupported \"@type\" {type_url:?} (supported: {})",
            SUPPORTED_TYPES.join(", ")
        ))),
    }
}
