//! Route filters that change the request or answer it: header modifiers, redirects and
//! path rewrites, as the Gateway API defines them.
//!
//! Path modifiers: `ReplaceFullPath` replaces the whole path (the query is kept);
//! `ReplacePrefixMatch` replaces the matched `PathPrefix` on path-segment boundaries — prefix
//! `/foo` replaced by `/bar` turns `/foo/x` into `/bar/x` and `/foo` into `/bar`; replaced by
//! `/` it turns `/foo/x` into `/x` (not `//x`) and `/foo` into `/`. Both are Envoy
//! `regex_rewrite`s anchored on the whole path.
//!
//! Redirects: the scheme is the filter's or the listener's; the port is the filter's, else
//! the well-known port of the filter's scheme (80, 443), else the listener's; the port is
//! left out of `Location` when it is the scheme's well-known one. The status defaults to 302.

use super::matching::{prefix_part, regex_escape};
use crate::proto::{header_option, regex_matcher};
pub(crate) use crate::routes::headers::HeaderOps;
use bowline_config::gateway_api::{HeaderModifier, PathModifier, RequestRedirect};
use bowline_xds::pb::envoy::config::core::v3::HeaderValueOption;
use bowline_xds::pb::envoy::config::route::v3::{redirect_action, RedirectAction};
use bowline_xds::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;

/// The Gateway API's header modifiers, added to the same header operations Istio's
/// `headers` produce.
impl HeaderOps {
    /// Adds a RequestHeaderModifier.
    pub fn request(&mut self, m: &HeaderModifier) {
        if let Some(h) = m.set.iter().find(|h| h.name.eq_ignore_ascii_case("host")) {
            self.host_rewrite = Some(h.value.clone()).filter(|v| value_ok(v) && !v.is_empty());
        }
        mutations(m, &mut self.request_add, &mut self.request_remove);
    }

    /// Adds a ResponseHeaderModifier.
    pub fn response(&mut self, m: &HeaderModifier) {
        mutations(m, &mut self.response_add, &mut self.response_remove);
    }
}

/// `set` overwrites, `add` appends, `remove` removes; names lower-cased. Pseudo-headers,
/// `host`, and values with NUL/CR/LF are left out (Envoy refuses them).
fn mutations(m: &HeaderModifier, add: &mut Vec<HeaderValueOption>, remove: &mut Vec<String>) {
    let set = m.set.iter().map(|h| (h, true));
    let append = m.add.iter().map(|h| (h, false));
    for (h, overwrite) in set.chain(append) {
        let name = h.name.to_ascii_lowercase();
        if modifiable(&name) && value_ok(&h.value) {
            add.push(header_option(&name, &h.value, overwrite));
        }
    }
    remove.extend(
        m.remove
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .filter(|n| modifiable(n)),
    );
}

fn modifiable(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(':') && name != "host"
}

fn value_ok(value: &str) -> bool {
    !value.contains(['\0', '\r', '\n'])
}

/// The rewrite of a path modifier; `prefix` is the `PathPrefix` value the route matched
/// (`/` when the rule has no path match).
pub(crate) fn path_rewrite(m: &PathModifier, prefix: &str) -> Option<RegexMatchAndSubstitute> {
    match m.modifier_type.as_str() {
        "ReplaceFullPath" => {
            let path = m.replace_full_path.as_deref()?;
            Some(substitute("^/.*$", &substitution_literal(path)))
        }
        "ReplacePrefixMatch" => {
            let replacement = m.replace_prefix_match.as_deref()?;
            Some(replace_prefix(prefix, replacement))
        }
        _ => None,
    }
}

/// `ReplacePrefixMatch` of `prefix` by `replacement`, on segment boundaries.
pub(crate) fn replace_prefix(prefix: &str, replacement: &str) -> RegexMatchAndSubstitute {
    let p = regex_escape(prefix_part(prefix));
    match replacement.trim_end_matches('/') {
        "" => substitute(&format!("^{p}/?(.*)$"), "/\\1"),
        r => substitute(
            &format!("^{p}(/.*)?$"),
            &format!("{}\\1", substitution_literal(r)),
        ),
    }
}

fn substitute(pattern: &str, substitution: &str) -> RegexMatchAndSubstitute {
    RegexMatchAndSubstitute {
        pattern: Some(regex_matcher(pattern)),
        substitution: substitution.to_string(),
    }
}

/// A literal in an RE2 substitution: `\` is its escape character.
fn substitution_literal(s: &str) -> String {
    s.replace('\\', "\\\\")
}

/// The Envoy redirect of a RequestRedirect on a listener of `listener_port` speaking
/// `listener_scheme`; `prefix` as for [`path_rewrite`].
pub(crate) fn redirect(
    r: &RequestRedirect,
    listener_port: u32,
    listener_scheme: &str,
    prefix: &str,
) -> RedirectAction {
    use redirect_action::{
        PathRewriteSpecifier, RedirectResponseCode as Code, SchemeRewriteSpecifier,
    };
    let scheme = r.scheme.as_deref().unwrap_or(listener_scheme);
    let port = match (r.port, r.scheme.as_deref()) {
        (Some(p), _) => u32::try_from(p).unwrap_or(listener_port),
        (None, Some("http")) => 80,
        (None, Some("https")) => 443,
        (None, _) => listener_port,
    };
    let well_known = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
    let code = match r.status_code.unwrap_or(302) {
        301 => Code::MovedPermanently,
        303 => Code::SeeOther,
        307 => Code::TemporaryRedirect,
        308 => Code::PermanentRedirect,
        _ => Code::Found,
    };
    let path = r
        .path
        .as_ref()
        .and_then(|m| match m.modifier_type.as_str() {
            "ReplaceFullPath" => m
                .replace_full_path
                .clone()
                .map(PathRewriteSpecifier::PathRedirect),
            _ => path_rewrite(m, prefix).map(PathRewriteSpecifier::RegexRewrite),
        });
    RedirectAction {
        host_redirect: r.hostname.clone().unwrap_or_default(),
        port_redirect: if well_known { 0 } else { port },
        response_code: code as i32,
        scheme_rewrite_specifier: r.scheme.clone().map(SchemeRewriteSpecifier::SchemeRedirect),
        path_rewrite_specifier: path,
        strip_query: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies a rewrite the way bowline-proxy does (its model follows Envoy's RE2).
    fn rewrite(rx: RegexMatchAndSubstitute, path: &str) -> String {
        let re = bowline_model::Regex::new(&rx.pattern.unwrap().regex).unwrap();
        re.replace_all(path, &rx.substitution)
    }

    #[test]
    fn prefix_replacement_respects_segments() {
        let cases = [
            ("/foo", "/bar", "/foo/x", "/bar/x"),
            ("/foo", "/bar", "/foo", "/bar"),
            ("/foo", "/bar", "/foo/", "/bar/"),
            ("/foo/", "/bar", "/foo/x/y", "/bar/x/y"),
            ("/foo", "/", "/foo/x", "/x"),
            ("/foo", "/", "/foo", "/"),
            ("/foo", "/bar/", "/foo/x", "/bar/x"),
            ("/prefix/one", "/one", "/prefix/one/two", "/one/two"),
            ("/strip-prefix", "/", "/strip-prefix/three", "/three"),
            ("/", "/bar", "/x", "/bar/x"),
            ("/v1.0", "/v2", "/v1.0/a", "/v2/a"),
        ];
        for (prefix, replacement, path, want) in cases {
            assert_eq!(
                rewrite(replace_prefix(prefix, replacement), path),
                want,
                "{prefix} → {replacement} on {path}"
            );
        }
    }

    #[test]
    fn full_path_replacement() {
        let m = PathModifier {
            modifier_type: "ReplaceFullPath".into(),
            replace_full_path: Some("/one".into()),
            replace_prefix_match: None,
        };
        assert_eq!(
            rewrite(path_rewrite(&m, "/full").unwrap(), "/full/one/two"),
            "/one"
        );
    }

    #[test]
    fn redirect_ports_follow_scheme_and_listener() {
        let r = |json: serde_json::Value, listener_port| {
            let a = redirect(
                &serde_json::from_value(json).unwrap(),
                listener_port,
                "http",
                "/",
            );
            (a.port_redirect, a.response_code)
        };
        use redirect_action::RedirectResponseCode as Code;
        let found = Code::Found as i32;
        let cases = [
            (
                serde_json::json!({"hostname": "example.org"}),
                80,
                (0, found),
            ),
            (
                serde_json::json!({"hostname": "example.org"}),
                8080,
                (8080, found),
            ),
            (serde_json::json!({"port": 80}), 8080, (0, found)),
            (serde_json::json!({"port": 8080}), 80, (8080, found)),
            (serde_json::json!({"scheme": "https"}), 8080, (0, found)),
            (
                serde_json::json!({"scheme": "https", "port": 443}),
                80,
                (0, found),
            ),
            (
                serde_json::json!({"scheme": "https", "port": 8443}),
                80,
                (8443, found),
            ),
            (
                serde_json::json!({"scheme": "http", "port": 443}),
                80,
                (443, found),
            ),
            (
                serde_json::json!({"statusCode": 301}),
                80,
                (0, Code::MovedPermanently as i32),
            ),
        ];
        for (json, port, want) in cases {
            assert_eq!(r(json.clone(), port), want, "{json} on {port}");
        }
    }
}
