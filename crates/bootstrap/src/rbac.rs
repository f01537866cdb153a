//! `envoy.extensions.filters.http.rbac.v3.RBAC`, the HTTP RBAC filter: `rules` and
//! `shadow_rules` engines whose policies combine permissions (what is asked) and principals
//! (who asks), nested through `and`/`or`/`not`.

use bowline_xds::pb::envoy::config::rbac::v3::{
    permission::{self, Rule},
    principal::{self, Identifier},
    rbac::Action,
    Permission, Policy, Principal, Rbac as Rules,
};
use bowline_xds::pb::envoy::extensions::filters::http::rbac::v3::Rbac;

use crate::json::{Field, Result};
use crate::matcher::{header_matcher, path_matcher, string_matcher};

/// `envoy.extensions.filters.http.rbac.v3.RBAC`.
pub(crate) fn rbac(f: Field<'_>) -> Result<Rbac> {
    f.object(|o| {
        o.skip("@type");
        Ok(Rbac {
            rules: o.opt("rules", rules)?,
            shadow_rules: o.opt("shadow_rules", rules)?,
            ..Default::default()
        })
    })
}

/// `envoy.config.rbac.v3.RBAC`: an action and policies by name.
fn rules(f: Field<'_>) -> Result<Rules> {
    f.object(|o| {
        Ok(Rules {
            action: o.or_default("action", |f| {
                f.enumeration(Action::from_str_name, "RBAC.Action")
            })?,
            policies: o
                .or_default("policies", |f| f.map(|_, f| policy(f)))?
                .into_iter()
                .collect(),
            ..Default::default()
        })
    })
}

fn policy(f: Field<'_>) -> Result<Policy> {
    f.object(|o| {
        Ok(Policy {
            permissions: o.or_default("permissions", |f| f.list(permission))?,
            principals: o.or_default("principals", |f| f.list(principal))?,
            ..Default::default()
        })
    })
}

fn permission(f: Field<'_>) -> Result<Permission> {
    let set = |f: Field<'_>| {
        f.object(|o| {
            Ok(permission::Set {
                rules: o.or_default("rules", |f| f.list(permission))?,
            })
        })
    };
    f.object(|o| {
        let rule = f.one_of(vec![
            ("any", o.opt("any", Field::bool)?.map(Rule::Any)),
            ("and_rules", o.opt("and_rules", set)?.map(Rule::AndRules)),
            ("or_rules", o.opt("or_rules", set)?.map(Rule::OrRules)),
            (
                "not_rule",
                o.opt("not_rule", permission)?
                    .map(|p| Rule::NotRule(Box::new(p))),
            ),
            ("header", o.opt("header", header_matcher)?.map(Rule::Header)),
            (
                "url_path",
                o.opt("url_path", path_matcher)?.map(Rule::UrlPath),
            ),
            (
                "destination_port",
                o.opt("destination_port", Field::u32)?
                    .map(Rule::DestinationPort),
            ),
        ])?;
        Ok(Permission { rule })
    })
}

fn principal(f: Field<'_>) -> Result<Principal> {
    let set = |f: Field<'_>| {
        f.object(|o| {
            Ok(principal::Set {
                ids: o.or_default("ids", |f| f.list(principal))?,
            })
        })
    };
    let authenticated = |f: Field<'_>| {
        f.object(|o| {
            Ok(principal::Authenticated {
                principal_name: o.opt("principal_name", string_matcher)?,
            })
        })
    };
    f.object(|o| {
        let identifier = f.one_of(vec![
            ("any", o.opt("any", Field::bool)?.map(Identifier::Any)),
            ("and_ids", o.opt("and_ids", set)?.map(Identifier::AndIds)),
            ("or_ids", o.opt("or_ids", set)?.map(Identifier::OrIds)),
            (
                "not_id",
                o.opt("not_id", principal)?
                    .map(|p| Identifier::NotId(Box::new(p))),
            ),
            (
                "authenticated",
                o.opt("authenticated", authenticated)?
                    .map(Identifier::Authenticated),
            ),
            (
                "header",
                o.opt("header", header_matcher)?.map(Identifier::Header),
            ),
            (
                "url_path",
                o.opt("url_path", path_matcher)?.map(Identifier::UrlPath),
            ),
        ])?;
        Ok(Principal { identifier })
    })
}
