//! Envoy's `RouteAction` → [`Forward`].

use super::{
    ClusterSpecifier, Forward, GrpcTimeout, HashKey, HashPolicy, Mirror, PathRewrite,
    WeightedCluster, DEFAULT_ROUTE_TIMEOUT,
};
use crate::duration::timeout;
use crate::error::{At, Problem};
use crate::fraction::{runtime_fraction, Fraction};
use crate::regex::regex;
use crate::route::headers::{header_ops, PbHeaderOps};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::route::v3::{
    route_action::{
        hash_policy, ClusterSpecifier as PbSpecifier, HashPolicy as PbHashPolicy,
        HostRewriteSpecifier, MaxStreamDuration, RequestMirrorPolicy,
    },
    weighted_cluster::{cluster_weight, ClusterWeight},
    RouteAction as PbRouteAction, WeightedCluster as PbWeighted,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;

pub(crate) fn forward(a: &PbRouteAction, at: &At) -> Result<Forward, Problem> {
    let PbRouteAction {
        cluster_specifier,
        timeout: route_timeout,
        max_stream_duration,
        retry_policy,
        prefix_rewrite,
        regex_rewrite,
        host_rewrite_specifier,
        request_mirror_policies,
        hash_policy,
        // Not implemented: refused below unless at their defaults.
        cluster_not_found_response_code,
        metadata_match,
        path_rewrite_policy,
        path_rewrite,
        append_x_forwarded_host,
        idle_timeout,
        flush_timeout,
        early_data_policy,
        retry_policy_typed_config,
        priority,
        rate_limits,
        include_vh_rate_limits,
        cors,
        max_grpc_timeout,
        grpc_timeout_offset,
        upgrade_configs,
        internal_redirect_policy,
        internal_redirect_action,
        max_internal_redirects,
        hedge_policy,
    } = a;
    refuse_unsupported!(at;
        cluster_not_found_response_code, metadata_match, path_rewrite_policy, path_rewrite,
        append_x_forwarded_host, idle_timeout, flush_timeout, early_data_policy,
        retry_policy_typed_config, priority, rate_limits, include_vh_rate_limits, cors,
        max_grpc_timeout, grpc_timeout_offset, upgrade_configs, internal_redirect_policy,
        internal_redirect_action, max_internal_redirects, hedge_policy,
    );
    let clusters = match cluster_specifier {
        Some(PbSpecifier::Cluster(name)) if !name.is_empty() => {
            ClusterSpecifier::Cluster(name.clone())
        }
        Some(PbSpecifier::Cluster(_)) => {
            return Err(at.field("cluster").invalid("must not be empty"))
        }
        Some(PbSpecifier::WeightedClusters(w)) => weighted(w, &at.field("weighted_clusters"))?,
        Some(PbSpecifier::ClusterHeader(_)) => {
            return Err(at.field("cluster_header").unsupported())
        }
        Some(PbSpecifier::ClusterSpecifierPlugin(_)) => {
            return Err(at.field("cluster_specifier_plugin").unsupported())
        }
        Some(PbSpecifier::InlineClusterSpecifierPlugin(_)) => {
            return Err(at.field("inline_cluster_specifier_plugin").unsupported())
        }
        None => return Err(at.invalid("a cluster specifier is required")),
    };
    if !prefix_rewrite.is_empty() && regex_rewrite.is_some() {
        return Err(at.invalid("only one of prefix_rewrite, regex_rewrite may be set"));
    }
    let path_rewrite = if let Some(rx) = regex_rewrite {
        let (regex, substitution) = regex_substitution(rx, &at.field("regex_rewrite"))?;
        Some(PathRewrite::Regex {
            regex,
            substitution,
        })
    } else {
        (!prefix_rewrite.is_empty()).then(|| PathRewrite::Prefix(prefix_rewrite.clone()))
    };
    let host_rewrite = match host_rewrite_specifier {
        None => None,
        Some(HostRewriteSpecifier::HostRewriteLiteral(h)) => Some(h.clone()),
        Some(HostRewriteSpecifier::AutoHostRewrite(_)) => {
            return Err(at.field("auto_host_rewrite").unsupported())
        }
        Some(HostRewriteSpecifier::HostRewriteHeader(_)) => {
            return Err(at.field("host_rewrite_header").unsupported())
        }
        Some(HostRewriteSpecifier::HostRewritePathRegex(_)) => {
            return Err(at.field("host_rewrite_path_regex").unsupported())
        }
        Some(HostRewriteSpecifier::HostRewrite(_)) => {
            return Err(at.field("host_rewrite").unsupported())
        }
    };
    Ok(Forward {
        clusters,
        timeout: timeout(
            route_timeout,
            Some(DEFAULT_ROUTE_TIMEOUT),
            &at.field("timeout"),
        )?,
        grpc_timeout: max_stream_duration
            .as_ref()
            .map(|m| grpc_timeout(m, &at.field("max_stream_duration")))
            .transpose()?
            .flatten(),
        retry: retry_policy
            .as_ref()
            .map(|r| super::super::retry::retry_policy(r, &at.field("retry_policy")))
            .transpose()?,
        path_rewrite,
        host_rewrite,
        mirrors: request_mirror_policies
            .iter()
            .enumerate()
            .map(|(i, m)| mirror(m, &at.index("request_mirror_policies", i)))
            .collect::<Result<_, _>>()?,
        hash_policy: hash_policy
            .iter()
            .enumerate()
            .map(|(i, h)| hash(h, &at.index("hash_policy", i)))
            .collect::<Result<_, _>>()?,
    })
}

/// Only `grpc_timeout_header_max` is implemented: honour `grpc-timeout`, capped (0 = no cap).
fn grpc_timeout(m: &MaxStreamDuration, at: &At) -> Result<Option<GrpcTimeout>, Problem> {
    let MaxStreamDuration {
        grpc_timeout_header_max,
        max_stream_duration,
        grpc_timeout_header_offset,
    } = m;
    refuse_unsupported!(at; max_stream_duration, grpc_timeout_header_offset);
    Ok(match grpc_timeout_header_max {
        None => None,
        Some(_) => Some(GrpcTimeout {
            max: timeout(
                grpc_timeout_header_max,
                None,
                &at.field("grpc_timeout_header_max"),
            )?,
        }),
    })
}

/// Envoy: at least one cluster, and the weights must sum to more than 0.
fn weighted(w: &PbWeighted, at: &At) -> Result<ClusterSpecifier, Problem> {
    let PbWeighted {
        clusters,
        total_weight,
        runtime_key_prefix,
        random_value_specifier,
    } = w;
    refuse_unsupported!(at; total_weight, runtime_key_prefix, random_value_specifier);
    if clusters.is_empty() {
        return Err(at.field("clusters").invalid("must not be empty"));
    }
    let out = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| cluster_weight(c, &at.index("clusters", i)))
        .collect::<Result<Vec<_>, _>>()?;
    let total: u64 = out.iter().map(|c| u64::from(c.weight)).sum();
    if total == 0 {
        return Err(at
            .field("clusters")
            .invalid("the weights must sum to more than 0"));
    }
    if total > u64::from(u32::MAX) {
        return Err(at
            .field("clusters")
            .invalid("the weights must sum to at most 4294967295"));
    }
    Ok(ClusterSpecifier::Weighted(out))
}

fn cluster_weight(c: &ClusterWeight, at: &At) -> Result<WeightedCluster, Problem> {
    let ClusterWeight {
        name,
        weight,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        host_rewrite_specifier,
        cluster_header,
        metadata_match,
        typed_per_filter_config,
    } = c;
    refuse_unsupported!(at; cluster_header, metadata_match, typed_per_filter_config);
    if name.is_empty() {
        return Err(at.field("name").invalid("must not be empty"));
    }
    let headers = header_ops(
        PbHeaderOps {
            request_add: request_headers_to_add,
            request_remove: request_headers_to_remove,
            response_add: response_headers_to_add,
            response_remove: response_headers_to_remove,
        },
        at,
    )?;
    Ok(WeightedCluster {
        name: name.clone(),
        // An unset weight counts as 0 (never picked).
        weight: weight.as_ref().map_or(0, |w| w.value),
        headers,
        host_rewrite: host_rewrite_specifier.as_ref().map(|h| match h {
            cluster_weight::HostRewriteSpecifier::HostRewriteLiteral(h) => h.clone(),
        }),
    })
}

pub(super) fn regex_substitution(
    rx: &RegexMatchAndSubstitute,
    at: &At,
) -> Result<(crate::Regex, String), Problem> {
    let RegexMatchAndSubstitute {
        pattern,
        substitution,
    } = rx;
    let pattern = pattern
        .as_ref()
        .ok_or_else(|| at.field("pattern").invalid("is required"))?;
    Ok((regex(pattern, &at.field("pattern"))?, substitution.clone()))
}

fn mirror(m: &RequestMirrorPolicy, at: &At) -> Result<Mirror, Problem> {
    let RequestMirrorPolicy {
        cluster,
        runtime_fraction: fraction,
        cluster_header,
        trace_sampled,
        disable_shadow_host_suffix_append,
        request_headers_mutations,
        host_rewrite_literal,
    } = m;
    refuse_unsupported!(at;
        cluster_header, trace_sampled, disable_shadow_host_suffix_append,
        request_headers_mutations, host_rewrite_literal,
    );
    if cluster.is_empty() {
        return Err(at.field("cluster").invalid("must not be empty"));
    }
    Ok(Mirror {
        cluster: cluster.clone(),
        fraction: fraction.as_ref().map_or(Ok(Fraction::ALL), |f| {
            runtime_fraction(f, &at.field("runtime_fraction"))
        })?,
    })
}

fn hash(h: &PbHashPolicy, at: &At) -> Result<HashPolicy, Problem> {
    use hash_policy::PolicySpecifier;
    let PbHashPolicy {
        terminal,
        policy_specifier,
    } = h;
    let key = match policy_specifier {
        Some(PolicySpecifier::Header(hash_policy::Header {
            header_name,
            regex_rewrite,
        })) => {
            refuse_unsupported!(at.field("header"); regex_rewrite);
            if header_name.is_empty() {
                return Err(at
                    .field("header")
                    .field("header_name")
                    .invalid("must not be empty"));
            }
            HashKey::Header(header_name.to_ascii_lowercase())
        }
        Some(PolicySpecifier::Cookie(hash_policy::Cookie {
            name,
            ttl,
            path,
            attributes,
        })) => {
            let at = at.field("cookie");
            refuse_unsupported!(at; attributes);
            if name.is_empty() {
                return Err(at.field("name").invalid("must not be empty"));
            }
            HashKey::Cookie {
                name: name.clone(),
                ttl: ttl
                    .as_ref()
                    .map(|t| crate::duration::duration(t, &at.field("ttl")))
                    .transpose()?,
                path: path.clone(),
            }
        }
        Some(PolicySpecifier::ConnectionProperties(p)) if p.source_ip => HashKey::SourceIp,
        Some(PolicySpecifier::ConnectionProperties(_)) => {
            return Err(at
                .field("connection_properties")
                .field("source_ip")
                .invalid("must be true"))
        }
        Some(PolicySpecifier::QueryParameter(q)) if !q.name.is_empty() => {
            HashKey::QueryParameter(q.name.clone())
        }
        Some(PolicySpecifier::QueryParameter(_)) => {
            return Err(at
                .field("query_parameter")
                .field("name")
                .invalid("must not be empty"))
        }
        Some(PolicySpecifier::FilterState(_)) => {
            return Err(at.field("filter_state").unsupported())
        }
        None => return Err(at.invalid("a hash policy specifier is required")),
    };
    Ok(HashPolicy {
        key,
        terminal: *terminal,
    })
}
