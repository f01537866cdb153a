//! AuthorizationPolicy checks (Istio's `ValidateAuthorizationPolicy` and the CRD's rules).
//!
//! Values are free-form where Istio's are: a principal is any string (Istio compares it with
//! the peer's SPIFFE id without `spiffe://`), with `*` as a prefix, suffix or alone. What
//! Istio refuses is refused (empty values, serviceAccounts mixed with namespaces or
//! principals, a `/` in a trust domain, malformed IPs and ports, unknown condition keys);
//! what bowline reads but does not enforce is a warning.

use super::fields::{self, Findings};
use super::security::targets;
use crate::diag::{code, Finding};
use crate::istio::security::{AuthorizationPolicy, AuthzAction, Condition, Operation, Source};

pub fn check_authorization_policy(ap: &AuthorizationPolicy) -> Vec<Finding> {
    let mut out = Findings::default();
    targets(&ap.selector, &ap.target_ref, &ap.target_refs, &mut out);
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
    if custom {
        out.not_applied(
            "spec.action",
            "action CUSTOM (requests are not sent to the external authorizer, so this policy neither allows nor denies anything)",
        );
    }
    for (i, rule) in ap.rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        for (j, from) in rule.from.iter().enumerate() {
            source(&from.source, &format!("{p}.from[{j}].source"), &mut out);
        }
        for (j, to) in rule.to.iter().enumerate() {
            operation(&to.operation, &format!("{p}.to[{j}].operation"), &mut out);
        }
        for (j, cond) in rule.when.iter().enumerate() {
            condition(cond, &format!("{p}.when[{j}]"), &mut out);
        }
    }
    out.0
}

/// What a source list holds, which decides how its values are checked.
#[derive(Clone, Copy, PartialEq)]
enum Value {
    /// A peer principal (any string; `*` at an end is a wildcard).
    Principal,
    /// Request principals and namespaces (any string; `*` at an end is a wildcard).
    Plain,
    /// `name` or `namespace/name`.
    ServiceAccount,
    /// A trust domain: a wildcard value without '/'.
    TrustDomain,
    /// An IP address or CIDR block.
    Ip,
}

fn source(s: &Source, q: &str, out: &mut Findings) {
    use Value::*;
    let lists = [
        (&s.principals, "principals", Principal),
        (&s.not_principals, "notPrincipals", Principal),
        (&s.request_principals, "requestPrincipals", Plain),
        (&s.not_request_principals, "notRequestPrincipals", Plain),
        (&s.namespaces, "namespaces", Plain),
        (&s.not_namespaces, "notNamespaces", Plain),
        (&s.service_accounts, "serviceAccounts", ServiceAccount),
        (
            &s.not_service_accounts,
            "notServiceAccounts",
            ServiceAccount,
        ),
        (&s.ip_blocks, "ipBlocks", Ip),
        (&s.not_ip_blocks, "notIpBlocks", Ip),
        (&s.remote_ip_blocks, "remoteIpBlocks", Ip),
        (&s.not_remote_ip_blocks, "notRemoteIpBlocks", Ip),
        (&s.trust_domains, "trustDomains", TrustDomain),
        (&s.not_trust_domains, "notTrustDomains", TrustDomain),
    ];
    out.require(
        lists.iter().all(|(l, _, _)| l.is_empty()),
        q,
        "source must set at least one field",
    );
    for (list, name, kind) in lists {
        for (i, v) in list.iter().enumerate() {
            let field = format!("{q}.{name}[{i}]");
            match kind {
                Ip => out.push(fields::ip_or_cidr(v, &field)),
                ServiceAccount => service_account(v, &field, out),
                TrustDomain => trust_domain(v, &field, out),
                Principal => {
                    free_form(v, &field, out);
                    principal(v, &field, out);
                }
                Plain => free_form(v, &field, out),
            }
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
}

/// True when `v` is exact, `prefix*`, `*suffix` or `*`: at most one `*`, at an end.
fn is_wildcard_form(v: &str) -> bool {
    let stars = v.matches('*').count();
    stars == 0 || (stars == 1 && (v.starts_with('*') || v.ends_with('*')))
}

/// Any non-empty string, as Istio takes it. A `*` that is not at an end is compared
/// literally, which is rarely what was meant: a warning.
fn free_form(v: &str, field: &str, out: &mut Findings) {
    if v.is_empty() {
        out.error(code::REQUIRED, field, "values must not be empty");
    } else if !is_wildcard_form(v) {
        out.warning(
            code::PRINCIPAL,
            field,
            format!("{v:?}: only a `*` at the start or end is a wildcard; this one is matched literally"),
        );
    }
}

/// A trust domain, `*`-wildcarded at an end at most, without '/' (Istio's
/// `CheckTrustDomainValues`).
fn trust_domain(v: &str, field: &str, out: &mut Findings) {
    if v.is_empty() {
        out.error(code::REQUIRED, field, "values must not be empty");
    } else if !is_wildcard_form(v) {
        out.error(
            code::PRINCIPAL,
            field,
            format!("{v:?}: `*` may appear only once, as a prefix or suffix"),
        );
    } else if v.contains('/') {
        out.error(
            code::PRINCIPAL,
            field,
            format!("trust domain {v:?} must not contain '/' (write e.g. cluster.local)"),
        );
    }
}

/// A peer principal: any string, compared with the peer's SPIFFE id without `spiffe://`
/// (bowline's ids are `<trust-domain>/ns/<namespace>/sa/<service-account>`). A written
/// `spiffe://` prefix can never match, so it is a warning with the fix.
fn principal(p: &str, field: &str, out: &mut Findings) {
    if let Some(rest) = p.strip_prefix("spiffe://") {
        out.warning(
            code::PRINCIPAL,
            field,
            format!("principal {p:?} never matches: principals are compared without the spiffe:// prefix; write {rest:?}"),
        );
    }
}

/// `serviceAccount` or `namespace/serviceAccount`, no wildcard, at most 320 characters.
fn service_account(v: &str, field: &str, out: &mut Findings) {
    let ok = !v.is_empty()
        && v.len() <= 320
        && !v.contains('*')
        && match v.split_once('/') {
            None => true,
            Some((ns, sa)) => !ns.is_empty() && !sa.is_empty() && !sa.contains('/'),
        };
    if !ok {
        out.error(
            code::PRINCIPAL,
            field,
            format!("service account {v:?} must be `name` or `namespace/name` (no wildcard, at most 320 characters)"),
        );
    }
}

fn operation(op: &Operation, q: &str, out: &mut Findings) {
    let lists = [
        (&op.hosts, "hosts"),
        (&op.not_hosts, "notHosts"),
        (&op.ports, "ports"),
        (&op.not_ports, "notPorts"),
        (&op.methods, "methods"),
        (&op.not_methods, "notMethods"),
        (&op.paths, "paths"),
        (&op.not_paths, "notPaths"),
    ];
    out.require(
        lists.iter().all(|(l, _)| l.is_empty()),
        q,
        "operation must set at least one field",
    );
    for (list, name) in lists {
        for (k, v) in list.iter().enumerate() {
            let field = format!("{q}.{name}[{k}]");
            if name.ends_with("orts") {
                match v.parse::<i64>() {
                    Ok(n) => out.push(fields::port(n, &field)),
                    Err(_) => out.error(code::PORT, field, format!("port {v:?} is not a number")),
                }
            } else if v.is_empty() {
                out.error(code::REQUIRED, field, "values must not be empty");
            }
        }
    }
}

const CONDITION_KEYS: &[&str] = &[
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "source.trustDomain",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "destination.ip",
    "destination.port",
    "connection.sni",
];

/// Keys Istio accepts that bowline's translation cannot express yet.
const UNENFORCED_KEYS: &[&str] = &[
    "source.serviceAccount",
    "source.trustDomain",
    "connection.sni",
];

fn condition(c: &Condition, q: &str, out: &mut Findings) {
    let key = c.key.as_str();
    let bracketed = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|r| r.ends_with(']') && r.len() > 2)
    };
    let experimental = key.starts_with("experimental.envoy.filters.") && key.ends_with(']');
    if key.is_empty() {
        out.error(code::REQUIRED, format!("{q}.key"), "when.key is required");
    } else if !(CONDITION_KEYS.contains(&key)
        || bracketed("request.headers[")
        || bracketed("request.auth.claims[")
        || experimental)
    {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.key"),
            format!("unknown condition key {key:?} (e.g. request.headers[x-user], request.auth.claims[groups], source.ip, destination.port)"),
        );
    } else if UNENFORCED_KEYS.contains(&key) || experimental {
        out.not_applied(
            format!("{q}.key"),
            &format!("condition {key:?} (an ALLOW rule using it allows nothing; a DENY rule applies without it)"),
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
                "source.serviceAccount" => service_account(v, &field, out),
                "source.trustDomain" => trust_domain(v, &field, out),
                _ if v.is_empty() => out.error(code::REQUIRED, field, "values must not be empty"),
                _ => {}
            }
        }
    }
}
