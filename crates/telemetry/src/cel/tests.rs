//! Table tests that read like the CEL spec, Istio's Telemetry API examples, the parser's
//! errors and limits, and property tests that nothing panics.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;

type Attrs = HashMap<String, Value>;

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn attrs(pairs: &[(&str, Value)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn eval_in(text: &str, attrs: &Attrs) -> Result<Value, EvalError> {
    Expr::parse(text)
        .unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"))
        .eval(attrs)
}

fn eval(text: &str) -> Result<Value, EvalError> {
    eval_in(text, &Attrs::new())
}

/// Checks each expression's value (against no attributes).
fn check(cases: &[(&str, Value)]) {
    for (text, want) in cases {
        assert_eq!(eval(text).as_ref(), Ok(want), "{text}");
    }
}

/// Checks each expression is true (against no attributes).
fn check_true(cases: &[&str]) {
    for text in cases {
        assert_eq!(eval(text), Ok(Value::Bool(true)), "{text}");
    }
}

/// Checks each expression's error (against no attributes).
fn check_err(cases: &[(&str, EvalError)]) {
    for (text, want) in cases {
        assert_eq!(eval(text).as_ref(), Err(want), "{text}");
    }
}

fn overload(what: &str) -> EvalError {
    EvalError::NoMatchingOverload(what.to_owned())
}

fn invalid(text: &str) -> bool {
    matches!(eval(text), Err(EvalError::InvalidArgument(_)))
}

#[test]
fn literals() {
    check(&[
        ("42", Value::Int(42)),
        ("-7", Value::Int(-7)),
        ("0x1F", Value::Int(31)),
        ("-0x10", Value::Int(-16)),
        ("12u", Value::Uint(12)),
        ("0xFFU", Value::Uint(255)),
        ("9223372036854775807", Value::Int(i64::MAX)),
        ("-9223372036854775808", Value::Int(i64::MIN)),
        ("18446744073709551615u", Value::Uint(u64::MAX)),
        ("1.5", Value::Double(1.5)),
        ("1e3", Value::Double(1000.0)),
        ("2.5E-1", Value::Double(0.25)),
        (".5", Value::Double(0.5)),
        ("-1.5", Value::Double(-1.5)),
        ("'single'", s("single")),
        ("\"double\"", s("double")),
        ("'it\\'s' + \"\\\"q\\\"\"", s("it's\"q\"")),
        ("'a\\nb\\tc\\\\'", s("a\nb\tc\\")),
        ("'\\x41\\u00e9\\101\\U0001F600'", s("AéA😀")),
        ("r'\\d+\\.'", s("\\d+\\.")),
        ("R\"\\n\"", s("\\n")),
        ("'''two\nlines'''", s("two\nlines")),
        ("\"\"\"say \"hi\" \"\"\"", s("say \"hi\" ")),
        ("b'ab\\xff\\000'", Value::Bytes(vec![b'a', b'b', 0xff, 0])),
        ("b'\\u00e9'", Value::Bytes("é".as_bytes().to_vec())),
        ("br'\\x'", Value::Bytes(b"\\x".to_vec())),
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("null", Value::Null),
        ("[]", Value::List(vec![])),
        (
            "[1, 'a', [true],]",
            Value::List(vec![
                Value::Int(1),
                s("a"),
                Value::List(vec![Value::Bool(true)]),
            ]),
        ),
        ("{}", Value::Map(vec![])),
        (
            "{'a': 1, 2: 2u, true: null,}",
            Value::Map(vec![
                (s("a"), Value::Int(1)),
                (Value::Int(2), Value::Uint(2)),
                (Value::Bool(true), Value::Null),
            ]),
        ),
        ("// a comment\n  1 // and another", Value::Int(1)),
        (".x == 1 || true", Value::Bool(true)),
    ]);
    assert!(invalid("{1.5: 'x'}"), "double keys are not allowed");
    assert!(
        invalid("{'a': 1, 'a': 2}"),
        "duplicate keys are not allowed"
    );
    assert!(invalid("{1: 1, 1u: 2}"), "1 and 1u are the same key");
}

#[test]
fn precedence() {
    check(&[
        ("1 + 2 * 3 == 7", Value::Bool(true)),
        ("!true || true", Value::Bool(true)),
        ("(1 + 2) * 3", Value::Int(9)),
        ("10 - 4 - 3", Value::Int(3)),
        ("2 * 3 % 4", Value::Int(2)),
        ("100 / 10 / 5", Value::Int(2)),
        ("1 < 2 == true", Value::Bool(true)),
        ("1 + 1 in [2]", Value::Bool(true)),
        ("true || false && false", Value::Bool(true)),
        ("false && false || true", Value::Bool(true)),
        ("true ? 1 : 2 + 3", Value::Int(1)),
        ("false ? 1 : 2 + 3", Value::Int(5)),
        ("false ? 1 : true ? 2 : 3", Value::Int(2)),
        ("1 == 1 ? 'yes' : 'no'", s("yes")),
        ("-2 * 3", Value::Int(-6)),
        ("-(2 + 3)", Value::Int(-5)),
        ("--5", Value::Int(5)),
        ("!!true", Value::Bool(true)),
        ("!false && !false", Value::Bool(true)),
        ("-[1, 2][1]", Value::Int(-2)),
        ("'abc'.size() * 2", Value::Int(6)),
    ]);
}

#[test]
fn logic_short_circuits_and_absorbs_errors() {
    // `x` is not an attribute: evaluating it is an error.
    check(&[
        ("false && x", Value::Bool(false)),
        ("x && false", Value::Bool(false)),
        ("true || x", Value::Bool(true)),
        ("x || true", Value::Bool(true)),
        ("1 / 0 == 1 || true", Value::Bool(true)),
        ("false && 'not a bool'", Value::Bool(false)),
        ("'not a bool' || true", Value::Bool(true)),
        ("true && true", Value::Bool(true)),
        ("false || false", Value::Bool(false)),
        ("true ? 1 : x", Value::Int(1)),
        ("false ? x : 2", Value::Int(2)),
        ("x || y || z || true", Value::Bool(true)),
    ]);
    let no_x = EvalError::NoSuchAttribute("x".to_owned());
    check_err(&[
        ("true && x", no_x.clone()),
        ("x && true", no_x.clone()),
        ("x || false", no_x.clone()),
        ("x && y", no_x.clone()),
        ("x ? 1 : 2", no_x),
        ("true && 1", overload("_&&_(bool, int)")),
        ("false || 'a'", overload("_||_(bool, string)")),
        ("1 ? 2 : 3", overload("_?_:_(int)")),
        ("!1", overload("!_(int)")),
    ]);
}

#[test]
fn arithmetic() {
    check(&[
        ("7 / 2", Value::Int(3)),
        ("-7 / 2", Value::Int(-3)),
        ("-7 % 3", Value::Int(-1)),
        ("7u / 2u", Value::Uint(3)),
        ("7u % 4u", Value::Uint(3)),
        ("7.0 / 2.0", Value::Double(3.5)),
        ("1.0 / 0.0", Value::Double(f64::INFINITY)),
        ("0.5 * 4.0 - 1.0", Value::Double(1.0)),
        ("'ab' + 'cd'", s("abcd")),
        ("b'a' + b'b'", Value::Bytes(b"ab".to_vec())),
        (
            "[1] + [2, 3]",
            Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        ),
    ]);
    check_err(&[
        ("9223372036854775807 + 1", EvalError::Overflow),
        ("-9223372036854775808 - 1", EvalError::Overflow),
        ("-9223372036854775808 / -1", EvalError::Overflow),
        ("-9223372036854775808 % -1", EvalError::Overflow),
        ("-(-9223372036854775808)", EvalError::Overflow),
        ("4611686018427387904 * 2", EvalError::Overflow),
        ("0u - 1u", EvalError::Overflow),
        ("18446744073709551615u + 1u", EvalError::Overflow),
        ("1 / 0", EvalError::DivisionByZero),
        ("1 % 0", EvalError::DivisionByZero),
        ("1u / 0u", EvalError::DivisionByZero),
        ("1 + 1.0", overload("_+_(int, double)")),
        ("1 + 1u", overload("_+_(int, uint)")),
        ("1 * 2u", overload("_*_(int, uint)")),
        ("'a' + 1", overload("_+_(string, int)")),
        ("5.0 % 2.0", overload("_%_(double, double)")),
        ("-'a'", overload("-_(string)")),
        ("-1u", overload("-_(uint)")),
    ]);
}

#[test]
fn comparisons_across_numeric_types() {
    check_true(&[
        "1 == 1.0",
        "1 == 1u",
        "1u == 1.0",
        "2 > 1.5",
        "1.5 < 2",
        "2u >= 2",
        "-1 < 0u",
        "0u > -1",
        "1 != 1.5",
        "!(1 < 1u)",
        "9223372036854775807 < 9223372036854775808.0",
        "9223372036854775807 != 9223372036854775808.0",
        "18446744073709551615u > 1.0e19",
        "18446744073709551615u < 18446744073709551616.0",
        "-9223372036854775808 == -9223372036854775808.0",
        "-1 > -1.5",
        "0u > -0.5",
        "0.0 == -0.0",
        "!(0.0 / 0.0 == 0.0 / 0.0)",
        "!(0.0 / 0.0 < 1) && !(0.0 / 0.0 >= 1)",
        "1 in [1.0]",
        "[1, 2] == [1u, 2.0]",
        "{'a': 1} == {'a': 1u}",
        "{'a': 1, 'b': 2} == {'b': 2, 'a': 1}",
        "{1: 'x'}[1u] == 'x'",
    ]);
}

#[test]
fn equality_and_ordering_of_other_types() {
    check_true(&[
        "'a' < 'b'",
        "'abc' > 'abb'",
        "'é' > 'z'",
        "b'a' < b'b'",
        "false < true",
        "null == null",
        "'1' != 1",
        "null != 0",
        "[1] != [1, 2]",
        "{'a': 1} != {'a': 2}",
        "{'a': 1} != {'b': 1}",
        "[[1, 'x']] == [[1, 'x']]",
        "b'abc' == bytes('abc')",
        "'a' != b'a'",
    ]);
    check_err(&[
        ("[1] < [2]", overload("_<_(list, list)")),
        ("1 < 'a'", overload("_<_(int, string)")),
        ("null <= null", overload("_<=_(null_type, null_type)")),
    ]);
}

#[test]
fn membership() {
    check_true(&[
        "2 in [1, 2, 3]",
        "!(4 in [1, 2, 3])",
        "'a' in {'a': 1}",
        "!('b' in {'a': 1})",
        "1 in {1u: 'x'}",
        "2.0 in [1, 2]",
        "'x' in ['a', 'x']",
        "!('x' in [])",
    ]);
    check_err(&[("1 in 'abc'", overload("@in(int, string)"))]);
}

#[test]
fn indexing_and_fields_of_values() {
    check(&[
        ("[1, 2, 3][1]", Value::Int(2)),
        ("[1, 2, 3][2u]", Value::Int(3)),
        ("[1, 2, 3][0.0]", Value::Int(1)),
        ("{'a': 1}['a']", Value::Int(1)),
        ("{'a': {'b': 2}}.a.b", Value::Int(2)),
        ("{'a': {'b': 2}}['a']['b']", Value::Int(2)),
        ("{1: 'one'}[1]", s("one")),
    ]);
    check_err(&[
        (
            "[1, 2, 3][3]",
            EvalError::IndexOutOfRange("3 in a list of size 3".to_owned()),
        ),
        (
            "[1][-1]",
            EvalError::IndexOutOfRange("-1 in a list of size 1".to_owned()),
        ),
        ("{'a': 1}['b']", EvalError::NoSuchKey("\"b\"".to_owned())),
        ("{'a': 1}.b", EvalError::NoSuchKey("\"b\"".to_owned())),
        ("1[0]", overload("_[_](int, int)")),
        ("[1]['a']", overload("_[_](list, string)")),
        ("'abc'.x", overload("field selection .x on string")),
    ]);
    assert!(invalid("[1, 2][0.5]"));
}

#[test]
fn string_functions() {
    check_true(&[
        "'hello'.startsWith('he')",
        "!'hello'.startsWith('lo')",
        "'hello'.endsWith('lo')",
        "'hello'.contains('ell')",
        "!'hello'.contains('xyz')",
        "'hello'.matches('^h.*o$')",
        "'hello'.matches('ell')",
        "matches('hello', 'l+')",
        "!'hello'.matches('^ell')",
        "'HeLLo'.lowerAscii() == 'hello'",
        "'héllo'.upperAscii() == 'HéLLO'",
        "size('héllo') == 5",
        "'héllo'.size() == 5",
        "size(b'ab') == 2",
        "size([1, 2, 3]) == 3",
        "size({'a': 1}) == 1",
        "''.size() == 0",
    ]);
    check_err(&[
        ("size(1)", overload("size(int)")),
        ("'a'.startsWith(1)", overload("startsWith(string, int)")),
        ("1.contains('a')", overload("contains(int, string)")),
    ]);
    assert!(invalid("'a'.matches('[')"), "an invalid constant regex");
    let pattern = attrs(&[("pattern", s("(unclosed"))]);
    assert!(matches!(
        eval_in("'a'.matches(pattern)", &pattern),
        Err(EvalError::InvalidArgument(_))
    ));
    let pattern = attrs(&[("pattern", s("^a+$"))]);
    assert_eq!(
        eval_in("'aaa'.matches(pattern)", &pattern),
        Ok(Value::Bool(true))
    );
}

#[test]
fn conversions() {
    check(&[
        ("string(9080)", s("9080")),
        ("string(-3)", s("-3")),
        ("string(12u)", s("12")),
        ("string(1.5)", s("1.5")),
        ("string(1e6)", s("1e+06")),
        ("string(100000.0)", s("100000")),
        ("string(0.0001)", s("0.0001")),
        ("string(true)", s("true")),
        ("string('x')", s("x")),
        ("string(b'abc')", s("abc")),
        ("string(duration('1.5s'))", s("1.5s")),
        (
            "string(timestamp('2024-01-01T00:00:00Z'))",
            s("2024-01-01T00:00:00Z"),
        ),
        ("int('42')", Value::Int(42)),
        ("int('-42')", Value::Int(-42)),
        ("int(3.9)", Value::Int(3)),
        ("int(-3.9)", Value::Int(-3)),
        ("int(42u)", Value::Int(42)),
        ("int(timestamp('1970-01-01T00:01:00Z'))", Value::Int(60)),
        ("uint(42)", Value::Uint(42)),
        ("uint(2.7)", Value::Uint(2)),
        ("uint('7')", Value::Uint(7)),
        ("double(1)", Value::Double(1.0)),
        ("double(2u)", Value::Double(2.0)),
        ("double('2.5')", Value::Double(2.5)),
        ("bool('true')", Value::Bool(true)),
        ("bool('0')", Value::Bool(false)),
        ("bytes('a')", Value::Bytes(b"a".to_vec())),
        ("dyn(1) == 1", Value::Bool(true)),
        (
            "timestamp(60) == timestamp('1970-01-01T00:01:00Z')",
            Value::Bool(true),
        ),
    ]);
    check_err(&[
        ("int(1e19)", EvalError::Overflow),
        ("int(18446744073709551615u)", EvalError::Overflow),
        ("int(0.0 / 0.0)", EvalError::Overflow),
        ("uint(-1)", EvalError::Overflow),
        ("uint(-1.0)", EvalError::Overflow),
        ("string([1])", overload("string(list)")),
        ("int(null)", overload("int(null_type)")),
    ]);
    for text in [
        "int('x')",
        "int('1.5')",
        "uint('-1')",
        "double('x')",
        "bool('maybe')",
        "string(b'\\xff')",
    ] {
        assert!(invalid(text), "{text}");
    }
}

#[test]
fn durations_and_timestamps() {
    check_true(&[
        "duration('1s') < duration('1500ms')",
        "duration('1h30m') == duration('90m')",
        "duration('1.5s') == duration('1500ms')",
        "duration('1us') == duration('1000ns')",
        "duration('1µs') == duration('1us')",
        "duration('2h45m30.5s') > duration('2h')",
        "duration('0') == duration('0s')",
        "duration('-0s') == duration('0s')",
        "duration('250ms') + duration('750ms') == duration('1s')",
        "duration('1m') - duration('30s') == duration('30s')",
        "string(duration('1h')) == '3600s'",
        "string(duration('1ms')) == '0.001s'",
        "string(duration('1ns')) == '0.000000001s'",
        "timestamp('2024-01-01T00:00:00Z') + duration('1h') == timestamp('2024-01-01T01:00:00Z')",
        "duration('1h') + timestamp('2024-01-01T00:00:00Z') == timestamp('2024-01-01T01:00:00Z')",
        "timestamp('2024-01-01T01:00:00Z') - duration('1h') == timestamp('2024-01-01T00:00:00Z')",
        "timestamp('2024-01-01T02:00:00+02:00') == timestamp('2024-01-01T00:00:00Z')",
        "timestamp('2023-12-31T19:00:00-05:00') == timestamp('2024-01-01T00:00:00z')",
        "timestamp('2024-01-01T00:00:01.5Z') - timestamp('2024-01-01T00:00:00Z') == duration('1.5s')",
        "timestamp('2024-01-01T00:00:00Z') < timestamp('2024-01-01T00:00:00.000000001Z')",
        "string(timestamp('1969-12-31T23:59:59.25Z')) == '1969-12-31T23:59:59.25Z'",
        "string(timestamp('2024-02-29T12:34:56.000000001Z')) == '2024-02-29T12:34:56.000000001Z'",
        "string(timestamp('0001-01-01T00:00:00Z')) == '0001-01-01T00:00:00Z'",
        "string(timestamp('9999-12-31T23:59:59.999999999Z')) == '9999-12-31T23:59:59.999999999Z'",
    ]);
    check(&[("duration('1h')", Value::Duration(Duration::from_secs(3600)))]);
    check_err(&[
        ("duration('1s') - duration('2s')", EvalError::Overflow),
        (
            "timestamp('2024-01-01T00:00:00Z') - timestamp('2024-01-01T00:00:01Z')",
            EvalError::Overflow,
        ),
        (
            "duration('1s') + 1",
            overload("_+_(google.protobuf.Duration, int)"),
        ),
        (
            "duration('1s') < 1",
            overload("_<_(google.protobuf.Duration, int)"),
        ),
        ("duration(1)", overload("duration(int)")),
    ]);
    for text in [
        "duration('-1s')",
        "duration('1')",
        "duration('1x')",
        "duration('')",
        "duration('s')",
        "duration('1.s5')",
        "duration('1000000000000h')",
        "timestamp('2024-02-30T00:00:00Z')",
        "timestamp('2023-02-29T00:00:00Z')",
        "timestamp('2024-01-01')",
        "timestamp('2024-01-01T00:00:00')",
        "timestamp('2024-01-01T24:00:00Z')",
        "timestamp('2024-01-01T00:00:00+2:00')",
        "timestamp('0000-01-01T00:00:00Z')",
        "timestamp('2024-01-01T00:00:00.Z')",
        "timestamp('2024-01-01T00:00:00Z ')",
    ] {
        assert!(invalid(text), "{text}");
    }
}

#[test]
fn macros() {
    check(&[
        ("[1, 2, 3].all(x, x > 0)", Value::Bool(true)),
        ("[1, 2, 3].all(x, x > 1)", Value::Bool(false)),
        ("[].all(x, false)", Value::Bool(true)),
        ("[1, 2, 3].exists(x, x == 2)", Value::Bool(true)),
        ("[].exists(x, true)", Value::Bool(false)),
        ("[1, 2, 3].exists_one(x, x > 2)", Value::Bool(true)),
        ("[1, 2, 3].exists_one(x, x > 1)", Value::Bool(false)),
        (
            "[1, 2, 3].map(x, x * 2)",
            Value::List(vec![Value::Int(2), Value::Int(4), Value::Int(6)]),
        ),
        (
            "[1, 2, 3].map(x, x > 1, x * 10)",
            Value::List(vec![Value::Int(20), Value::Int(30)]),
        ),
        (
            "[1, 2, 3].filter(x, x % 2 == 1)",
            Value::List(vec![Value::Int(1), Value::Int(3)]),
        ),
        ("{'a': 1, 'bb': 2}.all(k, k.size() < 3)", Value::Bool(true)),
        (
            "{'a': 1, 'bb': 2}.filter(k, k.size() == 2)",
            Value::List(vec![s("bb")]),
        ),
        (
            "[{'n': 1}, {'n': 2}].map(m, m.n)",
            Value::List(vec![Value::Int(1), Value::Int(2)]),
        ),
        // The innermost variable wins, and the outer one is back afterwards.
        (
            "[1, 2].map(x, [10].map(x, x)[0] + x)",
            Value::List(vec![Value::Int(11), Value::Int(12)]),
        ),
        // Like || and &&: a decisive element wins over an error on another.
        ("[0, 1].exists(x, 1 / x == 1)", Value::Bool(true)),
        ("[0, 1].all(x, 1 / x == 5)", Value::Bool(false)),
    ]);
    check_err(&[
        ("[0, 1].all(x, 1 / x == 1)", EvalError::DivisionByZero),
        ("[1].all(x, x)", overload("all(int)")),
        ("[0].map(x, 1 / x)", EvalError::DivisionByZero),
        ("[1].filter(x, 'yes')", overload("filter(string)")),
        ("1.exists(x, true)", overload("exists(int)")),
    ]);
    let hundred = format!(
        "[{}]",
        (0..100)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let text = format!("{hundred}.all(a, {hundred}.all(b, {hundred}.all(c, true)))");
    assert!(
        matches!(eval(&text), Err(EvalError::LimitExceeded(_))),
        "a million iterations is over the limit"
    );
    let text = format!("{hundred}.all(a, {hundred}.all(b, true))");
    assert_eq!(eval(&text), Ok(Value::Bool(true)), "ten thousand is not");
}

/// The attributes of one request, as a proxy might offer them.
fn request() -> Attrs {
    attrs(&[
        ("request.method", s("GET")),
        ("request.host", s("reviews:9080")),
        ("request.url_path", s("/api/v1/reviews/0")),
        (
            "request.headers",
            Value::Map(vec![
                (s("x-user"), s("jason")),
                (s("user-agent"), s("curl/8.5")),
            ]),
        ),
        ("request.headers.x-direct", s("direct")),
        ("response.code", Value::Int(503)),
        (
            "response.duration",
            Value::Duration(Duration::from_millis(1200)),
        ),
        ("connection.mtls", Value::Bool(true)),
        ("destination.port", Value::Int(9080)),
        (
            "source.labels",
            Value::Map(vec![(s("app"), s("productpage"))]),
        ),
        ("items", Value::List(vec![s("a"), s("b")])),
    ])
}

#[test]
fn attribute_resolution() {
    let request = request();
    let cases: &[(&str, Value)] = &[
        ("request.method", s("GET")),
        // The whole path is unknown; its prefix `request.headers` is a map with the key.
        ("request.headers['x-user']", s("jason")),
        ("request.headers[\"x-user\"]", s("jason")),
        (
            "request.headers['user-agent'].startsWith('curl/')",
            Value::Bool(true),
        ),
        // A dotted key for the whole path is found first.
        ("request.headers['x-direct']", s("direct")),
        ("request.headers.size()", Value::Int(2)),
        ("source.labels.app", s("productpage")),
        ("items[1]", s("b")),
        ("'b' in items", Value::Bool(true)),
        ("request.method in ['GET', 'HEAD']", Value::Bool(true)),
        ("items.exists(i, i == 'a')", Value::Bool(true)),
        (
            "request.headers.exists(h, h.startsWith('x-'))",
            Value::Bool(true),
        ),
        ("has(request.method)", Value::Bool(true)),
        ("has(request.headers['x-user'])", Value::Bool(true)),
        ("has(request.headers['x-canary'])", Value::Bool(false)),
        ("has(no.such.thing)", Value::Bool(false)),
        ("has(source.labels.app)", Value::Bool(true)),
        ("has({'a': 1}.a)", Value::Bool(true)),
        ("has({'a': 1}.b)", Value::Bool(false)),
        ("has({'a': 1}['a'])", Value::Bool(true)),
        ("has([1, 2][1])", Value::Bool(true)),
        ("has([1, 2][2])", Value::Bool(false)),
    ];
    for (text, want) in cases {
        assert_eq!(eval_in(text, &request).as_ref(), Ok(want), "{text}");
    }
    let missing = |path: &str| Err(EvalError::NoSuchAttribute(path.to_owned()));
    assert_eq!(
        eval_in("request.headers['x-canary']", &request),
        missing("request.headers.x-canary")
    );
    assert_eq!(
        eval_in("request.protocol", &request),
        missing("request.protocol")
    );
    assert_eq!(eval_in("no.such.thing", &request), missing("no.such.thing"));
    assert_eq!(
        eval_in("request.method.x", &request),
        Err(overload("field selection .x on string"))
    );
    assert_eq!(
        eval_in("has(request.method.x)", &request),
        Err(overload("field selection .x on string")),
        "has() is false only when the path is absent"
    );
    assert_eq!(
        eval_in("has((1 / 0 == 1 ? {} : {}).a)", &request),
        Err(EvalError::DivisionByZero),
        "errors evaluating the map propagate"
    );
}

/// An attribute source that records what it was asked and knows only `a.b` (a map).
struct Recorder(RefCell<Vec<String>>);

impl Attributes for Recorder {
    fn attribute(&self, path: &[&str]) -> Option<Value> {
        self.0.borrow_mut().push(path.join("/"));
        (path == ["a", "b"])
            .then(|| Value::Map(vec![(s("c"), Value::Map(vec![(s("d"), Value::Int(1))]))]))
    }
}

#[test]
fn attribute_paths_are_asked_longest_first() {
    let recorder = Recorder(RefCell::new(Vec::new()));
    let expr = Expr::parse("a.b['c'].d").unwrap();
    assert_eq!(expr.eval(&recorder), Ok(Value::Int(1)));
    assert_eq!(*recorder.0.borrow(), ["a/b/c/d", "a/b/c", "a/b"]);

    recorder.0.borrow_mut().clear();
    let expr = Expr::parse("x.y").unwrap();
    assert_eq!(
        expr.eval(&recorder),
        Err(EvalError::NoSuchAttribute("x.y".into()))
    );
    assert_eq!(*recorder.0.borrow(), ["x/y", "x"]);

    // A computed index is not part of the path: `a.b` is looked up, then indexed.
    recorder.0.borrow_mut().clear();
    let expr = Expr::parse("a.b['c' + ''].d").unwrap();
    assert_eq!(expr.eval(&recorder), Ok(Value::Int(1)));
    assert_eq!(*recorder.0.borrow(), ["a/b"]);
}

#[test]
fn istio_examples() {
    let request = request();
    let ok = Attrs::from([
        ("response.code".to_owned(), Value::Int(200)),
        (
            "response.duration".to_owned(),
            Value::Duration(Duration::from_millis(20)),
        ),
    ]);
    let slow = Attrs::from([
        ("response.code".to_owned(), Value::Int(200)),
        (
            "response.duration".to_owned(),
            Value::Duration(Duration::from_millis(1500)),
        ),
    ]);
    let filters: &[(&str, &Attrs, bool)] = &[
        ("response.code >= 400", &request, true),
        ("response.code >= 400", &ok, false),
        (
            "response.code >= 500 || response.duration > duration('1s')",
            &request,
            true,
        ),
        (
            "response.code >= 500 || response.duration > duration('1s')",
            &ok,
            false,
        ),
        (
            "response.code >= 500 || response.duration > duration('1s')",
            &slow,
            true,
        ),
        ("request.headers['x-user'] == 'jason'", &request, true),
        (
            "connection.mtls && request.url_path.startsWith('/api/v1')",
            &request,
            true,
        ),
    ];
    for (text, attrs, want) in filters {
        assert_eq!(eval_in(text, attrs), Ok(Value::Bool(*want)), "{text}");
    }
    // Tag override values: what the metric label shows.
    let tags: &[(&str, &str)] = &[
        ("request.host", "reviews:9080"),
        ("string(destination.port)", "9080"),
        ("destination.port", "9080"),
        ("request.method", "GET"),
        (
            "has(request.headers['x-canary']) ? 'canary' : 'stable'",
            "stable",
        ),
        ("response.duration", "1.2s"),
        ("connection.mtls", "true"),
    ];
    for (text, want) in tags {
        let value = eval_in(text, &request).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(value.to_label(), *want, "{text}");
    }
    let canary = attrs(&[("request.headers", Value::Map(vec![(s("x-canary"), s("1"))]))]);
    assert_eq!(
        eval_in(
            "has(request.headers['x-canary']) ? 'canary' : 'stable'",
            &canary
        ),
        Ok(s("canary"))
    );
    // Without the attribute, a filter is an error (the caller decides what that means).
    assert_eq!(
        eval_in("response.code >= 400", &Attrs::new()),
        Err(EvalError::NoSuchAttribute("response.code".to_owned()))
    );
}

#[test]
fn labels() {
    let epoch_plus = |secs| Value::Timestamp(UNIX_EPOCH + Duration::from_secs(secs));
    let cases: &[(Value, &str)] = &[
        (Value::Null, "null"),
        (Value::Bool(false), "false"),
        (Value::Int(9080), "9080"),
        (Value::Int(-1), "-1"),
        (Value::Uint(12), "12"),
        (Value::Double(1.5), "1.5"),
        (Value::Double(-0.5), "-0.5"),
        (Value::Double(2.0), "2"),
        (Value::Double(123456.0), "123456"),
        (Value::Double(1234567.0), "1.234567e+06"),
        (Value::Double(1e21), "1e+21"),
        (Value::Double(0.0001), "0.0001"),
        (Value::Double(0.00001), "1e-05"),
        (Value::Double(0.1 + 0.2), "0.30000000000000004"),
        (Value::Double(f64::NAN), "NaN"),
        (Value::Double(f64::NEG_INFINITY), "-Inf"),
        (s("as is"), "as is"),
        (Value::Bytes(vec![b'f', 0xff]), "f\u{fffd}"),
        (Value::Duration(Duration::from_millis(1500)), "1.5s"),
        (Value::Duration(Duration::ZERO), "0s"),
        (epoch_plus(1_704_067_200), "2024-01-01T00:00:00Z"),
        (
            Value::List(vec![
                Value::Int(1),
                s("a\"b"),
                Value::Uint(2),
                Value::Double(2.0),
                Value::Null,
            ]),
            "[1, \"a\\\"b\", 2u, 2.0, null]",
        ),
        (
            Value::Map(vec![
                (s("k"), Value::Uint(2)),
                (Value::Int(1), Value::Bytes(b"x".to_vec())),
            ]),
            "{\"k\": 2u, 1: b\"x\"}",
        ),
        (
            Value::List(vec![Value::Duration(Duration::from_secs(1)), epoch_plus(0)]),
            "[duration(\"1s\"), timestamp(\"1970-01-01T00:00:00Z\")]",
        ),
    ];
    for (value, want) in cases {
        assert_eq!(value.to_label(), *want, "{value:?}");
    }
}

#[test]
fn the_expression_keeps_its_text() {
    let text = "request.headers['x-user']  ==  'jason'";
    let expr: Expr = text.parse().unwrap();
    assert_eq!(expr.text(), text);
    assert_eq!(expr.to_string(), text);
    assert_eq!(expr.clone(), expr);
    assert_eq!(Expr::parse("a.matches('x')"), Expr::parse("a.matches('x')"));
    assert_ne!(Expr::parse("1 + 2"), Expr::parse("2 + 1"));
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug + PartialEq>() {}
    shareable::<Expr>();
    shareable::<Value>();
    shareable::<ParseError>();
    shareable::<EvalError>();
}

/// Parses `text`, expecting an error at this character offset and column whose message
/// contains `message`.
fn parse_error(text: &str) -> ParseError {
    match Expr::parse(text) {
        Ok(expr) => panic!("{text:?} parsed: {expr:?}"),
        Err(e) => e,
    }
}

#[test]
fn parse_errors_say_what_was_expected_and_where() {
    let cases: &[(&str, usize, &str)] = &[
        ("1 +", 3, "expected an expression, found end of input"),
        ("'unterminated", 0, "unterminated string literal"),
        ("(a", 2, "expected ')', found end of input"),
        (
            "a..b",
            2,
            "expected a field or method name after '.', found '.'",
        ),
        (
            "1 ? 2",
            5,
            "expected ':' (a conditional is c ? a : b), found end of input",
        ),
        ("", 0, "expected an expression, found end of input"),
        ("   ", 3, "expected an expression, found end of input"),
        (
            "1 2",
            2,
            "expected an operator or the end of the expression, found number 2",
        ),
        ("a = 1", 2, "expected '=='"),
        ("a & b", 2, "expected '&&'"),
        ("a | b", 2, "expected '||'"),
        ("a # b", 2, "unexpected character '#'"),
        ("[1, 2", 5, "expected ',' or ']', found end of input"),
        ("{'a' 1}", 5, "expected ':' after a map key, found number 1"),
        ("{'a': 1", 7, "expected ',' or '}', found end of input"),
        ("f(1,", 0, "unknown function 'f'"),
        ("'a'.f(1,", 4, "unknown method 'f'"),
        ("size(1,", 7, "expected an expression, found end of input"),
        ("foo(1)", 0, "unknown function 'foo'"),
        ("'a'.bar()", 4, "unknown method 'bar'"),
        ("size(1, 2)", 0, "size() takes 1 argument, found 2"),
        (
            "'a'.startsWith()",
            4,
            "x.startsWith() takes 1 argument, found 0",
        ),
        ("'a'.size(1)", 4, "x.size() takes 0 arguments, found 1"),
        (
            "startsWith('a', 'b')",
            0,
            "'startsWith' is a method: write x.startsWith(...)",
        ),
        (
            "'a'.string()",
            4,
            "'string' is not a method: write string(x)",
        ),
        (
            "[1].map(1, 2)",
            4,
            "the first argument of map() must be a variable name",
        ),
        ("[1].all(x)", 4, "x.all() takes 2 arguments, found 1"),
        ("has(1)", 0, "has() takes one field selection"),
        ("has(a, b)", 0, "has() takes one field selection"),
        (
            "9223372036854775808",
            0,
            "integer literal out of range for int",
        ),
        (
            "-9223372036854775809",
            0,
            "integer literal out of range for int",
        ),
        ("99999999999999999999", 0, "integer literal out of range"),
        ("0x10000000000000000", 0, "integer literal out of range"),
        ("'\\q'", 1, "invalid escape sequence '\\q'"),
        (
            "'\\x4'",
            1,
            "invalid escape sequence: '\\x' needs 2 hex digits",
        ),
        ("'\\uD800'", 1, "invalid code point U+D800"),
        ("'line\nbreak'", 0, "unterminated string literal"),
        (
            "Foo{a: 1}",
            3,
            "message construction (Type{field: value}) is not supported",
        ),
        ("if", 0, "'if' is a reserved word"),
        ("a.while", 2, "'while' is a reserved word"),
        (
            "a.",
            2,
            "expected a field or method name after '.', found end of input",
        ),
        ("a[1", 3, "expected ']', found end of input"),
        (")", 0, "expected an expression, found ')'"),
        ("1 ? 2 : ", 8, "expected an expression, found end of input"),
        (
            "a.?b",
            2,
            "expected a field or method name after '.', found '?'",
        ),
    ];
    for (text, offset, message) in cases {
        let e = parse_error(text);
        assert_eq!(e.offset, *offset, "{text:?}: {e}");
        assert_eq!((e.line, e.column), (1, offset + 1), "{text:?}: {e}");
        assert!(e.message.contains(message), "{text:?}: {e}");
    }
    assert_eq!(
        parse_error("1 +").to_string(),
        "at column 4: expected an expression, found end of input"
    );
}

#[test]
fn parse_error_positions_count_characters_and_lines() {
    // Offsets and columns are in characters, not bytes.
    let e = parse_error("'é' +");
    assert_eq!((e.offset, e.column), (5, 6));
    let e = parse_error("a &&\n  b)");
    assert_eq!((e.offset, e.line, e.column), (8, 2, 4));
    assert_eq!(
        e.to_string(),
        "at line 2, column 4: expected an operator or the end of the expression, found ')'"
    );
}

#[test]
fn limits() {
    let nested = |open: &str, inner: &str, close: &str, n: usize| {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    };
    // The whole expression is one level; each parenthesis adds one.
    assert!(Expr::parse(&nested("(", "1", ")", MAX_DEPTH - 1)).is_ok());
    let e = parse_error(&nested("(", "1", ")", MAX_DEPTH));
    assert!(e.message.contains("nested more than 64 levels"), "{e}");
    for deep in [
        nested("(", "1", ")", 8000),
        nested("[", "1", "]", 8000),
        nested("size(", "1", ")", 2000),
        nested("{1:", "1", "}", 4000),
        format!("{}true", "!".repeat(16_000)),
        format!("{}1", "-".repeat(16_000)),
        format!("a{}", ".b".repeat(8000)),
        format!("a{}", "[0]".repeat(5000)),
        format!("1{}", " + 1".repeat(4000)),
        format!("1{}", " ? 1 : 1".repeat(2000)),
        format!("x{}", ".size()".repeat(2000)),
    ] {
        let e = parse_error(&deep);
        assert!(
            e.message.contains("nested more than"),
            "{}: {e}",
            &deep[..20]
        );
    }
    // A nested expression within the limits evaluates without trouble.
    let list = nested("[", "1", "]", MAX_DEPTH - 1);
    assert!(matches!(eval(&list), Ok(Value::List(_))));
    let sum = format!("0{}", " + 1".repeat(MAX_DEPTH - 1));
    assert_eq!(eval(&sum), Ok(Value::Int(63)));
    // Long `||` and `&&` chains are balanced trees, not deep ones.
    let chain = format!("{} || true", vec!["false"; 1000].join(" || "));
    assert_eq!(eval(&chain), Ok(Value::Bool(true)));
    let chain = format!("{} && x", vec!["true"; 1000].join(" && "));
    assert_eq!(eval(&chain), Err(EvalError::NoSuchAttribute("x".into())));

    let just_fits = format!("'{}'", "a".repeat(MAX_TEXT_LEN - 2));
    assert!(Expr::parse(&just_fits).is_ok());
    let too_long = format!("'{}'", "a".repeat(MAX_TEXT_LEN - 1));
    let e = parse_error(&too_long);
    assert_eq!(e.offset, MAX_TEXT_LEN);
    assert!(e.message.contains("the limit is 16384"), "{e}");
}

#[test]
fn the_deepest_expressions_fit_a_small_stack() {
    // Parsing and evaluating at the nesting limit needs under 512 KiB of stack even in an
    // unoptimised build (about 384 KiB, for nested calls); a tokio worker thread has 2 MiB.
    let deepest = [
        format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        ),
        format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        ),
        format!("{}'a'{}", "size(string(".repeat(31), "))".repeat(31)),
        format!(
            "{}[1]{}",
            "[1].map(x, ".repeat(MAX_DEPTH - 2),
            ")".repeat(MAX_DEPTH - 2)
        ),
        format!("{}true", "!".repeat(MAX_DEPTH - 1)),
        format!("1{}", " + 1".repeat(MAX_DEPTH - 1)),
        format!(
            "{}1{}",
            "-(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        ),
    ];
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            for text in &deepest {
                let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
                let _ = expr.eval(&Attrs::new());
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn doubles_round_trip_through_their_label() {
    for d in [
        0.1,
        1.0 / 3.0,
        1e-300,
        5e-324,
        f64::MAX,
        -123.456e7,
        9007199254740993.0,
    ] {
        let label = Value::Double(d).to_label();
        assert_eq!(label.parse::<f64>(), Ok(d), "{label}");
    }
}

/// Tokens to build random expressions from.
const TOKENS: &[&str] = &[
    "1",
    "0",
    "0x1F",
    "2u",
    "0u",
    "1.5",
    ".5",
    "1e3",
    "0.0",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615u",
    "'a'",
    "\"b\"",
    "r'x'",
    "b'y'",
    "'1s'",
    "'['",
    "'2024-01-01T00:00:00Z'",
    "true",
    "false",
    "null",
    "a",
    "b",
    "x",
    "request",
    "headers",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ".",
    ",",
    ":",
    "?",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "in",
    "size",
    "has",
    "string",
    "int",
    "uint",
    "double",
    "duration",
    "timestamp",
    "matches",
    "startsWith",
    "contains",
    "exists",
    "all",
    "map",
    "filter",
    "exists_one",
    "dyn",
    "bytes",
];

/// Random expressions that are valid CEL (grammar-wise): operators, calls, macros, literals.
fn valid_expression() -> impl Strategy<Value = String> {
    const LEAVES: &[&str] = &[
        "0",
        "1",
        "-1",
        "2u",
        "0u",
        "1.5",
        "0.0",
        "'a'",
        "''",
        "b'x'",
        "true",
        "false",
        "null",
        "a",
        "b",
        "v",
        "x.a",
        "x[1]",
        "request.headers['a']",
        "duration('1s')",
        "timestamp('2024-01-01T00:00:00Z')",
        "[]",
        "{}",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615u",
    ];
    const BINARY: &[&str] = &[
        "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||",
    ];
    const GLOBALS: &[&str] = &[
        "size",
        "string",
        "int",
        "uint",
        "double",
        "bool",
        "bytes",
        "duration",
        "timestamp",
        "dyn",
    ];
    const METHODS: &[&str] = &["startsWith", "endsWith", "contains", "matches"];
    const MACROS: &[&str] = &["all", "exists", "exists_one", "map", "filter"];
    let leaf = prop::sample::select(LEAVES).prop_map(str::to_owned);
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(BINARY), inner.clone())
                .prop_map(|(l, op, r)| format!("({l} {op} {r})")),
            (prop::sample::select(&["!", "-"][..]), inner.clone())
                .prop_map(|(op, e)| format!("{op}({e})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| format!("{{{k}: {v}}}")),
            (inner.clone(), inner.clone()).prop_map(|(a, i)| format!("({a})[{i}]")),
            (prop::sample::select(GLOBALS), inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (inner.clone(), prop::sample::select(METHODS), inner.clone())
                .prop_map(|(r, m, a)| format!("({r}).{m}({a})")),
            inner.clone().prop_map(|r| format!("({r}).size()")),
            (inner.clone(), prop::sample::select(MACROS), inner.clone())
                .prop_map(|(r, m, body)| format!("({r}).{m}(v, {body})")),
            inner.clone().prop_map(|e| format!("has(({e}).f)")),
        ]
    })
}

fn some_attrs() -> Attrs {
    attrs(&[
        ("a", Value::Int(1)),
        ("b", Value::List(vec![Value::Int(1), s("two"), Value::Null])),
        (
            "x",
            Value::Map(vec![
                (s("a"), Value::Uint(3)),
                (Value::Int(1), Value::Double(0.5)),
            ]),
        ),
        ("request.headers", Value::Map(vec![(s("a"), s("b"))])),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC{0,80}|[ -~]{0,200}") {
        if let Ok(expr) = Expr::parse(&text) {
            let _ = expr.eval(&Attrs::new());
            let _ = expr.eval(&some_attrs());
        }
    }

    #[test]
    fn token_soup_never_panics(
        tokens in prop::collection::vec((prop::sample::select(TOKENS), any::<bool>()), 0..40)
    ) {
        let text: String = tokens
            .iter()
            .map(|(token, space)| if *space { format!("{token} ") } else { (*token).to_owned() })
            .collect();
        if let Ok(expr) = Expr::parse(&text) {
            let _ = expr.eval(&Attrs::new());
            if let Ok(value) = expr.eval(&some_attrs()) {
                let _ = value.to_label();
            }
        }
    }

    #[test]
    fn valid_expressions_parse_and_evaluate_without_panicking(text in valid_expression()) {
        let expr = Expr::parse(&text);
        prop_assert!(expr.is_ok(), "{}: {}", text, expr.unwrap_err());
        let expr = expr.unwrap();
        let _ = expr.eval(&Attrs::new());
        if let Ok(value) = expr.eval(&some_attrs()) {
            let _ = value.to_label();
        }
    }

    #[test]
    fn doubles_label_as_the_shortest_round_trip(d in any::<f64>().prop_filter("finite", |d| d.is_finite())) {
        let label = Value::Double(d).to_label();
        prop_assert_eq!(label.parse::<f64>(), Ok(d));
    }

    #[test]
    fn durations_round_trip_through_string(secs in 0u64..=315_576_000_000, nanos in 0u32..1_000_000_000) {
        let d = Duration::new(secs, nanos);
        let attrs = attrs(&[("d", Value::Duration(d))]);
        prop_assert_eq!(eval_in("duration(string(d)) == d", &attrs), Ok(Value::Bool(true)));
    }

    #[test]
    fn timestamps_round_trip_through_string(
        secs in -62_135_596_800i64..253_402_300_800,
        nanos in 0u32..1_000_000_000,
    ) {
        let t = text::system_time(secs, nanos).unwrap();
        let attrs = attrs(&[("t", Value::Timestamp(t))]);
        prop_assert_eq!(eval_in("timestamp(string(t)) == t", &attrs), Ok(Value::Bool(true)));
        prop_assert_eq!(eval_in("int(t)", &attrs), Ok(Value::Int(secs)));
    }

    #[test]
    fn int_double_comparison_is_exact(i in any::<i64>(), d in any::<f64>()) {
        let attrs = attrs(&[("i", Value::Int(i)), ("d", Value::Double(d))]);
        // Exact reference: compare as i128 against the double's integer part and fraction.
        let want = if d.is_nan() {
            false
        } else if d >= 1e30 {
            true
        } else if d <= -1e30 {
            false
        } else {
            let whole = d.trunc() as i128;
            (i as i128) < whole || ((i as i128) == whole && d.fract() > 0.0)
        };
        prop_assert_eq!(eval_in("i < d", &attrs), Ok(Value::Bool(want)));
    }
}

#[test]
fn timestamps_before_the_epoch_label_correctly() {
    let t = SystemTime::UNIX_EPOCH - Duration::from_millis(1);
    assert_eq!(Value::Timestamp(t).to_label(), "1969-12-31T23:59:59.999Z");
}
