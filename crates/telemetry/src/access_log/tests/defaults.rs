//! Envoy's and Istio's default text formats, line for line.

use super::*;

#[test]
fn envoy_default_renders_envoys_documented_example() {
    // Envoy's docs ("Default format string") show this line; modern Envoy prints the
    // upstream host without the old `tcp://` prefix.
    let h = Headers {
        request: headers(&[
            ("x-forwarded-for", "10.0.35.28"),
            ("user-agent", "nsq2http"),
            ("x-request-id", "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2"),
        ]),
        response: headers(&[("x-envoy-upstream-service-time", "100")]),
        trailers: HeaderMap::new(),
    };
    let record = AccessRecord {
        // 2016-04-15T20:17:00.310Z
        start_time: Some(UNIX_EPOCH + Duration::from_millis(1_460_751_420_310)),
        duration: Some(Duration::from_millis(226)),
        protocol: Some("HTTP/2"),
        method: Some("POST"),
        path: Some("/api/v1/locations"),
        authority: Some("locations"),
        request_headers: Some(&h.request),
        response_headers: Some(&h.response),
        response_code: Some(204),
        bytes_received: 154,
        bytes_sent: 0,
        upstream_host: addr("10.0.2.1:80"),
        ..AccessRecord::default()
    };
    assert_eq!(
        line(&Format::envoy_default(), &record),
        "[2016-04-15T20:17:00.310Z] \"POST /api/v1/locations HTTP/2\" 204 - 154 0 226 100 \
         \"10.0.35.28\" \"nsq2http\" \"cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2\" \"locations\" \
         \"10.0.2.1:80\"\n"
    );
}

#[test]
fn envoy_default_for_each_record() {
    let h = http_headers();
    let cases = [
        (
            http_record(&h),
            "[2026-12-06T22:34:27.123Z] \"GET /reviews/1?x=y HTTP/1.1\" 200 - 12 345 57 53 \
             \"10.0.0.9\" \"curl/8.5.0\" \"5e1c6a8e-63f4-9b2c-a1d0-7c2f1f0e4b11\" \
             \"reviews:9080\" \"10.1.2.3:9080\"\n",
        ),
        (
            tcp_record(),
            "[2026-12-06T22:34:27.123Z] \"- - -\" 0 UC 123 456 1204 - \"-\" \"-\" \"-\" \"-\" \
             \"[fd00::7]:5432\"\n",
        ),
        (
            AccessRecord::default(),
            "[-] \"- - -\" 0 - 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\"\n",
        ),
    ];
    for (record, want) in &cases {
        assert_eq!(line(&Format::envoy_default(), record), *want);
    }
}

#[test]
fn istio_default_renders_a_documented_sidecar_line() {
    // A failed POST through an outbound sidecar as Istio's format prints it: the upstream
    // connection was terminated (UC), so the router added no service-time header.
    let h = Headers {
        request: headers(&[
            ("user-agent", "python-requests/2.31.0"),
            ("x-request-id", "f47ac10b-58cc-4372-a567-0e02b2c3d479"),
        ]),
        response: HeaderMap::new(),
        trailers: HeaderMap::new(),
    };
    let record = AccessRecord {
        // 2026-02-24T14:23:15.456Z
        start_time: Some(UNIX_EPOCH + Duration::from_millis(1_771_942_995_456)),
        duration: Some(Duration::from_millis(30_004)),
        protocol: Some("HTTP/1.1"),
        method: Some("POST"),
        path: Some("/api/orders"),
        authority: Some("order-service.production.svc.cluster.local"),
        request_headers: Some(&h.request),
        response_headers: Some(&h.response),
        response_code: Some(503),
        response_code_details: Some("via_upstream"),
        response_flags: ResponseFlag::UpstreamConnectionTermination.into(),
        bytes_received: 156,
        bytes_sent: 91,
        upstream_host: addr("10.244.3.12:8080"),
        upstream_cluster: Some("outbound|8080||order-service.production.svc.cluster.local"),
        upstream_local_address: addr("10.244.1.5:54321"),
        downstream_local_address: addr("10.96.45.67:8080"),
        downstream_remote_address: addr("10.244.1.5:33210"),
        route_name: Some("default"),
        ..AccessRecord::default()
    };
    assert_eq!(
        line(&Format::istio_default(), &record),
        "[2026-02-24T14:23:15.456Z] \"POST /api/orders HTTP/1.1\" 503 UC via_upstream - \"-\" \
         156 91 30004 - \"-\" \"python-requests/2.31.0\" \"f47ac10b-58cc-4372-a567-0e02b2c3d479\" \
         \"order-service.production.svc.cluster.local\" \"10.244.3.12:8080\" \
         outbound|8080||order-service.production.svc.cluster.local 10.244.1.5:54321 \
         10.96.45.67:8080 10.244.1.5:33210 - default\n"
    );
}

#[test]
fn istio_default_for_each_record() {
    let h = http_headers();
    let cases = [
        (
            http_record(&h),
            "[2026-12-06T22:34:27.123Z] \"GET /reviews/1?x=y HTTP/1.1\" 200 - via_upstream - \
             \"-\" 12 345 57 53 \"10.0.0.9\" \"curl/8.5.0\" \
             \"5e1c6a8e-63f4-9b2c-a1d0-7c2f1f0e4b11\" \"reviews:9080\" \"10.1.2.3:9080\" \
             outbound|9080||reviews.default.svc.cluster.local 10.0.0.5:41234 10.96.0.10:9080 \
             10.0.0.5:52000 - default\n",
        ),
        (
            tcp_record(),
            "[2026-12-06T22:34:27.123Z] \"- - -\" 0 UC - - \"-\" 123 456 1204 - \"-\" \"-\" \
             \"-\" \"-\" \"[fd00::7]:5432\" outbound|5432||db.default.svc.cluster.local \
             [fd00::5]:40100 [fd00::a]:5432 [fd00::5]:39000 \
             outbound_.5432_._.db.default.svc.cluster.local -\n",
        ),
        (
            AccessRecord::default(),
            "[-] \"- - -\" 0 - - - \"-\" 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\" - - - - - -\n",
        ),
    ];
    for (record, want) in &cases {
        assert_eq!(line(&Format::istio_default(), record), *want);
    }
}

#[test]
fn defaults_are_the_sources_strings() {
    // Guards against an edit that drifts from Envoy's and Istio's strings: every operator
    // of each default, in order.
    let operators = |s: &str| -> Vec<String> {
        s.split('%')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        operators(super::super::ENVOY_DEFAULT_TEXT).join(" "),
        "START_TIME REQ(:METHOD) REQ(X-ENVOY-ORIGINAL-PATH?:PATH) PROTOCOL RESPONSE_CODE \
         RESPONSE_FLAGS BYTES_RECEIVED BYTES_SENT DURATION RESP(X-ENVOY-UPSTREAM-SERVICE-TIME) \
         REQ(X-FORWARDED-FOR) REQ(USER-AGENT) REQ(X-REQUEST-ID) REQ(:AUTHORITY) UPSTREAM_HOST"
    );
    assert_eq!(
        operators(super::super::ISTIO_DEFAULT_TEXT).join(" "),
        "START_TIME REQ(:METHOD) REQ(X-ENVOY-ORIGINAL-PATH?:PATH) PROTOCOL RESPONSE_CODE \
         RESPONSE_FLAGS RESPONSE_CODE_DETAILS CONNECTION_TERMINATION_DETAILS \
         UPSTREAM_TRANSPORT_FAILURE_REASON BYTES_RECEIVED BYTES_SENT DURATION \
         RESP(X-ENVOY-UPSTREAM-SERVICE-TIME) REQ(X-FORWARDED-FOR) REQ(USER-AGENT) \
         REQ(X-REQUEST-ID) REQ(:AUTHORITY) UPSTREAM_HOST UPSTREAM_CLUSTER_RAW \
         UPSTREAM_LOCAL_ADDRESS DOWNSTREAM_LOCAL_ADDRESS DOWNSTREAM_REMOTE_ADDRESS \
         REQUESTED_SERVER_NAME ROUTE_NAME"
    );
}
