//! Formats Envoy refuses are refused, with a message that names the operator and where it is.

use serde_json::json;

use super::*;

#[test]
fn bad_text_formats_are_refused_with_where_and_why() {
    let cases = [
        (
            "%FOO%",
            "%FOO% at position 0: FOO is not a command operator",
        ),
        (
            "ok %NOPE(x):3% ok",
            "%NOPE(x):3% at position 3: NOPE is not a command operator",
        ),
        (
            "%DYNAMIC_METADATA(istio)%",
            "DYNAMIC_METADATA is an Envoy command operator that bowline-proxy does not support yet",
        ),
        (
            "%REQ_WITHOUT_QUERY(:PATH)%",
            "REQ_WITHOUT_QUERY is an Envoy command operator",
        ),
        ("50% done", "no command operator at position 2"),
        ("trailing %", "no command operator at position 9"),
        ("%protocol%", "no command operator at position 0"),
        ("%PROTOCOL", "no command operator at position 0"),
        ("%REQ(:PATH%", "no command operator at position 0"),
        ("%REQ(:PATH):x%", "no command operator at position 0"),
        ("%REQ(a\n)%", "no command operator at position 0"),
        ("%REQ%", "%REQ% at position 0: REQ requires parameters"),
        ("%REQ()%", "REQ requires parameters"),
        (
            "%RESP(A?B?C)%",
            "More than 1 alternative header specified in token: A?B?C",
        ),
        (
            "%PROTOCOL(x)%",
            "%PROTOCOL(x)% at position 0: PROTOCOL does not take any parameters or length",
        ),
        (
            "%BYTES_SENT%:%DURATION:5%",
            "%DURATION:5% at position 13: DURATION does not take any parameters or length",
        ),
        (
            "%START_TIME:10%",
            "START_TIME does not allow length to be specified.",
        ),
        ("%START_TIME(%Y%n)%", "Format string contains newline"),
        (
            "%START_TIME(%Q)%",
            "time specifier `%Q` at position 0 is not supported",
        ),
        (
            "%RESPONSE_CODE_DETAILS:3%",
            "RESPONSE_CODE_DETAILS does not allow length",
        ),
        ("é%FOO%", "at position 2"),
    ];
    for (format, needle) in cases {
        let err = Format::text(format).expect_err(format);
        assert!(
            err.message.contains(needle),
            "{format:?}: {:?} lacks {needle:?}",
            err.message
        );
        assert!(err.to_string().starts_with("invalid access log format: "));
    }
}

#[test]
fn bad_json_formats_name_the_field() {
    let cases = [
        (json!({"a": "%FOO%"}), "json_format.a: %FOO% at position 0"),
        (
            json!({"a": {"b": "x %REQ%"}}),
            "json_format.a.b: %REQ% at position 2: REQ requires",
        ),
        (
            json!({"a": ["ok", "%%", "%BAD"]}),
            "json_format.a[2]: no command operator at position 0",
        ),
    ];
    for (format, needle) in cases {
        let serde_json::Value::Object(fields) = format else {
            unreachable!()
        };
        let err = Format::json(&fields).expect_err(needle);
        assert!(
            err.message.contains(needle),
            "{:?} lacks {needle:?}",
            err.message
        );
    }
}

#[test]
fn what_envoy_accepts_is_accepted() {
    for format in [
        "",
        "%%",
        "%PROTOCOL()%",
        "%REQ(X-A):0%",
        "%REQ(X-A?)%",
        "%REQ(not a header name)%",
        "%REQ(a)b)%",
        "%START_TIME(%%)%",
        "%RESPONSE_CODE_DETAILS(anything)%",
        "%DOWNSTREAM_PEER_URI_SAN% %UPSTREAM_PEER_URI_SAN%",
    ] {
        Format::text(format).unwrap_or_else(|e| panic!("{format:?}: {e}"));
    }
    // Names no header can have print `-`; a `)` inside the argument is part of the name.
    assert_eq!(
        line(&text("%REQ(not a header name)%"), &AccessRecord::default()),
        "-"
    );
    assert_eq!(line(&text("%START_TIME(%%)%"), &tcp_record()), "%");
}
