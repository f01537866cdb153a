//! Hostile and careless clients, differentially: each scenario runs one static bootstrap on
//! the real Envoy 1.40 and on bowline-proxy, sends both the same bytes, and requires the same
//! answers — and the same requests reaching the upstream.
//!
//! - Paths are normalised before authorization and routing (the class of Istio's
//!   CVE-2021-31920): tricky paths against a DENY policy on `/admin` and `/admin/*` and against
//!   prefix routes, under each of Istio's path-normalisation levels.
//! - Hostile request heads (CONNECT, bad `Host`, unknown methods, huge headers, fragments,
//!   framing errors) are refused as Envoy refuses them.
//! - A client that stalls mid-headers gets 408 once `request_headers_timeout` passes.
//! - Clients sending broken chunked bodies or aborting uploads eject no healthy upstream.

#[allow(dead_code)]
#[path = "protocols/bootstrap.rs"]
mod bootstrap;
#[path = "hostile/raw.rs"]
mod raw;
#[path = "hostile/recorder.rs"]
mod recorder;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use bootstrap::{cluster, Bootstrap, Upstream};
use bowline_testkit::{Envoy, ProxyKind};
use raw::{exchange, exchange_until_closed, get, Answer};
use recorder::Recorder;

const STARTUP: Duration = Duration::from_secs(60);
/// How long a raw exchange waits for the proxy to answer or close.
const ANSWER: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Bootstrap: one HTTP listener per set of connection-manager options, each with Istio's
// DENY rule for `/admin` and `/admin/*` and three prefix routes that tag the request.

const LISTENER: &str = r#"  - name: $NAME
    address:
      socket_address: { address: 127.0.0.1, port_value: 0 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $NAME
          codec_type: AUTO
$OPTIONS          route_config:
            name: $NAME
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/admin" }
                route: { cluster: upstream }
                request_headers_to_add: [{ header: { key: x-route, value: admin } }]
              - match: { prefix: "/public" }
                route: { cluster: upstream }
                request_headers_to_add: [{ header: { key: x-route, value: public } }]
              - match: { prefix: "/" }
                route: { cluster: upstream }
                request_headers_to_add: [{ header: { key: x-route, value: default } }]
          http_filters:
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: DENY
                policies:
                  "ns[default]-policy[deny-admin]-rule[0]":
                    permissions:
                    - or_rules:
                        rules:
                        - url_path: { path: { exact: /admin } }
                        - url_path: { path: { prefix: /admin/ } }
                    principals: [{ any: true }]
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#;

/// The connection-manager options of each listener: Istio's `pathNormalization` levels
/// (NONE, BASE — its default —, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES) and Envoy's other
/// escaped-slash actions.
const LEVELS: &[(&str, &str)] = &[
    ("none", ""),
    ("base", "normalize_path: true"),
    ("merge", "normalize_path: true\nmerge_slashes: true"),
    (
        "decode",
        "normalize_path: true\nmerge_slashes: true\npath_with_escaped_slashes_action: UNESCAPE_AND_FORWARD",
    ),
    (
        "reject",
        "normalize_path: true\npath_with_escaped_slashes_action: REJECT_REQUEST",
    ),
    (
        "redirect",
        "normalize_path: true\npath_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT",
    ),
];

fn listener(name: &str, options: &str) -> String {
    let options: String = options
        .lines()
        .map(|line| format!("          {line}\n"))
        .collect();
    LISTENER
        .replace("$NAME", name)
        .replace("$OPTIONS", &options)
}

fn bootstrap(upstream: SocketAddr, extra_listener_options: &str) -> String {
    let mut b = Bootstrap::new().cluster(cluster("upstream", upstream, Upstream::Http1));
    for (name, options) in LEVELS {
        let options = format!("{options}\n{extra_listener_options}");
        b = b.listener(listener(name, options.trim()));
    }
    b.render()
}

/// One proxy of each kind on the same bootstrap (each with its own upstream), ready.
struct Pair {
    proxies: Vec<(ProxyKind, Envoy, Recorder)>,
}

impl Pair {
    async fn start(extra_listener_options: &str) -> Pair {
        let mut proxies = Vec::new();
        for kind in ProxyKind::ALL {
            let upstream = Recorder::start().await.expect("upstream");
            let yaml = bootstrap(upstream.addr, extra_listener_options);
            let name = format!("{kind:?}").to_lowercase();
            let proxy = Envoy::start_kind(kind, &name, &yaml)
                .await
                .unwrap_or_else(|e| panic!("{kind:?} did not start: {e:#}\n{yaml}"));
            proxy
                .wait_ready(STARTUP)
                .await
                .unwrap_or_else(|e| panic!("{kind:?} not ready: {e:#}\n{}", proxy.logs()));
            proxies.push((kind, proxy, upstream));
        }
        Pair { proxies }
    }

    /// Sends `bytes` to listener `name` of each proxy; the answers in [`ProxyKind::ALL`]'s
    /// order.
    async fn send(&self, name: &str, bytes: &[u8]) -> Vec<Answer> {
        let mut answers = Vec::new();
        for (kind, proxy, _) in &self.proxies {
            let addr = proxy
                .listener_addr(name, STARTUP)
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: listener {name}: {e:#}"));
            let pipelined = bytes.windows(11).filter(|w| w == b" HTTP/1.1\r\n").count() > 1;
            answers.push(if pipelined {
                exchange_until_closed(addr, bytes, ANSWER).await
            } else {
                exchange(addr, bytes, ANSWER).await
            });
        }
        answers
    }
}

// ---------------------------------------------------------------------------------------
// 1. Path normalisation before authorization and routing

/// At least 30 tricky paths: dot segments, encoded dots and unreserved characters, double
/// slashes, encoded slashes and backslashes, `;` parameters, case, trailing slashes, queries.
const PATHS: &[&str] = &[
    "/admin",
    "/admin/",
    "/admin/x",
    "/./admin",
    "/public/../admin",
    "/public/./../admin/x",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/%2e/admin",
    "/%61dmin",
    "/%41dmin",
    "/ADMIN",
    "/Admin/x",
    "//admin",
    "//admin/x",
    "/public//../admin",
    "/admin//x",
    "/public/..//admin",
    "/../admin",
    "/..",
    "/a/b/../../../admin",
    "/public%2F..%2Fadmin",
    "/public%2f..%2fadmin",
    "/public/%2E%2E%2Fadmin",
    "/admin%2Fx",
    "/public%5C..%5Cadmin",
    "/public\\..\\admin",
    "/admin;x=1",
    "/admin;/../public",
    "/public/..;/admin",
    "/admin/.",
    "/admin/..",
    "/public/x/..",
    "/public?next=/../admin",
    "/public/../admin?x=/y//z",
    "/%7Epublic",
    "/%7epublic/%2e/x",
    "/public/a%20b",
    "/public/%zz",
    "/public/%",
    "/public/%c3%a9",
    "/admin#frag",
    "/public#/../admin",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_normalised_before_authorization_and_routing_as_envoy_does() {
    let pair = Pair::start("").await;
    let mut table = String::new();
    let mut mismatches = 0;
    for (level, _) in LEVELS {
        for path in PATHS {
            let answers = pair.send(level, &get(path)).await;
            let same = answers[0] == answers[1];
            mismatches += usize::from(!same);
            let _ = writeln!(
                table,
                "{} {level:8} {path:26} envoy: {} | bowline: {}",
                if same { " " } else { "✗" },
                answers[0],
                answers[1]
            );
        }
    }
    assert_eq!(mismatches, 0, "answers differ (✗):\n{table}");

    // What the comparison protects: under Istio's default (BASE), every spelling of /admin
    // is denied on both, and the upstream sees the normalised path.
    for path in [
        "/public/../admin",
        "/./admin",
        "/public/%2e%2e/admin",
        "/%61dmin",
    ] {
        let answers = pair.send("base", &get(path)).await;
        for answer in &answers {
            assert_eq!(answer.status, Some(403), "{path}: {answer}\n{table}");
        }
    }
    let answers = pair.send("base", &get("/public/x/../y?q=/../z")).await;
    for answer in &answers {
        assert_eq!(answer.status, Some(200), "{answer}");
        assert!(
            answer.body.starts_with("/public/y?q=/../z\npublic\n"),
            "{answer}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. Hostile request heads

/// How bowline-proxy's answer must compare with Envoy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The same status.
    Same,
    /// Both refuse (4xx/5xx), with different codes: hyper's HTTP/1 parser answers before any
    /// code of ours runs. The reason says where the two differ.
    BothRefuse(&'static str),
    /// bowline-proxy refuses what Envoy takes; the reason says why that is kept.
    Stricter(&'static str),
}

/// Raw requests a careless or hostile client sends, each with what it tries.
fn hostile_requests() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let big_header = format!(
        "GET /public HTTP/1.1\r\nHost: svc\r\nx-big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let many_headers = format!(
        "GET /public HTTP/1.1\r\nHost: svc\r\n{}Connection: close\r\n\r\n",
        (0..101)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>()
    );
    let long_target = format!(
        "GET /public/{} HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n",
        "p".repeat(70 * 1024)
    );
    let raw = |text: &str| text.as_bytes().to_vec();
    use Expect::{BothRefuse, Same, Stricter};
    vec![
        ("plain", get("/public/ok"), Same),
        ("absolute-form", raw("GET http://svc/public/abs HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n"), Same),
        ("CONNECT without an upgrade config", raw("CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\nConnection: close\r\n\r\n"), Same),
        ("invalid Host", raw("GET /public HTTP/1.1\r\nHost: a b/c@d\r\nConnection: close\r\n\r\n"), Same),
        ("Host with userinfo", raw("GET /public HTTP/1.1\r\nHost: user@evil\r\nConnection: close\r\n\r\n"), Same),
        ("userinfo in an absolute URI", raw("GET http://user@evil:80@good/public HTTP/1.1\r\nHost: good\r\nConnection: close\r\n\r\n"), Same),
        ("missing Host", raw("GET /public HTTP/1.1\r\nConnection: close\r\n\r\n"), Same),
        ("two Host headers", raw("GET /public HTTP/1.1\r\nHost: svc\r\nHost: other\r\nConnection: close\r\n\r\n"), Same),
        ("lower-case method", raw("get /public HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n"), Same),
        ("unknown method", raw("FOO /public HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n"), Same),
        ("fragment", get("/public#frag"), Same),
        ("70 KB header", big_header.into_bytes(), Same),
        ("101 headers", many_headers.into_bytes(), Same),
        ("70 KB request target", long_target.into_bytes(), Same),
        ("space before colon", raw("GET /public HTTP/1.1\r\nHost: svc\r\nx-a : b\r\nConnection: close\r\n\r\n"), Same),
        ("header folding", raw("GET /public HTTP/1.1\r\nHost: svc\r\nx-a: b\r\n c\r\nConnection: close\r\n\r\n"), Stricter("obs-fold is deprecated (RFC 9112 §5.2): Envoy unfolds it, hyper refuses it (400)")),
        ("NUL in a header", raw("GET /public HTTP/1.1\r\nHost: svc\r\nx-a: b\0c\r\nConnection: close\r\n\r\n"), Same),
        ("bare LF line ends", raw("GET /public HTTP/1.1\nHost: svc\nConnection: close\n\n"), Same),
        ("HTTP/1.0", raw("GET /public HTTP/1.0\r\nHost: svc\r\n\r\n"), Same),
        ("unknown version", raw("GET /public HTTP/1.2\r\nHost: svc\r\nConnection: close\r\n\r\n"), BothRefuse("Envoy answers 426, hyper 400")),
        ("bad chunk size", raw("POST /public HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"), Same),
        ("Content-Length and chunked", raw("POST /public HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: svc\r\n\r\n"), Same),
        ("two Content-Lengths", raw("POST /public HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde"), Same),
        ("Transfer-Encoding gzip", raw("POST /public HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nabc"), BothRefuse("Envoy answers 501, hyper 400")),
        ("negative Content-Length", raw("POST /public HTTP/1.1\r\nHost: svc\r\nContent-Length: -1\r\nConnection: close\r\n\r\n"), Same),
        ("asterisk target", raw("OPTIONS * HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n"), Same),
        ("pipelined smuggle", raw("GET /public/first HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n\r\nGET /public/second HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n"), Same),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_answered_as_envoy_answers_them() {
    let pair = Pair::start("").await;
    let mut table = String::new();
    let mut mismatches = 0;
    for (what, bytes, expect) in hostile_requests() {
        let answers = pair.send("base", &bytes).await;
        let refused = |a: &Answer| a.status.is_some_and(|s| s >= 400);
        let same = match expect {
            Expect::Same => answers[0].status == answers[1].status,
            Expect::BothRefuse(_) => refused(&answers[0]) && refused(&answers[1]),
            Expect::Stricter(_) => refused(&answers[1]),
        };
        mismatches += usize::from(!same);
        let _ = writeln!(
            table,
            "{} {what:34} envoy: {} | bowline: {}",
            if same { " " } else { "✗" },
            short(&answers[0]),
            short(&answers[1])
        );
    }
    // Nothing Envoy kept from its upstream reached ours: what bowline-proxy forwarded is
    // part of what Envoy forwarded. (Envoy may forward more: the request it unfolds, and
    // the head of a request whose body then breaks, which ours sends with the first bytes of
    // the body.)
    let seen: Vec<Vec<(String, String)>> = pair
        .proxies
        .iter()
        .map(|(_, _, upstream)| {
            let mut seen: Vec<_> = upstream
                .seen()
                .into_iter()
                .map(|s| (s.method, s.target))
                .collect();
            seen.sort();
            seen
        })
        .collect();
    let mut envoys = seen[0].clone();
    let smuggled: Vec<_> = seen[1]
        .iter()
        .filter(|request| match envoys.iter().position(|e| e == *request) {
            Some(i) => {
                envoys.remove(i);
                false
            }
            None => true,
        })
        .collect();
    assert!(
        mismatches == 0 && smuggled.is_empty(),
        "answers differ (✗):\n{table}\nonly bowline's upstream saw: {smuggled:?}\n\
         upstream saw, envoy: {:?}\nupstream saw, bowline: {:?}",
        seen[0],
        seen[1]
    );
}

fn short(answer: &Answer) -> String {
    match answer.status {
        Some(status) => format!("{status}"),
        None => "no answer".into(),
    }
}

// ---------------------------------------------------------------------------------------
// 3. Stalled request heads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_head_gets_408_once_the_headers_timeout_passes() {
    let pair = Pair::start("request_headers_timeout: 1s").await;
    let stalled = b"GET /public HTTP/1.1\r\nHost: svc\r\nx-slow: ";
    // Both answer within the exchange's bound (5 s), well after the 1 s timeout.
    let answers = pair.send("base", stalled).await;
    for ((kind, _, upstream), answer) in pair.proxies.iter().zip(&answers) {
        assert_eq!(answer.status, Some(408), "{kind:?}: {answer}");
        assert!(
            upstream.seen().is_empty(),
            "{kind:?}: nothing reached the upstream"
        );
    }
    // A complete request on the same listener is served as usual.
    for (kind, answer) in ProxyKind::ALL
        .iter()
        .zip(pair.send("base", &get("/public/ok")).await)
    {
        assert_eq!(answer.status, Some(200), "{kind:?}: {answer}");
    }
}
