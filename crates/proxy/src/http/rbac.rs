//! The `envoy.filters.http.rbac` filter at request time: the model decides (pure), this file
//! counts, logs and answers. A denial answers Envoy's 403 `RBAC: access denied`, counts
//! against the policy rule that decided (`rbac_policy.<rule>.denied`), and logs one access
//! line naming that rule, the client's identity and the request — so "why was I denied?"
//! has an answer in both places.

use std::net::SocketAddr;

use bowline_model::rbac::{Rbac, RequestAttrs};
use http::{HeaderMap, Response, StatusCode};

use super::body::ResponseBody;
use super::conn::Conn;

/// Envoy's body for a denied request.
const DENIED: &str = "RBAC: access denied";

/// What the request looks like to the RBAC engines.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub authority: &'a str,
    pub headers: &'a HeaderMap,
    pub metadata: &'a serde_json::Value,
}

/// Runs every RBAC filter of the connection manager in order; the first denial is the
/// answer (`Some`), `None` lets the request on.
pub fn check(conn: &Conn, filters: &[Rbac], req: &Request<'_>) -> Option<Response<ResponseBody>> {
    if filters.is_empty() {
        return None;
    }
    let peer: SocketAddr = conn.peer;
    let attrs = RequestAttrs {
        source_ip: peer.ip(),
        direct_remote_ip: peer.ip(),
        remote_ip: peer.ip(),
        destination_ip: conn.destination.ip(),
        destination_port: conn.destination.port(),
        peer_principal: conn.peer_principal.as_deref(),
        method: req.method,
        path: req.path,
        authority: req.authority,
        headers: req.headers,
        dynamic_metadata: req.metadata,
    };
    let stats = &conn.http.stats;
    let all = &conn.state.stats;
    for filter in filters {
        let decision = filter.evaluate(&attrs);
        if let Some(shadow) = &decision.shadow {
            if shadow.allowed {
                stats.rbac_shadow_allowed.inc();
            } else {
                stats.rbac_shadow_denied.inc();
                if let Some(policy) = shadow.policy {
                    all.rbac_policy(policy).shadow_denied.inc();
                }
            }
        }
        let enforced = decision.enforced;
        if enforced.logged {
            if let Some(policy) = enforced.policy {
                all.rbac_policy(policy).logged.inc();
                log(conn, req, "audit", policy, &[]);
            }
        }
        if enforced.allowed {
            stats.rbac_allowed.inc();
            continue;
        }
        stats.rbac_denied.inc();
        // An ALLOW engine that matched nothing has no rule to blame (Envoy says `none`); the
        // log names the ALLOW rules that were in force instead, so the cause is still there.
        let policy = enforced.policy.unwrap_or("none");
        all.rbac_policy(policy).denied.inc();
        let in_force: Vec<&str> = filter
            .rules
            .as_ref()
            .map(|r| r.policies.keys().map(String::as_str).collect())
            .unwrap_or_default();
        log(conn, req, "denied", policy, &in_force);
        return Some(super::local::reply(StatusCode::FORBIDDEN, DENIED));
    }
    None
}

/// One access-log line per denial (and per audited request) on stdout, where Envoy's access
/// log goes, whatever the log level: the response code details Envoy would put in
/// `%RESPONSE_CODE_DETAILS%`, then who asked what.
fn log(conn: &Conn, req: &Request<'_>, outcome: &str, policy: &str, in_force: &[&str]) {
    let details = match outcome {
        "denied" if policy == "none" => "rbac_access_denied_matched_policy[none]".to_string(),
        "denied" => format!("rbac_access_denied_matched_policy[{policy}]"),
        _ => format!("rbac_access_audited_matched_policy[{policy}]"),
    };
    let allow_rules = if policy == "none" && !in_force.is_empty() {
        format!(" no_allow_rule_matched=[{}]", in_force.join(","))
    } else {
        String::new()
    };
    println!(
        "[access] \"{} {} {}\" {} {} peer={} principal={} policy={}{allow_rules}",
        req.method,
        req.path,
        req.authority,
        if outcome == "denied" { 403 } else { 200 },
        details,
        conn.peer,
        conn.peer_principal.as_deref().unwrap_or("-"),
        policy,
    );
}
