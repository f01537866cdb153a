//! The real Envoy (1.40) accepts what we generate: every golden scenario's mesh at once,
//! for proxies that see different rules, turned into a bootstrap and run through
//! `envoy --mode validate`. Fails (never skips) when Envoy is not installed.

mod support;

use support::bootstrap::{as_served, envoy_validate, inlined};
use support::{gateway_proxy, mesh, mesh_unchecked, proxy};

/// Every scenario input, in one mesh (where two claim a host, load order decides, as it
/// would for a user).
fn rich_mesh_yaml() -> String {
    [
        include_str!("inputs/services.yaml"),
        include_str!("inputs/vs_match.yaml"),
        include_str!("inputs/vs_forwarding.yaml"),
        include_str!("inputs/vs_responses.yaml"),
        include_str!("inputs/vs_source_labels.yaml"),
        include_str!("inputs/vs_conflict.yaml"),
        include_str!("inputs/tcp_routes.yaml"),
        include_str!("inputs/dr_load_balancers.yaml"),
        include_str!("inputs/dr_pool_outlier.yaml"),
    ]
    .join("\n---\n")
}

fn assert_envoy_accepts(label: &str, generated: &bowline_translate::Generated) {
    let violations = bowline_translate::check(generated);
    assert!(violations.is_empty(), "{label}: {violations:#?}");
    for (variant, bootstrap) in [
        ("inlined", inlined(generated)),
        ("as served", as_served(generated)),
    ] {
        let result = envoy_validate(&bootstrap);
        if std::env::var_os("SHOW_ENVOY").is_some() {
            eprintln!("{label} ({variant}): {result:?}");
        }
        if let Err(output) = result {
            let reason = output
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            panic!("Envoy rejected {label} ({variant}): {reason}\n\nfull output:\n{output}");
        }
    }
}

#[test]
fn envoy_accepts_every_feature_for_each_proxy() {
    let snap = mesh(&rich_mesh_yaml());
    let proxies = [
        ("10.10.0.10", "productpage-v1", "default"),
        ("10.10.0.32", "reviews-v2", "default"),
        ("10.10.0.20", "details-v1", "prod"),
        ("10.10.0.99", "unknown", "default"),
    ];
    for (ip, workload, ns) in proxies {
        let p = proxy(&snap, ip, workload, ns);
        let generated = bowline_translate::generate(&support::push(&snap), &p);
        let names: Vec<&str> = generated.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["50051", "80", "9080", "http_proxy"], "{workload}");
        assert_envoy_accepts(workload, &generated);
    }
}

/// Values a user could force past validation, each of which Envoy would refuse if passed
/// through: translation must drop or default them so the rest still applies.
#[test]
fn envoy_accepts_what_translation_makes_of_hostile_config() {
    let hostile = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: odd, namespace: default}
spec:
  hosts: [odd.default.svc.cluster.local, twin.default.svc.cluster.local]
  addresses: [240.240.0.99, 10.1.0.0/16, not-an-ip]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 8080, name: http, protocol: HTTP}
  - {number: 8080, name: http-again, protocol: HTTP}
  - {number: 70000, name: http-big, protocol: HTTP}
  - {number: 5353, name: udp-dns, protocol: UDP}
  - {number: 7000, name: tcp-a, protocol: TCP}
  endpoints:
  - {address: 10.20.0.1, ports: {http: 99999}}
  - {address: odd-host.example.com}
  - {address: 10.20.0.2, weight: 4294967295}
  - {address: 10.20.0.3, weight: 4294967295}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: lonely, namespace: default}
spec:
  hosts: [lonely.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 7000, name: tcp-b, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: roundrobin-dns, namespace: default}
spec:
  hosts: ["*.wild.example.com"]
  location: MESH_EXTERNAL
  resolution: DNS_ROUND_ROBIN
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: odd, namespace: default}
spec:
  hosts: [odd]
  http:
  - name: bad-regex
    match: [{uri: {regex: "(?<=lookbehind)x"}}]
    route: [{destination: {host: odd}}]
  - name: zero-weights
    route:
    - {destination: {host: odd, subset: a}, weight: 0}
    - {destination: {host: odd, subset: b}, weight: 0}
  - name: all-unset-weights
    match: [{uri: {prefix: /split}}]
    route:
    - {destination: {host: odd}}
    - {destination: {host: twin}}
  - name: bad-status
    match: [{uri: {prefix: /status}}]
    directResponse: {status: 999}
  - name: bad-redirect
    match: [{uri: {prefix: /r}}]
    redirect: {uri: /x, redirectCode: 399}
  - name: forbidden-headers
    match: [{uri: {prefix: /h}}]
    headers: {request: {set: {":path": /evil, x-ok: fine}, remove: [host]}, response: {add: {":status": "200"}}}
    fault: {abort: {httpStatus: 42}, delay: {fixedDelay: 0s}}
    retries: {attempts: 2, retryOn: "bogus,5xx", backoff: 1ms}
    route: [{destination: {host: odd}}]
  - name: big-body
    match: [{uri: {prefix: /big}}]
    directResponse: {status: 200, body: {string: "BODY"}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: odd, namespace: default}
spec:
  host: odd
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 65536}}}
    connectionPool: {tcp: {connectTimeout: 0s, maxConnections: -1}}
    outlierDetection: {interval: 0s, baseEjectionTime: 0s, maxEjectionPercent: 400, minHealthPercent: 150}
  subsets:
  - {name: a, labels: {x: a}, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 99999999}}}}}
  - {name: b}
  - {name: b}
  - {name: ""}
"#
    .replace("BODY", &"x".repeat(10_000));
    let snap = mesh_unchecked(&format!(
        "{}\n---\n{hostile}",
        include_str!("inputs/services.yaml")
    ));
    let p = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    let generated = bowline_translate::generate(&support::push(&snap), &p);
    assert!(
        generated
            .clusters
            .iter()
            .any(|c| c.name == "outbound|8080||odd.default.svc.cluster.local"),
        "the good parts of the hostile service are still served"
    );
    assert_envoy_accepts("hostile config", &generated);
}

/// The check itself can fail: a duplicate domain slipped into a route configuration makes
/// Envoy refuse the bootstrap, and our check reports it.
#[test]
fn envoy_and_check_both_refuse_a_duplicate_domain() {
    let snap = mesh(include_str!("inputs/services.yaml"));
    let p = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    let mut generated = bowline_translate::generate(&support::push(&snap), &p);
    let config = generated
        .routes
        .iter_mut()
        .find(|r| r.name == "9080")
        .unwrap();
    let first = config.virtual_hosts[0].domains[0].clone();
    config.virtual_hosts[1].domains.push(first);
    assert!(!bowline_translate::check(&generated).is_empty());
    let err = envoy_validate(&inlined(&generated)).expect_err("Envoy refuses duplicate domains");
    assert!(err.contains("domain"), "{err}");
}

/// A gateway's listeners and routes, TLS servers included: Envoy loads the certificate
/// files, so they are real files here (one by credentialName, one by path).
#[test]
fn envoy_accepts_a_gateway_with_tls_servers() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["shop.example.com".into(), "api.example.com".into()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let shop = dir.path().join("shop-cert");
    std::fs::create_dir(&shop).unwrap();
    for (file, text) in [("tls.crt", cert.pem()), ("tls.key", key.serialize_pem())] {
        std::fs::write(shop.join(file), &text).unwrap();
    }
    std::fs::write(dir.path().join("api.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("api.key"), key.serialize_pem()).unwrap();

    let gateway_yaml = include_str!("inputs/gateway_istio.yaml")
        .replace("/etc/certs", &dir.path().display().to_string());
    let snap = mesh(&format!(
        "{}\n---\n{gateway_yaml}",
        include_str!("inputs/services.yaml")
    ));
    let gw = gateway_proxy(
        &snap,
        &[("istio", "ingressgateway")],
        "80:18080,443:18443",
        &dir.path().display().to_string(),
    );
    let generated = bowline_translate::generate(&support::push(&snap), &gw);
    let names: Vec<&str> = generated
        .listeners
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, ["0.0.0.0_443", "0.0.0.0_80", "0.0.0.0_8080"]);
    assert_envoy_accepts("gateway", &generated);

    // The Gateway API input alone, on the same certificate directory.
    let snap = mesh(&format!(
        "{}\n---\n{}",
        include_str!("inputs/services.yaml"),
        include_str!("inputs/gateway_api.yaml")
    ));
    let gw = gateway_proxy(&snap, &[], "", &dir.path().display().to_string());
    let generated = bowline_translate::generate(&support::push(&snap), &gw);
    let routes: Vec<&str> = generated.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        routes,
        ["http.80", "https.443.https.web-https.istio-system"]
    );
    assert_envoy_accepts("gateway API", &generated);
}

/// Delegated rules (merged matches, inherited policies) for a sidecar and a gateway.
#[test]
fn envoy_accepts_delegated_routes() {
    let snap = mesh(&format!(
        "{}\n---\n{}",
        include_str!("inputs/services.yaml"),
        include_str!("inputs/vs_delegate.yaml")
    ));
    let sidecar = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    assert_envoy_accepts(
        "delegation (sidecar)",
        &bowline_translate::generate(&support::push(&snap), &sidecar),
    );
    let gw = gateway_proxy(
        &snap,
        &[("istio", "ingressgateway")],
        "80:18080",
        "/etc/bowline/credentials",
    );
    assert_envoy_accepts(
        "delegation (gateway)",
        &bowline_translate::generate(&support::push(&snap), &gw),
    );
}

/// Sidecar-scoped proxies: one given its namespace, one given a single host on one port,
/// one given nothing (`~/*`: only its own side and the `http_proxy` route configuration).
#[test]
fn envoy_accepts_sidecar_scoped_config() {
    let sidecar = |name: &str, spec: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: {name}, namespace: default}}\nspec:\n{spec}\n---\n"
        )
    };
    let snap = mesh(&format!(
        "{}\n---\n{}{}{}",
        rich_mesh_yaml(),
        sidecar("default", "  egress:\n  - hosts: [\"./*\"]"),
        sidecar(
            "reviews",
            "  workloadSelector: {labels: {app: reviews}}\n  egress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    hosts: [\"prod/details.prod.svc.cluster.local\"]"
        ),
        sidecar(
            "ratings",
            "  workloadSelector: {labels: {app: ratings}}\n  egress:\n  - hosts: [\"~/*\"]"
        ),
    ));
    for (ip, workload) in [
        ("10.10.0.10", "productpage-v1"),
        ("10.10.0.32", "reviews-v2"),
        ("10.10.0.41", "ratings-v1"),
    ] {
        let p = proxy(&snap, ip, workload, "default");
        let generated = bowline_translate::generate(&support::push(&snap), &p);
        let outbound: Vec<&str> = generated
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| n.starts_with("outbound|"))
            .collect();
        match workload {
            "reviews-v2" => assert_eq!(outbound, ["outbound|9080||details.prod.svc.cluster.local"]),
            "ratings-v1" => assert!(outbound.is_empty(), "{outbound:?}"),
            _ => assert!(
                outbound.iter().all(|n| !n.contains(".prod.")),
                "{outbound:?}"
            ),
        }
        assert_envoy_accepts(&format!("Sidecar-scoped {workload}"), &generated);
    }
}

/// A captured sidecar under each outbound traffic policy: the passthrough and black-hole
/// clusters, the catch-all virtual hosts and the default tcp_proxy chain; its HTTP
/// inspector on ports without a declared protocol and its SNI chains and TLS inspector.
#[test]
fn envoy_accepts_the_outbound_traffic_policy_under_capture() {
    use bowline_config::mesh_config::{MeshConfig, OutboundMode, OutboundTrafficPolicy};
    // Ports without a declared protocol, sniffed under capture.
    let sniffed = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: shop, namespace: default}\nspec:\n  hosts: [shop.default.svc.cluster.local]\n  addresses: [240.0.0.10]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{number: 8000, name: web}, {number: 8001, name: stream}]\n  endpoints: [{address: 10.0.0.5}]\n";
    // TLS routed by SNI.
    let sni = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: wiki, namespace: default}\nspec:\n  hosts: [wiki.example.com]\n  addresses: [240.0.0.20]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  endpoints: [{address: 10.0.0.20}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: wiki, namespace: default}\nspec:\n  hosts: [wiki.example.com]\n  tls:\n  - match:\n    - sniHosts: [\"*.wiki.example.com\"]\n    route:\n    - destination: {host: wiki.example.com}\n";
    for mode in [OutboundMode::AllowAny, OutboundMode::RegistryOnly] {
        let mut snap = mesh(&format!("{}\n---\n{sniffed}---\n{sni}", rich_mesh_yaml()));
        snap.mesh = std::sync::Arc::new(MeshConfig {
            outbound_traffic_policy: OutboundTrafficPolicy { mode },
            ..MeshConfig::default()
        });
        let mut p = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
        p.interception_mode = bowline_translate::InterceptionMode::Redirect;
        let generated = bowline_translate::generate(&support::push(&snap), &p);
        assert_envoy_accepts(&format!("captured sidecar, {mode:?}"), &generated);
    }
}

/// Access logs on (Telemetry with a JSON file provider for one workload, MeshConfig's text
/// log for the rest, the built-in `envoy` provider at the gateway): every connection
/// manager and tcp_proxy carries a file access log, and Envoy takes them.
#[test]
fn envoy_accepts_access_logs_in_text_and_json() {
    let telemetry = r#"
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: productpage-logs, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  accessLogging: [{providers: [{name: json-file}]}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: gateway-logs, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  accessLogging: [{providers: [{name: envoy}]}]
"#;
    let dir = tempfile::tempdir().unwrap();
    let json_log = dir.path().join("proxy.json");
    let text_log = dir.path().join("proxy.log");
    let mesh_config = format!(
        "accessLogFile: {}\naccessLogFormat: '[%START_TIME%] %REQ_WITHOUT_QUERY(:PATH)% %RESPONSE_CODE%'\nextensionProviders:\n- name: json-file\n  envoyFileAccessLog:\n    path: {}\n    logFormat: {{labels: {{code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%'}}}}\n",
        text_log.display(),
        json_log.display()
    );
    let mut snap = mesh(&format!("{}\n---\n{telemetry}", rich_mesh_yaml()));
    let (config, diagnostics) =
        bowline_config::read_mesh_config(std::path::Path::new("mesh.yaml"), &mesh_config);
    assert!(
        diagnostics.iter().all(|d| !d.is_error()),
        "{diagnostics:#?}"
    );
    snap.mesh = std::sync::Arc::new(config);
    for (ip, workload, ns) in [
        ("10.10.0.10", "productpage-v1", "default"),
        ("10.10.0.32", "reviews-v2", "default"),
    ] {
        let p = proxy(&snap, ip, workload, ns);
        let generated = bowline_translate::generate(&support::push(&snap), &p);
        // The logger's name sits in the connection managers' packed bytes.
        let bytes: Vec<u8> = generated
            .listeners
            .iter()
            .flat_map(bowline_xds::prost::Message::encode_to_vec)
            .collect();
        let name = b"envoy.access_loggers.file";
        assert!(
            bytes.windows(name.len()).any(|w| w == name),
            "{workload} logs"
        );
        assert_envoy_accepts(&format!("{workload} with access logs"), &generated);
    }
}
