//! security.istio.io checks: PeerAuthentication, AuthorizationPolicy, RequestAuthentication
//! (Istio's `ValidatePeerAuthentication`, `ValidateAuthorizationPolicy`,
//! `ValidateRequestAuthentication` and the CRDs' CEL rules).

use super::fields::{self, Findings};
use crate::common::{PolicyTargetReference, WorkloadSelector};
use crate::diag::{code, Finding};
use crate::istio::security::{
    AuthorizationPolicy, AuthzAction, Condition, PeerAuthentication, RequestAuthentication, Source,
};

pub fn check_peer_authentication(pa: &PeerAuthentication) -> Vec<Finding> {
    let mut out = Findings::default();
    let has_selector = pa
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty());
    if !pa.port_level_mtls.is_empty() && !has_selector {
        out.error(
            code::REQUIRED,
            "spec.portLevelMtls",
            "portLevelMtls needs a `selector` with matchLabels: port-level modes apply only to selected workloads",
        );
    }
    for port in pa.port_level_mtls.keys() {
        out.push(fields::port(
            (*port).into(),
            &format!("spec.portLevelMtls.{port}"),
        ));
    }
    out.0
}

/// At most one way of choosing what a policy applies to.
fn one_target(
    selector: &Option<WorkloadSelector>,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
    out: &mut Findings,
) {
    let ways = [
        selector.is_some(),
        target_ref.is_some(),
        !target_refs.is_empty(),
    ];
    if ways.iter().filter(|w| **w).count() > 1 {
        out.error(
            code::CONFLICT,
            "spec",
            "set only one of `selector`, `targetRef` or `targetRefs`",
        );
    }
}

pub fn check_authorization_policy(ap: &AuthorizationPolicy) -> Vec<Finding> {
    let mut out = Findings::default();
    one_target(&ap.selector, &ap.target_ref, &ap.target_refs, &mut out);
    let custom = ap.action == Some(AuthzAction::Custom);
    match &ap.provider {
        None if custom => out.error(
            code::REQUIRED,
            "spec.provider",
            "action CUSTOM needs `provider.name` (an extension provider of the mesh config)",
        ),
        Some(p) if custom => out.require(
            p.name.is_empty(),
            "spec.provider.name",
            "provider.name is required",
        ),
        Some(_) => out.error(
            code::CONFLICT,
            "spec.provider",
            "`provider` is used only with action CUSTOM",
        ),
        None => {}
    }
    for (i, rule) in ap.rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        for (j, from) in rule.from.iter().enumerate() {
            source(&from.source, &format!("{p}.from[{j}].source"), &mut out);
        }
        for (j, to) in rule.to.iter().enumerate() {
            let q = format!("{p}.to[{j}].operation");
            let op = &to.operation;
            let empty = [
                &op.hosts,
                &op.not_hosts,
                &op.ports,
                &op.not_ports,
                &op.methods,
                &op.not_methods,
                &op.paths,
                &op.not_paths,
            ]
            .iter()
            .all(|l| l.is_empty());
            out.require(empty, &q, "operation must set at least one field");
            for (list, name) in [(&op.ports, "ports"), (&op.not_ports, "notPorts")] {
                for (k, port) in list.iter().enumerate() {
                    let field = format!("{q}.{name}[{k}]");
                    match port.parse::<i64>() {
                        Ok(n) => out.push(fields::port(n, &field)),
                        Err(_) => {
                            out.error(code::PORT, field, format!("port {port:?} is not a number"))
                        }
                    }
                }
            }
        }
        for (j, cond) in rule.when.iter().enumerate() {
            condition(cond, &format!("{p}.when[{j}]"), &mut out);
        }
    }
    out.0
}

fn source(s: &Source, q: &str, out: &mut Findings) {
    let lists = [
        &s.principals,
        &s.not_principals,
        &s.request_principals,
        &s.not_request_principals,
        &s.namespaces,
        &s.not_namespaces,
        &s.service_accounts,
        &s.not_service_accounts,
        &s.ip_blocks,
        &s.not_ip_blocks,
        &s.remote_ip_blocks,
        &s.not_remote_ip_blocks,
        &s.trust_domains,
        &s.not_trust_domains,
    ];
    out.require(
        lists.iter().all(|l| l.is_empty()),
        q,
        "source must set at least one field",
    );
    for (list, name) in [
        (&s.principals, "principals"),
        (&s.not_principals, "notPrincipals"),
    ] {
        for (i, p) in list.iter().enumerate() {
            out.push(principal(p, &format!("{q}.{name}[{i}]")));
        }
    }
    for (list, name) in [
        (&s.request_principals, "requestPrincipals"),
        (&s.not_request_principals, "notRequestPrincipals"),
        (&s.namespaces, "namespaces"),
        (&s.not_namespaces, "notNamespaces"),
    ] {
        for (i, v) in list.iter().enumerate() {
            out.push(wildcard_position(v, &format!("{q}.{name}[{i}]")));
        }
    }
    let sa_set = !s.service_accounts.is_empty() || !s.not_service_accounts.is_empty();
    if sa_set
        && (!s.namespaces.is_empty()
            || !s.principals.is_empty()
            || !s.not_namespaces.is_empty()
            || !s.not_principals.is_empty())
    {
        out.error(
            code::CONFLICT,
            format!("{q}.serviceAccounts"),
            "serviceAccounts cannot be combined with namespaces or principals",
        );
    }
    for (list, name) in [
        (&s.ip_blocks, "ipBlocks"),
        (&s.not_ip_blocks, "notIpBlocks"),
        (&s.remote_ip_blocks, "remoteIpBlocks"),
        (&s.not_remote_ip_blocks, "notRemoteIpBlocks"),
    ] {
        for (i, block) in list.iter().enumerate() {
            out.push(fields::ip_or_cidr(block, &format!("{q}.{name}[{i}]")));
        }
    }
}

/// `*` may appear once, as a prefix or a suffix (Istio's string-match conversion).
fn wildcard_position(v: &str, field: &str) -> Option<Finding> {
    let stars = v.matches('*').count();
    let ok = stars == 0 || (stars == 1 && (v.starts_with('*') || v.ends_with('*')));
    (!ok).then(|| {
        Finding::error(
            code::PRINCIPAL,
            field,
            format!("{v:?}: `*` may appear only once, as a prefix or suffix"),
        )
    })
}

/// A peer identity as AuthorizationPolicy writes it: `<trust-domain>/ns/<ns>/sa/<sa>`, or a
/// prefix/suffix wildcard of one. Istio adds `spiffe://` itself, so a written one never matches.
pub fn principal(p: &str, field: &str) -> Option<Finding> {
    if let Some(rest) = p.strip_prefix("spiffe://") {
        return Some(Finding::error(
            code::PRINCIPAL,
            field,
            format!("drop the spiffe:// prefix: Istio principals are written {rest:?} (`<trust-domain>/ns/<namespace>/sa/<service-account>`)"),
        ));
    }
    if let Some(f) = wildcard_position(p, field) {
        return Some(f);
    }
    if p.contains('*') {
        return None;
    }
    let parts: Vec<&str> = p.split('/').collect();
    let ok = parts.len() == 5
        && parts[1] == "ns"
        && parts[3] == "sa"
        && parts.iter().all(|s| !s.is_empty());
    (!ok).then(|| {
        Finding::error(
            code::PRINCIPAL,
            field,
            format!("principal {p:?} must be `<trust-domain>/ns/<namespace>/sa/<service-account>` (e.g. cluster.local/ns/default/sa/bookinfo-reviews)"),
        )
    })
}

const CONDITION_KEYS: &[&str] = &[
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "destination.ip",
    "destination.port",
    "connection.sni",
];

fn condition(c: &Condition, q: &str, out: &mut Findings) {
    let key = c.key.as_str();
    let bracketed = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|r| r.ends_with(']') && r.len() > 1)
    };
    if key.is_empty() {
        out.error(code::REQUIRED, format!("{q}.key"), "when.key is required");
    } else if !(CONDITION_KEYS.contains(&key)
        || bracketed("request.headers[")
        || bracketed("request.auth.claims[")
        || key.starts_with("experimental.envoy.filters."))
    {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.key"),
            format!("unknown condition key {key:?} (e.g. request.headers[x-user], request.auth.claims[groups], source.ip, destination.port)"),
        );
    }
    out.require(
        c.values.is_empty() && c.not_values.is_empty(),
        format!("{q}.values"),
        "a condition needs values or notValues",
    );
    for (list, name) in [(&c.values, "values"), (&c.not_values, "notValues")] {
        for (i, v) in list.iter().enumerate() {
            let field = format!("{q}.{name}[{i}]");
            match key {
                "source.ip" | "remote.ip" | "destination.ip" => {
                    out.push(fields::ip_or_cidr(v, &field))
                }
                "destination.port" => match v.parse::<i64>() {
                    Ok(n) => out.push(fields::port(n, &field)),
                    Err(_) => out.error(code::PORT, field, format!("port {v:?} is not a number")),
                },
                _ => {}
            }
        }
    }
}

pub fn check_request_authentication(ra: &RequestAuthentication) -> Vec<Finding> {
    let mut out = Findings::default();
    one_target(&ra.selector, &ra.target_ref, &ra.target_refs, &mut out);
    for (i, rule) in ra.jwt_rules.iter().enumerate() {
        let p = format!("spec.jwtRules[{i}]");
        out.require(
            rule.issuer.is_empty(),
            format!("{p}.issuer"),
            "issuer is required",
        );
        if !rule.jwks.is_empty() && !rule.jwks_uri.is_empty() {
            out.error(
                code::CONFLICT,
                format!("{p}.jwks"),
                "set either `jwks` or `jwksUri`, not both",
            );
        }
        // `file:///abs/path` is bowline's local form: the sidecar reads the JWKS from a file.
        let usable = rule.jwks_uri.starts_with("https://")
            || rule.jwks_uri.starts_with("http://")
            || rule.jwks_uri.starts_with("file:///");
        if !rule.jwks_uri.is_empty() && !usable {
            out.error(
                code::NOT_ALLOWED,
                format!("{p}.jwksUri"),
                format!(
                    "jwksUri {:?} must be an http(s) URL or file:///<absolute path>",
                    rule.jwks_uri
                ),
            );
        }
        for (j, h) in rule.from_headers.iter().enumerate() {
            let field = format!("{p}.fromHeaders[{j}].name");
            if h.name.is_empty() {
                out.error(code::REQUIRED, field, "fromHeaders[].name is required");
            } else if !fields::is_header_token(&h.name) {
                out.error(
                    code::HEADER_NAME,
                    field,
                    format!("{:?} is not a valid header name", h.name),
                );
            }
        }
        for (j, c) in rule.output_claim_to_headers.iter().enumerate() {
            let q = format!("{p}.outputClaimToHeaders[{j}]");
            out.require(
                c.claim.is_empty(),
                format!("{q}.claim"),
                "claim is required",
            );
            if !fields::is_header_token(&c.header) {
                out.error(
                    code::HEADER_NAME,
                    format!("{q}.header"),
                    format!("{:?} is not a valid header name", c.header),
                );
            }
        }
        if let Some(t) = &rule.timeout {
            out.push(fields::duration(t, &format!("{p}.timeout")));
        }
    }
    out.0
}
