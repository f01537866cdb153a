//! Listener, connection manager and route conversion follow Envoy's defaults and rules.

// Deprecated fields (`append`, cluster-level `http2_protocol_options`) are tested on purpose.
#![allow(deprecated)]

mod support;

use bowline_model::route::{AppendAction, RedirectPath, RouteAction};
use bowline_model::{DomainMatcher, Listener, NetworkFilter, RouteConfig};
use bowline_xds::pb::envoy::config::core::v3::{
    config_source, AggregatedConfigSource, ConfigSource, HeaderValue, HeaderValueOption,
};
use bowline_xds::pb::envoy::config::route::v3::{
    redirect_action, route, DirectResponseAction, RedirectAction, RetryPolicy, RouteConfiguration,
};
use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{CodecType, RouteSpecifier, UpgradeConfig},
    HttpConnectionManager, Rds,
};
use bowline_xds::pb::google::protobuf::{BoolValue, Duration as PbDuration, UInt32Value};
use std::time::Duration;
use support::{bench_hcm, bench_listener, bench_route_config, listener_with};

fn hcm(
    edit: impl FnOnce(&mut HttpConnectionManager),
) -> Result<bowline_model::HttpConnectionManager, String> {
    let mut h = bench_hcm();
    edit(&mut h);
    let l = Listener::try_from(&listener_with(&h)).map_err(|e| e.to_string())?;
    match &l.filter_chains[0].network {
        NetworkFilter::Http(h) => Ok(h.clone()),
        NetworkFilter::Tcp(_) => unreachable!(),
    }
}

fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: 2,
        ..Default::default()
    }
}

#[test]
fn connection_manager_options() {
    let rds = hcm(|h| {
        h.route_specifier = Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: "9080".into(),
        }))
    })
    .unwrap();
    assert_eq!(rds.route, bowline_model::RouteSource::Rds("9080".into()));
    let from_an_api_server = hcm(|h| {
        h.route_specifier = Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ConfigSource {
                config_source_specifier: Some(
                    config_source::ConfigSourceSpecifier::ApiConfigSource(Default::default()),
                ),
                ..Default::default()
            }),
            route_config_name: "9080".into(),
        }))
    });
    assert!(from_an_api_server.unwrap_err().contains(
        "unsupported field listener.filter_chains[0].filters[0].typed_config.rds.config_source"
    ));
    let upgrades = |enabled: Option<bool>, kind: &str| {
        hcm(|h| {
            h.upgrade_configs = vec![UpgradeConfig {
                upgrade_type: kind.into(),
                enabled: enabled.map(|value| BoolValue { value }),
                ..Default::default()
            }]
        })
    };
    assert!(upgrades(None, "websocket").unwrap().websocket);
    assert!(upgrades(None, "WebSocket").unwrap().websocket);
    assert!(!upgrades(Some(false), "websocket").unwrap().websocket);
    assert!(upgrades(None, "CONNECT")
        .unwrap_err()
        .contains("upgrade_configs[0].upgrade_type"));
    assert!(hcm(|h| h.codec_type = CodecType::Http3 as i32)
        .unwrap_err()
        .contains("codec_type"));
    let h = hcm(|h| {
        h.normalize_path = Some(BoolValue { value: true });
        h.generate_request_id = None;
        h.codec_type = CodecType::Http2 as i32;
    })
    .unwrap();
    assert!(
        h.normalize_path && h.generate_request_id,
        "generate_request_id defaults to true"
    );
    assert_eq!(h.codec, bowline_model::Codec::Http2);
}

#[test]
fn listener_rules() {
    let mut twins = bench_listener();
    let chain = twins.filter_chains[0].clone();
    twins.filter_chains.push(chain.clone());
    assert!(Listener::try_from(&twins)
        .unwrap_err()
        .to_string()
        .contains("filter_chains[1].filter_chain_match: another filter chain has the same match"));
    let mut empty = bench_listener();
    empty.filter_chains.clear();
    assert!(Listener::try_from(&empty)
        .unwrap_err()
        .to_string()
        .contains("no filter chains"));
    let mut only_default = bench_listener();
    only_default.default_filter_chain = only_default.filter_chains.pop();
    only_default.use_original_dst = Some(BoolValue { value: true });
    let l = Listener::try_from(&only_default).unwrap();
    assert!(l.filter_chains.is_empty() && l.default_filter_chain.is_some() && l.use_original_dst);
}

fn route_config(edit: impl FnOnce(&mut RouteConfiguration)) -> Result<RouteConfig, String> {
    let mut rc = bench_route_config();
    edit(&mut rc);
    RouteConfig::try_from(&rc).map_err(|e| e.to_string())
}

fn first_route(
    rc: &mut RouteConfiguration,
) -> &mut bowline_xds::pb::envoy::config::route::v3::Route {
    &mut rc.virtual_hosts[0].routes[0]
}

fn forward_of(rc: &RouteConfig) -> bowline_model::route::Forward {
    match &rc.virtual_hosts[0].routes[0].action {
        RouteAction::Forward(f) => f.clone(),
        other => panic!("{other:?}"),
    }
}

fn set_action(rc: &mut RouteConfiguration, action: route::Action) {
    first_route(rc).action = Some(action);
}

fn edit_forward(
    rc: &mut RouteConfiguration,
    edit: impl FnOnce(&mut bowline_xds::pb::envoy::config::route::v3::RouteAction),
) {
    if let Some(route::Action::Route(a)) = first_route(rc).action.as_mut() {
        edit(a)
    }
}

#[test]
fn route_timeouts_and_retries_take_envoys_defaults() {
    assert_eq!(
        forward_of(&route_config(|_| {}).unwrap()).timeout,
        Some(Duration::from_secs(15))
    );
    let disabled = route_config(|rc| {
        edit_forward(rc, |a| {
            a.timeout = Some(PbDuration {
                seconds: 0,
                nanos: 0,
            })
        })
    });
    assert_eq!(forward_of(&disabled.unwrap()).timeout, None);
    let retry = route_config(|rc| {
        edit_forward(rc, |a| {
            a.retry_policy = Some(RetryPolicy {
                retry_on: " 5xx , gateway-error ".into(),
                ..Default::default()
            })
        })
    });
    let retry = forward_of(&retry.unwrap()).retry.unwrap();
    assert_eq!(retry.num_retries, 1, "Envoy's default");
    assert_eq!(
        retry.host_selection_retry_max_attempts, 1,
        "Envoy's default"
    );
    assert_eq!(retry.backoff.base, Duration::from_millis(25));
    assert_eq!(retry.backoff.max, Duration::from_millis(250));
    assert!(!retry.avoid_previous_hosts);
    let bad_backoff = route_config(|rc| {
        edit_forward(rc, |a| {
            a.retry_policy = Some(RetryPolicy {
                retry_back_off: Some(
                    bowline_xds::pb::envoy::config::route::v3::retry_policy::RetryBackOff {
                        base_interval: Some(PbDuration {
                            seconds: 1,
                            nanos: 0,
                        }),
                        max_interval: Some(PbDuration {
                            seconds: 0,
                            nanos: 1_000_000,
                        }),
                    },
                ),
                ..Default::default()
            })
        })
    });
    assert!(bad_backoff
        .unwrap_err()
        .contains("max_interval: must not be below base_interval"));
}

/// Found by fuzzing: the default `max_interval` (10 × `base_interval`) overflowed
/// `std::time::Duration` and panicked for a huge base.
#[test]
fn a_huge_retry_back_off_base_does_not_overflow_its_default_max() {
    let huge = route_config(|rc| {
        edit_forward(rc, |a| {
            a.retry_policy = Some(RetryPolicy {
                retry_back_off: Some(
                    bowline_xds::pb::envoy::config::route::v3::retry_policy::RetryBackOff {
                        base_interval: Some(PbDuration {
                            seconds: 1_844_674_407_370_955_162,
                            nanos: 0,
                        }),
                        max_interval: None,
                    },
                ),
                ..Default::default()
            })
        })
    });
    let backoff = forward_of(&huge.unwrap()).retry.unwrap().backoff;
    assert_eq!(backoff.max, Duration::MAX);
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn header_mutations_follow_envoys_rules() {
    let ok = route_config(|rc| {
        let r = first_route(rc);
        r.request_headers_to_add.push(header("X-Share", "50%%"));
        r.request_headers_to_add.push(HeaderValueOption {
            append: Some(BoolValue { value: false }),
            ..header("x-set", "1")
        });
        r.response_headers_to_remove.push("server".into());
    })
    .unwrap();
    let ops = &ok.virtual_hosts[0].routes[0].headers;
    assert_eq!(ops.request_add[0].name, "x-share");
    assert_eq!(ops.request_add[0].value, "50%");
    assert_eq!(ops.request_add[0].action, AppendAction::AppendIfExistsOrAdd);
    assert_eq!(
        ops.request_add[1].action,
        AppendAction::OverwriteIfExistsOrAdd
    );
    assert_eq!(ops.response_remove[0], "server");
    let both = route_config(|rc| {
        first_route(rc)
            .request_headers_to_add
            .push(HeaderValueOption {
                append: Some(BoolValue { value: true }),
                append_action: 2,
                ..header("x", "1")
            })
    });
    assert!(both
        .unwrap_err()
        .contains("append and append_action are both set"));
    let pseudo = route_config(|rc| {
        first_route(rc)
            .request_headers_to_add
            .push(header(":path", "/evil"))
    });
    assert!(pseudo
        .unwrap_err()
        .contains("pseudo-headers and host may not be modified"));
    let host = route_config(|rc| {
        first_route(rc)
            .request_headers_to_remove
            .push("Host".into())
    });
    assert!(host.unwrap_err().contains("request_headers_to_remove[0]"));
}

#[test]
fn redirects_and_direct_responses() {
    let r = route_config(|rc| {
        set_action(
            rc,
            route::Action::Redirect(RedirectAction {
                response_code: redirect_action::RedirectResponseCode::PermanentRedirect as i32,
                scheme_rewrite_specifier: Some(
                    redirect_action::SchemeRewriteSpecifier::HttpsRedirect(true),
                ),
                path_rewrite_specifier: Some(redirect_action::PathRewriteSpecifier::PrefixRewrite(
                    "/v2".into(),
                )),
                port_redirect: 8443,
                ..Default::default()
            }),
        )
    })
    .unwrap();
    let RouteAction::Redirect(redirect) = &r.virtual_hosts[0].routes[0].action else {
        panic!()
    };
    assert_eq!(redirect.code, 308);
    assert_eq!(redirect.scheme.as_deref(), Some("https"));
    assert_eq!(redirect.port, Some(8443));
    assert_eq!(redirect.path, Some(RedirectPath::Prefix("/v2".into())));
    let body = |size: usize, max: Option<u32>| {
        route_config(|rc| {
            rc.max_direct_response_body_size_bytes = max.map(|value| UInt32Value { value });
            set_action(
                rc,
                route::Action::DirectResponse(DirectResponseAction {
                    status: 418,
                    body: Some(bowline_xds::pb::envoy::config::core::v3::DataSource {
                        specifier: Some(bowline_xds::pb::envoy::config::core::v3::data_source::Specifier::InlineString(
                            "x".repeat(size),
                        )),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            )
        })
    };
    assert!(body(4096, None).is_ok());
    assert!(body(4097, None)
        .unwrap_err()
        .contains("max_direct_response_body_size_bytes (4096)"));
    assert!(body(10_000, Some(10_000)).is_ok());
    let status = route_config(|rc| {
        set_action(
            rc,
            route::Action::DirectResponse(DirectResponseAction {
                status: 600,
                ..Default::default()
            }),
        )
    });
    assert!(status
        .unwrap_err()
        .contains("direct_response.status: 600 is not in 200..600"));
}

#[test]
fn domains_parse_like_envoy() {
    let cases = [
        ("*", Some(DomainMatcher::Any)),
        (
            "Reviews:9080",
            Some(DomainMatcher::Exact("reviews:9080".into())),
        ),
        (
            "*.example.com",
            Some(DomainMatcher::Suffix(".example.com".into())),
        ),
        (
            "*-v1.example.com",
            Some(DomainMatcher::Suffix("-v1.example.com".into())),
        ),
        ("web.*", Some(DomainMatcher::Prefix("web.".into()))),
        ("a*b", Some(DomainMatcher::Exact("a*b".into()))),
        ("", None),
    ];
    for (raw, want) in cases {
        assert_eq!(DomainMatcher::parse(raw), want, "{raw:?}");
    }
}

#[test]
fn an_rbac_filter_before_the_router_converts() {
    use bowline_xds::pb::envoy::config::rbac::v3::{
        permission, principal, Permission, Policy, Principal, Rbac as Rules,
    };
    use bowline_xds::pb::envoy::extensions::filters::http::rbac::v3::Rbac;
    use bowline_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        http_filter, HttpFilter,
    };
    let rbac = |permission: permission::Rule| {
        let policy = Policy {
            permissions: vec![Permission {
                rule: Some(permission),
            }],
            principals: vec![Principal {
                identifier: Some(principal::Identifier::Any(true)),
            }],
            ..Default::default()
        };
        let config = Rbac {
            rules: Some(Rules {
                action: 1,
                policies: [("ns[foo]-policy[bar]-rule[0]".to_string(), policy)].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        hcm(|h| {
            h.http_filters.insert(
                0,
                HttpFilter {
                    name: "envoy.filters.http.rbac".into(),
                    config_type: Some(http_filter::ConfigType::TypedConfig(bowline_xds::pack(
                        &config,
                    ))),
                    ..Default::default()
                },
            )
        })
    };
    let h = rbac(permission::Rule::DestinationPort(8080)).unwrap();
    let bowline_model::HttpFilter::Rbac(filter) = &h.http_filters[0] else {
        panic!("{:?}", h.http_filters)
    };
    assert_eq!(
        filter.rules.as_ref().unwrap().action,
        bowline_model::RbacAction::Deny
    );
    let err = rbac(permission::Rule::RequestedServerName(Default::default())).unwrap_err();
    assert!(
        err.contains("unsupported field listener.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules.policies[\"ns[foo]-policy[bar]-rule[0]\"].permissions[0].requested_server_name"),
        "{err}"
    );
}
