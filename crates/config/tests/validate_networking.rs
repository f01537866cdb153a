//! DestinationRule, ServiceEntry, WorkloadEntry, Gateway and Sidecar checks as tables.

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
fn destination_rules() {
    check_table(
        "DestinationRule",
        &[
            ("host: reviews\nsubsets: [{name: v1, labels: {version: v1}}]", &[]),
            ("subsets: [{name: v1}]", &[("BL0101", "spec.host")]),
            ("host: reviews\nsubsets: [{name: v1}, {name: v1}]", &[("BL0112", "spec.subsets[1].name")]),
            ("host: reviews\nsubsets: [{name: V_1}]", &[("BL0114", "spec.subsets[0].name")]),
            ("host: reviews\nsubsets: [{labels: {a: b}}]", &[("BL0101", "spec.subsets[0].name")]),
            (
                "host: r\ntrafficPolicy: {loadBalancer: {simple: ROUND_ROBIN, consistentHash: {useSourceIp: true}}}",
                &[("BL0111", "spec.trafficPolicy.loadBalancer")],
            ),
            (
                "host: r\ntrafficPolicy:\n  outlierDetection: {consecutive5xxErrors: 1}\n  loadBalancer:\n    localityLbSetting: {failover: [{from: us, to: eu}], failoverPriority: [rack]}",
                &[],
            ),
            (
                "host: r\ntrafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: us, to: eu}], failoverPriority: [rack, topology.kubernetes.io/zone]}}}",
                &[("BL0111", "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority[1]")],
            ),
            (
                "host: r\ntrafficPolicy: {loadBalancer: {consistentHash: {ringHash: {}}}}",
                &[("BL0101", "spec.trafficPolicy.loadBalancer.consistentHash")],
            ),
            (
                "host: r\ntrafficPolicy:\n  connectionPool:\n    tcp: {maxConnections: -1, connectTimeout: 0s}\n    http: {h2UpgradePolicy: SOMETIMES}",
                &[
                    ("BL0115", "spec.trafficPolicy.connectionPool.tcp.maxConnections"),
                    ("BL0107", "spec.trafficPolicy.connectionPool.tcp.connectTimeout"),
                    ("BL0115", "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy"),
                ],
            ),
            (
                "host: r\ntrafficPolicy: {outlierDetection: {maxEjectionPercent: 120, interval: 10s}}",
                &[("BL0104", "spec.trafficPolicy.outlierDetection.maxEjectionPercent")],
            ),
            (
                "host: r\ntrafficPolicy: {retryBudget: {percent: 120, minRetryConcurrency: 2}}",
                &[("BL0104", "spec.trafficPolicy.retryBudget.percent")],
            ),
            ("host: r\ntrafficPolicy: {tls: {mode: MUTUAL}}", &[
                ("BL0101", "spec.trafficPolicy.tls.clientCertificate"),
                ("BL0101", "spec.trafficPolicy.tls.privateKey"),
            ]),
            ("host: r\ntrafficPolicy: {tls: {mode: MUTUAL, credentialName: client-cert}}", &[]),
            ("host: r\ntrafficPolicy: {tls: {mode: ISTIO_MUTUAL, privateKey: /k}}", &[("BL0111", "spec.trafficPolicy.tls")]),
            ("host: r\ntrafficPolicy: {tls: {mode: STRICT}}", &[("BL0115", "spec.trafficPolicy.tls.mode")]),
            (
                "host: r\ntrafficPolicy: {portLevelSettings: [{port: {number: 0}}, {tls: {mode: SIMPLE}}]}",
                &[
                    ("BL0102", "spec.trafficPolicy.portLevelSettings[0].port.number"),
                    ("BL0101", "spec.trafficPolicy.portLevelSettings[1].port"),
                ],
            ),
            (
                "host: r\nsubsets: [{name: v1, trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}}}]",
                &[("BL0101", "spec.subsets[0].trafficPolicy.loadBalancer.consistentHash.httpCookie.name")],
            ),
            // Read and checked, not applied yet: a warning each.
            (
                "host: r\ntrafficPolicy: {loadBalancer: {warmup: {duration: 60s, minimumPercent: 10, aggression: 1.5}}}",
                &[("BL0117", "spec.trafficPolicy.loadBalancer.warmup")],
            ),
            (
                "host: r\ntrafficPolicy: {loadBalancer: {warmup: {minimumPercent: 101, aggression: 0}}}",
                &[
                    ("BL0101", "spec.trafficPolicy.loadBalancer.warmup.duration"),
                    ("BL0104", "spec.trafficPolicy.loadBalancer.warmup.minimumPercent"),
                    ("BL0115", "spec.trafficPolicy.loadBalancer.warmup.aggression"),
                    ("BL0117", "spec.trafficPolicy.loadBalancer.warmup"),
                ],
            ),
            (
                "host: r\ntrafficPolicy: {connectionPool: {http: {http2KeepAlive: {interval: 15s}}, tcp: {idleTimeout: 0s}}}",
                &[
                    ("BL0101", "spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout"),
                    ("BL0117", "spec.trafficPolicy.connectionPool.http.http2KeepAlive"),
                ],
            ),
            (
                "host: r\ntrafficPolicy: {tunnel: {protocol: CONNECT, targetHost: h, targetPort: 8080}, outlierDetection: {outlierDetectionHttpErrorCodes: [503, 99]}}",
                &[
                    ("BL0117", "spec.trafficPolicy.tunnel"),
                    ("BL0105", "spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes[1]"),
                    ("BL0117", "spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes"),
                ],
            ),
            (
                "host: r\nsubsets: [{name: v1, labels: {version: 'v 1'}}]",
                &[("BL0119", "spec.subsets[0].labels.version")],
            ),
        ],
    );
}

const PORT: &str = "ports: [{number: 9080, name: http, protocol: HTTP}]";

#[test]
fn service_entries() {
    let se = |extra: &str| format!("hosts: [reviews.default.svc.cluster.local]\n{PORT}\n{extra}");
    let cases: Vec<(String, &[(&str, &str)])> = vec![
        (se("location: MESH_INTERNAL\nresolution: STATIC\nworkloadSelector: {labels: {app: reviews}}"), &[]),
        (PORT.into(), &[("BL0101", "spec.hosts")]),
        // Ports are optional (as in Istio); `protocol: ""` means unset.
        ("hosts: [a.example.com]".into(), &[]),
        ("hosts: [a.example.com]\nports: [{number: 80, name: http, protocol: ''}]".into(), &[]),
        (
            "hosts: [a.example.com]\nresolution: DNS\naddresses: [10.0.0.0/16]".into(),
            &[("BL0111", "spec.addresses[0]")],
        ),
        (
            "hosts: [a.example.com]\nresolution: DNS_ROUND_ROBIN\nendpoints: [{address: a.example.com}, {address: b.example.com}]".into(),
            &[("BL0111", "spec.endpoints")],
        ),
        (
            "hosts: [a.example.com]\nworkloadSelector: {labels: {app: '*'}}".into(),
            &[("BL0119", "spec.workloadSelector.labels.app")],
        ),
        (format!("hosts: ['*']\n{PORT}"), &[("BL0114", "spec.hosts[0]")]),
        (
            "hosts: [a.example.com]\nports:\n- {number: 80, name: http}\n- {number: 80, name: http}\n- {number: 70000, name: big, protocol: SMTP}".into(),
            &[
                ("BL0112", "spec.ports[1].number"),
                ("BL0112", "spec.ports[1].name"),
                ("BL0102", "spec.ports[2].number"),
                ("BL0115", "spec.ports[2].protocol"),
            ],
        ),
        (se("addresses: [10.0.0.1, 10.1.0.0/16, 10.0.0.0/99]"), &[("BL0110", "spec.addresses[2]")]),
        (se("resolution: STATIC"), &[("BL0101", "spec.endpoints")]),
        (
            se("resolution: STATIC\nworkloadSelector: {labels: {app: a}}\nendpoints: [{address: 10.0.0.1}]"),
            &[("BL0111", "spec.endpoints")],
        ),
        (se("resolution: NONE\nendpoints: [{address: 10.0.0.1}]"), &[("BL0111", "spec.resolution")]),
        (format!("hosts: ['*.example.com']\n{PORT}\nresolution: DNS"), &[("BL0114", "spec.hosts[0]")]),
        (
            se("resolution: STATIC\nendpoints: [{address: db.example.com, ports: {grpc: 9090}}]"),
            &[("BL0114", "spec.endpoints[0].address"), ("BL0115", "spec.endpoints[0].ports.grpc")],
        ),
        (se("resolution: DNS\nendpoints: [{address: db.example.com, ports: {http: 0}}]"), &[("BL0102", "spec.endpoints[0].ports.http")]),
    ];
    for (spec, expected) in cases {
        check_table("ServiceEntry", &[(spec.as_str(), expected)]);
    }
}

#[test]
fn workload_entries() {
    check_table(
        "WorkloadEntry",
        &[
            (
                "address: 10.0.0.7\nlabels: {app: reviews}\nports: {http: 9080}",
                &[],
            ),
            ("address: vm1.example.com", &[]),
            ("address: unix:///var/run/app.sock", &[]),
            ("labels: {app: reviews}", &[("BL0101", "spec.address")]),
            (
                "address: unix://relative.sock",
                &[("BL0114", "spec.address")],
            ),
            ("address: 'not an address'", &[("BL0114", "spec.address")]),
            (
                "address: 10.0.0.7\nports: {http: 70000}",
                &[("BL0102", "spec.ports.http")],
            ),
            // Reached through its network's gateway: accepted, but bowline has one network.
            ("network: net-2", &[("BL0117", "spec.network")]),
            ("address: 'unix:///run/'", &[("BL0114", "spec.address")]),
            (
                "address: 'unix://@abstract'\nports: {http: 80}",
                &[("BL0111", "spec.ports")],
            ),
            (
                "address: 10.0.0.7\nports: {'@': 80}\nlabels: {'-x': y}",
                &[("BL0115", "spec.ports.@"), ("BL0119", "spec.labels.-x")],
            ),
        ],
    );
}

#[test]
fn istio_gateways() {
    let server = "servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']";
    check_table(
        "Gateway",
        &[
            (server, &[]),
            ("selector: {istio: ingressgateway}", &[("BL0101", "spec.servers")]),
            ("servers:\n- port: {number: 80, name: http, protocol: HTTP}", &[("BL0101", "spec.servers[0].hosts")]),
            (
                "servers:\n- port: {number: 0, protocol: FTP}\n  hosts: [bad/ns/host]",
                &[
                    ("BL0101", "spec.servers[0].port.number"),
                    ("BL0115", "spec.servers[0].port.protocol"),
                    ("BL0101", "spec.servers[0].port.name"),
                    ("BL0114", "spec.servers[0].hosts[0]"),
                ],
            ),
            ("servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']", &[("BL0101", "spec.servers[0].tls")]),
            (
                "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, credentialName: bookinfo-cert}",
                &[],
            ),
            (
                "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: MUTUAL}",
                &[
                    ("BL0101", "spec.servers[0].tls.serverCertificate"),
                    ("BL0101", "spec.servers[0].tls.privateKey"),
                    ("BL0101", "spec.servers[0].tls.caCertificates"),
                ],
            ),
            ("servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n  tls: {httpsRedirect: true}", &[]),
            (
                "servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n- port: {number: 81, name: http, protocol: HTTP}\n  hosts: ['*']",
                &[("BL0112", "spec.servers[1].port.name")],
            ),
        ],
    );
}

/// Sidecars are checked (what bowline does not apply of them is the not-applied ledger's).
#[test]
fn sidecars() {
    check_table(
        "Sidecar",
        &[
            ("egress: [{hosts: ['./*', 'istio-system/*']}]", &[]),
            (
                "workloadSelector: {labels: {app: a}}",
                &[("BL0101", "spec")],
            ),
            (
                "egress: [{hosts: [reviews]}]",
                &[("BL0114", "spec.egress[0].hosts[0]")],
            ),
            (
                "ingress: [{defaultEndpoint: '127.0.0.1:8080'}]",
                &[("BL0101", "spec.ingress[0].port")],
            ),
            (
                "outboundTrafficPolicy: {mode: DENY}",
                &[("BL0115", "spec.outboundTrafficPolicy.mode")],
            ),
        ],
    );
}
