//! `bowline explain` on a copy of the bookinfo demo: the route and cluster a request takes,
//! its mutual TLS, and each destination's authorization decision naming the rule — offline,
//! from the mesh directory only (no process of the mesh runs).

use std::path::Path;
use std::process::Command;

fn bookinfo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bookinfo"),
        dir.path(),
    );
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// (exit code, stdout, stderr)
fn explain(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bowline"))
        .arg("explain")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const REVIEWS: &[&str] = &[
    "--from",
    "productpage-v1",
    "--to",
    "reviews:9080",
    "--path",
    "/reviews",
];
const DETAILS: &[&str] = &[
    "--from",
    "productpage-v1",
    "--to",
    "details:9080",
    "--path",
    "/details",
];

fn policy(name: &str, action: &str, sa: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  selector: {{matchLabels: {{app: details}}}}\n  action: {action}\n  rules:\n  - from:\n    - source: {{principals: [cluster.local/ns/default/sa/{sa}]}}\n"
    )
}

#[test]
fn the_route_cluster_and_mtls_of_a_request() {
    let dir = bookinfo();
    let (code, out, err) = explain(dir.path(), REVIEWS);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("cluster: outbound|9080|v1|reviews.default.svc.cluster.local"),
        "{out}"
    );
    assert!(
        out.contains("mutual TLS, server must be one of [spiffe://cluster.local/ns/default/sa/bookinfo-reviews]"),
        "{out}"
    );
    assert!(out.contains("destination: reviews-v1 at 10.213."), "{out}");
    assert!(out.trim_end().ends_with("ALLOWED"), "{out}");

    // jason's requests go to v2 once the sample is in place.
    std::fs::copy(
        dir.path().join("samples/reviews-jason-v2.yaml"),
        dir.path().join("config/reviews.yaml"),
    )
    .unwrap();
    let mut jason = REVIEWS.to_vec();
    jason.extend(["-H", "end-user: jason"]);
    let (code, out, _) = explain(dir.path(), &jason);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("cluster: outbound|9080|v2|reviews.default.svc.cluster.local"),
        "{out}"
    );
    let (_, out, _) = explain(dir.path(), REVIEWS);
    assert!(out.contains("|v1|reviews"), "everyone else: {out}");
}

#[test]
fn a_denial_names_the_rule_that_decided() {
    let dir = bookinfo();
    let file = dir.path().join("config/authz.yaml");
    std::fs::write(
        &file,
        policy("deny-productpage", "DENY", "bookinfo-productpage"),
    )
    .unwrap();
    let (code, out, _) = explain(dir.path(), DETAILS);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("denied by DENY rule ns[default]-policy[deny-productpage]-rule[0] (403)"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("DENIED by ns[default]-policy[deny-productpage]-rule[0]"),
        "{out}"
    );

    std::fs::write(
        &file,
        policy("details-viewers", "ALLOW", "bookinfo-reviews"),
    )
    .unwrap();
    let (code, out, _) = explain(dir.path(), DETAILS);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "no ALLOW rule matches (in force: ns[default]-policy[details-viewers]-rule[0])"
        ),
        "{out}"
    );

    std::fs::write(
        &file,
        policy("details-viewers", "ALLOW", "bookinfo-productpage"),
    )
    .unwrap();
    let (code, out, _) = explain(dir.path(), DETAILS);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ALLOW rule ns[default]-policy[details-viewers]-rule[0] matches: allowed"),
        "{out}"
    );
}

#[test]
fn plaintext_to_a_strict_workload_is_refused() {
    let dir = bookinfo();
    // The caller sends plaintext (a DestinationRule turns its mTLS off) into STRICT details.
    std::fs::write(
        dir.path().join("config/plain.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: details-plain, namespace: default}\nspec:\n  host: details\n  trafficPolicy: {tls: {mode: DISABLE}}\n",
    )
    .unwrap();
    let (code, out, _) = explain(dir.path(), DETAILS);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("transport: plaintext"), "{out}");
    assert!(
        out.contains("connection refused: no inbound chain takes plaintext on port 9080"),
        "{out}"
    );
}

#[test]
fn bad_config_and_unknown_workloads_are_errors() {
    let dir = bookinfo();
    let (code, _, err) = explain(dir.path(), &["--from", "nobody", "--to", "details:9080"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no workload \"nobody\"") && err.contains("productpage-v1"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("config/broken.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: broken}\nspec:\n  hosts: [details]\n  http:\n  - timeout: soon\n    route: [{destination: {host: details}}]\n",
    )
    .unwrap();
    let (code, _, err) = explain(dir.path(), DETAILS);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("broken.yaml:7:") && err.contains("timeout"),
        "{err}"
    );
}

#[test]
fn jwt_outcomes_come_before_authorization() {
    let dir = bookinfo();
    std::fs::write(
        dir.path().join("config/jwt.yaml"),
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: pp-jwt, namespace: default}\nspec:\n  selector: {matchLabels: {app: productpage}}\n  jwtRules:\n  - issuer: https://issuer.test\n    jwks: '{\"keys\": []}'\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: signed-in, namespace: default}\nspec:\n  selector: {matchLabels: {app: productpage}}\n  rules:\n  - from:\n    - source: {requestPrincipals: [\"*\"]}\n",
    )
    .unwrap();
    let to_productpage = [
        "--from",
        "details-v1",
        "--to",
        "productpage:9080",
        "--path",
        "/productpage",
    ];
    let mut garbage = to_productpage.to_vec();
    garbage.extend(["-H", "authorization: Bearer not-a-jwt"]);
    let (code, out, _) = explain(dir.path(), &garbage);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("JWT: 401 Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"),
        "{out}"
    );
    let (code, out, _) = explain(dir.path(), &to_productpage);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("JWT: no token; allowed to continue"), "{out}");
    assert!(
        out.contains("no ALLOW rule matches (in force: ns[default]-policy[signed-in]-rule[0])"),
        "{out}"
    );
}

#[test]
fn rewrites_and_redirects_are_the_routers_own_decision() {
    let dir = bookinfo();
    std::fs::write(
        dir.path().join("config/details-routes.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: details, namespace: default}\nspec:\n  hosts: [details]\n  http:\n  - match: [{uri: {prefix: /old}}]\n    redirect: {uri: /details, redirectCode: 302}\n  - match: [{uri: {prefix: /v2/}}]\n    rewrite: {uri: /, authority: details-v2.default.svc.cluster.local}\n    route: [{destination: {host: details}}]\n  - route: [{destination: {host: details}}]\n",
    )
    .unwrap();
    let args = |path: &'static str| {
        vec![
            "--from",
            "productpage-v1",
            "--to",
            "details:9080",
            "--path",
            path,
        ]
    };
    let (code, out, err) = explain(dir.path(), &args("/v2/details?x=1"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("path rewritten to /details?x=1"), "{out}");
    assert!(
        out.contains("Host rewritten to details-v2.default.svc.cluster.local"),
        "{out}"
    );
    let (code, out, _) = explain(dir.path(), &args("/old"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("a 302 redirect to http://details:9080/details"),
        "{out}"
    );
    let (_, out, _) = explain(dir.path(), &args("/details"));
    assert!(
        !out.contains("rewritten"),
        "no rewrite on the default route: {out}"
    );
}
