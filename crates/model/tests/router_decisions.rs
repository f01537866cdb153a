//! The router's decision as a table (`route::decide`): what a selected route does with a
//! request — answer it, redirect it, or forward it to which cluster with which path and
//! `Host` — before any I/O. The proxy acts on it and `bowline explain` prints it.

use bowline_model::route::{
    decide, ClusterSpecifier, DirectResponse, Forward, HeaderOps, PathMatch, PathRewrite, Redirect,
    RedirectPath, RouteAction, RouteMatch, RouterDecision, WeightedCluster,
};
use bowline_model::{DomainMatcher, RequestHead, Route, VirtualHost};
use http::HeaderMap;

fn route(path: PathMatch, action: RouteAction) -> Route {
    Route {
        name: "r".into(),
        matcher: RouteMatch {
            path,
            case_sensitive: true,
            headers: Vec::new(),
            query_params: Vec::new(),
        },
        action,
        headers: HeaderOps::default(),
        fault: None,
        cors: None,
        decorator: None,
    }
}

fn vhost(require_tls: bool) -> VirtualHost {
    VirtualHost {
        name: "v".into(),
        domains: vec![DomainMatcher::parse("*").unwrap()],
        routes: Vec::new(),
        cors: None,
        fault: None,
        require_tls,
    }
}

fn forward(clusters: ClusterSpecifier) -> Forward {
    Forward {
        clusters,
        timeout: None,
        grpc_timeout: None,
        retry: None,
        path_rewrite: None,
        host_rewrite: None,
        mirrors: Vec::new(),
        hash_policy: Vec::new(),
    }
}

fn weighted(name: &str, weight: u32, host: Option<&str>) -> WeightedCluster {
    WeightedCluster {
        name: name.into(),
        weight,
        headers: HeaderOps::default(),
        host_rewrite: host.map(str::to_string),
    }
}

fn head<'a>(path: &'a str, headers: &'a HeaderMap) -> RequestHead<'a> {
    RequestHead {
        method: "GET",
        authority: "reviews:9080",
        path,
        scheme: "http",
        headers,
    }
}

#[test]
fn nothing_selected_is_no_route() {
    let headers = HeaderMap::new();
    assert_eq!(
        decide(None, &head("/", &headers), false, 0),
        RouterDecision::NoRoute
    );
}

#[test]
fn require_tls_redirects_plaintext_to_https_and_lets_tls_through() {
    let headers = HeaderMap::new();
    let r = route(
        PathMatch::Prefix("/".into()),
        RouteAction::DirectResponse(DirectResponse {
            status: 200,
            body: Some(b"hi".to_vec()),
        }),
    );
    let v = vhost(true);
    let req = head("/a?b=1", &headers);
    assert_eq!(
        decide(Some((&v, &r)), &req, false, 0),
        RouterDecision::RequireTls {
            route: &r,
            location: "https://reviews:9080/a?b=1".into()
        }
    );
    assert_eq!(
        decide(Some((&v, &r)), &req, true, 0),
        RouterDecision::DirectResponse {
            route: &r,
            status: 200,
            body: Some(&b"hi"[..])
        }
    );
}

#[test]
fn redirects_carry_their_code_and_location() {
    let headers = HeaderMap::new();
    let r = route(
        PathMatch::Prefix("/old".into()),
        RouteAction::Redirect(Redirect {
            scheme: None,
            host: Some("new.example".into()),
            port: None,
            path: Some(RedirectPath::Prefix("/new".into())),
            code: 302,
            strip_query: false,
        }),
    );
    let v = vhost(false);
    let decision = decide(Some((&v, &r)), &head("/old/x?q=1", &headers), false, 0);
    assert_eq!(
        decision,
        RouterDecision::Redirect {
            route: &r,
            status: 302,
            location: "http://new.example/new/x?q=1".into()
        }
    );
    assert_eq!(decision.route().map(|r| r.name.as_str()), Some("r"));
}

#[test]
fn forwards_pick_by_weight_and_rewrite_path_and_host() {
    let headers = HeaderMap::new();
    let mut fwd = forward(ClusterSpecifier::Weighted(vec![
        weighted("v1", 80, None),
        weighted("v2", 20, Some("v2.internal")),
    ]));
    fwd.path_rewrite = Some(PathRewrite::Prefix("/api".into()));
    fwd.host_rewrite = Some("route.internal".into());
    let r = route(PathMatch::Prefix("/v1".into()), RouteAction::Forward(fwd));
    let v = vhost(false);
    let req = head("/v1/items?page=2", &headers);
    // (roll, cluster, Host): roll % 100 < 80 is v1 (the route's Host), else v2 (its own).
    let cases = [
        (0, "v1", "route.internal"),
        (79, "v1", "route.internal"),
        (80, "v2", "v2.internal"),
        (199, "v2", "v2.internal"),
    ];
    for (roll, cluster, host) in cases {
        let RouterDecision::Forward(up) = decide(Some((&v, &r)), &req, false, roll) else {
            panic!("roll {roll}: a forward")
        };
        assert_eq!(up.cluster, cluster, "roll {roll}");
        assert_eq!(up.weighted.map(|w| w.name.as_str()), Some(cluster));
        assert_eq!(up.host, Some(host), "roll {roll}");
        assert_eq!(up.path.as_deref(), Some("/api/items?page=2"), "query kept");
    }
}

#[test]
fn a_single_cluster_forward_changes_nothing_it_is_not_told_to() {
    let headers = HeaderMap::new();
    let r = route(
        PathMatch::Prefix("/".into()),
        RouteAction::Forward(forward(ClusterSpecifier::Cluster(
            "outbound|9080||reviews".into(),
        ))),
    );
    let v = vhost(false);
    let RouterDecision::Forward(up) = decide(Some((&v, &r)), &head("/x", &headers), false, 7)
    else {
        panic!("a forward")
    };
    assert_eq!(up.cluster, "outbound|9080||reviews");
    assert!(up.weighted.is_none() && up.path.is_none() && up.host.is_none());
}
