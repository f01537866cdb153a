//! Resource names, in Istio's style so that Envoy's stats, admin pages and `istioctl`-like
//! tooling read the same as in an Istio mesh.

/// The outbound listener every sidecar gets.
pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";
/// The inbound listener of a sidecar whose workload is known.
pub const VIRTUAL_INBOUND: &str = "virtualInbound";
/// The route configuration of the outbound listener's default filter chain: it serves
/// applications that use `HTTP_PROXY` (absolute-form requests whose Host carries the port).
pub const HTTP_PROXY_ROUTE: &str = "http_proxy";

/// Where calls outside the registry go under ALLOW_ANY: their original destination.
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";
/// Where calls outside the registry go under REGISTRY_ONLY: nowhere.
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";
/// The outbound listener's default filter chain under capture.
pub const PASSTHROUGH_CHAIN: &str = "PassthroughFilterChain";
/// The catch-all virtual host of an outbound HTTP port under ALLOW_ANY.
pub const ALLOW_ANY_VHOST: &str = "allow_any";
/// The catch-all virtual host of an outbound HTTP port under REGISTRY_ONLY.
pub const BLOCK_ALL_VHOST: &str = "block_all";

/// `outbound|<port>|<subset>|<host>`; the subset is empty for the service's default cluster.
pub fn outbound_cluster(port: u32, subset: &str, host: &str) -> String {
    format!("outbound|{port}|{subset}|{host}")
}

/// `inbound|<port>||`: the local application on `port`.
pub fn inbound_cluster(port: u32) -> String {
    format!("inbound|{port}||")
}

/// The outbound route configuration shared by every HTTP service on `port`.
pub fn port_route_config(port: u32) -> String {
    port.to_string()
}

/// A virtual host for one service port: `<host>:<port>`.
pub fn virtual_host(host: &str, port: u32) -> String {
    format!("{host}:{port}")
}

/// Stat prefix of the outbound HTTP connection manager for `port` (Istio's form).
pub fn outbound_stat_prefix(port: u32) -> String {
    format!("outbound_0.0.0.0_{port}")
}

/// Stat prefix of the inbound HTTP connection manager for `port`.
pub fn inbound_stat_prefix(port: u32) -> String {
    format!("inbound_0.0.0.0_{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_istio() {
        let cases = [
            (
                outbound_cluster(9080, "", "reviews.default.svc.cluster.local"),
                "outbound|9080||reviews.default.svc.cluster.local",
            ),
            (
                outbound_cluster(9080, "v2", "reviews.default.svc.cluster.local"),
                "outbound|9080|v2|reviews.default.svc.cluster.local",
            ),
            (inbound_cluster(8080), "inbound|8080||"),
            (port_route_config(9080), "9080"),
            (virtual_host("ratings.prod", 80), "ratings.prod:80"),
            (outbound_stat_prefix(9080), "outbound_0.0.0.0_9080"),
            (inbound_stat_prefix(8080), "inbound_0.0.0.0_8080"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
