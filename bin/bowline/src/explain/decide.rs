//! The walk itself: source route → cluster(s) → endpoints → each destination's inbound
//! chain → its JWT and RBAC filters, with a line of text per step.

use anyhow::Context;
use bowline_mesh::plan::{Instance, Plan};
use bowline_model::jwt::{self, Decision, Jwks, JwksSource, JwtError};
use bowline_model::rbac::{Rbac, RequestAttrs};
use bowline_model::route::RouterDecision;
use bowline_model::{ClusterSpecifier, HttpFilter, NetworkFilter, RequestHead};
use bowline_registry::Snapshot;
use bowline_translate::{generate, Generated, ProxyView};
use bowline_xds::pb::envoy::config::core::v3::Node;
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The request as the source application sends it.
pub struct Request {
    pub method: String,
    pub authority: String,
    pub path: String,
    pub headers: http::HeaderMap,
}

pub struct Report {
    pub text: String,
    pub allowed: bool,
}

/// ALPN a sidecar offers when it originates mesh mTLS (what the destination's chain sees).
const MESH_ALPN: [&str; 2] = ["istio-peer-exchange", "istio"];

pub fn explain(
    snapshot: &Snapshot,
    plan: &Plan,
    source: &Instance,
    req: &Request,
) -> anyhow::Result<Report> {
    let mut out = String::new();
    let source_id = spiffe(&source.namespace, &source.service_account);
    let _ = writeln!(
        out,
        "request: {} http://{}{} from {} ({source_id})",
        req.method, req.authority, req.path, source.name
    );
    let generated = generate(
        &bowline_translate::PushContext::new(std::sync::Arc::new(snapshot.clone())),
        &view(snapshot, source)?,
    );
    let port = req
        .authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(80);
    let head = RequestHead {
        method: &req.method,
        authority: &req.authority,
        path: &req.path,
        scheme: "http",
        headers: &req.headers,
    };

    // 1. The source sidecar's route.
    let Some(pb_routes) = generated.routes.iter().find(|r| r.name == port.to_string()) else {
        let _ = writeln!(
            out,
            "route: the source sidecar has no HTTP routes for port {port}"
        );
        return Ok(done(out, Err("not routed".into())));
    };
    let table = bowline_model::RouteConfig::try_from(pb_routes)
        .map_err(|e| anyhow::anyhow!("route {}: {e}", pb_routes.name))?;
    // The proxy's own router decision (the weighted pick aside: every cluster is shown).
    let selection = table.select(&head);
    let decision = bowline_model::route::decide(selection, &head, false, 0);
    let (Some((vhost, _)), Some(route)) = (selection, decision.route()) else {
        let _ = writeln!(
            out,
            "route: none matches in route config {:?}: 404",
            table.name
        );
        return Ok(done(out, Err("no route (404)".into())));
    };
    let _ = writeln!(
        out,
        "route: virtual host {:?}, route {:?}",
        vhost.name,
        if route.name.is_empty() {
            "(unnamed)"
        } else {
            &route.name
        }
    );
    let clusters: Vec<(String, Option<u32>)> = match &decision {
        RouterDecision::Forward(up) => {
            if let Some(path) = &up.path {
                let _ = writeln!(out, "  path rewritten to {path}");
            }
            if let Some(host) = up.host {
                let _ = writeln!(out, "  Host rewritten to {host}");
            }
            match &up.forward.clusters {
                ClusterSpecifier::Cluster(name) => vec![(name.clone(), None)],
                ClusterSpecifier::Weighted(list) => list
                    .iter()
                    .map(|w| (w.name.clone(), Some(w.weight)))
                    .collect(),
            }
        }
        RouterDecision::Redirect {
            status, location, ..
        } => {
            let _ = writeln!(
                out,
                "  answered by the source sidecar: a {status} redirect to {location}"
            );
            return Ok(done(out, Ok(())));
        }
        RouterDecision::DirectResponse { status, .. } => {
            let _ = writeln!(out, "  answered by the source sidecar: status {status}");
            return Ok(done(out, Ok(())));
        }
        RouterDecision::RequireTls { location, .. } => {
            let _ = writeln!(
                out,
                "  answered by the source sidecar: a 301 to {location} (the virtual host requires TLS)"
            );
            return Ok(done(out, Ok(())));
        }
        RouterDecision::NoRoute => unreachable!("a decision without a route returned above"),
    };
    if route.fault.is_some() {
        let _ = writeln!(
            out,
            "  the route injects faults (delay or abort) on some requests"
        );
    }

    // 2. Each cluster: transport, endpoints, and what each destination decides.
    let mut verdict: Result<(), String> = Ok(());
    for (name, weight) in &clusters {
        let share = weight.map(|w| format!(" (weight {w})")).unwrap_or_default();
        let _ = writeln!(out, "cluster: {name}{share}");
        let outcome = cluster(&mut out, snapshot, plan, source, &generated, name, &head)?;
        if verdict.is_ok() {
            verdict = outcome;
        }
    }
    Ok(done(out, verdict))
}

fn done(mut out: String, verdict: Result<(), String>) -> Report {
    let allowed = verdict.is_ok();
    let _ = match verdict {
        Ok(()) => writeln!(out, "ALLOWED"),
        Err(why) => writeln!(out, "DENIED by {why}"),
    };
    Report { text: out, allowed }
}

fn cluster(
    out: &mut String,
    snapshot: &Snapshot,
    plan: &Plan,
    source: &Instance,
    generated: &Generated,
    name: &str,
    head: &RequestHead<'_>,
) -> anyhow::Result<Result<(), String>> {
    let pb = generated
        .clusters
        .iter()
        .find(|c| c.name == name)
        .with_context(|| format!("the route names cluster {name}, which the source lacks"))?;
    let model =
        bowline_model::Cluster::try_from(pb).map_err(|e| anyhow::anyhow!("cluster {name}: {e}"))?;
    let mtls = model.tls.is_some();
    match &model.tls {
        Some(tls) => {
            let ids: Vec<String> = tls
                .subject_alt_names
                .iter()
                .map(|m| match &m.matcher.pattern {
                    bowline_model::StringPattern::Exact(id) => id.clone(),
                    other => format!("{other:?}"),
                })
                .collect();
            let _ = writeln!(
                out,
                "  transport: mutual TLS, server must be one of [{}]",
                ids.join(", ")
            );
        }
        None => {
            let _ = writeln!(out, "  transport: plaintext");
        }
    }
    let endpoints: Vec<SocketAddr> = generated
        .endpoints
        .iter()
        .filter(|e| e.cluster_name == name)
        .filter_map(|e| bowline_model::ClusterLoadAssignment::try_from(e).ok())
        .flat_map(|cla| cla.endpoints.into_iter().flat_map(|l| l.lb_endpoints))
        .map(|e| e.address)
        .collect();
    if endpoints.is_empty() {
        let _ = writeln!(out, "  no endpoints: the sidecar answers 503");
        return Ok(Err("no endpoints (503)".into()));
    }
    let mut verdict = Ok(());
    let mut seen = Vec::new();
    for addr in endpoints {
        let Some(dest) = plan.instances.iter().find(|i| i.ip == addr.ip()) else {
            let _ = writeln!(out, "  endpoint {addr}: outside the mesh");
            continue;
        };
        if seen.contains(&dest.workload) {
            continue;
        }
        seen.push(dest.workload.clone());
        let _ = writeln!(
            out,
            "  destination: {} at {addr} ({})",
            dest.workload,
            spiffe(&dest.namespace, &dest.service_account)
        );
        let outcome = destination(out, snapshot, source, dest, addr, mtls, head)?;
        if verdict.is_ok() {
            verdict = outcome;
        }
    }
    Ok(verdict)
}

/// The destination sidecar's inbound decision for this request.
fn destination(
    out: &mut String,
    snapshot: &Snapshot,
    source: &Instance,
    dest: &Instance,
    addr: SocketAddr,
    mtls: bool,
    head: &RequestHead<'_>,
) -> anyhow::Result<Result<(), String>> {
    let generated = generate(
        &bowline_translate::PushContext::new(std::sync::Arc::new(snapshot.clone())),
        &view(snapshot, dest)?,
    );
    let Some(pb) = generated
        .listeners
        .iter()
        .find(|l| l.name == "virtualInbound")
    else {
        let _ = writeln!(
            out,
            "    no inbound listener: nothing enforced at the destination"
        );
        return Ok(Ok(()));
    };
    let listener = bowline_model::Listener::try_from(pb)
        .map_err(|e| anyhow::anyhow!("the destination's inbound listener: {e}"))?;
    let transport = if mtls { "tls" } else { "raw_buffer" };
    let alpn: &[&str] = if mtls { &MESH_ALPN } else { &[] };
    let conn = bowline_model::ConnectionInfo {
        destination: addr,
        source: SocketAddr::new(source.ip.into(), 40000),
        server_name: None,
        transport_protocol: transport,
        application_protocols: alpn,
    };
    let Some(chain) = listener.select_chain(&conn) else {
        let _ = writeln!(
            out,
            "    connection refused: no inbound chain takes {} on port {} (PeerAuthentication)",
            if mtls { "mutual TLS" } else { "plaintext" },
            addr.port()
        );
        return Ok(Err(format!("peer authentication at {}", dest.workload)));
    };
    let _ = writeln!(
        out,
        "    accepted by inbound chain {:?} ({})",
        chain.name,
        if chain.tls.is_some() {
            "mutual TLS"
        } else {
            "plaintext"
        }
    );
    let principal = mtls.then(|| spiffe(&source.namespace, &source.service_account));
    let peer = (source.ip.into(), principal.as_deref());
    if !chain.network_rbac.is_empty() {
        let none = serde_json::Value::Null;
        let attrs = attrs(peer, addr, head, &none);
        if let Err(rule) = rbac(out, &chain.network_rbac, &attrs, "network RBAC") {
            return Ok(Err(rule));
        }
    }
    let NetworkFilter::Http(hcm) = &chain.network else {
        return Ok(Ok(()));
    };
    let mut payloads = serde_json::Map::new();
    for filter in &hcm.http_filters {
        match filter {
            HttpFilter::JwtAuthn(f) => {
                let sets: std::collections::BTreeMap<&str, Result<Jwks, JwtError>> = f
                    .providers
                    .iter()
                    .map(|(name, p)| (name.as_str(), keys(&p.jwks)))
                    .collect();
                let lookup = |name: &str| match sets.get(name) {
                    Some(Ok(jwks)) => Ok(jwks),
                    Some(Err(e)) => Err(*e),
                    None => Err(JwtError::JwksFetchFailed),
                };
                let result = jwt::authenticate(f, head, lookup, now());
                match result.decision {
                    Decision::Reject { status, error } => {
                        let _ = writeln!(out, "    JWT: {status} {error}");
                        return Ok(Err(format!("JWT authentication ({error})")));
                    }
                    Decision::Allow => {
                        for (name, r) in result.providers {
                            if let jwt::ProviderOutcome::Verified(payload) = r.outcome {
                                let key = &f.providers[&name].payload_in_metadata;
                                let _ = writeln!(out, "    JWT: verified by provider {name}");
                                payloads.insert(key.clone(), payload);
                            }
                        }
                        if payloads.is_empty() {
                            let _ = writeln!(out, "    JWT: no token; allowed to continue");
                        }
                    }
                }
            }
            HttpFilter::Rbac(_) => {}
            _ => {}
        }
    }
    let metadata = serde_json::json!({ "envoy.filters.http.jwt_authn": payloads });
    let filters: Vec<Rbac> = hcm
        .http_filters
        .iter()
        .filter_map(|f| match f {
            HttpFilter::Rbac(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    if filters.is_empty() {
        let _ = writeln!(out, "    authorization: no AuthorizationPolicy applies");
        return Ok(Ok(()));
    }
    Ok(rbac(
        out,
        &filters,
        &attrs(peer, addr, head, &metadata),
        "authorization",
    ))
}

/// What the RBAC engines see of this request at `addr` from `peer` (address, SPIFFE id when
/// the connection is mutual TLS).
fn attrs<'a>(
    peer: (std::net::IpAddr, Option<&'a str>),
    addr: SocketAddr,
    head: &'a RequestHead<'a>,
    metadata: &'a serde_json::Value,
) -> RequestAttrs<'a> {
    RequestAttrs {
        source_ip: peer.0,
        direct_remote_ip: peer.0,
        remote_ip: peer.0,
        destination_ip: addr.ip(),
        destination_port: addr.port(),
        peer_principal: peer.1,
        method: head.method,
        path: head.path,
        authority: head.authority,
        headers: head.headers,
        dynamic_metadata: metadata,
    }
}

/// The RBAC filters in order; the first denial decides.
fn rbac(
    out: &mut String,
    filters: &[Rbac],
    attrs: &RequestAttrs<'_>,
    what: &str,
) -> Result<(), String> {
    for filter in filters {
        let d = filter.evaluate(attrs);
        let Some(rules) = &filter.rules else { continue };
        let action = format!("{:?}", rules.action).to_uppercase();
        if let Some(shadow) = &d.shadow {
            if !shadow.allowed {
                let _ = writeln!(
                    out,
                    "    {what} (dry run): would be denied by {}",
                    shadow.policy.unwrap_or("no ALLOW rule")
                );
            }
        }
        match (d.enforced.allowed, d.enforced.policy) {
            (true, Some(policy)) => {
                let _ = writeln!(out, "    {what}: {action} rule {policy} matches: allowed");
            }
            (true, None) => {
                let _ = writeln!(out, "    {what}: no {action} rule matches: allowed");
            }
            (false, Some(policy)) => {
                let _ = writeln!(out, "    {what}: denied by {action} rule {policy} (403)");
                return Err(policy.to_string());
            }
            (false, None) => {
                let in_force: Vec<&str> = rules.policies.keys().map(String::as_str).collect();
                let _ = writeln!(
                    out,
                    "    {what}: no ALLOW rule matches (in force: {}): denied (403)",
                    in_force.join(", ")
                );
                return Err(format!(
                    "no ALLOW rule matching (in force: {})",
                    in_force.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// A provider's keys offline: inline or from a file; a remote set is not fetched (a token
/// for such a provider shows as "Jwks remote fetch is failed").
fn keys(source: &JwksSource) -> Result<Jwks, JwtError> {
    let text = match source {
        JwksSource::Inline(text) => text.clone(),
        JwksSource::File(path) => {
            std::fs::read_to_string(path).map_err(|_| JwtError::JwksNoValidKeys)?
        }
        JwksSource::Remote(_) => return Err(JwtError::JwksFetchFailed),
    };
    Jwks::parse(&text).map_err(|_| JwtError::JwksNoValidKeys)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn spiffe(namespace: &str, service_account: &str) -> String {
    format!("spiffe://cluster.local/ns/{namespace}/sa/{service_account}")
}

/// The sidecar of `instance` as the control plane sees it under transparent capture.
fn view(snapshot: &Snapshot, instance: &Instance) -> anyhow::Result<ProxyView> {
    let string = |v: &str| Value {
        kind: Some(Kind::StringValue(v.into())),
    };
    let node = Node {
        id: instance.node_id(),
        metadata: Some(Struct {
            fields: [
                ("INTERCEPTION_MODE".to_string(), string("REDIRECT")),
                (
                    "SERVICE_ACCOUNT".to_string(),
                    string(&instance.service_account),
                ),
            ]
            .into_iter()
            .collect(),
        }),
        ..Default::default()
    };
    ProxyView::from_node(&node, snapshot).map_err(|e| anyhow::anyhow!("{}: {e}", instance.name))
}
