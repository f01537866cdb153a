//! The ledger for Istio's routing kinds, VirtualService and DestinationRule (mounted by
//! `istio.rs`). Audited against `crates/translate/src/routes`, `clusters`, `policy.rs`,
//! `tcp.rs` and `mtls.rs`.

use super::{applied, refused, unapplied, Row};

pub(super) const VIRTUAL_SERVICE: &[Row] = &[
    applied("hosts", "vs_match"),
    applied("gateways", "gateways_select_the_mesh"),
    applied("exportTo", "export_to_follows_istio"),
    applied(
        "tls[*].match[*].sniHosts",
        "virtual_service_tls_rules_route_by_sni_at_the_sidecar",
    ),
    applied(
        "tls[*].match[*].destinationSubnets",
        "virtual_service_tls_rules_route_by_sni_at_the_sidecar",
    ),
    applied(
        "tls[*].match[*].port",
        "virtual_service_tls_rules_route_by_sni_at_the_sidecar",
    ),
    applied(
        "tls[*].match[*].sourceLabels",
        "source_conditions_are_decided_per_proxy",
    ),
    applied(
        "tls[*].match[*].gateways",
        "source_conditions_are_decided_per_proxy",
    ),
    applied(
        "tls[*].match[*].sourceNamespace",
        "source_conditions_are_decided_per_proxy",
    ),
    applied(
        "tls[*].route[*].weight",
        "virtual_service_tls_rules_route_by_sni_at_the_sidecar",
    ),
    applied("tcp[*].match[*].port", "tcp_routes"),
    applied("tcp[*].match[*].sourceLabels", "tcp_routes"),
    applied(
        "tcp[*].match[*].gateways",
        "source_conditions_are_decided_per_proxy",
    ),
    applied(
        "tcp[*].match[*].sourceNamespace",
        "source_conditions_are_decided_per_proxy",
    ),
    unapplied(
        "tcp[*].match[*].destinationSubnets",
        "destination subnets are not matched, so the rule applies whatever the destination address",
    ),
    unapplied(
        "tcp[*].match[*].sourceSubnet",
        "source subnets are not matched, so the rule applies whatever the client address",
    ),
    applied("tcp[*].route[*].weight", "tcp_routes"),
];

pub(super) const HTTP_ROUTE: &[Row] = &[
    applied("name", "vs_forwarding"),
    applied("route[*].weight", "destination_weights_follow_istio"),
    applied("route[*].headers.request.set", "vs_forwarding"),
    applied("route[*].headers.request.add", "vs_forwarding"),
    applied("route[*].headers.request.remove", "vs_forwarding"),
    applied("route[*].headers.response.set", "vs_forwarding"),
    applied("route[*].headers.response.add", "vs_forwarding"),
    applied("route[*].headers.response.remove", "vs_forwarding"),
    applied("redirect.uri", "redirect_codes_and_ports"),
    unapplied(
        "redirect.prefixRewrite",
        "prefix-replacing redirects are not served; the redirect keeps the path",
    ),
    applied("redirect.authority", "vs_responses"),
    applied("redirect.port", "redirect_codes_and_ports"),
    applied("redirect.derivePort", "redirect_codes_and_ports"),
    applied("redirect.scheme", "vs_responses"),
    applied("redirect.redirectCode", "redirect_codes_and_ports"),
    applied(
        "directResponse.status",
        "direct_responses_envoy_refuses_are_dropped",
    ),
    applied("directResponse.body", "base64_bodies_decode"),
    applied("delegate.name", "vs_delegate"),
    applied(
        "delegate.namespace",
        "delegate_namespace_defaults_to_the_roots",
    ),
    applied("rewrite.uri", "vs_forwarding"),
    applied("rewrite.authority", "vs_forwarding"),
    applied("rewrite.uriRegexRewrite.match", "vs_forwarding"),
    applied("rewrite.uriRegexRewrite.rewrite", "vs_forwarding"),
    applied("timeout", "vs_forwarding"),
    applied("retries.attempts", "attempts_decide_whether_to_retry"),
    applied("retries.perTryTimeout", "attempts_decide_whether_to_retry"),
    applied("retries.retryOn", "retry_on_splits_words_from_status_codes"),
    applied("retries.backoff", "attempts_decide_whether_to_retry"),
    applied(
        "retries.retryIgnorePreviousHosts",
        "attempts_decide_whether_to_retry",
    ),
    unapplied(
        "retries.retryRemoteLocalities",
        "retries are not steered to other localities (locality-aware routing is not served)",
    ),
    applied("fault.delay.fixedDelay", "fault_percentages"),
    refused("fault.delay.exponentialDelay"),
    applied("fault.delay.percentage.value", "vs_responses"),
    applied("fault.delay.percent", "fault_percentages"),
    applied("fault.abort.httpStatus", "vs_responses"),
    applied("fault.abort.grpcStatus", "fault_percentages"),
    refused("fault.abort.http2Error"),
    applied("fault.abort.percentage.value", "fault_percentages"),
    applied("mirrorPercentage.value", "vs_forwarding"),
    applied("mirrorPercent", "deprecated_mirror_percent_and_cors_fields"),
    applied("mirrors[*].percentage.value", "vs_forwarding"),
    applied("corsPolicy.allowOrigins", "vs_responses"),
    applied(
        "corsPolicy.allowOrigin",
        "deprecated_mirror_percent_and_cors_fields",
    ),
    applied("corsPolicy.allowMethods", "vs_responses"),
    applied("corsPolicy.allowHeaders", "vs_responses"),
    applied("corsPolicy.exposeHeaders", "vs_responses"),
    applied("corsPolicy.maxAge", "vs_responses"),
    applied("corsPolicy.allowCredentials", "vs_responses"),
    applied(
        "corsPolicy.unmatchedPreflights",
        "deprecated_mirror_percent_and_cors_fields",
    ),
    applied(
        "headers.request.set",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
    applied(
        "headers.request.add",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
    applied(
        "headers.request.remove",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
    applied(
        "headers.response.set",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
    applied("headers.response.add", "vs_forwarding"),
    applied(
        "headers.response.remove",
        "set_overwrites_add_appends_and_forbidden_headers_are_dropped",
    ),
];

pub(super) const HTTP_MATCH: &[Row] = &[
    unapplied(
        "name",
        "match names are not used (Istio joins them into route names for its statistics)",
    ),
    applied("uri", "uris_become_path_specifiers"),
    applied("scheme", "headers_methods_and_query_parameters"),
    applied("method", "headers_methods_and_query_parameters"),
    applied("authority", "headers_methods_and_query_parameters"),
    applied("headers", "headers_methods_and_query_parameters"),
    applied("withoutHeaders", "headers_methods_and_query_parameters"),
    applied("queryParams", "headers_methods_and_query_parameters"),
    applied(
        "ignoreUriCase",
        "ignore_uri_case_turns_case_sensitivity_off",
    ),
    applied("port", "source_conditions_are_decided_per_proxy"),
    applied("sourceLabels", "source_conditions_are_decided_per_proxy"),
    applied("sourceNamespace", "source_conditions_are_decided_per_proxy"),
    applied("gateways", "source_conditions_are_decided_per_proxy"),
    unapplied(
        "statPrefix",
        "per-route statistics prefixes are not emitted",
    ),
];

pub(super) const DESTINATION: &[Row] = &[
    applied("host", "vs_forwarding"),
    applied("subset", "vs_forwarding"),
    applied("port.number", "vs_forwarding"),
];

pub(super) const DESTINATION_RULE: &[Row] = &[
    applied("host", "dr_load_balancers"),
    applied("subsets[*].name", "endpoints_by_subset_and_locality"),
    applied("subsets[*].labels", "endpoints_by_subset_and_locality"),
    applied("exportTo", "export_to_follows_istio"),
    applied(
        "workloadSelector.matchLabels",
        "destination_rule_workload_selector_picks_proxies",
    ),
];

/// Fields of a TrafficPolicy that a port-level policy does not have.
pub(super) const TRAFFIC_POLICY: &[Row] = &[
    unapplied(
        "tunnel",
        "tunnelling to the destination over HTTP CONNECT is not served",
    ),
    unapplied(
        "proxyProtocol",
        "the PROXY protocol header is not sent to upstreams",
    ),
    applied(
        "retryBudget.percent",
        "destination_rule_retry_budget_becomes_envoys",
    ),
    applied(
        "retryBudget.minRetryConcurrency",
        "destination_rule_retry_budget_becomes_envoys",
    ),
    unapplied(
        "retryBudget.budgetInterval",
        "the retry budget counts the requests in flight only, not those started over an interval",
    ),
];

pub(super) const PORT_LEVEL: &[Row] = &[applied(
    "port.number",
    "more_specific_levels_replace_whole_fields",
)];

/// A traffic policy's load balancer, connection pool, outlier detection and TLS, at any level.
pub(super) const PORT_POLICY: &[Row] = &[
    applied("loadBalancer.simple", "dr_load_balancers"),
    applied("loadBalancer.consistentHash.httpHeaderName", "dr_load_balancers"),
    applied("loadBalancer.consistentHash.httpCookie.name", "dr_load_balancers"),
    applied("loadBalancer.consistentHash.httpCookie.path", "dr_load_balancers"),
    applied("loadBalancer.consistentHash.httpCookie.ttl", "dr_load_balancers"),
    unapplied(
        "loadBalancer.consistentHash.httpCookie.attributes",
        "cookie attributes are not set on the generated cookie",
    ),
    applied("loadBalancer.consistentHash.useSourceIp", "dr_load_balancers"),
    applied(
        "loadBalancer.consistentHash.httpQueryParameterName",
        "dr_load_balancers",
    ),
    applied(
        "loadBalancer.consistentHash.ringHash.minimumRingSize",
        "dr_load_balancers",
    ),
    applied("loadBalancer.consistentHash.maglev.tableSize", "dr_load_balancers"),
    applied(
        "loadBalancer.consistentHash.minimumRingSize",
        "deprecated_minimum_ring_size",
    ),
    applied(
        "loadBalancer.localityLbSetting.enabled",
        "locality_failover_ranks_endpoints_for_each_proxys_locality",
    ),
    applied(
        "loadBalancer.localityLbSetting.failover[*].from",
        "failover_ranks_localities_by_closeness_and_renumbers_them",
    ),
    applied(
        "loadBalancer.localityLbSetting.failover[*].to",
        "failover_ranks_localities_by_closeness_and_renumbers_them",
    ),
    applied(
        "loadBalancer.localityLbSetting.distribute[*].from",
        "locality_distribute_weights_localities_and_envoy_accepts_both",
    ),
    applied(
        "loadBalancer.localityLbSetting.distribute[*].to",
        "locality_distribute_weights_localities_and_envoy_accepts_both",
    ),
    applied(
        "loadBalancer.localityLbSetting.failoverPriority",
        "failover_priority_ranks_endpoints_by_the_labels_they_share_with_the_proxy",
    ),
    unapplied(
        "loadBalancer.warmupDurationSecs",
        "slow-start warm-up of new endpoints is not served",
    ),
    unapplied(
        "loadBalancer.warmup",
        "slow-start warm-up of new endpoints is not served",
    ),
    unapplied(
        "loadBalancer.zoneAwareLbSetting",
        "zone-aware load balancing is not served",
    ),
    unapplied(
        "loadBalancer.backendUtilization",
        "balancing by backend utilization is not served",
    ),
    unapplied(
        "connectionPool.http.http2KeepAlive",
        "HTTP/2 keep-alive pings to upstreams are not sent",
    ),
    unapplied(
        "outlierDetection.outlierDetectionHttpErrorCodes",
        "outlier detection counts 5xx and gateway errors only, not chosen status codes",
    ),
    applied("connectionPool.tcp.maxConnections", "dr_pool_outlier"),
    applied("connectionPool.tcp.connectTimeout", "dr_pool_outlier"),
    applied("connectionPool.tcp.tcpKeepalive.probes", "dr_pool_outlier"),
    applied("connectionPool.tcp.tcpKeepalive.time", "dr_pool_outlier"),
    applied("connectionPool.tcp.tcpKeepalive.interval", "dr_pool_outlier"),
    applied("connectionPool.tcp.maxConnectionDuration", "dr_pool_outlier"),
    applied("connectionPool.tcp.idleTimeout", "tcp_idle_timeout_on_http_clusters"),
    applied("connectionPool.http.http1MaxPendingRequests", "dr_pool_outlier"),
    applied("connectionPool.http.http2MaxRequests", "dr_pool_outlier"),
    applied("connectionPool.http.maxRequestsPerConnection", "dr_pool_outlier"),
    applied("connectionPool.http.maxRetries", "dr_pool_outlier"),
    applied("connectionPool.http.idleTimeout", "dr_pool_outlier"),
    applied("connectionPool.http.h2UpgradePolicy", "dr_pool_outlier"),
    applied("connectionPool.http.useClientProtocol", "dr_pool_outlier"),
    applied("connectionPool.http.maxConcurrentStreams", "dr_pool_outlier"),
    applied("outlierDetection.consecutive5xxErrors", "dr_pool_outlier"),
    applied("outlierDetection.consecutiveGatewayErrors", "dr_pool_outlier"),
    applied(
        "outlierDetection.consecutiveLocalOriginFailures",
        "local_origin_and_deprecated_outlier_fields",
    ),
    applied(
        "outlierDetection.consecutiveErrors",
        "local_origin_and_deprecated_outlier_fields",
    ),
    applied(
        "outlierDetection.splitExternalLocalOriginErrors",
        "local_origin_and_deprecated_outlier_fields",
    ),
    applied("outlierDetection.interval", "dr_pool_outlier"),
    applied("outlierDetection.baseEjectionTime", "dr_pool_outlier"),
    applied("outlierDetection.maxEjectionPercent", "dr_pool_outlier"),
    applied("outlierDetection.minHealthPercent", "dr_pool_outlier"),
    applied("tls.mode", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.clientCertificate", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.privateKey", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.caCertificates", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.subjectAltNames", "destination_rule_tls_modes_win_over_auto_mtls"),
    applied("tls.sni", "destination_rule_tls_modes_win_over_auto_mtls"),
    unapplied(
        "tls.credentialName",
        "certificates from a Kubernetes secret are not read for upstream TLS; give clientCertificate, privateKey and caCertificates as files",
    ),
    unapplied(
        "tls.insecureSkipVerify",
        "verification follows caCertificates alone: without it the server is not verified, with it it always is",
    ),
    unapplied("tls.caCrl", "certificate revocation lists are not checked"),
];
