//! Table tests of [`decide`]: one connection (a tcp_proxy chain named `tcp` on listener `l`,
//! to cluster `b`, from a client with a SPIFFE id) against the configs a push can leave.

use super::*;
use bowline_model as model;
use model::rbac::{Permission, Policy, Principal, Rbac, RbacAction, RbacRules};
use model::route::{ClusterSpecifier, WeightedCluster};
use model::{FilterChainMatch, TcpProxy};

const LISTENER: &str = "127.0.0.1:15006";
const CLIENT: &str = "spiffe://cluster.local/ns/default/sa/client";
const POLICY: &str = "ns[default]-policy[db]-rule[0]";

pub(crate) fn conn() -> ConnFacts {
    ConnFacts {
        listener: "l".into(),
        listener_address: LISTENER.parse().unwrap(),
        chain: "tcp".into(),
        cluster: "b".into(),
        peer: "10.0.0.1:40000".parse().unwrap(),
        destination: "10.0.0.2:3306".parse().unwrap(),
        principal: Some(CLIENT.into()),
        server_name: None,
        transport_protocol: "raw_buffer",
        application_protocols: Vec::new(),
    }
}

fn tcp(cluster: ClusterSpecifier) -> NetworkFilter {
    NetworkFilter::Tcp(TcpProxy {
        stat_prefix: "tcp".into(),
        cluster,
        idle_timeout: None,
        access_log: Vec::new(),
    })
}

pub(crate) fn to(cluster: &str) -> NetworkFilter {
    tcp(ClusterSpecifier::Cluster(cluster.into()))
}

pub(crate) fn chain(name: &str, network: NetworkFilter) -> FilterChain {
    FilterChain {
        name: name.into(),
        matcher: FilterChainMatch::default(),
        tls: None,
        network_rbac: Vec::new(),
        network,
        istio_stats: None,
    }
}

fn guarded(name: &str, rbac: Rbac) -> FilterChain {
    FilterChain {
        network_rbac: vec![rbac],
        ..chain(name, to("b"))
    }
}

fn on_port(name: &str, port: u16) -> FilterChain {
    FilterChain {
        matcher: FilterChainMatch {
            destination_port: Some(port),
            ..FilterChainMatch::default()
        },
        ..chain(name, to("b"))
    }
}

pub(crate) fn listener(chains: Vec<FilterChain>) -> Listener {
    Listener {
        name: "l".into(),
        address: LISTENER.parse().unwrap(),
        use_original_dst: false,
        traffic_direction: Default::default(),
        tls_inspector: false,
        http_inspector: false,
        tls_inspector_disabled: None,
        http_inspector_disabled: None,
        inspection_timeout: None,
        continue_on_inspection_timeout: false,
        filter_chains: chains,
        default_filter_chain: None,
    }
}

fn rbac(action: RbacAction, principal: Principal) -> Rbac {
    Rbac {
        rules: Some(RbacRules {
            action,
            policies: [(
                POLICY.to_string(),
                Policy {
                    permissions: vec![Permission::Any],
                    principals: vec![principal],
                },
            )]
            .into_iter()
            .collect(),
        }),
        shadow_rules: None,
        rules_stat_prefix: String::new(),
        shadow_rules_stat_prefix: String::new(),
    }
}

fn spiffe(id: &str) -> Principal {
    Principal::Authenticated(Some(model::StringMatcher::exact(id)))
}

fn ip(cidr: &str) -> Principal {
    let (addr, len) = cidr.split_once('/').unwrap();
    Principal::DirectRemoteIp(
        model::Cidr::new(addr.parse().unwrap(), len.parse().unwrap()).unwrap(),
    )
}

fn http() -> NetworkFilter {
    NetworkFilter::Http(model::HttpConnectionManager {
        stat_prefix: "http".into(),
        codec: model::Codec::Auto,
        route: model::RouteSource::Rds("r".into()),
        http_filters: vec![model::HttpFilter::Router(model::Router::default())],
        generate_request_id: false,
        normalize_path: false,
        merge_slashes: false,
        escaped_slashes: Default::default(),
        allow_absolute_url: true,
        accept_http_10: false,
        websocket: true,
        use_remote_address: false,
        request_headers_timeout: None,
        stream_idle_timeout: None,
        max_request_headers_bytes: model::DEFAULT_MAX_REQUEST_HEADERS_BYTES,
        max_headers_count: model::DEFAULT_MAX_HEADERS_COUNT,
        client_cert: Default::default(),
        access_log: Vec::new(),
        tracing: None,
    })
}

fn denied(policy: &str) -> Verdict {
    Verdict::Close(CloseReason::RbacDenied(Denied {
        policy: policy.into(),
    }))
}

const KEEP: Verdict = Verdict::Keep;
const CHAIN_GONE: Verdict = Verdict::Close(CloseReason::FilterChainRemoved);
const CLUSTER_GONE: Verdict = Verdict::Close(CloseReason::ClusterRemoved);

struct Case {
    name: &'static str,
    conn: ConnFacts,
    listener: Option<Listener>,
    cluster_exists: bool,
    want: Verdict,
}

fn case(
    name: &'static str,
    listener: Option<Listener>,
    cluster_exists: bool,
    want: Verdict,
) -> Case {
    Case {
        name,
        conn: conn(),
        listener,
        cluster_exists,
        want,
    }
}

fn cases() -> Vec<Case> {
    let same = || Some(listener(vec![chain("tcp", to("b"))]));
    let weighted = tcp(ClusterSpecifier::Weighted(
        [("a", 9), ("b", 1)]
            .map(|(name, weight)| WeightedCluster {
                name: name.into(),
                weight,
                headers: Default::default(),
                host_rewrite: None,
            })
            .to_vec(),
    ));
    let mut moved = listener(vec![chain("tcp", to("b"))]);
    moved.address = "127.0.0.1:15007".parse().unwrap();
    let mut by_default = listener(vec![chain("other", to("a"))]);
    by_default.default_filter_chain = Some(chain("tcp", to("b")));
    let unnamed = ConnFacts {
        chain: "".into(),
        ..conn()
    };
    let plaintext = ConnFacts {
        principal: None,
        ..conn()
    };
    vec![
        // Pushes that change nothing this connection depends on.
        case("nothing changed", same(), true, KEEP),
        case(
            "only the weights changed",
            Some(listener(vec![chain("tcp", weighted)])),
            true,
            KEEP,
        ),
        case(
            "the chain now sends new connections elsewhere; b is still there",
            Some(listener(vec![chain("tcp", to("a"))])),
            true,
            KEEP,
        ),
        case(
            "another chain was added and guarded",
            Some(listener(vec![
                chain("tcp", to("b")),
                guarded("other", rbac(RbacAction::Deny, Principal::Any)),
            ])),
            true,
            KEEP,
        ),
        case(
            "served by the default chain, which stays",
            Some(by_default),
            true,
            KEEP,
        ),
        // (a) the cluster is gone.
        case("cluster removed", same(), false, CLUSTER_GONE),
        // (b) network RBAC.
        case(
            "ALLOW naming the client",
            Some(listener(vec![guarded(
                "tcp",
                rbac(RbacAction::Allow, spiffe(CLIENT)),
            )])),
            true,
            KEEP,
        ),
        case(
            "ALLOW naming the client's subnet",
            Some(listener(vec![guarded(
                "tcp",
                rbac(RbacAction::Allow, ip("10.0.0.0/24")),
            )])),
            true,
            KEEP,
        ),
        case(
            "DENY naming another client",
            Some(listener(vec![guarded(
                "tcp",
                rbac(RbacAction::Deny, spiffe("spiffe://cluster.local/ns/x/sa/y")),
            )])),
            true,
            KEEP,
        ),
        case(
            "DENY naming the client",
            Some(listener(vec![guarded(
                "tcp",
                rbac(RbacAction::Deny, spiffe(CLIENT)),
            )])),
            true,
            denied(POLICY),
        ),
        case(
            "ALLOW naming only another subnet",
            Some(listener(vec![guarded(
                "tcp",
                rbac(RbacAction::Allow, ip("10.9.0.0/16")),
            )])),
            true,
            denied("none"),
        ),
        case(
            "RBAC denies and the cluster is gone: RBAC names it",
            Some(listener(vec![guarded(
                "tcp",
                rbac(RbacAction::Deny, Principal::Any),
            )])),
            false,
            denied(POLICY),
        ),
        Case {
            conn: plaintext,
            ..case(
                "ALLOW for any certificate, and the client sent none",
                Some(listener(vec![guarded(
                    "tcp",
                    rbac(RbacAction::Allow, Principal::Authenticated(None)),
                )])),
                true,
                denied("none"),
            )
        },
        // (c) the listener or the chain is gone.
        case("listener removed", None, true, CHAIN_GONE),
        case(
            "listener moved to another address",
            Some(moved),
            true,
            CHAIN_GONE,
        ),
        case(
            "chain removed (renamed)",
            Some(listener(vec![chain("tcp-v2", to("b"))])),
            true,
            CHAIN_GONE,
        ),
        case(
            "the chain of that name is HTTP now",
            Some(listener(vec![chain("tcp", http())])),
            true,
            CHAIN_GONE,
        ),
        case(
            "listener and cluster removed: the chain names it",
            None,
            false,
            CHAIN_GONE,
        ),
        // An unnamed chain is found again by selection.
        Case {
            conn: unnamed.clone(),
            ..case(
                "unnamed: still selected",
                Some(listener(vec![on_port("", 3306), on_port("", 80)])),
                true,
                KEEP,
            )
        },
        Case {
            conn: unnamed.clone(),
            ..case(
                "unnamed: the selected chain denies",
                Some(listener(vec![
                    on_port("", 80),
                    FilterChain {
                        network_rbac: vec![rbac(RbacAction::Deny, spiffe(CLIENT))],
                        ..on_port("", 3306)
                    },
                ])),
                true,
                denied(POLICY),
            )
        },
        Case {
            conn: unnamed,
            ..case(
                "unnamed: no chain selects it any more",
                Some(listener(vec![on_port("", 80)])),
                true,
                CHAIN_GONE,
            )
        },
    ]
}

#[test]
fn a_push_closes_only_the_connections_it_makes_wrong() {
    for case in cases() {
        let now = Now {
            listener: case.listener.as_ref(),
            cluster_exists: case.cluster_exists,
        };
        assert_eq!(decide(&case.conn, now), case.want, "{}", case.name);
    }
}

#[test]
fn every_reason_has_its_own_stat() {
    let reasons = [
        CloseReason::FilterChainRemoved,
        CloseReason::RbacDenied(Denied {
            policy: POLICY.into(),
        }),
        CloseReason::ClusterRemoved,
    ];
    let stats: std::collections::BTreeSet<&str> = reasons.iter().map(CloseReason::stat).collect();
    assert_eq!(stats.len(), reasons.len());
}
