//! One AuthorizationPolicy rule → one RBAC policy.
//!
//! A rule matches when one of its `from` sources matches (each source: all its fields; each
//! field: one of its values, or none of its `not` values), one of its `to` operations
//! matches likewise, and every `when` condition holds. An empty `from`, `to` or `when`
//! matches everything. Source fields and source-side conditions become the policy's
//! principal; operation fields and request-side conditions its permission.
//!
//! A value Envoy's RBAC cannot express here (a path template, a trust-domain wildcard,
//! `connection.sni`, an unknown condition key) fails closed as Istio's builder does: in an
//! ALLOW or AUDIT policy the whole rule is left out (it allows nothing); in a DENY policy only
//! that field or condition is left out, so the rule matches more and denies more.

use super::jwt;
use super::values::{self, all_of_ids, all_of_rules, any_of_ids, any_of_rules, id, perm, Built};
use bowline_config::istio::security::{Condition, Operation, Rule, Source};
use bowline_xds::pb::envoy::config::rbac::v3::{
    permission, principal, Permission, Policy, Principal,
};

/// What a rule's translation depends on besides the rule.
pub(super) struct Scope<'a> {
    /// The policy's namespace (for `serviceAccounts` without one).
    pub namespace: &'a str,
    /// Issuers of the RequestAuthentications in scope (for request principals and claims).
    pub issuers: &'a [String],
    /// Leave an inexpressible field out (DENY) instead of the whole rule.
    pub widen_unsupported: bool,
    /// For a TCP port (the network RBAC filter): HTTP-only fields (hosts, methods, paths,
    /// request principals, `request.*` conditions) are inexpressible, as in Istio's TCP
    /// builder — an ALLOW rule using them allows nothing, a DENY rule denies without them.
    pub tcp: bool,
}

/// The error for an HTTP-only field on a TCP port.
fn http_only<T>(what: &str) -> Built<T> {
    Err(format!("{what} needs HTTP"))
}

/// The RBAC policy of one rule; `None` when the rule is left out (see the module doc).
pub(super) fn policy(rule: &Rule, scope: &Scope<'_>) -> Option<Policy> {
    let mut principals = Vec::new();
    if !rule.from.is_empty() {
        let sources = rule
            .from
            .iter()
            .map(|f| source(&f.source, scope).map(all_of_ids))
            .collect::<Option<Vec<_>>>()?;
        principals.push(any_of_ids(sources));
    }
    let mut permissions = Vec::new();
    if !rule.to.is_empty() {
        let operations = rule
            .to
            .iter()
            .map(|t| operation(&t.operation, scope).map(all_of_rules))
            .collect::<Option<Vec<_>>>()?;
        permissions.push(any_of_rules(operations));
    }
    for c in &rule.when {
        match keep(condition(c, scope), scope)? {
            Some(Side::Principal(p)) => principals.push(p),
            Some(Side::Permission(p)) => permissions.push(p),
            None => {}
        }
    }
    Some(Policy {
        permissions: vec![all_of_rules(permissions)],
        principals: vec![all_of_ids(principals)],
        ..Default::default()
    })
}

/// A policy that matches no request.
pub(super) fn never() -> Policy {
    Policy {
        permissions: vec![any_of_rules(Vec::new())],
        principals: vec![any_of_ids(Vec::new())],
        ..Default::default()
    }
}

/// `Some(Some(x))`: use it; `Some(None)`: leave the field out (DENY); `None`: drop the rule.
fn keep<T>(built: Built<T>, scope: &Scope<'_>) -> Option<Option<T>> {
    match built {
        Ok(x) => Some(Some(x)),
        Err(_) if scope.widen_unsupported => Some(None),
        Err(_) => None,
    }
}

/// One field: any of `values`, and none of `not_values` (each absent when empty).
fn field<T>(
    values: &[String],
    not_values: &[String],
    one: impl Fn(&str) -> Built<T>,
    any_of: fn(Vec<T>) -> T,
    not: fn(T) -> T,
    scope: &Scope<'_>,
    out: &mut Vec<T>,
) -> Option<()> {
    for (list, negate) in [(values, false), (not_values, true)] {
        if list.is_empty() {
            continue;
        }
        let built = list.iter().map(|v| one(v)).collect::<Built<Vec<T>>>();
        if let Some(alternatives) = keep(built, scope)? {
            let m = any_of(alternatives);
            out.push(if negate { not(m) } else { m });
        }
    }
    Some(())
}

fn not_id(p: Principal) -> Principal {
    id(principal::Identifier::NotId(Box::new(p)))
}

fn not_rule(p: Permission) -> Permission {
    perm(permission::Rule::NotRule(Box::new(p)))
}

fn source(s: &Source, scope: &Scope<'_>) -> Option<Vec<Principal>> {
    let mut out = Vec::new();
    let ip = |f: fn(_) -> principal::Identifier| move |v: &str| values::cidr(v).map(|c| id(f(c)));
    let ok = |f: fn(&str) -> Principal| move |v: &str| Ok(f(v));
    let f = |vals, nots, one: &dyn Fn(&str) -> Built<Principal>, out: &mut Vec<_>| {
        field(vals, nots, one, any_of_ids, not_id, scope, out)
    };
    f(
        &s.principals,
        &s.not_principals,
        &ok(values::peer_principal),
        &mut out,
    )?;
    let rp = |v: &str| {
        if scope.tcp {
            return http_only("requestPrincipals");
        }
        Ok(jwt::request_principal(v, scope.issuers))
    };
    f(
        &s.request_principals,
        &s.not_request_principals,
        &rp,
        &mut out,
    )?;
    f(
        &s.namespaces,
        &s.not_namespaces,
        &ok(values::namespace),
        &mut out,
    )?;
    let sa = |v: &str| Ok(values::service_account(v, scope.namespace));
    f(&s.service_accounts, &s.not_service_accounts, &sa, &mut out)?;
    f(
        &s.trust_domains,
        &s.not_trust_domains,
        &values::trust_domain,
        &mut out,
    )?;
    let direct = ip(principal::Identifier::DirectRemoteIp);
    f(&s.ip_blocks, &s.not_ip_blocks, &direct, &mut out)?;
    let remote = ip(principal::Identifier::RemoteIp);
    f(
        &s.remote_ip_blocks,
        &s.not_remote_ip_blocks,
        &remote,
        &mut out,
    )?;
    Some(out)
}

fn operation(o: &Operation, scope: &Scope<'_>) -> Option<Vec<Permission>> {
    let mut out = Vec::new();
    let f = |vals, nots, one: &dyn Fn(&str) -> Built<Permission>, out: &mut Vec<_>| {
        field(vals, nots, one, any_of_rules, not_rule, scope, out)
    };
    let tcp = scope.tcp;
    let host = |v: &str| {
        if tcp {
            return http_only("hosts");
        }
        Ok(perm(permission::Rule::Header(values::host(v))))
    };
    f(&o.hosts, &o.not_hosts, &host, &mut out)?;
    let port = |v: &str| values::port(v).map(|p| perm(permission::Rule::DestinationPort(p)));
    f(&o.ports, &o.not_ports, &port, &mut out)?;
    let method = |v: &str| {
        if tcp {
            return http_only("methods");
        }
        Ok(perm(permission::Rule::Header(values::header_value(
            ":method", v,
        ))))
    };
    f(&o.methods, &o.not_methods, &method, &mut out)?;
    let path = |v: &str| {
        if tcp {
            http_only("paths")
        } else {
            values::path(v)
        }
    };
    f(&o.paths, &o.not_paths, &path, &mut out)?;
    Some(out)
}

/// A `when` condition is about the peer (a principal) or about the request (a permission).
enum Side {
    Principal(Principal),
    Permission(Permission),
}

/// One condition, `values` OR-ed and `notValues` negated, the two AND-ed.
fn condition(c: &Condition, scope: &Scope<'_>) -> Built<Side> {
    let key = c.key.as_str();
    if scope.tcp && key.starts_with("request.") {
        return http_only(key);
    }
    let principal = |one: &dyn Fn(&str) -> Built<Principal>| -> Built<Side> {
        let mut out = Vec::new();
        let strict = Scope {
            widen_unsupported: false,
            ..*scope
        };
        field(
            &c.values,
            &c.not_values,
            one,
            any_of_ids,
            not_id,
            &strict,
            &mut out,
        )
        .ok_or_else(|| format!("condition {key}: a value is not supported"))?;
        Ok(Side::Principal(all_of_ids(out)))
    };
    let permission = |one: &dyn Fn(&str) -> Built<Permission>| -> Built<Side> {
        let mut out = Vec::new();
        let strict = Scope {
            widen_unsupported: false,
            ..*scope
        };
        field(
            &c.values,
            &c.not_values,
            one,
            any_of_rules,
            not_rule,
            &strict,
            &mut out,
        )
        .ok_or_else(|| format!("condition {key}: a value is not supported"))?;
        Ok(Side::Permission(all_of_rules(out)))
    };
    let issuers = scope.issuers;
    if let Some(name) = bracketed(key, "request.headers") {
        let name = name.to_ascii_lowercase();
        return permission(&|v| {
            Ok(perm(permission::Rule::Header(values::header_value(
                &name, v,
            ))))
        });
    }
    if let Some(claim) = bracketed(key, "request.auth.claims") {
        // Nested claims are written `request.auth.claims[a][b]`.
        let path: Vec<&str> = claim.split("][").collect();
        return principal(&|v| Ok(jwt::claim(&path, v, issuers)));
    }
    match key {
        "source.ip" => {
            principal(&|v| values::cidr(v).map(|c| id(principal::Identifier::DirectRemoteIp(c))))
        }
        "remote.ip" => {
            principal(&|v| values::cidr(v).map(|c| id(principal::Identifier::RemoteIp(c))))
        }
        "source.namespace" => principal(&|v| Ok(values::namespace(v))),
        "source.principal" => principal(&|v| Ok(values::peer_principal(v))),
        "request.auth.principal" => principal(&|v| Ok(jwt::request_principal(v, issuers))),
        "request.auth.audiences" => principal(&|v| Ok(jwt::claim(&["aud"], v, issuers))),
        "request.auth.presenter" => principal(&|v| Ok(jwt::claim(&["azp"], v, issuers))),
        "destination.port" => {
            permission(&|v| values::port(v).map(|p| perm(permission::Rule::DestinationPort(p))))
        }
        "destination.ip" => {
            permission(&|v| values::cidr(v).map(|c| perm(permission::Rule::DestinationIp(c))))
        }
        // Envoy's `requested_server_name`, which bowline-proxy does not implement.
        "connection.sni" => Err("condition connection.sni is not supported".into()),
        other => Err(format!("condition key {other:?} is not supported")),
    }
}

/// `NAME` of `<prefix>[NAME]`.
fn bracketed<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')
        .filter(|n| !n.is_empty())
}
