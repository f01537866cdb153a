//! Static Envoy bootstraps for the protocol scenarios, rendered as YAML text: admin and
//! every listener on 127.0.0.1:0 (tests read the picked ports back from the admin API), and
//! STATIC clusters pointing at the in-test upstreams.
//!
//! ```ignore
//! let yaml = Bootstrap::new()
//!     .listener(http_listener("http_in", "echo", &Http::default()))
//!     .cluster(cluster("echo", echo.addr, Upstream::Http2))
//!     .render();
//! ```

use std::net::SocketAddr;

/// A bootstrap under construction: listener and cluster blocks, each already indented as a
/// list item under `static_resources`.
#[derive(Default)]
pub struct Bootstrap {
    listeners: Vec<String>,
    clusters: Vec<String>,
}

impl Bootstrap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn listener(mut self, block: String) -> Self {
        self.listeners.push(block);
        self
    }

    pub fn cluster(mut self, block: String) -> Self {
        self.clusters.push(block);
        self
    }

    pub fn render(&self) -> String {
        format!(
            "admin:\n  address:\n    socket_address: {{ address: 127.0.0.1, port_value: 0 }}\n\
             static_resources:\n  listeners:\n{}  clusters:\n{}",
            self.listeners.concat(),
            self.clusters.concat()
        )
    }
}

const TCP_LISTENER: &str = r#"  - name: $NAME
    address:
      socket_address: { address: 127.0.0.1, port_value: 0 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: $NAME
          cluster: $CLUSTER
"#;

/// A listener relaying connections byte for byte to `cluster` (`tcp_proxy`), closing them
/// after `idle_timeout` (an Envoy duration such as `"1s"`) without traffic when given.
pub fn tcp_listener(name: &str, cluster: &str, idle_timeout: Option<&str>) -> String {
    let mut block = TCP_LISTENER
        .replace("$NAME", name)
        .replace("$CLUSTER", cluster);
    if let Some(idle) = idle_timeout {
        block.push_str(&format!("          idle_timeout: {idle}\n"));
    }
    block
}

const HTTP_LISTENER: &str = r#"  - name: $NAME
    address:
      socket_address: { address: 127.0.0.1, port_value: 0 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $NAME
          codec_type: AUTO
$UPGRADES          route_config:
            name: $NAME
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: $CLUSTER$TIMEOUT }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#;

/// Options of [`http_listener`]; the defaults are Envoy's.
#[derive(Default)]
pub struct Http {
    /// The route's `timeout` (`"0s"` disables it, as streaming RPCs need).
    pub route_timeout: Option<&'static str>,
    /// `upgrade_configs: [{upgrade_type: websocket}]`.
    pub websocket: bool,
    /// The route's `max_stream_duration.grpc_timeout_header_max` (`"0s"`: honour the
    /// request's `grpc-timeout` header uncapped).
    pub grpc_timeout_header_max: Option<&'static str>,
}

/// An HTTP connection manager (`codec_type: AUTO`: HTTP/1.1, or h2c with prior knowledge)
/// routing every request to `cluster`.
pub fn http_listener(name: &str, cluster: &str, options: &Http) -> String {
    let upgrades = if options.websocket {
        "          upgrade_configs: [{ upgrade_type: websocket }]\n"
    } else {
        ""
    };
    let mut timeout = options
        .route_timeout
        .map(|t| format!(", timeout: {t}"))
        .unwrap_or_default();
    if let Some(max) = options.grpc_timeout_header_max {
        timeout.push_str(&format!(
            ", max_stream_duration: {{ grpc_timeout_header_max: {max} }}"
        ));
    }
    HTTP_LISTENER
        .replace("$NAME", name)
        .replace("$CLUSTER", cluster)
        .replace("$UPGRADES", upgrades)
        .replace("$TIMEOUT", &timeout)
}

/// What the proxy speaks to a cluster's endpoints (for TCP proxying it does not matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Http1,
    /// HTTP/2 with prior knowledge, through `typed_extension_protocol_options`.
    Http2,
}

const CLUSTER: &str = r#"  - name: $NAME
    type: STATIC
    connect_timeout: 1s
$PROTOCOL    load_assignment:
      cluster_name: $NAME
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: $IP, port_value: $PORT }
"#;

const HTTP2_OPTIONS: &str = r#"    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
"#;

/// A STATIC cluster with the one endpoint `addr`.
pub fn cluster(name: &str, addr: SocketAddr, upstream: Upstream) -> String {
    let protocol = match upstream {
        Upstream::Http1 => "",
        Upstream::Http2 => HTTP2_OPTIONS,
    };
    CLUSTER
        .replace("$NAME", name)
        .replace("$PROTOCOL", protocol)
        .replace("$IP", &addr.ip().to_string())
        .replace("$PORT", &addr.port().to_string())
}
