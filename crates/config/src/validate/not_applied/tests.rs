use super::*;
use crate::diag::Severity;
use crate::resource::{ObjectMeta, Origin};
use serde_json::json;

fn resource(spec: Spec) -> Resource {
    Resource {
        api_version: "networking.istio.io/v1".into(),
        meta: ObjectMeta {
            name: "t".into(),
            namespace: "default".into(),
            ..Default::default()
        },
        spec,
        origin: Origin::default(),
    }
}

fn warned(spec: Spec) -> Vec<String> {
    let found = not_applied(&resource(spec));
    assert!(found
        .iter()
        .all(|f| f.severity == Severity::Warning && f.code == code::NOT_APPLIED_FIELD));
    found.into_iter().map(|f| f.field).collect()
}

fn de<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

#[test]
fn patterns_match_indices_and_map_keys() {
    let cases = [
        ("spec.http[*].delegate", "spec.http[3].delegate", true),
        ("spec.http[*].delegate", "spec.http.delegate", false),
        (
            "spec.portLevelMtls.*.mode",
            "spec.portLevelMtls.8080.mode",
            true,
        ),
        (
            "spec.portLevelMtls.*.mode",
            "spec.portLevelMtls[0].mode",
            false,
        ),
        ("spec", "spec", true),
        ("spec.tls", "spec.tls[0]", false),
    ];
    for (pattern, path, want) in cases {
        assert_eq!(path_matches(pattern, path), want, "{pattern} ~ {path}");
    }
}

#[test]
fn each_unapplied_field_is_named_once_with_its_indices() {
    let vs = de(json!({
        "hosts": ["reviews"],
        "http": [
            {"route": [{"destination": {"host": "reviews"}}]},
            {"redirect": {"uri": "/b", "prefixRewrite": "/c"},
             "match": [{"uri": {"prefix": "/a"}, "name": "m"}]}
        ],
        "tls": [{"match": [{"sniHosts": ["a.example.com"]}],
                 "route": [{"destination": {"host": "a.example.com"}}]}],
        "tcp": [{"match": [{"sourceSubnet": "10.0.0.0/8"}],
                 "route": [{"destination": {"host": "a.example.com"}}]}]
    }));
    assert_eq!(
        warned(Spec::VirtualService(vs)),
        [
            "spec.http[1].match[0].name",
            "spec.http[1].redirect.prefixRewrite",
            "spec.tcp[0].match[0].sourceSubnet"
        ]
    );
}

#[test]
fn values_decide_for_modes_and_protocols() {
    let server = |protocol: &str, tls: Value| json!({"port": {"number": 443, "name": "p", "protocol": protocol}, "hosts": ["*"], "tls": tls});
    let gw = de(json!({"servers": [
        server("HTTPS", json!({"mode": "SIMPLE", "credentialName": "c"})),
        server("HTTPS", json!({"mode": "MUTUAL", "credentialName": "c"})),
        server("TCP", Value::Null),
        server("TLS", json!({"mode": "AUTO_PASSTHROUGH"})),
        server("http", json!({"httpsRedirect": true})),
    ]}));
    assert_eq!(warned(Spec::Gateway(gw)), ["spec.servers[3].tls.mode"]);
    let found = not_applied(&resource(Spec::Gateway(de(json!({"servers": [server(
        "TLS",
        json!({"mode": "AUTO_PASSTHROUGH"})
    )]})))));
    assert!(
        found[0].message.starts_with(
            "`spec.servers[0].tls.mode: AUTO_PASSTHROUGH` is accepted but not applied: AUTO_PASSTHROUGH"
        ),
        "{}",
        found[0].message
    );
}

#[test]
fn sidecar_scope_applies_and_unset_values() {
    // Egress hosts, the outbound mode and an egress proxy apply.
    let sidecar = de(json!({
        "egress": [{"hosts": ["./*"], "port": {"number": 9080, "name": "http"}}],
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}
    }));
    assert_eq!(warned(Spec::Sidecar(sidecar)), Vec::<String>::new());
    let sidecar = de(json!({
        "outboundTrafficPolicy": {"mode": "ALLOW_ANY",
            "egressProxy": {"host": "egress.example.com", "port": {"number": 443}}}
    }));
    assert_eq!(warned(Spec::Sidecar(sidecar)), Vec::<String>::new());
    // An explicit `false` or empty list sets nothing.
    let dr = de(json!({"host": "r", "trafficPolicy": {
        "tls": {"mode": "SIMPLE", "insecureSkipVerify": false},
        "loadBalancer": {"localityLbSetting": {"enabled": true, "failoverPriority": ["topology.kubernetes.io/zone"]}},
        "retryBudget": {"percent": 10},
        "portLevelSettings": [{"port": {"number": 80}, "tls": {"credentialName": "x"}}]
    }}));
    assert_eq!(
        warned(Spec::DestinationRule(dr)),
        ["spec.trafficPolicy.portLevelSettings[0].tls.credentialName"],
        "failoverPriority is applied"
    );
    // A budget over recent requests rather than those in flight is not served.
    let dr = de(json!({"host": "r", "trafficPolicy": {
        "retryBudget": {"minRetryConcurrency": 1, "budgetInterval": "1s"}
    }}));
    assert_eq!(
        warned(Spec::DestinationRule(dr)),
        ["spec.trafficPolicy.retryBudget.budgetInterval"]
    );
}

#[test]
fn durations_serialise_in_istio_syntax() {
    let spec = spec_json(&Spec::VirtualService(de(json!({
        "http": [{"timeout": "1.5s", "retries": {"attempts": 1, "perTryTimeout": "2s", "backoff": "10us"}}]
    }))));
    let http = &spec["http"][0];
    assert_eq!(http["timeout"], "1500ms");
    assert_eq!(http["retries"]["perTryTimeout"], "2s");
    assert_eq!(http["retries"]["backoff"], "10us");
}
