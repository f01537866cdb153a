//! Fuzz-style property tests of the xDS → model conversions, run by `cargo test` on stable
//! Rust: whatever bytes arrive as a Listener, Cluster, RouteConfiguration or
//! ClusterLoadAssignment, decoding and conversion return (a model or an `Invalid*` error)
//! and never panic, and regexes in the config cost linear time.
//!
//! Three sources of input: random bytes; real resources (what the control plane generates
//! for the test meshes, plus the benchmark's) encoded and then mutated byte by byte, so that
//! most still decode into something close to real config; and a listener whose connection
//! manager and route take generated values for the fields with numbers, regexes and names.
//! Cases default to 256 per property (`PROPTEST_CASES=100000` for a long run, or
//! `fuzz/run.sh` at the repository root); failures proptest finds are kept in
//! `proptest-regressions/` and replayed first.

// Some fields the structured listener sets are deprecated in the protos.
#![allow(deprecated)]

mod support;

mod fuzz {
    use crate::support::{bench_cluster, bench_hcm, bench_listener, bench_route_config};
    use crate::support::{http_filter_of, listener_with, socket};
    use bowline_model::route::{RequestHead, RouteAction};
    use bowline_model::{
        Cluster, ClusterLoadAssignment, HttpFilter, Listener, NetworkFilter,
        RouteConfig, RouteSource,
    };
    use bowline_registry::Snapshot;
    use bowline_translate::{generate, ProxyView};
    use bowline_xds::pack;
    use bowline_xds::pb::envoy::config::cluster::v3::Cluster as PbCluster;
    use bowline_xds::pb::envoy::config::core::v3::{
        HeaderValue, HeaderValueOption, HttpProtocolOptions, Node, RuntimeFractionalPercent,
    };
    use bowline_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment as PbCla;
    use bowline_xds::pb::envoy::config::listener::v3::Listener as PbListener;
    use bowline_xds::pb::envoy::config::route::v3::{
        header_matcher::HeaderMatchSpecifier, redirect_action, retry_policy::RetryBackOff,
        route, route_action, route_action::hash_policy, route_action::RequestMirrorPolicy,
        route_match, weighted_cluster::ClusterWeight, DirectResponseAction, HeaderMatcher,
        RedirectAction, RetryPolicy, RouteAction as PbRouteAction, RouteConfiguration,
        WeightedCluster as PbWeighted,
    };
    use bowline_xds::pb::envoy::extensions::filters::common::fault::v3::{
        fault_delay::FaultDelaySecifier, FaultDelay,
    };
    use bowline_xds::pb::envoy::extensions::filters::http::fault::v3::{
        fault_abort::ErrorType, FaultAbort, HttpFault,
    };
    use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
    use bowline_xds::pb::envoy::r#type::matcher::v3::{RegexMatchAndSubstitute, RegexMatcher};
    use bowline_xds::pb::envoy::r#type::v3::FractionalPercent;
    use bowline_xds::pb::google::protobuf::{value::Kind, Duration, Struct, UInt32Value, Value};
    use bowline_xds::prost::Message;
    use http::HeaderMap;
    use proptest::prelude::*;
    use proptest::sample::Index;
    use std::path::Path;
    use std::sync::OnceLock;
    use std::time::Instant;

    // ---- seeds: real resources, encoded ----

    macro_rules! input {
        ($name:literal) => {
            include_str!(concat!("../../translate/tests/inputs/", $name))
        };
    }

    /// Security policies on top of translate's scenarios, so that seeds carry JWT, RBAC and
    /// mTLS configuration too.
    const SECURITY: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: mesh-wide, namespace: istio-system}
spec:
  jwtRules:
  - issuer: https://issuer.example
    audiences: [bookinfo]
    jwksUri: https://keys.example:8443/jwks
    fromHeaders: [{name: x-jwt, prefix: "Token "}]
    fromParams: [token]
    outputPayloadToHeader: x-jwt-payload
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh, namespace: istio-system}
spec:
  action: DENY
  rules:
  - from: [{source: {notNamespaces: [foo], ipBlocks: [10.0.0.0/8]}}]
    to: [{operation: {paths: ["/admin*"], methods: [POST], ports: ["9080"]}}]
    when: [{key: "request.headers[x-user]", values: ["evil*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: default}
spec:
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/productpage], requestPrincipals: ["https://issuer.example/*"]}}]
    to: [{operation: {hosts: ["reviews*"], notPaths: [/private]}}]
"#;

    const MESHES: [&str; 10] = [
        input!("services.yaml"),
        input!("vs_match.yaml"),
        input!("vs_forwarding.yaml"),
        input!("vs_responses.yaml"),
        input!("vs_source_labels.yaml"),
        input!("vs_conflict.yaml"),
        input!("tcp_routes.yaml"),
        input!("dr_load_balancers.yaml"),
        input!("dr_pool_outlier.yaml"),
        SECURITY,
    ];

    const PROXIES: [(&str, &str, &str); 4] = [
        ("10.10.0.10", "productpage-v1", "default"),
        ("10.10.0.32", "reviews-v2", "default"),
        ("10.10.0.20", "details-v1", "prod"),
        ("10.10.0.99", "stranger", "default"),
    ];

    fn proxy(snapshot: &Snapshot, ip: &str, workload: &str, namespace: &str) -> ProxyView {
        let string = |v: &str| Value {
            kind: Some(Kind::StringValue(v.into())),
        };
        let node = Node {
            id: format!("sidecar~{ip}~{workload}.{namespace}~{namespace}.svc.cluster.local"),
            metadata: Some(Struct {
                fields: [
                    ("NAMESPACE".to_string(), string(namespace)),
                    ("INTERCEPTION_MODE".to_string(), string("NONE")),
                ]
                .into_iter()
                .collect(),
            }),
            ..Default::default()
        };
        ProxyView::from_node(&node, snapshot).expect("valid node")
    }

    /// The kinds of resource, in the order of [`Seeds::of`].
    #[derive(Debug, Clone, Copy)]
    enum Kind4 {
        Listener,
        Cluster,
        Route,
        Endpoints,
    }

    fn kind() -> impl Strategy<Value = Kind4> {
        prop::sample::select(
            &[
                Kind4::Listener,
                Kind4::Cluster,
                Kind4::Route,
                Kind4::Endpoints,
            ][..],
        )
    }

    /// Encoded resources by kind, deduplicated.
    struct Seeds([Vec<Vec<u8>>; 4]);

    impl Seeds {
        fn of(&self, kind: Kind4) -> &[Vec<u8>] {
            &self.0[kind as usize]
        }
    }

    fn seeds() -> &'static Seeds {
        static SEEDS: OnceLock<Seeds> = OnceLock::new();
        SEEDS.get_or_init(|| {
            let mut all: [Vec<Vec<u8>>; 4] = Default::default();
            all[0].push(bench_listener().encode_to_vec());
            all[1].push(bench_cluster().encode_to_vec());
            all[2].push(bench_route_config().encode_to_vec());
            all[3].push(bench_cluster().load_assignment.unwrap().encode_to_vec());
            let loaded = bowline_config::load_str(Path::new("mesh.yaml"), &MESHES.join("\n---\n"));
            let snapshot = Snapshot::build(1, loaded.config);
            for (ip, workload, ns) in PROXIES {
                let g = generate(
                    &bowline_translate::PushContext::new(std::sync::Arc::new(snapshot.clone())),
                    &proxy(&snapshot, ip, workload, ns),
                );
                all[0].extend(g.listeners.iter().map(Message::encode_to_vec));
                all[1].extend(g.clusters.iter().map(Message::encode_to_vec));
                all[2].extend(g.routes.iter().map(Message::encode_to_vec));
                all[3].extend(g.endpoints.iter().map(Message::encode_to_vec));
            }
            for list in &mut all {
                list.sort();
                list.dedup();
            }
            Seeds(all)
        })
    }

    // ---- decoding, converting and using the model ----

    /// A request that makes backtracking regex engines take exponential time.
    fn hostile_path() -> String {
        format!("/{}!?{}", "a".repeat(4000), "x=1&".repeat(100))
    }

    /// Route a few requests through a converted route configuration and take the pure
    /// decisions the proxy takes with the chosen route.
    fn exercise_routes(rc: &RouteConfig) {
        let path = hostile_path();
        let mut headers = HeaderMap::new();
        headers.insert("x-user", "a".repeat(2000).parse().unwrap());
        headers.insert("cookie", "session=aaaa; x=1".parse().unwrap());
        let authorities = [
            "reviews.default.svc.cluster.local:9080",
            "reviews",
            "10.10.0.32:9080",
            "",
            "a:b:c",
        ];
        for authority in authorities {
            for path in [path.as_str(), "/", "/admin/x", "*"] {
                let req = RequestHead {
                    method: "POST",
                    authority,
                    path,
                    scheme: "http",
                    headers: &headers,
                };
                let Some((vhost, route)) = rc.select(&req) else {
                    continue;
                };
                let _ = route.cors_policy(vhost);
                match &route.action {
                    RouteAction::Forward(f) => {
                        for roll in [0, 1, u64::MAX] {
                            let _ = f.clusters.pick(roll);
                            for m in &f.mirrors {
                                let _ = m.fraction.hits(roll);
                            }
                            if let Some(retry) = &f.retry {
                                for n in [0, 1, 31, 64, u32::MAX] {
                                    let _ = retry.backoff.delay(n, roll);
                                }
                            }
                        }
                        for header in [None, Some(&b"99999999H"[..]), Some(b"1n")] {
                            let _ = f.effective_timeout(header);
                        }
                        if let Some(rewrite) = &f.path_rewrite {
                            let _ = rewrite.apply(&route.matcher, path);
                        }
                    }
                    RouteAction::Redirect(r) => {
                        let _ = r.location(&req, &route.matcher);
                    }
                    RouteAction::DirectResponse(_) => {}
                }
                if let Some(fault) = &route.fault {
                    let _ = fault.decide(0, u64::MAX);
                }
            }
        }
    }

    fn exercise_listener(l: &Listener) {
        for chain in l.filter_chains.iter().chain(&l.default_filter_chain) {
            if let NetworkFilter::Http(hcm) = &chain.network {
                if let RouteSource::Static(rc) = &hcm.route {
                    exercise_routes(rc);
                }
                for f in &hcm.http_filters {
                    if let HttpFilter::Fault(fault) = f {
                        let _ = fault.decide(u64::MAX, 0);
                    }
                }
            }
        }
    }

    /// Decodes `bytes` as `kind` and converts what decodes. Never panics.
    fn decode_and_convert(kind: Kind4, bytes: &[u8]) {
        match kind {
            Kind4::Listener => {
                if let Ok(pb) = PbListener::decode(bytes) {
                    if let Ok(l) = Listener::try_from(&pb) {
                        exercise_listener(&l);
                    }
                }
            }
            Kind4::Cluster => {
                if let Ok(pb) = PbCluster::decode(bytes) {
                    let _ = Cluster::try_from(&pb);
                }
            }
            Kind4::Route => {
                if let Ok(pb) = RouteConfiguration::decode(bytes) {
                    if let Ok(rc) = RouteConfig::try_from(&pb) {
                        exercise_routes(&rc);
                    }
                }
            }
            Kind4::Endpoints => {
                if let Ok(pb) = PbCla::decode(bytes) {
                    let _ = ClusterLoadAssignment::try_from(&pb);
                }
            }
        }
    }

    // ---- byte mutations ----

    #[derive(Debug, Clone)]
    enum Mutation {
        /// Flip one bit.
        Flip(Index, u8),
        /// Overwrite one byte, often with a value that means something to protobuf.
        Set(Index, u8),
        Insert(Index, u8),
        Delete(Index, u8),
        /// Copy a run of bytes elsewhere (over what was there).
        Copy(Index, Index, u8),
        /// Duplicate a run of bytes in place (a repeated field twice, a field set twice).
        Repeat(Index, u8),
        Truncate(Index),
    }

    fn byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => prop::sample::select(&[0u8, 1, 2, 0x7f, 0x80, 0xff, 0x08, 0x0a, 0x10, 0x12, 0x1a][..]),
            2 => any::<u8>(),
        ]
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
            3 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
            2 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            2 => (any::<Index>(), 1u8..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
            1 => (any::<Index>(), any::<Index>(), 1u8..64).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
            1 => (any::<Index>(), 1u8..64).prop_map(|(i, n)| Mutation::Repeat(i, n)),
            1 => any::<Index>().prop_map(Mutation::Truncate),
        ]
    }

    fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
        for m in mutations {
            let len = bytes.len();
            match *m {
                Mutation::Flip(ref i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
                Mutation::Set(ref i, b) if len > 0 => bytes[i.index(len)] = b,
                Mutation::Insert(ref i, b) => bytes.insert(i.index(len + 1), b),
                Mutation::Delete(ref i, n) if len > 0 => {
                    let at = i.index(len);
                    bytes.drain(at..(at + n as usize).min(len));
                }
                Mutation::Copy(ref from, ref to, n) if len > 0 => {
                    let from = from.index(len);
                    let run = bytes[from..(from + n as usize).min(len)].to_vec();
                    let to = to.index(len);
                    for (k, b) in run.into_iter().enumerate() {
                        match bytes.get_mut(to + k) {
                            Some(slot) => *slot = b,
                            None => bytes.push(b),
                        }
                    }
                }
                Mutation::Repeat(ref i, n) if len > 0 => {
                    let at = i.index(len);
                    let run = bytes[at..(at + n as usize).min(len)].to_vec();
                    bytes.splice(at..at, run);
                }
                Mutation::Truncate(ref i) => bytes.truncate(i.index(len + 1)),
                _ => {}
            }
        }
        bytes
    }

    fn mutated_seed() -> impl Strategy<Value = (Kind4, Vec<u8>)> {
        (
            kind(),
            any::<Index>(),
            prop::collection::vec(mutation(), 1..4),
        )
            .prop_map(|(kind, seed, mutations)| {
                let seed = seed.get(seeds().of(kind)).clone();
                (kind, mutate(seed, &mutations))
            })
    }

    // ---- a listener with generated values where the numbers, regexes and names are ----

    /// A duration: mostly valid (huge ones included), sometimes negative or with nanos out
    /// of range.
    fn duration() -> impl Strategy<Value = Duration> {
        let valid = (
            prop_oneof![
                4 => 0i64..100,
                1 => prop::sample::select(&[
                    i64::MAX, 315_576_000_000, 18_446_744_073, 18_446_744_073_709_551,
                    1_844_674_407_370_955_162,
                ][..]),
                1 => 0..i64::MAX,
            ],
            prop_oneof![
                6 => Just(0i32),
                1 => prop::sample::select(&[999_999_999, 616_000_000, 551_615_000][..]),
                2 => 0..1_000_000_000,
            ],
        );
        let any = (
            prop_oneof![1 => prop::sample::select(&[-1, i64::MIN][..]), 1 => any::<i64>()],
            prop_oneof![
                1 => prop::sample::select(&[-1, 1_000_000_000, i32::MAX, i32::MIN][..]),
                1 => any::<i32>(),
            ],
        );
        prop_oneof![6 => valid, 1 => any].prop_map(|(seconds, nanos)| Duration { seconds, nanos })
    }

    fn big_u32() -> impl Strategy<Value = u32> {
        prop_oneof![
            3 => 0u32..10,
            1 => prop::sample::select(&[
                99, 100, 200, 599, 600, 1024, 8192, 8193, 65_535, 65_536, 1_000_000, u32::MAX,
                u32::MAX - 1, i32::MAX as u32,
            ][..]),
            1 => any::<u32>(),
        ]
    }

    /// A pattern from RE2-ish pieces, pathological ones included.
    fn regex() -> impl Strategy<Value = String> {
        const PIECES: &[&str] = &[
            "a",
            "b",
            "/",
            ".",
            "*",
            "+",
            "?",
            "|",
            "(",
            ")",
            "[a-z]",
            "[",
            "]",
            "{2}",
            "{2,}",
            "{1000}",
            "^",
            "$",
            "\\",
            "\\d",
            "\\w",
            "\\b",
            "(?i)",
            "(?x)",
            "#",
            "\n",
            "(?=a)",
            "\\1",
            "ä",
            "\\p{L}",
            "(a*)*b",
            "(a|a)*",
            "(.*)*",
            "(a+)+$",
            "a{1000}{1000}",
            "(?:a{100}){100}",
            "\\w{50}{50}",
            "(?P<n>a)",
            ")|(",
            "[^/]+",
        ];
        prop::collection::vec(prop::sample::select(PIECES), 1..10).prop_map(|p| p.concat())
    }

    /// A header name: mostly fine, sometimes with bytes no header name may have.
    fn header_name() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "x-[a-z-]{1,12}",
            1 => prop::sample::select(&[
                ":path", ":authority", "host", "Host", "X-Upper", "", " ", "a b", "a\0b", "é",
                "a\u{7f}", "a:b", "te", "x-envoy-original-path", "content-length",
            ][..]).prop_map(str::to_string),
            1 => any::<String>(),
        ]
    }

    fn header_value() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[ -$&-~]{0,16}",
            1 => prop::sample::select(&["%", "%%", "%REQ(x)%", "a\r\nb", "\0", "é", "\t"][..])
                .prop_map(str::to_string),
        ]
    }

    fn percent() -> impl Strategy<Value = FractionalPercent> {
        (big_u32(), prop_oneof![6 => 0i32..3, 1 => any::<i32>()]).prop_map(
            |(numerator, denominator)| FractionalPercent {
                numerator,
                denominator,
            },
        )
    }

    /// What goes into the generated listener.
    #[derive(Debug, Clone)]
    struct Knobs {
        port: u32,
        stream_idle_timeout: Option<Duration>,
        request_headers_timeout: Option<Duration>,
        max_request_headers_kb: Option<u32>,
        max_headers_count: Option<u32>,
        route_timeout: Option<Duration>,
        per_try_timeout: Option<Duration>,
        backoff: Option<(Option<Duration>, Option<Duration>)>,
        num_retries: Option<u32>,
        retriable_status_codes: Vec<u32>,
        weights: Vec<Option<u32>>,
        path_regex: Option<String>,
        header_regex: Option<(String, String)>,
        rewrite: Option<(String, String)>,
        headers_to_add: Vec<(String, String)>,
        headers_to_remove: Vec<String>,
        mirror: Option<FractionalPercent>,
        cookie_ttl: Option<Duration>,
        grpc_timeout_max: Option<Duration>,
        fault: Option<(Duration, FractionalPercent, u32, FractionalPercent)>,
        /// 0: forward, 1: redirect (with this code), 2: direct response (this status).
        action: (u8, u32),
    }

    fn knobs() -> impl Strategy<Value = Knobs> {
        let timeouts = (
            prop_oneof![6 => 0u32..65_536, 1 => big_u32()],
            prop::option::weighted(0.3, duration()),
            prop::option::weighted(0.3, duration()),
            prop::option::weighted(0.3, big_u32()),
            prop::option::weighted(0.3, big_u32()),
            prop::option::weighted(0.3, duration()),
            prop::option::weighted(0.3, duration()),
            prop::option::weighted(
                0.4,
                (
                    prop::option::weighted(0.9, duration()),
                    prop::option::of(duration()),
                ),
            ),
            prop::option::weighted(0.3, big_u32()),
            prop::collection::vec(prop_oneof![3 => 100u32..600, 1 => big_u32()], 0..3),
        );
        let routing = (
            prop_oneof![
                2 => Just(Vec::new()),
                2 => prop::collection::vec(prop::option::weighted(0.9, 1u32..100), 1..4),
                1 => prop::collection::vec(prop::option::of(big_u32()), 1..4),
            ],
            prop::option::weighted(0.5, regex()),
            prop::option::weighted(0.3, (header_name(), regex())),
            prop::option::weighted(
                0.3,
                (
                    regex(),
                    prop::sample::select(&["", "\\1", "\\\\", "$1", "\\9", "${x}", "/x/"][..])
                        .prop_map(str::to_string),
                ),
            ),
            prop::collection::vec((header_name(), header_value()), 0..2),
            prop::collection::vec(header_name(), 0..2),
            prop::option::weighted(0.3, percent()),
            prop::option::weighted(0.3, duration()),
            prop::option::weighted(0.3, duration()),
            prop::option::weighted(
                0.3,
                (
                    duration(),
                    percent(),
                    prop_oneof![3 => 200u32..600, 1 => big_u32()],
                    percent(),
                ),
            ),
            prop_oneof![
                8 => Just((0u8, 0u32)),
                1 => (Just(1u8), prop_oneof![3 => 0u32..5, 1 => big_u32()]),
                1 => (Just(2u8), prop_oneof![3 => 200u32..600, 1 => big_u32()]),
            ],
        );
        (timeouts, routing).prop_map(|(t, r)| Knobs {
            port: t.0,
            stream_idle_timeout: t.1,
            request_headers_timeout: t.2,
            max_request_headers_kb: t.3,
            max_headers_count: t.4,
            route_timeout: t.5,
            per_try_timeout: t.6,
            backoff: t.7,
            num_retries: t.8,
            retriable_status_codes: t.9,
            weights: r.0,
            path_regex: r.1,
            header_regex: r.2,
            rewrite: r.3,
            headers_to_add: r.4,
            headers_to_remove: r.5,
            mirror: r.6,
            cookie_ttl: r.7,
            grpc_timeout_max: r.8,
            fault: r.9,
            action: r.10,
        })
    }

    fn regex_matcher(regex: &str) -> RegexMatcher {
        RegexMatcher {
            regex: regex.into(),
            ..Default::default()
        }
    }

    fn build(k: &Knobs) -> PbListener {
        let u32v = |value| UInt32Value { value };
        let mut rc = bench_route_config();
        let route = &mut rc.virtual_hosts[0].routes[0];
        let m = route.r#match.as_mut().unwrap();
        if let Some(p) = &k.path_regex {
            m.path_specifier = Some(route_match::PathSpecifier::SafeRegex(regex_matcher(p)));
        }
        if let Some((name, p)) = &k.header_regex {
            m.headers.push(HeaderMatcher {
                name: name.clone(),
                header_match_specifier: Some(HeaderMatchSpecifier::SafeRegexMatch(regex_matcher(
                    p,
                ))),
                ..Default::default()
            });
        }
        route.request_headers_to_add = k
            .headers_to_add
            .iter()
            .map(|(key, value)| HeaderValueOption {
                header: Some(HeaderValue {
                    key: key.clone(),
                    value: value.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        route.request_headers_to_remove = k.headers_to_remove.clone();
        let mut forward = PbRouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster("upstream".into())),
            timeout: k.route_timeout,
            ..Default::default()
        };
        if !k.weights.is_empty() {
            forward.cluster_specifier = Some(route_action::ClusterSpecifier::WeightedClusters(
                PbWeighted {
                    clusters: k
                        .weights
                        .iter()
                        .enumerate()
                        .map(|(i, w)| ClusterWeight {
                            name: format!("c{i}"),
                            weight: w.map(u32v),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            ));
        }
        if k.per_try_timeout.is_some() || k.backoff.is_some() || k.num_retries.is_some() {
            forward.retry_policy = Some(RetryPolicy {
                retry_on: "5xx,retriable-status-codes,reset".into(),
                num_retries: k.num_retries.map(u32v),
                per_try_timeout: k.per_try_timeout,
                retry_back_off: k.backoff.map(|(base_interval, max_interval)| RetryBackOff {
                    base_interval,
                    max_interval,
                }),
                retriable_status_codes: k.retriable_status_codes.clone(),
                ..Default::default()
            });
        }
        if let Some((pattern, substitution)) = &k.rewrite {
            forward.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(regex_matcher(pattern)),
                substitution: substitution.clone(),
            });
        }
        if let Some(p) = k.mirror {
            forward.request_mirror_policies.push(RequestMirrorPolicy {
                cluster: "mirror".into(),
                runtime_fraction: Some(RuntimeFractionalPercent {
                    default_value: Some(p),
                    runtime_key: String::new(),
                }),
                ..Default::default()
            });
        }
        if let Some(ttl) = k.cookie_ttl {
            forward.hash_policy.push(route_action::HashPolicy {
                policy_specifier: Some(hash_policy::PolicySpecifier::Cookie(hash_policy::Cookie {
                    name: "session".into(),
                    ttl: Some(ttl),
                    ..Default::default()
                })),
                ..Default::default()
            });
        }
        if let Some(max) = k.grpc_timeout_max {
            forward.max_stream_duration = Some(route_action::MaxStreamDuration {
                grpc_timeout_header_max: Some(max),
                ..Default::default()
            });
        }
        route.action = Some(match k.action {
            (1, code) => route::Action::Redirect(RedirectAction {
                response_code: code as i32,
                path_rewrite_specifier: Some(redirect_action::PathRewriteSpecifier::PathRedirect(
                    "/elsewhere".into(),
                )),
                ..Default::default()
            }),
            (2, status) => route::Action::DirectResponse(DirectResponseAction {
                status,
                ..Default::default()
            }),
            _ => route::Action::Route(forward),
        });
        let mut hcm = bench_hcm();
        hcm.route_specifier = Some(RouteSpecifier::RouteConfig(rc));
        hcm.stream_idle_timeout = k.stream_idle_timeout;
        hcm.request_headers_timeout = k.request_headers_timeout;
        hcm.max_request_headers_kb = k.max_request_headers_kb.map(u32v);
        if let Some(n) = k.max_headers_count {
            hcm.common_http_protocol_options = Some(HttpProtocolOptions {
                max_headers_count: Some(u32v(n)),
                ..Default::default()
            });
        }
        if let Some((delay, delay_share, status, abort_share)) = k.fault {
            let fault = HttpFault {
                delay: Some(FaultDelay {
                    fault_delay_secifier: Some(FaultDelaySecifier::FixedDelay(delay)),
                    percentage: Some(delay_share),
                }),
                abort: Some(FaultAbort {
                    error_type: Some(ErrorType::HttpStatus(status)),
                    percentage: Some(abort_share),
                    ..Default::default()
                }),
                ..Default::default()
            };
            hcm.http_filters
                .insert(0, http_filter_of("envoy.filters.http.fault", pack(&fault)));
        }
        let mut l = listener_with(&hcm);
        l.address = Some(socket("127.0.0.1", k.port));
        l
    }

    proptest! {
        // 256 cases by default; PROPTEST_CASES overrides.
        #![proptest_config(ProptestConfig::default())]

        #[test]
        fn random_bytes_decode_and_convert_without_panicking(
            kind in kind(),
            bytes in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            decode_and_convert(kind, &bytes);
        }

        #[test]
        fn mutated_resources_decode_and_convert_without_panicking(
            (kind, bytes) in mutated_seed(),
        ) {
            decode_and_convert(kind, &bytes);
        }

        #[test]
        fn generated_listeners_convert_without_panicking_in_linear_time(knobs in knobs()) {
            let pb = build(&knobs);
            let start = Instant::now();
            if let Ok(l) = Listener::try_from(&pb) {
                exercise_listener(&l);
            }
            // Conversion compiles each regex; routing matches them against 4 KB of `a`s
            // and a rewrite replaces in it. A backtracking engine would take longer than
            // the age of the universe on `(a*)*b`; the regex crate takes milliseconds.
            let took = start.elapsed();
            prop_assert!(took.as_secs() < 5, "took {took:?} for {knobs:?}");
        }
    }
}
