//! security.istio.io checks: PeerAuthentication and RequestAuthentication, and what every
//! policy shares — how it chooses its workloads (`selector`, `targetRef`, `targetRefs`).
//! Rules follow Istio's `ValidatePeerAuthentication`, `ValidateRequestAuthentication` and
//! the CRDs' OpenAPI and CEL rules. AuthorizationPolicy is in [`super::authorization`].

use super::fields::{self, Findings};
use super::labels;
use crate::common::{PolicyTargetReference, WorkloadSelector};
use crate::diag::{code, Finding};
use crate::istio::security::{JwtPresence, JwtRule, PeerAuthentication, RequestAuthentication};

pub fn check_peer_authentication(pa: &PeerAuthentication) -> Vec<Finding> {
    let mut out = Findings::default();
    selector(&pa.selector, &mut out);
    let has_selector = pa
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty());
    if let Some(ports) = &pa.port_level_mtls {
        if ports.is_empty() {
            out.error(
                code::REQUIRED,
                "spec.portLevelMtls",
                "portLevelMtls, when written, needs at least one port; remove it or add `<port>: {mode: ...}`",
            );
        } else if !has_selector {
            out.error(
                code::REQUIRED,
                "spec.portLevelMtls",
                "portLevelMtls needs a `selector` with matchLabels: port-level modes apply only to selected workloads",
            );
        }
        for port in ports.keys() {
            out.push(fields::port(
                (*port).into(),
                &format!("spec.portLevelMtls.{port}"),
            ));
        }
    }
    out.0
}

/// At most one way of choosing what a policy applies to, and each way well-formed.
pub(super) fn targets(
    selector_: &Option<WorkloadSelector>,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
    out: &mut Findings,
) {
    let ways = [
        selector_.is_some(),
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
    selector(selector_, out);
    if let Some(r) = target_ref {
        target(r, "spec.targetRef", out);
    }
    for (i, r) in target_refs.iter().enumerate() {
        target(r, &format!("spec.targetRefs[{i}]"), out);
    }
}

fn selector(selector: &Option<WorkloadSelector>, out: &mut Findings) {
    if let Some(s) = selector {
        labels::selector(&s.match_labels, "spec.selector.matchLabels", out);
    }
}

/// `^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`, 1–63 characters (the CRD's pattern for kinds).
fn is_kind_name(kind: &str) -> bool {
    let b = kind.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// One `targetRef`: the CRD's patterns, Istio's allowed kinds, and what bowline does with
/// it. bowline enforces policies on sidecars and gateways chosen by `selector`; a policy
/// attached to a Service or ServiceEntry is for its waypoint proxy (ambient mode).
fn target(r: &PolicyTargetReference, q: &str, out: &mut Findings) {
    if !r.group.is_empty() && !fields::is_dns1123_subdomain(&r.group) {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.group"),
            format!("group {:?} must be empty (core) or a lower-case DNS name such as gateway.networking.k8s.io", r.group),
        );
    }
    if !is_kind_name(&r.kind) {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.kind"),
            format!("kind {:?} must be a kind name (letters, digits and '-', starting with a letter), e.g. Service or Gateway", r.kind),
        );
    }
    out.require(r.name.is_empty(), format!("{q}.name"), "name is required");
    if !r.namespace.is_empty() {
        out.error(
            code::NOT_ALLOWED,
            format!("{q}.namespace"),
            "cross-namespace references are not supported (as in Istio); remove `namespace`: the target is in the policy's namespace",
        );
    }
    let group = if r.group.is_empty() {
        "core"
    } else {
        r.group.as_str()
    };
    match (group, r.kind.as_str()) {
        ("core", "Service") | ("networking.istio.io", "ServiceEntry") => {
            out.ambient_only(q, &format!("a policy attached to {} {:?}", r.kind, r.name))
        }
        ("gateway.networking.k8s.io", "Gateway" | "GatewayClass") => out.not_applied(
            q,
            &format!("a policy attached to {} {:?} by targetRef is not enforced; select the gateway's workloads with `selector` instead", r.kind, r.name),
        ),
        _ if is_kind_name(&r.kind) => out.error(
            code::NOT_ALLOWED,
            format!("{q}.kind"),
            format!("a policy can target a Service, ServiceEntry (networking.istio.io), Gateway or GatewayClass (gateway.networking.k8s.io), not {}/{}", r.group, r.kind),
        ),
        _ => {}
    }
}

pub fn check_request_authentication(ra: &RequestAuthentication) -> Vec<Finding> {
    let mut out = Findings::default();
    targets(&ra.selector, &ra.target_ref, &ra.target_refs, &mut out);
    for (i, rule) in ra.jwt_rules.iter().enumerate() {
        jwt_rule(rule, &format!("spec.jwtRules[{i}]"), &mut out);
    }
    out.0
}

/// Strings of a list that must not be empty (the CRD's `minLength: 1`).
fn non_empty(list: &[String], q: &str, name: &str, out: &mut Findings) {
    for (i, v) in list.iter().enumerate() {
        if v.is_empty() {
            out.error(
                code::REQUIRED,
                format!("{q}.{name}[{i}]"),
                format!("{name} entries must not be empty"),
            );
        }
    }
}

fn jwt_rule(rule: &JwtRule, p: &str, out: &mut Findings) {
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
    non_empty(&rule.audiences, p, "audiences", out);
    non_empty(&rule.from_params, p, "fromParams", out);
    non_empty(&rule.from_cookies, p, "fromCookies", out);
    non_empty(&rule.space_delimited_claims, p, "spaceDelimitedClaims", out);
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
        // The CRD's pattern `^[-_A-Za-z0-9]+$`: a plain header name, no pseudo-headers.
        let plain = !c.header.is_empty()
            && c.header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plain {
            out.error(
                code::HEADER_NAME,
                format!("{q}.header"),
                format!(
                    "{:?} is not a valid header name here (letters, digits, '-' and '_')",
                    c.header
                ),
            );
        }
    }
    if let Some(t) = &rule.timeout {
        out.push(fields::duration(t, &format!("{p}.timeout")));
    }
    if rule.presence == Some(JwtPresence::Required) {
        out.not_applied(
            format!("{p}.presence"),
            "presence REQUIRED (a request without a token is still let through to the AuthorizationPolicies; require one there with `requestPrincipals: [\"*\"]`)",
        );
    }
}
