//! VirtualService delegation end to end: `inputs/vs_delegate.yaml` translated for a sidecar
//! and for the ingress gateway (goldens `vs_delegate*.txt`; `UPDATE_GOLDEN=1 cargo test -p
//! bowline-translate --test delegation` rewrites them), then the route configurations loaded
//! by the proxy's model and asked where requests go.

mod support;

use bowline_model::route::{ClusterSpecifier, RequestHead, RouteAction, RouteConfig};
use bowline_translate::Generated;
use std::time::Duration;
use support::render::Sections;
use support::{gateway_proxy, golden, mesh, proxy};

const SERVICES: &str = include_str!("inputs/services.yaml");

/// The route configuration `name` of `generated`, as the proxy loads it.
fn loaded(generated: &Generated, name: &str) -> RouteConfig {
    let rc = generated
        .routes
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no route configuration {name}"));
    RouteConfig::try_from(rc).expect("the proxy accepts it")
}

/// Where a GET goes: `route name -> cluster (timeout)`, `route name -> status`, or `404`.
fn outcome(rc: &RouteConfig, authority: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let req = RequestHead {
        method: "GET",
        authority,
        path,
        scheme: "http",
        headers: &map,
    };
    let Some((_, route)) = rc.select(&req) else {
        return "404".into();
    };
    let what = match &route.action {
        RouteAction::Forward(f) => {
            let ClusterSpecifier::Cluster(c) = &f.clusters else {
                panic!("{}: weighted clusters", route.name)
            };
            let timeout = f.timeout.unwrap_or(Duration::ZERO);
            let retries = f.retry.as_ref().map_or(0, |r| r.num_retries);
            format!("{c} ({timeout:?}, {retries} retries)")
        }
        RouteAction::DirectResponse(d) => d.status.to_string(),
        RouteAction::Redirect(_) => "redirect".into(),
    };
    format!("{} -> {what}", route.name)
}

#[test]
fn vs_delegate() {
    let snap = mesh(&format!(
        "{SERVICES}\n---\n{}",
        include_str!("inputs/vs_delegate.yaml")
    ));
    let productpage = proxy(&snap, "10.10.0.10", "productpage-v1", "default");
    let sidecar = golden(
        "vs_delegate",
        &snap,
        &productpage,
        Sections::ROUTES,
        "9080/reviews",
    );
    let rc = loaded(&sidecar, "9080");
    let team_a = [("x-team", "a")];
    let v = |subset: &str| format!("outbound|9080|{subset}|reviews.default.svc.cluster.local");
    // Delegated rules that set no timeout take the root rule's (3s), as in Istio.
    let cases = [
        ("/v2/health", &team_a[..], "v2-health -> 200".to_string()),
        (
            "/v2/beta/x?beta=1",
            &team_a,
            format!("v2-beta -> {} (3s, 1 retries)", v("v3")),
        ),
        // Without the query the beta rule does not match; `all` has no match of its own and
        // inherits the root's (/v2 + x-team).
        (
            "/v2/beta/x",
            &team_a,
            format!("v2-all -> {} (3s, 2 retries)", v("v2")),
        ),
        // The root's header is part of every delegated match.
        (
            "/v2/anything",
            &[],
            format!("rest -> {} (0ns, 2 retries)", v("v1")),
        ),
        // `off-path` (/v1) conflicts with the root's /v2 and was dropped.
        (
            "/v1",
            &team_a,
            format!("rest -> {} (0ns, 2 retries)", v("v1")),
        ),
        // A missing delegate and an unexported one give their rule nothing.
        (
            "/gone",
            &[],
            format!("rest -> {} (0ns, 2 retries)", v("v1")),
        ),
        (
            "/private",
            &[],
            format!("rest -> {} (0ns, 2 retries)", v("v1")),
        ),
    ];
    for (path, headers, want) in cases {
        assert_eq!(
            outcome(&rc, "reviews:9080", path, headers),
            want,
            "{path} {headers:?}"
        );
    }

    let gw = gateway_proxy(
        &snap,
        &[("istio", "ingressgateway")],
        "80:18080",
        "/etc/bowline/credentials",
    );
    let gateway = golden("vs_delegate_gateway", &snap, &gw, Sections::ROUTES, "");
    let rc = loaded(&gateway, "http.80");
    let details = "outbound|9080||details.prod.svc.cluster.local";
    let productpage = "outbound|9080||productpage.default.svc.cluster.local";
    let cases = [
        // The delegate's short host resolves in its own namespace, prod.
        (
            "/details/api/1",
            format!("details-api -> {details} (0ns, 2 retries)"),
        ),
        (
            "/details/x",
            format!("details-page -> {productpage} (0ns, 2 retries)"),
        ),
        ("/", format!("pages -> {productpage} (0ns, 2 retries)")),
    ];
    for (path, want) in cases {
        assert_eq!(
            outcome(&rc, "bookinfo.example.com", path, &[]),
            want,
            "{path}"
        );
    }
    let Some((_, api)) = rc.select(&RequestHead {
        method: "GET",
        authority: "bookinfo.example.com",
        path: "/details/api/1",
        scheme: "http",
        headers: &http::HeaderMap::new(),
    }) else {
        panic!("no route for /details/api/1")
    };
    let RouteAction::Forward(f) = &api.action else {
        panic!("not forwarded")
    };
    assert!(
        f.path_rewrite.is_some(),
        "the delegate's rewrite applies: {f:?}"
    );
}
