//! Each operator, in text, for a full HTTP record, a TCP record and an empty one.

use super::*;

#[test]
fn each_operator_prints_as_envoy_does() {
    let h = http_headers();
    let (full, tcp, empty) = (http_record(&h), tcp_record(), AccessRecord::default());
    // (format, HTTP record, TCP record, empty record)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "%START_TIME%",
            "2026-12-06T22:34:27.123Z",
            "2026-12-06T22:34:27.123Z",
            "-",
        ),
        (
            "%START_TIME()%",
            "2026-12-06T22:34:27.123Z",
            "2026-12-06T22:34:27.123Z",
            "-",
        ),
        (
            "%START_TIME(%s.%6f)%",
            "1796596467.123456",
            "1796596467.123456",
            "-",
        ),
        (
            "%START_TIME(%Y%m%d %H:%M:%S %z)%",
            "20261206 22:34:27 +0000",
            "20261206 22:34:27 +0000",
            "-",
        ),
        ("%DURATION%", "57", "1204", "-"),
        ("%RESPONSE_DURATION%", "55", "-", "-"),
        ("%REQ(:METHOD)%", "GET", "-", "-"),
        ("%REQ(:path)%", "/reviews/1?x=y", "-", "-"),
        (
            "%REQ(:AUTHORITY)% %REQ(HOST)%",
            "reviews:9080 reviews:9080",
            "- -",
            "- -",
        ),
        ("%REQ(:SCHEME)%", "http", "-", "-"),
        ("%REQ(USER-AGENT)%", "curl/8.5.0", "-", "-"),
        ("%REQ(user-agent):4%", "curl", "-", "-"),
        ("%REQ(:PATH):0%", "", "-", "-"),
        (
            "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
            "/reviews/1?x=y",
            "-",
            "-",
        ),
        ("%REQ(X-B3-SAMPLED?:PATH)%", "0", "-", "-"),
        ("%REQ(X-MISSING?X-ALSO-MISSING)%", "-", "-", "-"),
        ("%REQ(:PROTOCOL)%", "-", "-", "-"),
        ("%RESP(CONTENT-TYPE)%", "application/json", "-", "-"),
        ("%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "53", "-", "-"),
        ("%RESP(:STATUS)%", "200", "-", "-"),
        ("%RESP(USER-AGENT)%", "-", "-", "-"),
        ("%TRAILER(GRPC-STATUS)%", "0", "-", "-"),
        ("%PROTOCOL%", "HTTP/1.1", "-", "-"),
        ("%RESPONSE_CODE%", "200", "0", "0"),
        ("%RESPONSE_FLAGS%", "-", "UC", "-"),
        (
            "%RESPONSE_FLAGS_LONG%",
            "-",
            "UpstreamConnectionTermination",
            "-",
        ),
        ("%RESPONSE_CODE_DETAILS%", "via_upstream", "-", "-"),
        ("%CONNECTION_TERMINATION_DETAILS%", "-", "-", "-"),
        ("%BYTES_RECEIVED% %BYTES_SENT%", "12 345", "123 456", "0 0"),
        ("%UPSTREAM_HOST%", "10.1.2.3:9080", "[fd00::7]:5432", "-"),
        (
            "%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %UPSTREAM_REMOTE_PORT%",
            "10.1.2.3 9080",
            "fd00::7 5432",
            "- -",
        ),
        (
            "%UPSTREAM_CLUSTER%",
            "outbound|9080||reviews.default.svc.cluster.local",
            "outbound|5432||db.default.svc.cluster.local",
            "-",
        ),
        (
            "%UPSTREAM_CLUSTER_RAW%",
            "outbound|9080||reviews.default.svc.cluster.local",
            "outbound|5432||db.default.svc.cluster.local",
            "-",
        ),
        (
            "%UPSTREAM_LOCAL_ADDRESS%",
            "10.0.0.5:41234",
            "[fd00::5]:40100",
            "-",
        ),
        (
            "%UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%:%UPSTREAM_LOCAL_PORT%",
            "10.0.0.5:41234",
            "fd00::5:40100",
            "-:-",
        ),
        ("%UPSTREAM_TRANSPORT_FAILURE_REASON%", "-", "-", "-"),
        (
            "%DOWNSTREAM_LOCAL_ADDRESS%",
            "10.96.0.10:9080",
            "[fd00::a]:5432",
            "-",
        ),
        (
            "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%",
            "10.96.0.10",
            "fd00::a",
            "-",
        ),
        ("%DOWNSTREAM_LOCAL_PORT%", "9080", "5432", "-"),
        (
            "%DOWNSTREAM_REMOTE_ADDRESS%",
            "10.0.0.5:52000",
            "[fd00::5]:39000",
            "-",
        ),
        (
            "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
            "10.0.0.5",
            "fd00::5",
            "-",
        ),
        ("%DOWNSTREAM_REMOTE_PORT%", "52000", "39000", "-"),
        (
            "%DOWNSTREAM_PEER_URI_SAN%",
            "spiffe://cluster.local/ns/default/sa/productpage",
            "-",
            "-",
        ),
        (
            "%UPSTREAM_PEER_URI_SAN%",
            "spiffe://cluster.local/ns/default/sa/reviews",
            "-",
            "-",
        ),
        (
            "%REQUESTED_SERVER_NAME%",
            "-",
            "outbound_.5432_._.db.default.svc.cluster.local",
            "-",
        ),
        ("%ROUTE_NAME%", "default", "-", "-"),
        ("%HOSTNAME%", "node-1", "-", "-"),
        ("%PROTOCOL()%", "HTTP/1.1", "-", "-"),
        (
            "100%% %%PROTOCOL%%",
            "100% %PROTOCOL%",
            "100% %PROTOCOL%",
            "100% %PROTOCOL%",
        ),
        ("", "", "", ""),
        (
            "no operators\n",
            "no operators\n",
            "no operators\n",
            "no operators\n",
        ),
        ("é %PROTOCOL% ü", "é HTTP/1.1 ü", "é - ü", "é - ü"),
    ];
    for (format, want_http, want_tcp, want_empty) in cases {
        let f = text(format);
        assert_eq!(line(&f, &full), *want_http, "{format} (HTTP)");
        assert_eq!(line(&f, &tcp), *want_tcp, "{format} (TCP)");
        assert_eq!(line(&f, &empty), *want_empty, "{format} (empty)");
    }
}

#[test]
fn edge_values() {
    let weird = headers(&[("x-multi", "first"), ("x-empty", "")]);
    let mut with_repeats = weird.clone();
    with_repeats.append("x-multi", HeaderValue::from_static("second"));
    let mut latin1 = HeaderMap::new();
    latin1.insert("x-latin1", HeaderValue::from_bytes(b"caf\xe9!").unwrap());
    let no_service_time = HeaderMap::new();
    let host_only = headers(&[("host", "h1")]);
    let cases: Vec<(&str, AccessRecord<'_>, &str)> = vec![
        // Envoy logs the first of repeated headers, and an empty value as empty.
        (
            "%REQ(X-MULTI)%",
            AccessRecord {
                request_headers: Some(&with_repeats),
                ..Default::default()
            },
            "first",
        ),
        (
            "[%REQ(X-EMPTY?X-MULTI)%]",
            AccessRecord {
                request_headers: Some(&weird),
                ..Default::default()
            },
            "[]",
        ),
        // Bytes that are not UTF-8 cannot go into a String: U+FFFD stands in.
        (
            "%REQ(X-LATIN1)%",
            AccessRecord {
                request_headers: Some(&latin1),
                ..Default::default()
            },
            "caf\u{fffd}!",
        ),
        // A length cuts bytes, as Envoy does, even inside a character.
        (
            "%REQ(:PATH):2%",
            AccessRecord {
                path: Some("/é"),
                ..Default::default()
            },
            "/\u{fffd}",
        ),
        // Without a recorded authority, a Host header answers both.
        (
            "%REQ(HOST)% %REQ(:AUTHORITY)%",
            AccessRecord {
                request_headers: Some(&host_only),
                ..Default::default()
            },
            "h1 h1",
        ),
        // The recorded service time stands in for a response without Envoy's header.
        (
            "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
            AccessRecord {
                response_headers: Some(&no_service_time),
                upstream_service_time: Some(Duration::from_micros(7_999)),
                ..Default::default()
            },
            "7",
        ),
        (
            "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME):1%",
            AccessRecord {
                upstream_service_time: Some(Duration::from_millis(1234)),
                ..Default::default()
            },
            "1",
        ),
        (
            "%RESP(:STATUS):2%",
            AccessRecord {
                response_code: Some(503),
                ..Default::default()
            },
            "50",
        ),
        // Envoy keeps these one token wide, unless asked not to.
        (
            "%RESPONSE_CODE_DETAILS%",
            AccessRecord {
                response_code_details: Some("upstream reset: connection\ttermination"),
                ..Default::default()
            },
            "upstream_reset:_connection_termination",
        ),
        (
            "%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%",
            AccessRecord {
                response_code_details: Some("a b"),
                ..Default::default()
            },
            "a b",
        ),
        (
            "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
            AccessRecord {
                upstream_transport_failure_reason: Some(
                    "TLS error: 268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
                ),
                ..Default::default()
            },
            "TLS_error:_268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
        ),
        // Envoy prints `-` for empty names.
        (
            "%ROUTE_NAME% %UPSTREAM_CLUSTER% %REQUESTED_SERVER_NAME%",
            AccessRecord {
                route_name: Some(""),
                upstream_cluster: Some(""),
                requested_server_name: Some(""),
                ..Default::default()
            },
            "- - -",
        ),
        // %UPSTREAM_CLUSTER% prints the alt_stat_name; _RAW the name.
        (
            "%UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW%",
            AccessRecord {
                upstream_cluster: Some("outbound|80||a"),
                upstream_cluster_observability_name: Some("a_80"),
                ..Default::default()
            },
            "a_80 outbound|80||a",
        ),
        (
            "%RESPONSE_FLAGS% %RESPONSE_FLAGS_LONG%",
            AccessRecord {
                response_flags: ResponseFlags::from(ResponseFlag::UpstreamRetryLimitExceeded)
                    .with(ResponseFlag::UpstreamConnectionFailure),
                ..Default::default()
            },
            "UF,URX UpstreamConnectionFailure,UpstreamRetryLimitExceeded",
        ),
        (
            "%DURATION%",
            AccessRecord {
                duration: Some(Duration::from_nanos(999_999)),
                ..Default::default()
            },
            "0",
        ),
        (
            "%RESPONSE_CODE%",
            AccessRecord {
                response_code: Some(404),
                ..Default::default()
            },
            "404",
        ),
    ];
    for (format, record, want) in &cases {
        assert_eq!(line(&text(format), record), *want, "{format}");
    }
}
