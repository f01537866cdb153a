//! JSON formats: Envoy's typed output, sorted keys, nested values, Istio's default.

use serde_json::{json, Value as Json};

use super::*;

fn json_format(v: Json) -> Format {
    let Json::Object(fields) = v else {
        panic!("a JSON format is an object")
    };
    Format::json(&fields).unwrap_or_else(|e| panic!("{e}"))
}

fn parsed(line: &str) -> Json {
    assert!(line.ends_with('\n'), "{line:?} ends with a newline");
    assert_eq!(line.matches('\n').count(), 1, "{line:?} is one line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn istio_default_json_is_envoys_line() {
    let h = http_headers();
    let cases = [
        (
            http_record(&h),
            concat!(
                r#"{"authority":"reviews:9080","bytes_received":12,"bytes_sent":345,"#,
                r#""connection_termination_details":null,"#,
                r#""downstream_local_address":"10.96.0.10:9080","#,
                r#""downstream_remote_address":"10.0.0.5:52000","duration":57,"method":"GET","#,
                r#""path":"/reviews/1?x=y","protocol":"HTTP/1.1","#,
                r#""request_id":"5e1c6a8e-63f4-9b2c-a1d0-7c2f1f0e4b11","#,
                r#""requested_server_name":null,"response_code":200,"#,
                r#""response_code_details":"via_upstream","response_flags":"-","#,
                r#""route_name":"default","start_time":"2026-12-06T22:34:27.123Z","#,
                r#""upstream_cluster":"outbound|9080||reviews.default.svc.cluster.local","#,
                r#""upstream_host":"10.1.2.3:9080","upstream_local_address":"10.0.0.5:41234","#,
                r#""upstream_service_time":"53","upstream_transport_failure_reason":null,"#,
                r#""user_agent":"curl/8.5.0","x_forwarded_for":"10.0.0.9"}"#,
                "\n"
            ),
        ),
        (
            AccessRecord::default(),
            concat!(
                r#"{"authority":null,"bytes_received":0,"bytes_sent":0,"#,
                r#""connection_termination_details":null,"downstream_local_address":null,"#,
                r#""downstream_remote_address":null,"duration":null,"method":null,"path":null,"#,
                r#""protocol":null,"request_id":null,"requested_server_name":null,"#,
                r#""response_code":0,"response_code_details":null,"response_flags":"-","#,
                r#""route_name":null,"start_time":null,"upstream_cluster":null,"#,
                r#""upstream_host":null,"upstream_local_address":null,"#,
                r#""upstream_service_time":null,"upstream_transport_failure_reason":null,"#,
                r#""user_agent":null,"x_forwarded_for":null}"#,
                "\n"
            ),
        ),
    ];
    for (record, want) in &cases {
        let got = line(&Format::istio_default_json(), record);
        assert_eq!(got, *want);
        parsed(&got);
    }
}

#[test]
fn values_keep_envoys_types() {
    let h = http_headers();
    let format = json_format(json!({
        "code": "%RESPONSE_CODE%",
        "ms": "%DURATION%",
        "port": "%DOWNSTREAM_REMOTE_PORT%",
        "status_header": "%RESP(:STATUS)%",
        "flags": "%RESPONSE_FLAGS%",
        "when": "%START_TIME(%s)%",
        "both": "%RESPONSE_CODE% in %DURATION%ms",
        "missing_mixed": "[%REQ(X-NONE)%]",
        "missing": "%REQ(X-NONE)%",
    }));
    let cases = [
        (
            http_record(&h),
            json!({
                "code": 200, "ms": 57, "port": 52000, "status_header": "200", "flags": "-",
                "when": "1796596467", "both": "200 in 57ms", "missing_mixed": "[-]",
                "missing": null,
            }),
        ),
        (
            AccessRecord::default(),
            json!({
                "code": 0, "ms": null, "port": null, "status_header": null, "flags": "-",
                "when": null, "both": "0 in -ms", "missing_mixed": "[-]", "missing": null,
            }),
        ),
    ];
    for (record, want) in &cases {
        assert_eq!(parsed(&line(&format, record)), *want);
    }
}

#[test]
fn every_single_operator_has_the_json_type_its_text_implies() {
    // A lone operator is a number exactly when Envoy's formatter says so, else a string or
    // null; its JSON string is its text form.
    let h = http_headers();
    let record = http_record(&h);
    for source in [
        "%START_TIME%",
        "%DURATION%",
        "%RESPONSE_DURATION%",
        "%REQ(:METHOD)%",
        "%RESP(:STATUS)%",
        "%TRAILER(GRPC-STATUS)%",
        "%PROTOCOL%",
        "%RESPONSE_CODE%",
        "%RESPONSE_FLAGS_LONG%",
        "%BYTES_RECEIVED%",
        "%BYTES_SENT%",
        "%UPSTREAM_HOST%",
        "%UPSTREAM_LOCAL_PORT%",
        "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%",
        "%DOWNSTREAM_REMOTE_PORT%",
        "%UPSTREAM_REMOTE_PORT%",
        "%ROUTE_NAME%",
        "%HOSTNAME%",
    ] {
        let super::super::template::Template { pieces } =
            super::super::template::Template::parse(source).unwrap();
        let [super::super::template::Piece::Operator(op)] = pieces.as_slice() else {
            panic!("{source} is one operator")
        };
        let value = &parsed(&line(&json_format(json!({ "v": source })), &record))["v"];
        let text = line(&text(source), &record);
        if op.is_numeric() {
            assert_eq!(value, &json!(text.parse::<u64>().unwrap()), "{source}");
        } else {
            assert_eq!(value, &json!(text), "{source}");
        }
    }
}

#[test]
fn constants_nesting_and_escaping() {
    let h = Headers {
        request: headers(&[("user-agent", "say \"hi\" \\ é")]),
        response: HeaderMap::new(),
        trailers: HeaderMap::new(),
    };
    let record = AccessRecord {
        request_headers: Some(&h.request),
        response_code_details: Some("a\tb"),
        ..AccessRecord::default()
    };
    let format = json_format(json!({
        "z": "last",
        "a": {"ua": "%REQ(USER-AGENT)%", "nested": {"code": "%RESPONSE_CODE%"}},
        "list": ["%RESPONSE_CODE%", "x", 1, true, null, {"k": "%PROTOCOL%"}],
        "num": 2.5,
        "flag": false,
        "nothing": null,
        "percent": "100%%",
        "quoted \"key\"": "%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)% \"q\"",
    }));
    let got = line(&format, &record);
    assert_eq!(
        got,
        concat!(
            r#"{"a":{"nested":{"code":0},"ua":"say \"hi\" \\ "#,
            "é",
            r#""},"flag":false,"list":[0,"x",1,true,null,{"k":null}],"nothing":null,"#,
            r#""num":2.5,"percent":"100%","quoted \"key\"":"a\tb \"q\"","z":"last"}"#,
            "\n"
        )
    );
    assert_eq!(parsed(&got)["a"]["ua"], json!("say \"hi\" \\ é"));
}

#[test]
fn control_characters_are_escaped() {
    let record = AccessRecord {
        route_name: Some("r\u{1}\n\r\u{8}\u{c}"),
        ..AccessRecord::default()
    };
    let got = line(&json_format(json!({"r": "%ROUTE_NAME%"})), &record);
    assert_eq!(got, "{\"r\":\"r\\u0001\\n\\r\\b\\f\"}\n");
    assert_eq!(parsed(&got)["r"], json!("r\u{1}\n\r\u{8}\u{c}"));
}
