//! Conversion: what converts, and what is refused by name.

use super::*;
use bowline_xds::pb::envoy::config::core::v3::CidrRange;
use bowline_xds::pb::envoy::config::rbac::v3::permission::Rule;
use bowline_xds::pb::envoy::config::rbac::v3::principal::{Authenticated, Identifier};
use bowline_xds::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, StringMatcher as PbStringMatcher,
};
use bowline_xds::pb::google::protobuf::UInt32Value;

fn perm(rule: Rule) -> PbPermission {
    PbPermission { rule: Some(rule) }
}

fn id(identifier: Identifier) -> PbPrincipal {
    PbPrincipal {
        identifier: Some(identifier),
    }
}

fn filter(action: Action, policy: PbPolicy) -> PbRbac {
    PbRbac {
        rules: Some(PbRules {
            action: action as i32,
            policies: [("ns[foo]-policy[bar]-rule[0]".to_string(), policy)].into(),
            audit_logging_options: None,
        }),
        ..Default::default()
    }
}

fn prefix(p: &str) -> PbStringMatcher {
    PbStringMatcher {
        ignore_case: false,
        match_pattern: Some(MatchPattern::Prefix(p.into())),
    }
}

#[test]
fn a_typical_istio_policy_converts() {
    let policy = PbPolicy {
        permissions: vec![perm(Rule::AndRules(permission::Set {
            rules: vec![
                perm(Rule::UrlPath(PathMatcher {
                    rule: Some(path_matcher::Rule::Path(prefix("/api/"))),
                })),
                perm(Rule::DestinationPort(8080)),
                perm(Rule::NotRule(Box::new(perm(Rule::DestinationIp(
                    CidrRange {
                        address_prefix: "10.0.0.0".into(),
                        prefix_len: Some(UInt32Value { value: 8 }),
                    },
                ))))),
            ],
        }))],
        principals: vec![id(Identifier::OrIds(principal::Set {
            ids: vec![
                id(Identifier::Authenticated(Authenticated {
                    principal_name: Some(prefix("spiffe://cluster.local/ns/foo/")),
                })),
                id(Identifier::Any(true)),
            ],
        }))],
        ..Default::default()
    };
    let rbac = Rbac::try_from(&filter(Action::Deny, policy)).unwrap();
    let rules = rbac.rules.unwrap();
    assert_eq!(rules.action, RbacAction::Deny);
    let p = &rules.policies["ns[foo]-policy[bar]-rule[0]"];
    let Permission::And(list) = &p.permissions[0] else {
        panic!("{:?}", p.permissions)
    };
    assert_eq!(list[1], Permission::DestinationPort(8080));
    assert!(matches!(&p.principals[0], Principal::Or(ids) if ids.len() == 2));
}

#[test]
fn no_rules_means_no_enforcement() {
    let rbac = Rbac::try_from(&PbRbac::default()).unwrap();
    assert_eq!(rbac.rules, None);
    assert_eq!(rbac.shadow_rules, None);
}

#[test]
fn what_envoy_refuses_or_we_do_not_implement_is_named() {
    let any = || perm(Rule::Any(true));
    let anyone = || id(Identifier::Any(true));
    let with = |permissions: Vec<PbPermission>, principals: Vec<PbPrincipal>| PbPolicy {
        permissions,
        principals,
        ..Default::default()
    };
    let at = "rbac.rules.policies[\"ns[foo]-policy[bar]-rule[0]\"]";
    let cases = [
        (
            with(vec![], vec![anyone()]),
            format!("{at}.permissions: must have at least one element"),
        ),
        (
            with(vec![any()], vec![]),
            format!("{at}.principals: must have at least one element"),
        ),
        (
            with(vec![perm(Rule::Any(false))], vec![anyone()]),
            format!("{at}.permissions[0].any: must be true"),
        ),
        (
            with(
                vec![perm(Rule::OrRules(permission::Set { rules: vec![] }))],
                vec![anyone()],
            ),
            format!("{at}.permissions[0].or_rules.rules: must have at least one element"),
        ),
        (
            with(
                vec![perm(Rule::RequestedServerName(prefix("a")))],
                vec![anyone()],
            ),
            format!("unsupported field {at}.permissions[0].requested_server_name"),
        ),
        (
            with(vec![perm(Rule::DestinationPort(70000))], vec![anyone()]),
            format!("{at}.permissions[0].destination_port: 70000 is not a port"),
        ),
        (
            with(
                vec![any()],
                vec![id(Identifier::FilterState(Default::default()))],
            ),
            format!("unsupported field {at}.principals[0].filter_state"),
        ),
        (
            PbPolicy {
                condition: Some(Default::default()),
                ..with(vec![any()], vec![anyone()])
            },
            format!("unsupported field {at}.condition"),
        ),
    ];
    for (policy, want) in cases {
        let err = Rbac::try_from(&filter(Action::Allow, policy)).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    let matcher = PbRbac {
        matcher: Some(Default::default()),
        ..Default::default()
    };
    assert_eq!(
        Rbac::try_from(&matcher).unwrap_err().to_string(),
        "unsupported field rbac.matcher"
    );
}
