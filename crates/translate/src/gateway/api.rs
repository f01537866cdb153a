//! Kubernetes Gateway API → the Istio Gateway and VirtualService the gateway role already
//! serves, as Istio itself converts them (pure; the result is rebuilt per generation).
//!
//! - Each listener of a `Gateway` becomes an Istio Gateway named `<gateway>-<listener>` with
//!   one server: its port and protocol, its hostname (or `*`), the namespaces its routes may
//!   come from (`allowedRoutes.namespaces.from`: `Same` by default, or `All`), and for HTTPS
//!   `Terminate` its first certificateRef as the `credentialName`. Gateway API Gateways have
//!   no selector here: every gateway proxy serves them (one ingress on one machine).
//! - Each `HTTPRoute` becomes a VirtualService bound to the listeners its `parentRefs` name
//!   (all of a Gateway's, or one by `sectionName`/`port`), for its hostnames (or `*`). Every
//!   (rule, match) pair becomes one HTTP rule, sorted by the Gateway API's precedence: exact
//!   path, then longer path prefix, then method, then more headers, then more query
//!   parameters; a rule without matches matches the prefix `/`.
//! - Filters: request/response header modifiers, redirects, URL rewrites (prefix), mirrors;
//!   backendRefs to Services by `name`/`namespace`/`port` with weights; `timeouts.request`;
//!   `retry`. Precedence across several HTTPRoutes for one hostname is their load order.

use bowline_config::gateway_api::{
    Gateway as ApiGateway, HeaderModifier, HttpPathMatch, HttpRoute, HttpRouteFilter,
    HttpRouteMatch, NameValueMatch,
};
use bowline_config::istio::{Gateway, VirtualService};
use bowline_config::ConfigSet;
use serde_json::{json, Map, Value};

/// A Gateway (Istio's own, or converted) with where it lives.
#[derive(Debug, Clone)]
pub(crate) struct NamedGateway {
    pub namespace: String,
    pub name: String,
    pub spec: Gateway,
}

/// A VirtualService (Istio's own, or converted) with the namespace its names resolve in.
#[derive(Debug, Clone)]
pub(crate) struct NamedVs {
    pub namespace: String,
    pub spec: VirtualService,
}

/// Istio's Gateways and VirtualServices in load order, then the converted Gateway API ones.
pub(crate) fn gateway_config(config: &ConfigSet) -> (Vec<NamedGateway>, Vec<NamedVs>) {
    let mut gateways: Vec<NamedGateway> = config
        .gateways()
        .map(|(r, g)| NamedGateway {
            namespace: r.namespace().to_string(),
            name: r.meta.name.clone(),
            spec: g.clone(),
        })
        .collect();
    let mut services: Vec<NamedVs> = config
        .virtual_services()
        .map(|(r, vs)| NamedVs {
            namespace: r.namespace().to_string(),
            spec: vs.clone(),
        })
        .collect();
    let api_gateways: Vec<(&str, &str, &ApiGateway)> = config
        .k8s_gateways()
        .map(|(r, g)| (r.namespace(), r.meta.name.as_str(), g))
        .collect();
    for (ns, name, g) in &api_gateways {
        gateways.extend(listeners(ns, name, g));
    }
    for (r, route) in config.http_routes() {
        if let Some(vs) = virtual_service(r.namespace(), route, &api_gateways) {
            services.push(NamedVs {
                namespace: r.namespace().to_string(),
                spec: vs,
            });
        }
    }
    (gateways, services)
}

/// One Istio Gateway per listener; listeners of other protocols (TCP, TLS passthrough,
/// UDP) are left out.
fn listeners(ns: &str, name: &str, g: &ApiGateway) -> Vec<NamedGateway> {
    g.listeners
        .iter()
        .filter_map(|l| {
            let from_all = l
                .allowed_routes
                .as_ref()
                .and_then(|a| a["namespaces"]["from"].as_str())
                == Some("All");
            let host = l.hostname.clone().unwrap_or_else(|| "*".into());
            let hosts = [format!("{}/{host}", if from_all { "*" } else { ns })];
            let mut server = json!({
                "port": {"number": l.port, "name": l.name, "protocol": l.protocol},
                "hosts": hosts,
            });
            match l.protocol.as_str() {
                "HTTP" => {}
                "HTTPS" => {
                    let tls = l.tls.as_ref()?;
                    if !matches!(tls.mode.as_deref(), None | Some("Terminate")) {
                        return None;
                    }
                    let cert = tls.certificate_refs.first()?;
                    server["tls"] = json!({"mode": "SIMPLE", "credentialName": cert.name});
                }
                _ => return None,
            }
            let spec = json!({"servers": [server]});
            Some(NamedGateway {
                namespace: ns.to_string(),
                name: format!("{name}-{}", l.name),
                spec: serde_json::from_value(spec).ok()?,
            })
        })
        .collect()
}

/// The VirtualService of an HTTPRoute, `None` when it names no known Gateway listener.
fn virtual_service(
    ns: &str,
    route: &HttpRoute,
    gateways: &[(&str, &str, &ApiGateway)],
) -> Option<VirtualService> {
    let mut bound: Vec<String> = Vec::new();
    for parent in &route.parent_refs {
        if parent.kind.as_deref().is_some_and(|k| k != "Gateway") {
            continue;
        }
        let parent_ns = parent.namespace.as_deref().unwrap_or(ns);
        let Some((_, _, g)) = gateways
            .iter()
            .find(|(gns, gname, _)| *gns == parent_ns && *gname == parent.name)
        else {
            continue;
        };
        for l in &g.listeners {
            let section_ok = parent.section_name.as_deref().is_none_or(|s| s == l.name);
            let port_ok = parent.port.is_none_or(|p| p == l.port);
            if section_ok && port_ok {
                bound.push(format!("{parent_ns}/{}-{}", parent.name, l.name));
            }
        }
    }
    if bound.is_empty() {
        return None;
    }
    let hosts = if route.hostnames.is_empty() {
        vec!["*".to_string()]
    } else {
        route.hostnames.clone()
    };
    let mut rules: Vec<(Precedence, Value)> = Vec::new();
    for (i, rule) in route.rules.iter().enumerate() {
        let default = [HttpRouteMatch::default()];
        let matches: &[HttpRouteMatch] = if rule.matches.is_empty() {
            &default
        } else {
            &rule.matches
        };
        for m in matches {
            let mut http = json!({
                "name": rule.name.clone().unwrap_or_else(|| format!("rule-{i}")),
                "match": [match_request(m)],
            });
            apply_filters(&mut http, &rule.filters, ns);
            let route: Vec<Value> = rule
                .backend_refs
                .iter()
                .filter(|b| b.kind.as_deref().is_none_or(|k| k == "Service"))
                .map(|b| {
                    let host = format!(
                        "{}.{}.svc.cluster.local",
                        b.name,
                        b.namespace.as_deref().unwrap_or(ns)
                    );
                    let mut d =
                        json!({"destination": {"host": host}, "weight": b.weight.unwrap_or(1)});
                    if let Some(port) = b.port {
                        d["destination"]["port"] = json!({"number": port});
                    }
                    d
                })
                .collect();
            if !route.is_empty() && http.get("redirect").is_none() {
                http["route"] = Value::Array(route);
            }
            if let Some(t) = rule.timeouts.as_ref().and_then(|t| t.request.as_ref()) {
                http["timeout"] = json!(format!("{}ms", t.0.as_millis()));
            }
            if let Some(retry) = &rule.retry {
                let codes: Vec<String> = retry.codes.iter().map(|c| c.to_string()).collect();
                let mut retries = json!({"attempts": retry.attempts.unwrap_or(1)});
                if !codes.is_empty() {
                    retries["retryOn"] = json!(codes.join(","));
                }
                http["retries"] = retries;
            }
            if http.get("route").is_none() && http.get("redirect").is_none() {
                // Gateway API: a rule with no usable backend answers 500.
                http["directResponse"] = json!({"status": 500});
            }
            rules.push((Precedence::of(m), http));
        }
    }
    // Stable: equal precedence keeps the route's own order.
    rules.sort_by_key(|r| std::cmp::Reverse(r.0));
    let vs = json!({
        "hosts": hosts,
        "gateways": bound,
        "http": rules.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
    });
    serde_json::from_value(vs).ok()
}

/// The Gateway API's match precedence, larger first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Precedence {
    exact: bool,
    path_len: usize,
    method: bool,
    headers: usize,
    query: usize,
}

impl Precedence {
    fn of(m: &HttpRouteMatch) -> Precedence {
        let path = m.path.as_ref();
        Precedence {
            exact: path.and_then(|p| p.match_type.as_deref()) == Some("Exact"),
            path_len: path.and_then(|p| p.value.as_ref()).map_or(1, String::len),
            method: m.method.is_some(),
            headers: m.headers.len(),
            query: m.query_params.len(),
        }
    }
}

fn match_request(m: &HttpRouteMatch) -> Value {
    let mut out = Map::new();
    out.insert("uri".into(), path_match(m.path.as_ref()));
    if let Some(method) = &m.method {
        out.insert("method".into(), json!({"exact": method}));
    }
    if !m.headers.is_empty() {
        out.insert("headers".into(), value_matches(&m.headers, true));
    }
    if !m.query_params.is_empty() {
        out.insert("queryParams".into(), value_matches(&m.query_params, false));
    }
    Value::Object(out)
}

fn path_match(p: Option<&HttpPathMatch>) -> Value {
    let value = p
        .and_then(|p| p.value.clone())
        .unwrap_or_else(|| "/".into());
    match p.and_then(|p| p.match_type.as_deref()) {
        Some("Exact") => json!({"exact": value}),
        Some("RegularExpression") => json!({"regex": value}),
        // A PathPrefix matches whole segments: `/api` matches `/api` and `/api/x`, not
        // `/apix` — a regex says that; `/` is every path.
        _ if value == "/" => json!({"prefix": "/"}),
        _ => {
            let trimmed = value.trim_end_matches('/');
            json!({"regex": format!("{}(/.*)?", regex_escape(trimmed))})
        }
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn value_matches(list: &[NameValueMatch], lowercase: bool) -> Value {
    let mut out = Map::new();
    for m in list {
        let name = if lowercase {
            m.name.to_ascii_lowercase()
        } else {
            m.name.clone()
        };
        let matcher = match m.match_type.as_deref() {
            Some("RegularExpression") => json!({"regex": m.value}),
            _ => json!({"exact": m.value}),
        };
        out.insert(name, matcher);
    }
    Value::Object(out)
}

fn apply_filters(http: &mut Value, filters: &[HttpRouteFilter], ns: &str) {
    let mut headers = Map::new();
    for f in filters {
        match f.filter_type.as_str() {
            "RequestHeaderModifier" => {
                if let Some(m) = &f.request_header_modifier {
                    headers.insert("request".into(), header_ops(m));
                }
            }
            "ResponseHeaderModifier" => {
                if let Some(m) = &f.response_header_modifier {
                    headers.insert("response".into(), header_ops(m));
                }
            }
            "RequestRedirect" => {
                if let Some(r) = &f.request_redirect {
                    let mut redirect = Map::new();
                    if let Some(s) = &r.scheme {
                        redirect.insert("scheme".into(), json!(s));
                    }
                    if let Some(h) = &r.hostname {
                        redirect.insert("authority".into(), json!(h));
                    }
                    if let Some(p) = r.port {
                        redirect.insert("port".into(), json!(p));
                    }
                    if let Some(path) = r.path.as_ref().and_then(|p| p.replace_full_path.as_ref()) {
                        redirect.insert("uri".into(), json!(path));
                    }
                    redirect.insert("redirectCode".into(), json!(r.status_code.unwrap_or(302)));
                    http["redirect"] = Value::Object(redirect);
                }
            }
            "URLRewrite" => {
                if let Some(r) = &f.url_rewrite {
                    let mut rewrite = Map::new();
                    if let Some(h) = &r.hostname {
                        rewrite.insert("authority".into(), json!(h));
                    }
                    if let Some(p) = r
                        .path
                        .as_ref()
                        .and_then(|p| p.replace_prefix_match.as_ref())
                    {
                        rewrite.insert("uri".into(), json!(p));
                    }
                    http["rewrite"] = Value::Object(rewrite);
                }
            }
            "RequestMirror" => {
                if let Some(m) = &f.request_mirror {
                    let b = &m.backend_ref;
                    let host = format!(
                        "{}.{}.svc.cluster.local",
                        b.name,
                        b.namespace.as_deref().unwrap_or(ns)
                    );
                    let mut mirror = json!({"host": host});
                    if let Some(port) = b.port {
                        mirror["port"] = json!({"number": port});
                    }
                    http["mirror"] = mirror;
                    if let Some(p) = m.percent {
                        http["mirrorPercentage"] = json!({"value": p});
                    }
                }
            }
            // ExtensionRef and CORS have no Istio equivalent here: left out.
            _ => {}
        }
    }
    if !headers.is_empty() {
        http["headers"] = Value::Object(headers);
    }
}

fn header_ops(m: &HeaderModifier) -> Value {
    let pairs = |list: &[bowline_config::gateway_api::HeaderValue]| -> Map<String, Value> {
        list.iter()
            .map(|h| (h.name.to_ascii_lowercase(), json!(h.value)))
            .collect()
    };
    let mut out = Map::new();
    if !m.set.is_empty() {
        out.insert("set".into(), Value::Object(pairs(&m.set)));
    }
    if !m.add.is_empty() {
        out.insert("add".into(), Value::Object(pairs(&m.add)));
    }
    if !m.remove.is_empty() {
        out.insert("remove".into(), json!(m.remove));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_orders_exact_then_longer_prefixes_then_method_headers_query() {
        let m = |json: Value| -> HttpRouteMatch { serde_json::from_value(json).unwrap() };
        let mut list = [
            m(json!({"path": {"type": "PathPrefix", "value": "/"}})),
            m(
                json!({"path": {"type": "PathPrefix", "value": "/api"}, "headers": [{"name": "a", "value": "1"}]}),
            ),
            m(json!({"path": {"type": "PathPrefix", "value": "/api/v2"}})),
            m(json!({"path": {"type": "Exact", "value": "/login"}})),
            m(json!({"path": {"type": "PathPrefix", "value": "/api"}, "method": "POST"})),
        ];
        list.sort_by_key(|m| std::cmp::Reverse(Precedence::of(m)));
        let order: Vec<String> = list
            .iter()
            .map(|m| format!("{:?}{:?}", m.path.as_ref().unwrap().value, m.method))
            .collect();
        assert_eq!(
            order,
            [
                "Some(\"/login\")None",
                "Some(\"/api/v2\")None",
                "Some(\"/api\")Some(\"POST\")",
                "Some(\"/api\")None",
                "Some(\"/\")None"
            ]
        );
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let p = |v: &str| HttpPathMatch {
            match_type: Some("PathPrefix".into()),
            value: Some(v.into()),
        };
        assert_eq!(path_match(Some(&p("/"))), json!({"prefix": "/"}));
        assert_eq!(
            path_match(Some(&p("/api/"))),
            json!({"regex": "/api(/.*)?"})
        );
        assert_eq!(
            path_match(Some(&p("/v1.0"))),
            json!({"regex": "/v1\\.0(/.*)?"})
        );
        assert_eq!(path_match(None), json!({"prefix": "/"}));
    }
}
