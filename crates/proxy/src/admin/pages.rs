//! Admin pages as data: `/listeners` in Envoy's JSON shape, `/clusters` in Envoy's text
//! shape (`name::addr::field::value`), and `/config_dump` in Envoy's shape.

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::state::State;

pub fn listeners_json(state: &State) -> Value {
    let statuses: Vec<Value> = state
        .bound_listeners()
        .into_iter()
        .map(|(name, addr)| {
            json!({
                "name": name,
                "local_address": {
                    "socket_address": { "address": addr.ip().to_string(), "port_value": addr.port() }
                },
            })
        })
        .collect();
    json!({ "listener_statuses": statuses })
}

pub fn listeners_text(state: &State) -> String {
    let mut out = String::new();
    for (name, addr) in state.bound_listeners() {
        let _ = writeln!(out, "{name}::{addr}");
    }
    out
}

pub fn clusters_text(state: &State) -> String {
    let config = state.config.load();
    let mut names: Vec<&String> = config.clusters.keys().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let cluster = &config.clusters[name];
        let t = &cluster.thresholds;
        let _ = writeln!(
            out,
            "{name}::default_priority::max_connections::{}",
            t.max_connections
        );
        let _ = writeln!(
            out,
            "{name}::default_priority::max_pending_requests::{}",
            t.max_pending_requests
        );
        let _ = writeln!(
            out,
            "{name}::default_priority::max_requests::{}",
            t.max_requests
        );
        let _ = writeln!(
            out,
            "{name}::default_priority::max_retries::{}",
            t.max_retries
        );
        for e in &cluster.endpoints.load().endpoints {
            let addr = e.addr;
            let health = match (e.healthy, e.outlier.is_ejected()) {
                (true, false) => "healthy",
                (false, _) => "/failed_eds_health",
                (true, true) => "/failed_outlier_check",
            };
            let _ = writeln!(
                out,
                "{name}::{addr}::rq_active::{}",
                e.active.load(Ordering::Relaxed)
            );
            let _ = writeln!(out, "{name}::{addr}::weight::{}", e.weight);
            let _ = writeln!(out, "{name}::{addr}::health_flags::{health}");
        }
    }
    out
}

/// `/config_dump` in Envoy's shape — `{"configs": [ListenersConfigDump, ClustersConfigDump,
/// RoutesConfigDump]}` with each resource under `active_state.listener`, `cluster` and
/// `route_config` — holding bowline-proxy's model of the resource (the xDS it was converted
/// from, minus defaults, in the model's field names), the version applied, and for clusters
/// the endpoints in use.
/// Envoy's `/certs` for the workload identity: the CA and the certificate in use, with the
/// SPIFFE id, validity and seconds until expiry (what an operator checks after a rotation).
/// `{"certificates": []}` without a workload identity.
pub fn certs(state: &State) -> Value {
    let Some(material) = state.identity().and_then(|i| i.current()) else {
        return serde_json::json!({ "certificates": [] });
    };
    let cert = &material.cert;
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let left = cert
        .not_after
        .duration_since(std::time::SystemTime::now())
        .map_or(0, |d| d.as_secs());
    serde_json::json!({ "certificates": [{
        "secret": "default",
        "cert_chain": [{
            "subject_alt_names": [{ "uri": cert.identity }],
            "valid_from": unix(cert.not_before),
            "expiration_time": unix(cert.not_after),
            "seconds_until_expiration": left,
            "days_until_expiration": left / 86_400,
        }],
        "ca_cert": [{ "secret": "ROOTCA", "pem_bytes": cert.root_pem.len() }],
    }]})
}

pub fn config_dump(state: &State) -> Value {
    let config = state.config.load();
    let versions = state.versions();
    let version = |type_url: &str| versions.get(type_url).cloned().unwrap_or_default();
    let (lds, cds, rds) = (
        version("type.googleapis.com/envoy.config.listener.v3.Listener"),
        version("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
        version("type.googleapis.com/envoy.config.route.v3.RouteConfiguration"),
    );
    let mut listeners: Vec<Value> = config
        .listeners
        .values()
        .map(|l| {
            json!({
                "name": l.model.name,
                "active_state": { "version_info": lds, "listener": l.model },
            })
        })
        .collect();
    listeners.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut routes: Vec<Value> = config
        .routes
        .values()
        .map(|r| json!({ "version_info": rds, "route_config": r }))
        .collect();
    routes.sort_by(|a, b| {
        a["route_config"]["name"]
            .as_str()
            .cmp(&b["route_config"]["name"].as_str())
    });
    let mut clusters: Vec<Value> = config
        .clusters
        .values()
        .map(|c| {
            let endpoints: Vec<String> = c
                .endpoints
                .load()
                .endpoints
                .iter()
                .map(|e| e.addr.to_string())
                .collect();
            json!({ "version_info": cds, "cluster": c.source, "endpoints": endpoints })
        })
        .collect();
    clusters.sort_by(|a, b| {
        a["cluster"]["name"]
            .as_str()
            .cmp(&b["cluster"]["name"].as_str())
    });
    json!({
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "version_info": lds,
                "dynamic_listeners": listeners,
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                "version_info": cds,
                "dynamic_active_clusters": clusters,
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "dynamic_route_configs": routes,
            },
        ],
        "versions": versions,
    })
}
