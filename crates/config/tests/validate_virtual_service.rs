//! VirtualService checks, one table row per rule: the spec and exactly the findings expected.

mod support;

use support::{spec_findings, want};

const ROUTE: &str = "route: [{destination: {host: reviews}}]";

fn rule(extra: &str) -> String {
    format!(
        "hosts: [reviews]\nhttp:\n- {ROUTE}\n  {}",
        extra.replace('\n', "\n  ")
    )
}

#[test]
fn virtual_service_table() {
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("hosts: [reviews]\nhttp:\n- {ROUTE}"), vec![]),
        // No hosts: a delegate (Istio's rule), which takes no gateways, tcp or tls rules and
        // cannot delegate again.
        (format!("http:\n- {ROUTE}"), vec![]),
        (
            format!("gateways: [gw]\nhttp:\n- {ROUTE}\ntcp:\n- {ROUTE}"),
            vec![("BL0111", "spec.gateways"), ("BL0111", "spec.tcp")],
        ),
        ("http:\n- delegate: {name: other}".into(), vec![("BL0111", "spec.http[0].delegate")]),
        ("hosts: [reviews]".into(), vec![("BL0101", "spec")]),
        (format!("hosts: ['*']\nhttp:\n- {ROUTE}"), vec![("BL0114", "spec.hosts[0]")]),
        (format!("hosts: ['*']\ngateways: [gw]\nhttp:\n- {ROUTE}"), vec![]),
        (format!("hosts: [bad_host]\nhttp:\n- {ROUTE}"), vec![("BL0114", "spec.hosts[0]")]),
        (format!("hosts: [r]\ngateways: [a/b/c]\nhttp:\n- {ROUTE}"), vec![("BL0114", "spec.gateways[0]")]),
        // Actions.
        ("hosts: [r]\nhttp:\n- name: nothing".into(), vec![("BL0101", "spec.http[0].route")]),
        (rule("redirect: {uri: /x}"), vec![("BL0111", "spec.http[0].redirect")]),
        (rule("directResponse: {status: 200}"), vec![("BL0111", "spec.http[0].directResponse")]),
        ("hosts: [r]\nhttp:\n- redirect: {uri: /x}\n  rewrite: {uri: /y}".into(), vec![("BL0111", "spec.http[0].rewrite")]),
        ("hosts: [r]\nhttp:\n- delegate: {name: child}".into(), vec![]),
        ("hosts: [r]\nhttp:\n- delegate: {name: child}\n  redirect: {uri: /x}".into(), vec![("BL0111", "spec.http[0].redirect")]),
        (rule("mirror: {host: m}\nmirrors: [{destination: {host: m}}]"), vec![("BL0111", "spec.http[0].mirrors")]),
        // Weights.
        (
            "hosts: [r]\nhttp:\n- route:\n  - {destination: {host: r}, weight: 60}\n  - {destination: {host: r}, weight: 30}".into(),
            vec![("BL0103", "spec.http[0].route")],
        ),
        (
            "hosts: [r]\nhttp:\n- route:\n  - {destination: {host: r}, weight: -10}\n  - {destination: {host: r}, weight: 110}".into(),
            vec![("BL0103", "spec.http[0].route[0].weight"), ("BL0103", "spec.http[0].route[1].weight")],
        ),
        ("hosts: [r]\nhttp:\n- route: [{destination: {host: r}, weight: 100}]".into(), vec![]),
        ("hosts: [r]\nhttp:\n- route: [{destination: {host: '*'}}]".into(), vec![("BL0114", "spec.http[0].route[0].destination.host")]),
        (
            "hosts: [r]\nhttp:\n- route: [{destination: {host: r, subset: V1, port: {number: 0}}}]".into(),
            vec![("BL0114", "spec.http[0].route[0].destination.subset"), ("BL0102", "spec.http[0].route[0].destination.port.number")],
        ),
        // Matches.
        (rule("match: [{uri: {regex: '(unclosed'}}]"), vec![("BL0106", "spec.http[0].match[0].uri.regex")]),
        (rule("match: [{uri: {prefix: ''}}]"), vec![]),
        (rule("match: [{method: {prefix: ''}}]"), vec![("BL0116", "spec.http[0].match[0].method.prefix")]),
        (rule("match: [{headers: {End-User: {exact: jason}}}]"), vec![("BL0108", "spec.http[0].match[0].headers.End-User")]),
        (rule("match: [{headers: {'bad header': {exact: x}}}]"), vec![("BL0108", "spec.http[0].match[0].headers.bad header")]),
        (rule("match: [{port: 70000}]"), vec![("BL0102", "spec.http[0].match[0].port")]),
        (rule("match: [{sourceNamespace: Prod}]"), vec![("BL0114", "spec.http[0].match[0].sourceNamespace")]),
        // Policies.
        (rule("timeout: 0s"), vec![("BL0107", "spec.http[0].timeout")]),
        (rule("timeout: 1500us"), vec![("BL0107", "spec.http[0].timeout")]),
        (rule("timeout: 10s"), vec![]),
        (rule("retries: {attempts: 3, retryOn: '5xx,connect-failure,503'}"), vec![]),
        (rule("retries: {attempts: 3, retryOn: '5xx,sometimes'}"), vec![("BL0109", "spec.http[0].retries.retryOn")]),
        (rule("retries: {attempts: 3, retryOn: '999'}"), vec![("BL0109", "spec.http[0].retries.retryOn")]),
        (rule("retries: {retryOn: 5xx}"), vec![("BL0111", "spec.http[0].retries.attempts")]),
        (rule("retries: {attempts: -1}"), vec![("BL0115", "spec.http[0].retries.attempts")]),
        (rule("retries: {attempts: 2, perTryTimeout: 0ms}"), vec![("BL0107", "spec.http[0].retries.perTryTimeout")]),
        (rule("fault: {abort: {httpStatus: 700, percentage: {value: 150}}}"), vec![
            ("BL0105", "spec.http[0].fault.abort.httpStatus"),
            ("BL0104", "spec.http[0].fault.abort.percentage.value"),
        ]),
        (rule("fault: {abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}}"), vec![("BL0111", "spec.http[0].fault.abort")]),
        (rule("fault: {abort: {grpcStatus: BROKEN}}"), vec![("BL0115", "spec.http[0].fault.abort.grpcStatus")]),
        (rule("fault: {delay: {fixedDelay: 5s, percentage: {value: 10}}}"), vec![]),
        (rule("fault: {delay: {exponentialDelay: 5s}}"), vec![("BL0115", "spec.http[0].fault.delay.exponentialDelay")]),
        (rule("fault: {}"), vec![("BL0101", "spec.http[0].fault")]),
        ("hosts: [r]\nhttp:\n- redirect: {uri: /x, redirectCode: 305}".into(), vec![("BL0105", "spec.http[0].redirect.redirectCode")]),
        ("hosts: [r]\nhttp:\n- redirect: {uri: /x, redirectCode: 308, scheme: ftp}".into(), vec![("BL0115", "spec.http[0].redirect.scheme")]),
        ("hosts: [r]\nhttp:\n- redirect: {}".into(), vec![("BL0101", "spec.http[0].redirect")]),
        ("hosts: [r]\nhttp:\n- redirect: {port: 8080, derivePort: FROM_REQUEST_PORT}".into(), vec![("BL0111", "spec.http[0].redirect.derivePort")]),
        ("hosts: [r]\nhttp:\n- directResponse: {status: 100}".into(), vec![("BL0105", "spec.http[0].directResponse.status")]),
        ("hosts: [r]\nhttp:\n- directResponse: {status: 503, body: {string: down}}".into(), vec![]),
        (rule("rewrite: {uri: /a, uriRegexRewrite: {match: '^/x', rewrite: /y}}"), vec![("BL0111", "spec.http[0].rewrite.uriRegexRewrite")]),
        (rule("rewrite: {uriRegexRewrite: {match: '(', rewrite: /y}}"), vec![("BL0106", "spec.http[0].rewrite.uriRegexRewrite.match")]),
        (rule("mirrorPercentage: {value: 101}"), vec![("BL0104", "spec.http[0].mirrorPercentage.value")]),
        (rule("corsPolicy: {allowMethods: [GET, FETCH], maxAge: 24h}"), vec![("BL0115", "spec.http[0].corsPolicy.allowMethods[1]")]),
        (rule("headers: {request: {set: {':path': /x, host: a}}, response: {remove: [':status']}}"), vec![
            ("BL0108", "spec.http[0].headers.request.set.:path"),
            ("BL0108", "spec.http[0].headers.response.remove[0]"),
        ]),
        // TCP and TLS rules.
        ("hosts: [r]\ntcp:\n- match: [{destinationSubnets: [10.0.0.0/33]}]\n  route: [{destination: {host: r}}]".into(), vec![
            ("BL0110", "spec.tcp[0].match[0].destinationSubnets[0]"),
        ]),
        ("hosts: [r]\ntcp:\n- match: [{port: 5432}]".into(), vec![("BL0101", "spec.tcp[0].route")]),
        ("hosts: [r]\ntls:\n- route: [{destination: {host: r}}]".into(), vec![("BL0101", "spec.tls[0].match")]),
        ("hosts: [r]\ntls:\n- match: [{port: 443}]\n  route: [{destination: {host: r}}]".into(), vec![("BL0101", "spec.tls[0].match[0].sniHosts")]),
    ];
    for (spec, expected) in cases {
        let mut got = spec_findings("VirtualService", &spec);
        got.sort();
        let mut expected = want(&expected);
        expected.sort();
        assert_eq!(got, expected, "spec:\n{spec}");
    }
}

#[test]
fn upper_case_header_match_is_a_warning_not_an_error() {
    let loaded = support::load(&support::resource(
        "VirtualService",
        "t",
        &rule("match: [{headers: {End-User: {exact: jason}}}]"),
    ));
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == "BL0108")
        .unwrap();
    assert_eq!(d.severity, bowline_config::Severity::Warning);
    assert!(d.message.contains("\"end-user\""), "{}", d.message);
}
