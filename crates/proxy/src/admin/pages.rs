//! Admin pages as data: `/listeners` in Envoy's JSON shape, `/clusters` in Envoy's text
//! shape (`name::addr::field::value`), and a `/config_dump` of the model.

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

/// The model as our proxy holds it (Rust debug text per resource: the model has no wire
/// form of its own), plus the xDS versions applied.
pub fn config_dump(state: &State) -> Value {
    let config = state.config.load();
    let listeners: Vec<Value> = config
        .listeners
        .values()
        .map(|l| json!({ "name": l.model.name, "address": l.model.address.to_string(), "model": format!("{:?}", l.model) }))
        .collect();
    let mut routes: Vec<Value> = config
        .routes
        .values()
        .map(|r| json!({ "name": r.name, "model": format!("{r:?}") }))
        .collect();
    routes.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
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
            json!({ "name": c.name, "endpoints": endpoints, "model": format!("{:?}", c.source) })
        })
        .collect();
    clusters.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json!({
        "versions": state.versions(),
        "listeners": listeners,
        "routes": routes,
        "clusters": clusters,
    })
}
