//! Node ids, and the built bootstraps read back by bowline-proxy's reader as the same protos
//! (so the JSON printed or written for Envoy is exactly what was built).

use super::*;
use bowline_bootstrap::build::{
    add_sds_cluster, node_mut, set_metadata, sidecar, ControlPlaneAddr,
};

#[test]
fn node_id_table() {
    let ok = [
        "sidecar~10.0.0.7~reviews-v1.default~default.svc.cluster.local",
        "sidecar~::1~a.b~b.svc.example.org",
    ];
    for id in ok {
        assert!(parse_node_id(id).is_ok(), "{id}");
    }
    let parsed = parse_node_id(ok[0]).unwrap();
    assert_eq!(parsed.workload, "reviews-v1");
    assert_eq!(parsed.namespace, "default");
    let bad = [
        ("reviews", "4 parts"),
        ("router~10.0.0.7~a.b~b.svc.cluster.local", "sidecar"),
        ("sidecar~10.0.0~a.b~b.svc.cluster.local", "IP address"),
        (
            "sidecar~10.0.0.7~reviews~default.svc.cluster.local",
            "<workload>.<namespace>",
        ),
        (
            "sidecar~10.0.0.7~a.b~c.svc.cluster.local",
            "b.svc.cluster.local",
        ),
        ("sidecar~10.0.0.7~a.b~b.svc.", "b.svc.cluster.local"),
    ];
    for (id, needle) in bad {
        let err = parse_node_id(id).unwrap_err();
        assert!(err.contains(needle), "{id}: {err}");
    }
}

const NODE_ID: &str = "sidecar~10.0.0.7~reviews-v1.default~default.svc.cluster.local";

fn args(delta: bool, root: Option<&str>, root_pem: Option<&str>) -> EnvoyArgs {
    EnvoyArgs {
        node_id: NODE_ID.into(),
        xds_addr: "[::1]:15012".parse().unwrap(),
        admin_addr: "0.0.0.0:15000".parse().unwrap(),
        outbound_port: 15001,
        inbound_port: 15006,
        delta,
        cluster: Some("reviews".into()),
        xds_root: root.map(Into::into),
        xds_root_pem: root_pem.map(Into::into),
    }
}

fn read_back(bootstrap: &Bootstrap) -> Bootstrap {
    let text = bowline_bootstrap::to_json_string(bootstrap).expect("the writer writes it");
    bowline_bootstrap::parse_bootstrap(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

#[test]
fn printed_bootstraps_read_back_as_built() {
    let node = parse_node_id(NODE_ID).unwrap();
    for args in [
        args(false, None, None),
        args(true, None, None),
        args(false, Some("/etc/bowline/root-cert.pem"), None),
        args(true, None, Some("-----BEGIN CERTIFICATE-----\n")),
    ] {
        let built = envoy_bootstrap(&args, &node);
        assert_eq!(read_back(&built), built, "{args:?}");
    }
}

#[test]
fn bowline_up_bootstraps_read_back_as_built() {
    let xds = ControlPlaneAddr {
        addr: "127.0.0.1:15012".parse().unwrap(),
        root_pem: Some("-----BEGIN CERTIFICATE-----\n".into()),
    };
    let mut built = sidecar(
        NODE_ID,
        &xds,
        "10.0.0.7:15000".parse().unwrap(),
        15001,
        15006,
        bowline_identity::control::CONTROL_PLANE_NAME,
    )
    .unwrap();
    node_mut(&mut built).id = "router~10.0.0.7~gw.default~default.svc.cluster.local".into();
    set_metadata(
        &mut built,
        "INTERCEPTION_MODE",
        serde_json::json!("REDIRECT"),
    );
    set_metadata(
        &mut built,
        "LABELS",
        serde_json::json!({"istio": "ingressgateway"}),
    );
    add_sds_cluster(&mut built, "@bowline-sds-reviews");
    assert_eq!(read_back(&built), built);

    let json = bowline_bootstrap::to_json(&built).unwrap();
    let node = &json["node"];
    assert_eq!(
        node["id"],
        "router~10.0.0.7~gw.default~default.svc.cluster.local"
    );
    assert_eq!(node["metadata"]["INTERCEPTION_MODE"], "REDIRECT");
    assert_eq!(node["metadata"]["LABELS"]["istio"], "ingressgateway");
    assert_eq!(
        json["dynamic_resources"]["ads_config"]["api_type"],
        "DELTA_GRPC"
    );
    let tls = &json["static_resources"]["clusters"][0]["transport_socket"]["typed_config"];
    let validation = &tls["common_tls_context"]["validation_context"];
    assert_eq!(
        validation["trusted_ca"]["inline_string"],
        "-----BEGIN CERTIFICATE-----\n"
    );
}

/// The `sds-grpc` cluster as Istio's bootstrap has it (and as bowline wrote it by hand before
/// it was typed): Envoy only reads it, bowline-proxy refuses its Unix socket.
#[test]
fn sds_cluster_is_istios() {
    let mut bootstrap = Bootstrap::default();
    add_sds_cluster(&mut bootstrap, "@bowline-sds-reviews");
    let json = bowline_bootstrap::to_json(&bootstrap).unwrap();
    let istio = serde_json::json!({
        "name": "sds-grpc",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "sds-grpc",
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "pipe": { "path": "@bowline-sds-reviews" } } } }] }],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} },
            },
        },
    });
    assert_eq!(json["static_resources"]["clusters"][0], istio);
}
