//! The scenarios run, with their expectations transcribed from each scenario's `.go` file
//! of the conformance suite (`conformance/tests/<name>.go`): the route conditions the suite
//! checks (`GatewayAndHTTPRoutesMustBeAccepted`, `HTTPRouteMustHaveResolvedRefsConditionsTrue`,
//! `HTTPRouteMustHaveCondition`) and every `ExpectedResponse`, in the suite's order.

use super::cases::{get, grpc, Case, Redirect};

/// Expected status of a condition of a route's parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    True,
    False(&'static str),
}

/// A route's conditions on its parent Gateway.
pub struct RouteCheck {
    pub kind: &'static str,
    pub name: &'static str,
    pub gateway: &'static str,
    pub accepted: Cond,
    pub resolved: Option<Cond>,
}

/// Cases, run after `delete` (a manifest document's kind/namespace/name) is removed.
pub struct Phase {
    pub delete: Option<(&'static str, &'static str, &'static str)>,
    pub cases: Vec<Case>,
}

/// A weighted split the suite checks statistically: share of each backend.
pub struct Weights {
    pub case: Case,
    pub shares: Vec<(&'static str, f64)>,
}

pub struct Scenario {
    pub name: &'static str,
    /// Gateway listener ports the scenario's requests use.
    pub ports: Vec<u32>,
    pub routes: Vec<RouteCheck>,
    pub phases: Vec<Phase>,
    pub weights: Option<Weights>,
}

const V1: &str = "infra-backend-v1";
const V2: &str = "infra-backend-v2";
const V3: &str = "infra-backend-v3";

fn http_route(name: &'static str) -> RouteCheck {
    RouteCheck {
        kind: "HTTPRoute",
        name,
        gateway: "same-namespace",
        accepted: Cond::True,
        resolved: Some(Cond::True),
    }
}

fn grpc_route(name: &'static str) -> RouteCheck {
    RouteCheck {
        kind: "GRPCRoute",
        resolved: None,
        ..http_route(name)
    }
}

fn scenario(name: &'static str, routes: Vec<RouteCheck>, cases: Vec<Case>) -> Scenario {
    Scenario {
        name,
        ports: vec![80],
        routes,
        phases: vec![Phase {
            delete: None,
            cases,
        }],
        weights: None,
    }
}

fn redirect(path: &'static str, status: u16, r: Redirect) -> Case {
    get(path).redirect(status, r)
}

fn to(
    scheme: Option<&'static str>,
    host: Option<&'static str>,
    port: Option<&'static str>,
    path: Option<&'static str>,
) -> Redirect {
    Redirect {
        scheme,
        host,
        port,
        path,
    }
}

pub fn all() -> Vec<Scenario> {
    vec![
        scenario(
            "httproute-simple-same-namespace",
            vec![http_route("gateway-conformance-infra-test")],
            vec![get("/").backend(V1)],
        ),
        scenario(
            "httproute-matching",
            vec![http_route("matching")],
            vec![
                get("/").backend(V1),
                get("/example").backend(V1),
                get("/").header("Version", "one").backend(V1),
                get("/v2").backend(V2),
                get("/v2/example").backend(V2),
                get("/").header("Version", "two").backend(V2),
                get("/v2/").backend(V2),
                get("/v2example").backend(V1),
                get("/foo/v2/example").backend(V1),
            ],
        ),
        scenario(
            "httproute-matching-across-routes",
            vec![http_route("matching-part1"), http_route("matching-part2")],
            vec![
                get("/").host("example.com").backend(V1),
                get("/example").host("example.com").backend(V1),
                get("/example").host("example.net").backend(V1),
                get("/example")
                    .host("example.com")
                    .header("Version", "one")
                    .backend(V1),
                get("/v2").host("example.com").backend(V2),
                get("/v2").host("example.net").backend(V1),
                get("/v2/example").host("example.com").backend(V2),
                get("/")
                    .host("example.com")
                    .header("Version", "two")
                    .backend(V2),
            ],
        ),
        scenario(
            "httproute-exact-path-matching",
            vec![http_route("exact-matching")],
            vec![
                get("/one").backend(V1),
                get("/two").backend(V2),
                get("/").status(404),
                get("/one/example").status(404),
                get("/two/").status(404),
                get("/Two").status(404),
            ],
        ),
        scenario(
            "httproute-header-matching",
            vec![http_route("header-matching")],
            vec![
                get("/").header("Version", "one").backend(V1),
                get("/").header("Version", "two").backend(V2),
                get("/")
                    .header("Version", "two")
                    .header("Color", "orange")
                    .backend(V1),
                get("/")
                    .header("Version", "two")
                    .header("Color", "blue")
                    .backend(V2),
                get("/").header("Color", "orange").status(404),
                get("/").header("Some-Other-Header", "one").status(404),
                get("/").header("Color", "blue").backend(V1),
                get("/").header("Color", "green").backend(V1),
                get("/").header("Color", "red").backend(V2),
                get("/").header("Color", "yellow").backend(V2),
                get("/").header("Color", "purple").status(404),
            ],
        ),
        scenario(
            "httproute-query-param-matching",
            vec![http_route("query-param-matching")],
            vec![
                get("/?animal=whale").backend(V1),
                get("/?animal=dolphin").backend(V2),
                get("/?animal=dolphin&color=blue").backend(V3),
                get("/?ANIMAL=Whale").backend(V3),
                get("/?animal=whale&otherparam=irrelevant").backend(V1),
                get("/?animal=dolphin&color=yellow").backend(V2),
                get("/?color=blue").status(404),
                get("/?animal=dog").status(404),
                get("/?animal=whaledolphin").status(404),
                get("/").status(404),
                get("/path1?animal=whale").backend(V1),
                get("/?animal=whale").header("version", "one").backend(V2),
                get("/path2?animal=whale")
                    .header("version", "two")
                    .backend(V3),
                get("/path3?animal=shark").backend(V1),
                get("/path4?animal=kraken")
                    .header("version", "three")
                    .backend(V1),
                get("/?animal=shark").status(404),
                get("/path4?animal=kraken").status(404),
                get("/path5?animal=hydra").backend(V1),
                get("/?animal=hydra").header("version", "four").backend(V3),
            ],
        ),
        scenario(
            "httproute-method-matching",
            vec![http_route("method-matching")],
            vec![
                get("/").method("POST").backend(V1),
                get("/").method("GET").backend(V2),
                get("/").method("HEAD").status(404),
                get("/path1").method("GET").backend(V1),
                get("/").method("PUT").header("version", "one").backend(V2),
                get("/path2")
                    .method("POST")
                    .header("version", "two")
                    .backend(V3),
                get("/path3").method("PATCH").backend(V1),
                get("/path4")
                    .method("DELETE")
                    .header("version", "three")
                    .backend(V1),
                get("/").method("PUT").status(404),
                get("/path4").method("DELETE").status(404),
                get("/path5").method("PATCH").backend(V1),
                get("/")
                    .method("PATCH")
                    .header("version", "four")
                    .backend(V2),
            ],
        ),
        scenario(
            "httproute-path-match-order",
            vec![http_route("path-matching-order")],
            vec![
                get("/match/exact/one").backend(V3),
                get("/match/exact").backend(V2),
                get("/match").backend(V1),
                get("/match/prefix/one/any").backend(V2),
                get("/match/prefix/any").backend(V1),
                get("/match/any").backend(V3),
            ],
        ),
        scenario(
            "httproute-rewrite-path",
            vec![http_route("rewrite-path")],
            vec![
                get("/prefix/one/two").saw_path("/one/two").backend(V1),
                get("/strip-prefix/three").saw_path("/three").backend(V1),
                get("/strip-prefix").saw_path("/").backend(V1),
                get("/full/one/two").saw_path("/one").backend(V1),
                get("/full/rewrite-path-and-modify-headers/test")
                    .header("X-Header-Remove", "remove-val")
                    .header("X-Header-Add-Append", "append-val-1")
                    .header("X-Header-Set", "set-val")
                    .saw_path("/test")
                    .saw("X-Header-Add", "header-val-1")
                    .saw("X-Header-Add-Append", "append-val-1,header-val-2")
                    .saw("X-Header-Set", "set-overwrites-values")
                    .saw_absent("X-Header-Remove")
                    .backend(V1),
                get("/prefix/rewrite-path-and-modify-headers/one")
                    .header("X-Header-Remove", "remove-val")
                    .header("X-Header-Add-Append", "append-val-1")
                    .header("X-Header-Set", "set-val")
                    .saw_path("/prefix/one")
                    .saw("X-Header-Add", "header-val-1")
                    .saw("X-Header-Add-Append", "append-val-1,header-val-2")
                    .saw("X-Header-Set", "set-overwrites-values")
                    .saw_absent("X-Header-Remove")
                    .backend(V1),
            ],
        ),
        scenario(
            "httproute-rewrite-host",
            vec![http_route("rewrite-host")],
            vec![
                get("/one")
                    .host("rewrite.example")
                    .saw_path("/one")
                    .saw_host("one.example.org")
                    .backend(V1),
                get("/two")
                    .host("rewrite.example")
                    .saw_path("/two")
                    .saw_host("example.org")
                    .backend(V2),
                get("/rewrite-host-and-modify-headers")
                    .host("rewrite.example")
                    .header("X-Header-Remove", "remove-val")
                    .header("X-Header-Add-Append", "append-val-1")
                    .saw_path("/rewrite-host-and-modify-headers")
                    .saw_host("test.example.org")
                    .saw("X-Header-Add", "header-val-1")
                    .saw("X-Header-Add-Append", "append-val-1,header-val-2")
                    .saw("X-Header-Set", "set-overwrites-values")
                    .saw_absent("X-Header-Remove")
                    .backend(V2),
            ],
        ),
        scenario(
            "httproute-redirect-path",
            vec![http_route("redirect-path")],
            vec![
                redirect(
                    "/original-prefix/lemon",
                    302,
                    to(None, None, None, Some("/replacement-prefix/lemon")),
                ),
                redirect(
                    "/full/path/original",
                    302,
                    to(None, None, None, Some("/full-path-replacement")),
                ),
                redirect(
                    "/path-and-host",
                    302,
                    to(None, Some("example.org"), None, Some("/replacement-prefix")),
                ),
                redirect(
                    "/path-and-status",
                    301,
                    to(None, None, None, Some("/replacement-prefix")),
                ),
                redirect(
                    "/full-path-and-host",
                    302,
                    to(None, Some("example.org"), None, Some("/replacement-full")),
                ),
                redirect(
                    "/full-path-and-status",
                    301,
                    to(None, None, None, Some("/replacement-full")),
                ),
            ],
        ),
        scenario(
            "httproute-redirect-host-and-status",
            vec![http_route("redirect-host-and-status")],
            vec![
                redirect(
                    "/hostname-redirect",
                    302,
                    to(None, Some("example.org"), None, None),
                ),
                redirect(
                    "/host-and-status",
                    301,
                    to(None, Some("example.org"), None, None),
                ),
            ],
        ),
        scenario(
            "httproute-redirect-port",
            vec![http_route("redirect-port")],
            vec![
                redirect("/port", 302, to(None, None, Some("8083"), None)),
                redirect(
                    "/port-and-host",
                    302,
                    to(None, Some("example.org"), Some("8083"), None),
                ),
                redirect("/port-and-status", 301, to(None, None, Some("8083"), None)),
                redirect(
                    "/port-and-host-and-status",
                    302,
                    to(None, Some("example.org"), Some("8083"), None),
                ),
            ],
        ),
        scenario(
            "httproute-redirect-scheme",
            vec![http_route("redirect-scheme")],
            vec![
                redirect("/scheme", 302, to(Some("https"), None, None, None)),
                redirect(
                    "/scheme-and-host",
                    302,
                    to(Some("https"), Some("example.org"), None, None),
                ),
                redirect(
                    "/scheme-and-status",
                    301,
                    to(Some("https"), None, None, None),
                ),
                redirect(
                    "/scheme-and-host-and-status",
                    302,
                    to(Some("https"), Some("example.org"), None, None),
                ),
            ],
        ),
        scenario(
            "httproute-303-redirect",
            vec![http_route("303-redirect")],
            vec![get("/see-other")
                .method("POST")
                .redirect(303, to(None, None, None, Some("/see-other")))],
        ),
        scenario(
            "httproute-307-redirect",
            vec![http_route("307-redirect")],
            vec![redirect(
                "/temporary",
                307,
                to(None, None, None, Some("/temporary")),
            )],
        ),
        scenario(
            "httproute-308-redirect",
            vec![http_route("308-redirect")],
            vec![redirect(
                "/permanent",
                308,
                to(None, None, None, Some("/permanent")),
            )],
        ),
        scenario(
            "httproute-request-header-modifier",
            vec![http_route("request-header-modifier")],
            vec![
                get("/set")
                    .header("Some-Other-Header", "val")
                    .saw_path("/set")
                    .saw("Some-Other-Header", "val")
                    .saw("X-Header-Set", "set-overwrites-values")
                    .backend(V1),
                get("/set")
                    .header("Some-Other-Header", "val")
                    .header("X-Header-Set", "some-other-value")
                    .saw_path("/set")
                    .saw("Some-Other-Header", "val")
                    .saw("X-Header-Set", "set-overwrites-values")
                    .backend(V1),
                get("/add")
                    .header("Some-Other-Header", "val")
                    .saw_path("/add")
                    .saw("Some-Other-Header", "val")
                    .saw("X-Header-Add", "add-appends-values")
                    .backend(V1),
                get("/add")
                    .header("Some-Other-Header", "val")
                    .header("X-Header-Add", "some-other-value")
                    .saw_path("/add")
                    .saw("Some-Other-Header", "val")
                    .saw("X-Header-Add", "some-other-value,add-appends-values")
                    .backend(V1),
                get("/remove")
                    .header("X-Header-Remove", "val")
                    .saw_path("/remove")
                    .saw_absent("X-Header-Remove")
                    .backend(V1),
                get("/multiple")
                    .header("X-Header-Set-2", "set-val-2")
                    .header("X-Header-Add-2", "add-val-2")
                    .header("X-Header-Remove-2", "remove-val-2")
                    .header("Another-Header", "another-header-val")
                    .saw_path("/multiple")
                    .saw("X-Header-Set-1", "header-set-1")
                    .saw("X-Header-Set-2", "header-set-2")
                    .saw("X-Header-Add-1", "header-add-1")
                    .saw("X-Header-Add-2", "add-val-2,header-add-2")
                    .saw("X-Header-Add-3", "header-add-3")
                    .saw("Another-Header", "another-header-val")
                    .saw_absent("X-Header-Remove-1")
                    .saw_absent("X-Header-Remove-2")
                    .backend(V1),
                get("/case-insensitivity")
                    .header("x-header-set", "original-val-set")
                    .header("x-header-add", "original-val-add")
                    .header("x-header-remove", "original-val-remove")
                    .header("Another-Header", "another-header-val")
                    .saw_path("/case-insensitivity")
                    .saw("X-Header-Set", "header-set")
                    .saw("X-Header-Add", "original-val-add,header-add")
                    .saw("Another-Header", "another-header-val")
                    .saw_absent("x-header-remove")
                    .saw_absent("X-Header-Remove")
                    .backend(V1),
            ],
        ),
        scenario(
            "httproute-response-header-modifier",
            vec![http_route("response-header-modifier")],
            vec![
                get("/set")
                    .backend_sets("Some-Other-Header", "val")
                    .resp("Some-Other-Header", "val")
                    .resp("X-Header-Set", "set-overwrites-values")
                    .backend(V1),
                get("/set")
                    .backend_sets("Some-Other-Header", "val")
                    .backend_sets("X-Header-Set", "some-other-value")
                    .resp("Some-Other-Header", "val")
                    .resp("X-Header-Set", "set-overwrites-values")
                    .backend(V1),
                get("/add")
                    .backend_sets("Some-Other-Header", "val")
                    .resp("Some-Other-Header", "val")
                    .resp("X-Header-Add", "add-appends-values")
                    .backend(V1),
                get("/add")
                    .backend_sets("Some-Other-Header", "val")
                    .backend_sets("X-Header-Add", "some-other-value")
                    .resp("Some-Other-Header", "val")
                    .resp("X-Header-Add", "some-other-value,add-appends-values")
                    .backend(V1),
                get("/remove")
                    .backend_sets("X-Header-Remove", "val")
                    .resp_absent("X-Header-Remove")
                    .backend(V1),
                get("/multiple")
                    .backend_sets("X-Header-Set-2", "set-val-2")
                    .backend_sets("X-Header-Add-2", "add-val-2")
                    .backend_sets("X-Header-Remove-2", "remove-val-2")
                    .backend_sets("Another-Header", "another-header-val")
                    .backend_sets("X-Header-Remove-1", "val")
                    .resp("X-Header-Set-1", "header-set-1")
                    .resp("X-Header-Set-2", "header-set-2")
                    .resp("X-Header-Add-1", "header-add-1")
                    .resp("X-Header-Add-2", "add-val-2,header-add-2")
                    .resp("X-Header-Add-3", "header-add-3")
                    .resp("Another-Header", "another-header-val")
                    .resp_absent("X-Header-Remove-1")
                    .resp_absent("X-Header-Remove-2")
                    .backend(V1),
                get("/case-insensitivity")
                    .backend_sets("x-header-set", "original-val-set")
                    .backend_sets("x-header-add", "original-val-add")
                    .backend_sets("x-header-remove", "original-val-remove")
                    .backend_sets("Another-Header", "another-header-val")
                    .resp("X-Header-Set", "header-set")
                    .resp("X-Header-Add", "original-val-add,header-add")
                    .resp("X-Lowercase-Add", "lowercase-add")
                    .resp("X-Mixedcase-Add-1", "mixedcase-add-1")
                    .resp("X-Mixedcase-Add-2", "mixedcase-add-2")
                    .resp("X-Uppercase-Add", "uppercase-add")
                    .resp("Another-Header", "another-header-val")
                    .resp_absent("x-header-remove")
                    .resp_absent("X-Header-Remove")
                    .backend(V1),
                get("/response-and-request-header-modifiers")
                    .header("X-Header-Remove", "remove-val")
                    .header("X-Header-Add-Append", "append-val-1")
                    .header("X-Header-Echo", "echo")
                    .backend_sets("X-Header-Set-2", "set-val-2")
                    .backend_sets("X-Header-Add-2", "add-val-2")
                    .backend_sets("X-Header-Remove-2", "remove-val-2")
                    .backend_sets("Another-Header", "another-header-val")
                    .backend_sets("X-Header-Remove-1", "remove-val-1")
                    .backend_sets("X-Header-Echo", "echo")
                    .saw_path("/response-and-request-header-modifiers")
                    .saw("X-Header-Add", "header-val-1")
                    .saw("X-Header-Set", "set-overwrites-values")
                    .saw("X-Header-Add-Append", "append-val-1,header-val-2")
                    .saw("X-Header-Echo", "echo")
                    .saw_absent("X-Header-Remove")
                    .resp("X-Header-Set-1", "header-set-1")
                    .resp("X-Header-Set-2", "header-set-2")
                    .resp("X-Header-Add-1", "header-add-1")
                    .resp("X-Header-Add-2", "add-val-2,header-add-2")
                    .resp("Another-Header", "another-header-val")
                    .resp("X-Header-Echo", "echo")
                    .resp_absent("X-Header-Remove-1")
                    .resp_absent("X-Header-Remove-2")
                    .backend(V1),
            ],
        ),
        Scenario {
            name: "httproute-reference-grant",
            ports: vec![80],
            routes: vec![http_route("reference-grant")],
            phases: vec![
                Phase {
                    delete: None,
                    cases: vec![get("/")
                        .backend("web-backend")
                        .ns("gateway-conformance-web-backend")],
                },
                Phase {
                    delete: Some((
                        "ReferenceGrant",
                        "gateway-conformance-web-backend",
                        "reference-grant",
                    )),
                    cases: vec![get("/").status(500)],
                },
            ],
            weights: None,
        },
        scenario(
            "httproute-invalid-cross-namespace-backend-ref",
            vec![RouteCheck {
                resolved: Some(Cond::False("RefNotPermitted")),
                ..http_route("invalid-cross-namespace-backend-ref")
            }],
            vec![get("/").status(500)],
        ),
        scenario(
            "httproute-invalid-reference-grant",
            vec![RouteCheck {
                resolved: Some(Cond::False("RefNotPermitted")),
                ..http_route("reference-grant")
            }],
            vec![get("/").status(500)],
        ),
        scenario(
            "httproute-partially-invalid-via-invalid-reference-grant",
            vec![RouteCheck {
                resolved: Some(Cond::False("RefNotPermitted")),
                ..http_route("invalid-reference-grant")
            }],
            vec![
                get("/v2").status(500),
                get("/")
                    .backend("app-backend-v1")
                    .ns("gateway-conformance-app-backend"),
            ],
        ),
        scenario(
            "httproute-invalid-nonexistent-backendref",
            vec![RouteCheck {
                resolved: Some(Cond::False("BackendNotFound")),
                ..http_route("invalid-nonexistent-backend-ref")
            }],
            vec![get("/").status(500)],
        ),
        scenario(
            "httproute-invalid-backendref-unknown-kind",
            vec![RouteCheck {
                resolved: Some(Cond::False("InvalidKind")),
                ..http_route("invalid-backend-ref-unknown-kind")
            }],
            vec![get("/v2").status(500)],
        ),
        scenario(
            "httproute-omitted-backendrefs",
            vec![http_route("omitted-backendrefs")],
            vec![
                get("/forward").backend(V1),
                get("/omitted-no-forward").status(500),
                get("/empty-no-forward").status(500),
            ],
        ),
        Scenario {
            weights: Some(Weights {
                case: get("/"),
                shares: vec![(V1, 0.7), (V2, 0.3), (V3, 0.0)],
            }),
            ..scenario(
                "httproute-weight",
                vec![http_route("weighted-backends")],
                vec![],
            )
        },
        scenario(
            "grpcroute-exact-method-matching",
            vec![grpc_route("exact-matching")],
            vec![
                grpc("Echo").backend("grpc-infra-backend-v1"),
                grpc("EchoTwo").backend("grpc-infra-backend-v2"),
                grpc("EchoThree").grpc_status("12"),
            ],
        ),
        scenario(
            "grpcroute-header-matching",
            vec![grpc_route("grpc-header-matching")],
            vec![
                grpc("Echo")
                    .header("Version", "one")
                    .backend("grpc-infra-backend-v1"),
                grpc("Echo")
                    .header("Version", "two")
                    .backend("grpc-infra-backend-v2"),
                grpc("Echo")
                    .header("Version", "two")
                    .header("Color", "orange")
                    .backend("grpc-infra-backend-v1"),
                grpc("Echo")
                    .header("Version", "two")
                    .header("Color", "blue")
                    .backend("grpc-infra-backend-v2"),
                grpc("Echo").header("Color", "orange").grpc_status("12"),
                grpc("Echo")
                    .header("Some-Other-Header", "one")
                    .grpc_status("12"),
                grpc("Echo")
                    .header("Color", "blue")
                    .backend("grpc-infra-backend-v1"),
                grpc("Echo")
                    .header("Color", "green")
                    .backend("grpc-infra-backend-v1"),
                grpc("Echo")
                    .header("Color", "red")
                    .backend("grpc-infra-backend-v2"),
                grpc("Echo")
                    .header("Color", "yellow")
                    .backend("grpc-infra-backend-v2"),
                grpc("Echo").header("Color", "purple").grpc_status("12"),
            ],
        ),
        Scenario {
            weights: Some(Weights {
                case: grpc("Echo"),
                shares: vec![
                    ("grpc-infra-backend-v1", 0.7),
                    ("grpc-infra-backend-v2", 0.3),
                    ("grpc-infra-backend-v3", 0.0),
                ],
            }),
            ..scenario(
                "grpcroute-weight",
                vec![grpc_route("weighted-backends")],
                vec![],
            )
        },
    ]
}
