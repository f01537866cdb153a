use super::*;
use crate::route::PathMatch;
use bowline_xds::pb::envoy::config::route::v3::{route_match::PathSpecifier, RouteMatch};
use bowline_xds::pb::google::protobuf::{Duration as PbDuration, Empty};

fn at() -> At {
    At::root("listener").field("typed_config")
}

fn inline(jwks: &str) -> Option<JwksSourceSpecifier> {
    Some(JwksSourceSpecifier::LocalJwks(DataSource {
        specifier: Some(data_source::Specifier::InlineString(jwks.into())),
        ..Default::default()
    }))
}

fn req(t: RequiresType) -> PbRequirement {
    PbRequirement {
        requires_type: Some(t),
    }
}

fn named(p: &str) -> PbRequirement {
    req(RequiresType::ProviderName(p.into()))
}

/// What Istio generates for one jwtRule.
fn istio_like() -> JwtAuthentication {
    let provider = PbProvider {
        issuer: "https://issuer.example".into(),
        audiences: vec!["bookinfo".into()],
        payload_in_metadata: "https://issuer.example".into(),
        jwks_source_specifier: inline(r#"{"keys": []}"#),
        ..Default::default()
    };
    let remote = PbProvider {
        from_headers: vec![JwtHeader {
            name: "X-Jwt".into(),
            value_prefix: String::new(),
        }],
        from_params: vec!["token".into()],
        clock_skew_seconds: 5,
        jwks_source_specifier: Some(JwksSourceSpecifier::RemoteJwks(PbRemoteJwks {
            http_uri: Some(HttpUri {
                uri: "https://keys.example/jwks".into(),
                timeout: Some(PbDuration {
                    seconds: 5,
                    nanos: 0,
                }),
                http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(
                    "outbound|443||keys.example".into(),
                )),
            }),
            ..Default::default()
        })),
        ..Default::default()
    };
    JwtAuthentication {
        providers: [("origins-0".into(), provider), ("origins-1".into(), remote)].into(),
        rules: vec![PbRule {
            r#match: Some(RouteMatch {
                path_specifier: Some(PathSpecifier::Prefix("/".into())),
                ..Default::default()
            }),
            requirement_type: Some(RequirementType::Requires(req(RequiresType::RequiresAny(
                JwtRequirementOrList {
                    requirements: vec![
                        named("origins-0"),
                        named("origins-1"),
                        req(RequiresType::AllowMissing(Empty {})),
                    ],
                },
            )))),
        }],
        bypass_cors_preflight: true,
        ..Default::default()
    }
}

#[test]
fn converts_an_istio_filter() {
    let f = jwt_authn(&istio_like(), &at()).unwrap();
    let p0 = &f.providers["origins-0"];
    assert_eq!(p0.issuer, "https://issuer.example");
    assert_eq!(p0.jwks, JwksSource::Inline(r#"{"keys": []}"#.into()));
    assert_eq!(
        p0.locations,
        vec![
            TokenLocation::bearer(),
            TokenLocation::Param("access_token".into())
        ]
    );
    assert_eq!(p0.clock_skew_seconds, 60);
    let p1 = &f.providers["origins-1"];
    assert_eq!(
        p1.jwks,
        JwksSource::Remote(RemoteJwks {
            uri: "https://keys.example/jwks".into(),
            cluster: "outbound|443||keys.example".into(),
            timeout: Duration::from_secs(5),
            cache_duration: Duration::from_secs(600),
        })
    );
    assert_eq!(
        p1.locations,
        vec![
            TokenLocation::Header {
                name: "x-jwt".into(),
                value_prefix: String::new()
            },
            TokenLocation::Param("token".into())
        ]
    );
    assert_eq!(p1.clock_skew_seconds, 5);
    assert_eq!(f.rules.len(), 1);
    assert_eq!(f.rules[0].route_match.path, PathMatch::Prefix("/".into()));
    assert_eq!(
        f.rules[0].requirement,
        Some(JwtRequirement::RequiresAny(vec![
            JwtRequirement::Provider("origins-0".into()),
            JwtRequirement::Provider("origins-1".into()),
            JwtRequirement::AllowMissing,
        ]))
    );
    assert!(f.bypass_cors_preflight);
}

#[test]
fn refusals_name_the_field() {
    type Edit = fn(&mut JwtAuthentication);
    let table: &[(&str, Edit, &str)] = &[
        (
            "unknown provider",
            |f| f.rules[0].requirement_type = Some(RequirementType::Requires(named("nope"))),
            "listener.typed_config.rules[0].requires.provider_name: provider \"nope\" is not configured",
        ),
        (
            "unknown requirement name",
            |f| f.rules[0].requirement_type = Some(RequirementType::RequirementName("r".into())),
            "listener.typed_config.rules[0].requirement_name: \"r\" is not in requirement_map",
        ),
        (
            "short list",
            |f| {
                f.rules[0].requirement_type = Some(RequirementType::Requires(req(
                    RequiresType::RequiresAll(JwtRequirementAndList {
                        requirements: vec![named("origins-0")],
                    }),
                )))
            },
            "listener.typed_config.rules[0].requires.requires_all: needs at least 2 requirements",
        ),
        (
            "unsupported provider field",
            |f| f.providers.get_mut("origins-0").unwrap().require_expiration = true,
            "unsupported field listener.typed_config.providers[\"origins-0\"].require_expiration",
        ),
        (
            "unsupported filter field",
            |f| f.strip_failure_response = true,
            "unsupported field listener.typed_config.strip_failure_response",
        ),
        (
            "no jwks",
            |f| f.providers.get_mut("origins-0").unwrap().jwks_source_specifier = None,
            "listener.typed_config.providers[\"origins-0\"]: one of local_jwks, remote_jwks is required",
        ),
        (
            "remote without cluster",
            |f| {
                let p = f.providers.get_mut("origins-1").unwrap();
                if let Some(JwksSourceSpecifier::RemoteJwks(r)) = &mut p.jwks_source_specifier {
                    r.http_uri.as_mut().unwrap().http_upstream_type = None;
                }
            },
            "listener.typed_config.providers[\"origins-1\"].remote_jwks.http_uri.cluster: is required",
        ),
        (
            "provider and audiences",
            |f| {
                f.rules[0].requirement_type = Some(RequirementType::Requires(req(
                    RequiresType::ProviderAndAudiences(Default::default()),
                )))
            },
            "unsupported field listener.typed_config.rules[0].requires.provider_and_audiences",
        ),
    ];
    for (name, edit, want) in table {
        let mut f = istio_like();
        edit(&mut f);
        let err = jwt_authn(&f, &at()).unwrap_err().to_string();
        assert_eq!(err, *want, "{name}");
    }
}

#[test]
fn rules_pick_the_first_match_and_skip_cors_preflight() {
    let mut pb = istio_like();
    pb.rules.insert(
        0,
        PbRule {
            r#match: Some(RouteMatch {
                path_specifier: Some(PathSpecifier::Prefix("/health".into())),
                ..Default::default()
            }),
            requirement_type: None,
        },
    );
    let f = jwt_authn(&pb, &at()).unwrap();
    fn head<'a>(
        method: &'a str,
        path: &'a str,
        headers: &'a http::HeaderMap,
    ) -> crate::route::RequestHead<'a> {
        crate::route::RequestHead {
            method,
            authority: "a",
            path,
            scheme: "http",
            headers,
        }
    }
    let plain = http::HeaderMap::new();
    assert_eq!(f.requirement_for(&head("GET", "/healthz", &plain)), None);
    assert!(f.requirement_for(&head("GET", "/api", &plain)).is_some());
    let mut preflight = http::HeaderMap::new();
    preflight.insert("origin", "https://x".parse().unwrap());
    preflight.insert("access-control-request-method", "GET".parse().unwrap());
    assert_eq!(
        f.requirement_for(&head("OPTIONS", "/api", &preflight)),
        None
    );
    assert!(f
        .requirement_for(&head("GET", "/api", &preflight))
        .is_some());
}
