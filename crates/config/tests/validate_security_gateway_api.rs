//! security.istio.io and Gateway API checks as tables.

mod support;

use support::{spec_findings, want};

fn check_table(kind: &str, cases: &[(&str, &[(&'static str, &str)])]) {
    for (spec, expected) in cases {
        let mut got = spec_findings(kind, spec);
        got.sort();
        let mut expected = want(expected);
        expected.sort();
        assert_eq!(got, expected, "{kind} spec:\n{spec}");
    }
}

#[test]
fn peer_authentications() {
    check_table(
        "PeerAuthentication",
        &[
            ("mtls: {mode: STRICT}", &[]),
            (
                "selector: {matchLabels: {app: a}}\nportLevelMtls: {8080: {mode: DISABLE}}",
                &[],
            ),
            (
                "mtls: {mode: STRICT}\nportLevelMtls: {8080: {mode: DISABLE}}",
                &[("BL0101", "spec.portLevelMtls")],
            ),
            (
                "selector: {matchLabels: {app: a}}\nportLevelMtls: {0: {mode: DISABLE}}",
                &[("BL0102", "spec.portLevelMtls.0")],
            ),
            (
                "selector: {matchLabels: {app: a}}\nportLevelMtls: {}",
                &[("BL0101", "spec.portLevelMtls")],
            ),
        ],
    );
}

#[test]
fn authorization_policies() {
    let from = |source: &str| format!("rules:\n- from:\n  - source: {source}");
    let cases: Vec<(String, &[(&str, &str)])> = vec![
        (from("{principals: [cluster.local/ns/default/sa/productpage]}"), &[]),
        (from("{principals: ['*', '*/ns/default/sa/x', 'cluster.local/ns/default/*']}"), &[]),
        (
            from("{principals: ['spiffe://cluster.local/ns/default/sa/x']}"),
            &[("BL0113", "spec.rules[0].from[0].source.principals[0]")],
        ),
        // Principals are free-form, as in Istio: any non-empty string.
        (from("{principals: [productpage, 'principal-prefix-*']}"), &[]),
        (from("{principals: ['']}"), &[("BL0101", "spec.rules[0].from[0].source.principals[0]")]),
        (from("{trustDomains: [cluster.local, '*-suffix'], notTrustDomains: ['*']}"), &[]),
        (
            from("{trustDomains: ['a/b', 'a*b']}"),
            &[
                ("BL0113", "spec.rules[0].from[0].source.trustDomains[0]"),
                ("BL0113", "spec.rules[0].from[0].source.trustDomains[1]"),
            ],
        ),
        (from("{serviceAccounts: [sa, ns/sa]}"), &[]),
        (
            from("{serviceAccounts: ['ns/*', 'a/b/c']}"),
            &[
                ("BL0113", "spec.rules[0].from[0].source.serviceAccounts[0]"),
                ("BL0113", "spec.rules[0].from[0].source.serviceAccounts[1]"),
            ],
        ),
        (from("{namespaces: ['a*b']}"), &[("BL0113", "spec.rules[0].from[0].source.namespaces[0]")]),
        (from("{ipBlocks: [10.0.0.0/8, 300.1.1.1]}"), &[("BL0110", "spec.rules[0].from[0].source.ipBlocks[1]")]),
        (from("{}"), &[("BL0101", "spec.rules[0].from[0].source")]),
        (
            from("{serviceAccounts: [default/x], namespaces: [default]}"),
            &[("BL0111", "spec.rules[0].from[0].source.serviceAccounts")],
        ),
        ("action: CUSTOM".into(), &[("BL0101", "spec.provider"), ("BL0117", "spec.action")]),
        // bowline does not call external authorizers: accepted, with a warning.
        ("action: CUSTOM\nprovider: {name: ext-authz}".into(), &[("BL0117", "spec.action")]),
        ("action: DENY\nprovider: {name: ext-authz}".into(), &[("BL0111", "spec.provider")]),
        (
            "selector: {matchLabels: {app: a}}\ntargetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: gw}".into(),
            &[("BL0111", "spec"), ("BL0117", "spec.targetRef")],
        ),
        (
            "rules:\n- to:\n  - operation: {ports: ['80', x, '0']}".into(),
            &[("BL0102", "spec.rules[0].to[0].operation.ports[1]"), ("BL0102", "spec.rules[0].to[0].operation.ports[2]")],
        ),
        (
            "rules:\n- when:\n  - {key: 'request.auth.claims[groups]', values: [admin]}\n  - {key: request.colour, values: [red]}\n  - {key: source.ip}"
                .into(),
            &[("BL0115", "spec.rules[0].when[1].key"), ("BL0101", "spec.rules[0].when[2].values")],
        ),
        (
            "rules:\n- when:\n  - {key: source.trustDomain, values: [cluster.local]}\n  - {key: source.trustDomain, values: ['a*b']}".into(),
            &[
                ("BL0117", "spec.rules[0].when[0].key"),
                ("BL0117", "spec.rules[0].when[1].key"),
                ("BL0113", "spec.rules[0].when[1].values[0]"),
            ],
        ),
        // Ambient mode: a policy attached to a Service is for its waypoint.
        (
            "targetRefs: [{kind: Service, group: '', name: reviews}]\nrules: [{}]".into(),
            &[("BL0118", "spec.targetRefs[0]")],
        ),
        (
            "targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\nrules: [{}]".into(),
            &[("BL0117", "spec.targetRef")],
        ),
        (
            "targetRef: {kind: Deployment, group: apps, name: x, namespace: other}".into(),
            &[("BL0115", "spec.targetRef.namespace"), ("BL0115", "spec.targetRef.kind")],
        ),
        (
            "selector: {matchLabels: {app: '*', '': x}}".into(),
            &[("BL0119", "spec.selector.matchLabels.app"), ("BL0119", "spec.selector.matchLabels.")],
        ),
    ];
    for (spec, expected) in cases {
        check_table("AuthorizationPolicy", &[(spec.as_str(), expected)]);
    }
}

#[test]
fn request_authentications() {
    check_table(
        "RequestAuthentication",
        &[
            ("jwtRules: [{issuer: https://accounts.example.com, jwksUri: https://accounts.example.com/jwks}]", &[]),
            ("jwtRules: [{jwksUri: https://a/jwks}]", &[("BL0101", "spec.jwtRules[0].issuer")]),
            ("jwtRules: [{issuer: i, jwksUri: https://a/jwks, jwks: '{}'}]", &[("BL0111", "spec.jwtRules[0].jwks")]),
            ("jwtRules: [{issuer: i, jwksUri: ftp://a/jwks}]", &[("BL0115", "spec.jwtRules[0].jwksUri")]),
            ("jwtRules: [{issuer: i, jwksUri: 'file:///etc/keys/jwks.json'}]", &[]),
            ("jwtRules: [{issuer: i, jwksUri: 'file://relative/jwks.json'}]", &[("BL0115", "spec.jwtRules[0].jwksUri")]),
            (
                "jwtRules: [{issuer: i, fromHeaders: [{prefix: 'Bearer '}], outputClaimToHeaders: [{header: 'x y', claim: sub}]}]",
                &[("BL0101", "spec.jwtRules[0].fromHeaders[0].name"), ("BL0108", "spec.jwtRules[0].outputClaimToHeaders[0].header")],
            ),
            ("jwtRules: [{issuer: i, presence: OPTIONAL}]", &[]),
            ("jwtRules: [{issuer: i, presence: REQUIRED}]", &[("BL0117", "spec.jwtRules[0].presence")]),
            (
                "jwtRules: [{issuer: i, audiences: [''], fromParams: [''], fromCookies: [''], spaceDelimitedClaims: ['']}]",
                &[
                    ("BL0101", "spec.jwtRules[0].audiences[0]"),
                    ("BL0101", "spec.jwtRules[0].fromParams[0]"),
                    ("BL0101", "spec.jwtRules[0].fromCookies[0]"),
                    ("BL0101", "spec.jwtRules[0].spaceDelimitedClaims[0]"),
                ],
            ),
        ],
    );
}

#[test]
fn gateway_api_gateways() {
    check_table(
        "K8sGateway",
        &[
            ("gatewayClassName: istio\nlisteners: [{name: http, port: 80, protocol: HTTP}]", &[]),
            ("listeners: [{name: http, port: 80, protocol: HTTP}]", &[("BL0101", "spec.gatewayClassName")]),
            (
                "gatewayClassName: istio\nlisteners:\n- {name: http, port: 80, protocol: HTTP}\n- {name: http, port: 0, protocol: SMTP}",
                &[
                    ("BL0112", "spec.listeners[1].name"),
                    ("BL0102", "spec.listeners[1].port"),
                    ("BL0115", "spec.listeners[1].protocol"),
                ],
            ),
            ("gatewayClassName: istio\nlisteners: [{name: https, port: 443, protocol: HTTPS}]", &[("BL0101", "spec.listeners[0].tls")]),
            (
                "gatewayClassName: istio\nlisteners: [{name: https, port: 443, protocol: HTTPS, tls: {mode: Terminate}}]",
                &[("BL0101", "spec.listeners[0].tls.certificateRefs")],
            ),
            (
                "gatewayClassName: istio\nlisteners: [{name: h, port: 80, protocol: HTTP, tls: {mode: Passthrough}}]",
                &[("BL0111", "spec.listeners[0].tls")],
            ),
            // Accepted, with a warning that bowline does not serve it.
            ("gatewayClassName: istio\nlisteners: [{name: mesh, port: 15008, protocol: HBONE}]", &[("BL0117", "spec.listeners[0].protocol")]),
            (
                "gatewayClassName: istio\nlisteners:\n- {name: a, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}, kinds: [{kind: HTTPRoute}, {kind: TCPRoute}]}}\n- {name: b, port: 81, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector}}}\n- {name: c, port: 82, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {a: b}}}}}\n- {name: d, port: 83, protocol: HTTP, allowedRoutes: {namespaces: {from: Everywhere}}}",
                &[
                    ("BL0117", "spec.listeners[0].allowedRoutes.kinds[1]"),
                    ("BL0101", "spec.listeners[1].allowedRoutes.namespaces.selector"),
                    ("BL0117", "spec.listeners[2].allowedRoutes.namespaces.selector"),
                    ("BL0115", "spec.listeners[3].allowedRoutes.namespaces.from"),
                ],
            ),
        ],
    );
}

#[test]
fn reference_grants() {
    check_table(
        "ReferenceGrant",
        &[
            ("from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]\nto: [{group: '', kind: Service}]", &[]),
            ("from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]\nto: [{group: '', kind: Service, name: web}]", &[]),
            ("from: []\nto: []", &[("BL0101", "spec.from"), ("BL0101", "spec.to")]),
            (
                "from: [{group: gateway.networking.k8s.io, kind: '', namespace: ''}]\nto: [{group: ''}]",
                &[("BL0101", "spec.from[0].kind"), ("BL0101", "spec.from[0].namespace"), ("BL0101", "spec.to[0].kind")],
            ),
            ("from: [{group: g, kind: K, namespace: n}]\nto: [{group: '', kind: Service}]\nextra: 1", &[("BL0012", "spec.extra")]),
        ],
    );
}

#[test]
fn http_routes() {
    let rule = |body: &str| format!("rules:\n- {}", body.replace('\n', "\n  "));
    let backend = "backendRefs: [{name: reviews, port: 9080}]";
    let cases: Vec<(String, &[(&str, &str)])> = vec![
        (rule(&format!("matches: [{{path: {{type: PathPrefix, value: /api}}}}]\n{backend}")), &[]),
        (rule("matches: [{path: {type: Prefix, value: /api}}]"), &[("BL0115", "spec.rules[0].matches[0].path.type")]),
        (rule("matches: [{path: {type: Exact, value: api}}]"), &[("BL0115", "spec.rules[0].matches[0].path.value")]),
        (rule("matches: [{path: {type: RegularExpression, value: '/a(('}}]"), &[("BL0106", "spec.rules[0].matches[0].path.value")]),
        (
            rule("matches: [{headers: [{type: Regex, name: x-a, value: b}], method: get}]"),
            &[("BL0115", "spec.rules[0].matches[0].headers[0].type"), ("BL0115", "spec.rules[0].matches[0].method")],
        ),
        (
            rule("filters: [{type: RequestHeaderModifier, requestRedirect: {statusCode: 301}}]"),
            &[("BL0101", "spec.rules[0].filters[0].requestHeaderModifier"), ("BL0111", "spec.rules[0].filters[0].requestRedirect")],
        ),
        (rule("filters: [{type: Teleport}]"), &[("BL0115", "spec.rules[0].filters[0].type")]),
        (
            rule("filters: [{type: RequestRedirect, requestRedirect: {statusCode: 305, scheme: ftp}}]"),
            &[("BL0105", "spec.rules[0].filters[0].requestRedirect.statusCode"), ("BL0115", "spec.rules[0].filters[0].requestRedirect.scheme")],
        ),
        (
            rule("filters:\n- {type: RequestRedirect, requestRedirect: {statusCode: 302}}\n- {type: URLRewrite, urlRewrite: {hostname: a}}"),
            &[("BL0111", "spec.rules[0].filters")],
        ),
        (
            rule("matches: [{path: {type: Exact, value: /a}}]\nfilters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]"),
            &[("BL0111", "spec.rules[0].filters[0].urlRewrite.path")],
        ),
        (
            rule("backendRefs: [{name: reviews, port: 9080, weight: -1}, {name: ratings}]"),
            &[("BL0103", "spec.rules[0].backendRefs[0].weight"), ("BL0101", "spec.rules[0].backendRefs[1].port")],
        ),
        (rule("timeouts: {request: 5s, backendRequest: 10s}"), &[("BL0111", "spec.rules[0].timeouts.backendRequest")]),
        (rule("retry: {attempts: 2, codes: [503, 200]}"), &[("BL0105", "spec.rules[0].retry.codes[1]")]),
        ("parentRefs: [{port: 80}]".into(), &[("BL0101", "spec.parentRefs[0].name")]),
        ("hostnames: ['bad_host.example.com']".into(), &[("BL0114", "spec.hostnames[0]")]),
    ];
    for (spec, expected) in cases {
        check_table("HTTPRoute", &[(spec.as_str(), expected)]);
    }
}

#[test]
fn grpc_routes() {
    check_table(
        "GRPCRoute",
        &[
            ("rules: [{matches: [{method: {service: helloworld.Greeter}}], backendRefs: [{name: g, port: 50051}]}]", &[]),
            ("rules: [{matches: [{method: {type: Exact}}]}]", &[("BL0101", "spec.rules[0].matches[0].method")]),
            ("rules: [{matches: [{method: {type: RegularExpression, service: '('}}]}]", &[("BL0106", "spec.rules[0].matches[0].method.service")]),
            ("rules: [{filters: [{type: URLRewrite, urlRewrite: {}}]}]", &[("BL0115", "spec.rules[0].filters[0].type")]),
        ],
    );
}
