//! Filter-chain selection for a connection, as Envoy narrows it criterion by criterion.

use bowline_model::route::ClusterSpecifier;
use bowline_model::{
    Cidr, ConnectionInfo, FilterChain, FilterChainMatch, Listener, NetworkFilter, SourceType,
    TcpProxy, TrafficDirection,
};

fn chain(name: &str, matcher: FilterChainMatch) -> FilterChain {
    FilterChain {
        name: name.into(),
        matcher,
        tls: None,
        network_rbac: Vec::new(),
        network: NetworkFilter::Tcp(TcpProxy {
            stat_prefix: name.into(),
            cluster: ClusterSpecifier::Cluster(name.into()),
            idle_timeout: None,
            access_log: Vec::new(),
        }),
        istio_stats: None,
    }
}

fn cidr(s: &str) -> Cidr {
    let (ip, len) = s.split_once('/').unwrap();
    Cidr::new(ip.parse().unwrap(), len.parse().unwrap()).unwrap()
}

fn port(p: u16) -> FilterChainMatch {
    FilterChainMatch {
        destination_port: Some(p),
        ..Default::default()
    }
}

fn listener(chains: Vec<FilterChain>, default: bool) -> Listener {
    Listener {
        name: "virtualOutbound".into(),
        address: "127.0.0.1:15001".parse().unwrap(),
        use_original_dst: true,
        traffic_direction: TrafficDirection::Outbound,
        tls_inspector: false,
        http_inspector: false,
        tls_inspector_disabled: None,
        http_inspector_disabled: None,
        inspection_timeout: None,
        continue_on_inspection_timeout: false,
        filter_chains: chains,
        default_filter_chain: default.then(|| chain("default", FilterChainMatch::default())),
    }
}

fn conn(destination: &str, source: &str) -> ConnectionInfo<'static> {
    ConnectionInfo {
        destination: destination.parse().unwrap(),
        source: source.parse().unwrap(),
        server_name: None,
        transport_protocol: "raw_buffer",
        application_protocols: &[],
    }
}

fn selected(l: &Listener, c: &ConnectionInfo<'_>) -> Option<String> {
    l.select_chain(c).map(|c| c.name.clone())
}

#[test]
fn the_outbound_listener_picks_by_port_then_most_specific_address() {
    // translate's shape: one chain per HTTP port, TCP chains per service VIP and port.
    let l = listener(
        vec![
            chain("http-9080", port(9080)),
            chain(
                "mongo-vip",
                FilterChainMatch {
                    prefix_ranges: vec![cidr("10.96.0.5/32")],
                    ..port(27017)
                },
            ),
            chain(
                "mongo-range",
                FilterChainMatch {
                    prefix_ranges: vec![cidr("10.96.0.0/16")],
                    ..port(27017)
                },
            ),
            chain(
                "any-port-range",
                FilterChainMatch {
                    prefix_ranges: vec![cidr("10.0.0.0/8")],
                    ..Default::default()
                },
            ),
        ],
        true,
    );
    let cases = [
        ("10.96.0.9:9080", Some("http-9080")),
        ("10.96.0.5:27017", Some("mongo-vip")),
        ("10.96.3.3:27017", Some("mongo-range")),
        // Port 27017 chains win the port step; none matches the address: no backtracking.
        ("192.168.0.1:27017", Some("default")),
        ("10.1.1.1:5432", Some("any-port-range")),
        ("192.168.0.1:5432", Some("default")),
    ];
    for (destination, want) in cases {
        assert_eq!(
            selected(&l, &conn(destination, "10.10.0.10:40000")).as_deref(),
            want,
            "{destination}"
        );
    }
}

#[test]
fn without_a_default_chain_unmatched_connections_are_closed() {
    let l = listener(vec![chain("http-9080", port(9080))], false);
    assert_eq!(selected(&l, &conn("10.0.0.1:80", "10.0.0.2:1")), None);
}

#[test]
fn server_names_transport_and_alpn_narrow_further() {
    let l = listener(
        vec![
            chain(
                "exact-sni",
                FilterChainMatch {
                    server_names: vec!["api.example.com".into()],
                    ..Default::default()
                },
            ),
            chain(
                "wild-sni",
                FilterChainMatch {
                    server_names: vec!["*.example.com".into()],
                    ..Default::default()
                },
            ),
            chain(
                "tls-h2",
                FilterChainMatch {
                    transport_protocol: "tls".into(),
                    application_protocols: vec!["h2".into()],
                    ..Default::default()
                },
            ),
            chain(
                "tls",
                FilterChainMatch {
                    transport_protocol: "tls".into(),
                    ..Default::default()
                },
            ),
            chain("plain", FilterChainMatch::default()),
        ],
        false,
    );
    let with = |sni: Option<&'static str>,
                transport: &'static str,
                alpn: &'static [&'static str]| ConnectionInfo {
        server_name: sni,
        transport_protocol: transport,
        application_protocols: alpn,
        ..conn("10.0.0.1:443", "10.0.0.2:1")
    };
    let cases = [
        (with(Some("api.example.com"), "tls", &[]), "exact-sni"),
        (with(Some("web.example.com"), "tls", &[]), "wild-sni"),
        (with(Some("other.org"), "tls", &["h2"]), "tls-h2"),
        (with(None, "tls", &["http/1.1"]), "tls"),
        (with(None, "raw_buffer", &[]), "plain"),
    ];
    for (c, want) in cases {
        assert_eq!(selected(&l, &c).as_deref(), Some(want), "{c:?}");
    }
}

#[test]
fn source_type_address_and_port_come_last() {
    let l = listener(
        vec![
            chain(
                "local",
                FilterChainMatch {
                    source_type: SourceType::SameIpOrLoopback,
                    ..Default::default()
                },
            ),
            chain(
                "external-office",
                FilterChainMatch {
                    source_type: SourceType::External,
                    source_prefix_ranges: vec![cidr("192.168.0.0/16")],
                    ..Default::default()
                },
            ),
            chain(
                "external-admin-port",
                FilterChainMatch {
                    source_type: SourceType::External,
                    source_prefix_ranges: vec![cidr("192.168.0.0/16")],
                    source_ports: vec![2222],
                    ..Default::default()
                },
            ),
            chain(
                "external",
                FilterChainMatch {
                    source_type: SourceType::External,
                    ..Default::default()
                },
            ),
        ],
        false,
    );
    let cases = [
        ("127.0.0.1:5000", "local"),
        ("10.0.0.1:5000", "local"),
        ("192.168.1.1:5000", "external-office"),
        ("192.168.1.1:2222", "external-admin-port"),
        ("8.8.8.8:5000", "external"),
    ];
    for (source, want) in cases {
        assert_eq!(
            selected(&l, &conn("10.0.0.1:80", source)).as_deref(),
            Some(want),
            "{source}"
        );
    }
}
