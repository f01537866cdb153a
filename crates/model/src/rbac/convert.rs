//! `envoy.extensions.filters.http.rbac.v3.RBAC` → [`Rbac`].

use super::metadata::metadata_matcher;
use super::{Permission, Policy, Principal, Rbac, RbacAction, RbacRules};
use crate::cidr::cidr;
use crate::error::{At, Problem};
use crate::matcher::{string_matcher, StringMatcher};
use crate::route::header_matcher;
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::rbac::v3::{
    permission, principal, rbac::Action, Permission as PbPermission, Policy as PbPolicy,
    Principal as PbPrincipal, Rbac as PbRules,
};
use bowline_xds::pb::envoy::extensions::filters::http::rbac::v3::Rbac as PbRbac;
use bowline_xds::pb::envoy::extensions::filters::network::rbac::v3::Rbac as PbNetworkRbac;
use bowline_xds::pb::envoy::r#type::matcher::v3::{path_matcher, PathMatcher};

/// The filter's config, located at `rbac` in field paths. Use [`rbac_filter`] inside a
/// connection manager's conversion to get the full path.
impl TryFrom<&PbRbac> for Rbac {
    type Error = Problem;

    fn try_from(r: &PbRbac) -> Result<Rbac, Problem> {
        rbac_filter(r, &At::root("rbac"))
    }
}

pub(crate) fn rbac_filter(r: &PbRbac, at: &At) -> Result<Rbac, Problem> {
    let PbRbac {
        rules,
        rules_stat_prefix,
        matcher,
        shadow_rules,
        shadow_matcher,
        shadow_rules_stat_prefix,
        track_per_rule_stats,
    } = r;
    refuse_unsupported!(at; matcher, shadow_matcher, track_per_rule_stats);
    filter(
        rules,
        shadow_rules,
        rules_stat_prefix,
        shadow_rules_stat_prefix,
        at,
    )
}

/// `envoy.filters.network.rbac`: the same engines, decided once per connection. Its
/// `stat_prefix` is informational here; `enforcement_type` must be the default (decide on
/// the first bytes), `delay_deny` and matchers are refused.
pub(crate) fn network_rbac_filter(r: &PbNetworkRbac, at: &At) -> Result<Rbac, Problem> {
    let PbNetworkRbac {
        rules,
        matcher,
        shadow_rules,
        shadow_matcher,
        shadow_rules_stat_prefix,
        stat_prefix,
        enforcement_type,
        delay_deny,
    } = r;
    refuse_unsupported!(at; matcher, shadow_matcher, enforcement_type, delay_deny);
    filter(
        rules,
        shadow_rules,
        stat_prefix,
        shadow_rules_stat_prefix,
        at,
    )
}

/// What the HTTP and the network filter share: the enforced and the shadow engine.
fn filter(
    rules: &Option<PbRules>,
    shadow_rules: &Option<PbRules>,
    rules_stat_prefix: &str,
    shadow_rules_stat_prefix: &str,
    at: &At,
) -> Result<Rbac, Problem> {
    let engine_at = |r: &Option<PbRules>, field: &str| {
        r.as_ref().map(|r| engine(r, &at.field(field))).transpose()
    };
    Ok(Rbac {
        rules: engine_at(rules, "rules")?,
        shadow_rules: engine_at(shadow_rules, "shadow_rules")?,
        rules_stat_prefix: rules_stat_prefix.to_string(),
        shadow_rules_stat_prefix: shadow_rules_stat_prefix.to_string(),
    })
}

fn engine(r: &PbRules, at: &At) -> Result<RbacRules, Problem> {
    let PbRules {
        action,
        policies,
        audit_logging_options,
    } = r;
    refuse_unsupported!(at; audit_logging_options);
    let action = match Action::try_from(*action) {
        Ok(Action::Allow) => RbacAction::Allow,
        Ok(Action::Deny) => RbacAction::Deny,
        Ok(Action::Log) => RbacAction::Log,
        Err(_) => {
            return Err(at
                .field("action")
                .invalid(format!("unknown value {action}")))
        }
    };
    let policies = policies
        .iter()
        .map(|(name, p)| Ok((name.clone(), policy(p, &at.key("policies", name))?)))
        .collect::<Result<_, Problem>>()?;
    Ok(RbacRules { action, policies })
}

fn policy(p: &PbPolicy, at: &At) -> Result<Policy, Problem> {
    let PbPolicy {
        permissions,
        principals,
        condition,
        checked_condition,
        cel_config,
    } = p;
    refuse_unsupported!(at; condition, checked_condition, cel_config);
    Ok(Policy {
        permissions: non_empty(permissions, "permissions", at, permission)?,
        principals: non_empty(principals, "principals", at, principal)?,
    })
}

/// A repeated field Envoy requires to have at least one element, each converted.
fn non_empty<P, M>(
    list: &[P],
    name: &str,
    at: &At,
    convert: fn(&P, &At) -> Result<M, Problem>,
) -> Result<Vec<M>, Problem> {
    if list.is_empty() {
        return Err(at.field(name).invalid("must have at least one element"));
    }
    list.iter()
        .enumerate()
        .map(|(i, p)| convert(p, &at.index(name, i)))
        .collect()
}

fn permission(p: &PbPermission, at: &At) -> Result<Permission, Problem> {
    use permission::Rule;
    let PbPermission { rule } = p;
    Ok(match rule {
        None => return Err(at.invalid("a rule is required")),
        Some(Rule::AndRules(s)) => Permission::And(non_empty(
            &s.rules,
            "rules",
            &at.field("and_rules"),
            permission,
        )?),
        Some(Rule::OrRules(s)) => Permission::Or(non_empty(
            &s.rules,
            "rules",
            &at.field("or_rules"),
            permission,
        )?),
        Some(Rule::NotRule(p)) => Permission::Not(Box::new(permission(p, &at.field("not_rule"))?)),
        Some(Rule::Any(true)) => Permission::Any,
        Some(Rule::Any(false)) => return Err(at.field("any").invalid("must be true")),
        Some(Rule::Header(h)) => Permission::Header(header_matcher(h, &at.field("header"))?),
        Some(Rule::UrlPath(m)) => Permission::UrlPath(url_path(m, &at.field("url_path"))?),
        Some(Rule::DestinationIp(c)) => {
            Permission::DestinationIp(cidr(c, &at.field("destination_ip"))?)
        }
        Some(Rule::DestinationPort(port)) => {
            Permission::DestinationPort(u16::try_from(*port).map_err(|_| {
                at.field("destination_port")
                    .invalid(format!("{port} is not a port"))
            })?)
        }
        Some(Rule::DestinationPortRange(r)) => {
            let at = at.field("destination_port_range");
            match (u32::try_from(r.start), u32::try_from(r.end)) {
                (Ok(start), Ok(end)) if start <= end && end <= 65536 => {
                    Permission::DestinationPortRange { start, end }
                }
                _ => return Err(at.invalid(format!("{}..{} is not a port range", r.start, r.end))),
            }
        }
        Some(Rule::Metadata(m)) => {
            Permission::Metadata(metadata_matcher(m, &at.field("metadata"))?)
        }
        Some(Rule::RequestedServerName(_)) => {
            return Err(at.field("requested_server_name").unsupported())
        }
        Some(Rule::Matcher(_)) => return Err(at.field("matcher").unsupported()),
        Some(Rule::UriTemplate(_)) => return Err(at.field("uri_template").unsupported()),
        Some(Rule::SourcedMetadata(_)) => return Err(at.field("sourced_metadata").unsupported()),
    })
}

fn principal(p: &PbPrincipal, at: &At) -> Result<Principal, Problem> {
    use principal::Identifier;
    let PbPrincipal { identifier } = p;
    Ok(match identifier {
        None => return Err(at.invalid("an identifier is required")),
        Some(Identifier::AndIds(s)) => {
            Principal::And(non_empty(&s.ids, "ids", &at.field("and_ids"), principal)?)
        }
        Some(Identifier::OrIds(s)) => {
            Principal::Or(non_empty(&s.ids, "ids", &at.field("or_ids"), principal)?)
        }
        Some(Identifier::NotId(p)) => Principal::Not(Box::new(principal(p, &at.field("not_id"))?)),
        Some(Identifier::Any(true)) => Principal::Any,
        Some(Identifier::Any(false)) => return Err(at.field("any").invalid("must be true")),
        Some(Identifier::Authenticated(a)) => {
            let principal::Authenticated { principal_name } = a;
            let at = at.field("authenticated").field("principal_name");
            Principal::Authenticated(
                principal_name
                    .as_ref()
                    .map(|m| string_matcher(m, &at))
                    .transpose()?,
            )
        }
        Some(Identifier::SourceIp(c)) => Principal::SourceIp(cidr(c, &at.field("source_ip"))?),
        Some(Identifier::DirectRemoteIp(c)) => {
            Principal::DirectRemoteIp(cidr(c, &at.field("direct_remote_ip"))?)
        }
        Some(Identifier::RemoteIp(c)) => Principal::RemoteIp(cidr(c, &at.field("remote_ip"))?),
        Some(Identifier::Header(h)) => Principal::Header(header_matcher(h, &at.field("header"))?),
        Some(Identifier::UrlPath(m)) => Principal::UrlPath(url_path(m, &at.field("url_path"))?),
        Some(Identifier::Metadata(m)) => {
            Principal::Metadata(metadata_matcher(m, &at.field("metadata"))?)
        }
        Some(Identifier::FilterState(_)) => return Err(at.field("filter_state").unsupported()),
        Some(Identifier::SourcedMetadata(_)) => {
            return Err(at.field("sourced_metadata").unsupported())
        }
        Some(Identifier::Custom(_)) => return Err(at.field("custom").unsupported()),
    })
}

fn url_path(m: &PathMatcher, at: &At) -> Result<StringMatcher, Problem> {
    let PathMatcher { rule } = m;
    match rule {
        Some(path_matcher::Rule::Path(s)) => string_matcher(s, &at.field("path")),
        None => Err(at.field("path").invalid("is required")),
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
