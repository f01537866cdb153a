//! HTTPRoute/GRPCRoute filters: the `type` names the one field a filter configures, and
//! each field's own rules (redirect codes, path modifiers, header names).

use super::super::fields::{self, Findings};
use crate::diag::code;
use crate::gateway_api::{HeaderModifier, HttpRouteFilter, PathModifier};
use std::collections::HashMap;

/// Each filter's `type` names the one field it configures; that field must be set and no
/// other. A filter type appears at most once per rule (except RequestMirror/ExtensionRef).
pub(super) fn filters(
    list: &[HttpRouteFilter],
    q: &str,
    allowed: &[&str],
    only_prefix_matches: bool,
    out: &mut Findings,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, f) in list.iter().enumerate() {
        let p = format!("{q}[{i}]");
        let t = f.filter_type.as_str();
        if !allowed.contains(&t) {
            out.error(
                code::NOT_ALLOWED,
                format!("{p}.type"),
                format!("filter type {t:?} must be one of {}", allowed.join(", ")),
            );
            continue;
        }
        let set: Vec<&str> = [
            ("requestHeaderModifier", f.request_header_modifier.is_some()),
            (
                "responseHeaderModifier",
                f.response_header_modifier.is_some(),
            ),
            ("requestMirror", f.request_mirror.is_some()),
            ("requestRedirect", f.request_redirect.is_some()),
            ("urlRewrite", f.url_rewrite.is_some()),
            ("extensionRef", f.extension_ref.is_some()),
            ("cors", f.cors.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        let wanted = field_for(t);
        if !set.contains(&wanted) {
            out.error(
                code::REQUIRED,
                format!("{p}.{wanted}"),
                format!("a {t} filter needs `{wanted}`"),
            );
        }
        for other in set.iter().filter(|s| **s != wanted) {
            out.error(
                code::CONFLICT,
                format!("{p}.{other}"),
                format!("`{other}` does not belong in a {t} filter"),
            );
        }
        if let Some(first) = seen
            .insert(t, i)
            .filter(|_| t != "RequestMirror" && t != "ExtensionRef")
        {
            out.error(
                code::DUPLICATE,
                format!("{p}.type"),
                format!("{t} is already given by {q}[{first}]; it may appear once per rule"),
            );
        }
        filter_body(f, &p, only_prefix_matches, out);
    }
    if seen.contains_key("RequestRedirect") && seen.contains_key("URLRewrite") {
        out.error(
            code::CONFLICT,
            q,
            "a rule cannot have both RequestRedirect and URLRewrite filters",
        );
    }
}

fn field_for(filter_type: &str) -> &'static str {
    match filter_type {
        "RequestHeaderModifier" => "requestHeaderModifier",
        "ResponseHeaderModifier" => "responseHeaderModifier",
        "RequestMirror" => "requestMirror",
        "RequestRedirect" => "requestRedirect",
        "URLRewrite" => "urlRewrite",
        "ExtensionRef" => "extensionRef",
        _ => "cors",
    }
}

fn filter_body(f: &HttpRouteFilter, p: &str, only_prefix_matches: bool, out: &mut Findings) {
    for (m, name) in [
        (&f.request_header_modifier, "requestHeaderModifier"),
        (&f.response_header_modifier, "responseHeaderModifier"),
    ] {
        if let Some(m) = m {
            header_modifier(m, &format!("{p}.{name}"), out);
        }
    }
    if let Some(m) = &f.request_mirror {
        out.require(
            m.backend_ref.name.is_empty(),
            format!("{p}.requestMirror.backendRef.name"),
            "mirror backendRef.name is required",
        );
        if let Some(pct) = m.percent {
            out.push(fields::percent(
                pct.into(),
                &format!("{p}.requestMirror.percent"),
            ));
        }
    }
    if let Some(r) = &f.request_redirect {
        let q = format!("{p}.requestRedirect");
        if let Some(c) = r.status_code {
            if ![301, 302, 303, 307, 308].contains(&c) {
                out.error(
                    code::STATUS_CODE,
                    format!("{q}.statusCode"),
                    format!("redirect status {c} must be 301, 302, 303, 307 or 308"),
                );
            }
        }
        if let Some(s) = r
            .scheme
            .as_deref()
            .filter(|s| *s != "http" && *s != "https")
        {
            out.error(
                code::NOT_ALLOWED,
                format!("{q}.scheme"),
                format!("scheme {s:?} must be http or https"),
            );
        }
        if let Some(port) = r.port {
            out.push(fields::port(port.into(), &format!("{q}.port")));
        }
        if let Some(m) = &r.path {
            path_modifier(m, &format!("{q}.path"), only_prefix_matches, out);
        }
    }
    if let Some(m) = f.url_rewrite.as_ref().and_then(|u| u.path.as_ref()) {
        path_modifier(m, &format!("{p}.urlRewrite.path"), only_prefix_matches, out);
    }
}

fn header_modifier(m: &HeaderModifier, q: &str, out: &mut Findings) {
    for (list, name) in [(&m.set, "set"), (&m.add, "add")] {
        for (i, h) in list.iter().enumerate() {
            if !fields::is_header_token(&h.name) {
                out.error(
                    code::HEADER_NAME,
                    format!("{q}.{name}[{i}].name"),
                    format!("{:?} is not a valid header name", h.name),
                );
            }
        }
    }
    for (i, h) in m.remove.iter().enumerate() {
        if !fields::is_header_token(h) {
            out.error(
                code::HEADER_NAME,
                format!("{q}.remove[{i}]"),
                format!("{h:?} is not a valid header name"),
            );
        }
    }
}

fn path_modifier(m: &PathModifier, q: &str, only_prefix_matches: bool, out: &mut Findings) {
    match m.modifier_type.as_str() {
        "ReplaceFullPath" => out.require(
            m.replace_full_path.is_none(),
            format!("{q}.replaceFullPath"),
            "type ReplaceFullPath needs replaceFullPath",
        ),
        "ReplacePrefixMatch" => {
            out.require(
                m.replace_prefix_match.is_none(),
                format!("{q}.replacePrefixMatch"),
                "type ReplacePrefixMatch needs replacePrefixMatch",
            );
            if !only_prefix_matches {
                out.error(code::CONFLICT, q, "replacePrefixMatch works only when every match of the rule is a PathPrefix match");
            }
        }
        other => out.error(
            code::NOT_ALLOWED,
            format!("{q}.type"),
            format!("{other:?} must be ReplaceFullPath or ReplacePrefixMatch"),
        ),
    }
}
