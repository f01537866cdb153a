//! Istio's own `istioctl analyze` test table (`analyzers_test.go`, with its testdata), run
//! against bowline's analysis. For every case whose analyzer checks kinds bowline reads,
//! the inputs are loaded (Kubernetes Services, Pods, Namespaces and Secrets become the
//! ServiceEntries, WorkloadEntries, namespaces and credentials bowline would have; other
//! kinds are left out and named), analysis runs, and the expected `(message, resource)`
//! pairs are compared with bowline's findings of the codes that stand for that analyzer.
//!
//! The table printed shows, per case, expected / found / missing / extra. The test holds
//! two lines: matched expectations never drop below [`FLOOR`], and bowline reports nothing
//! Istio's test says must not be reported, except the differences listed in
//! [`KNOWN_EXTRAS`] with their reasons.

mod istio_grid;

use bowline_config::diag::istio_message;
use bowline_config::validate::analyze::analyze_in;
use bowline_config::{load_str, Kind};
use istio_grid::{analyzers_dir, cases, read, Case};
use std::path::Path;

/// Istio analyzers bowline has checks for, with the bowline codes of those checks.
const ANALYZERS: &[(&str, &[&str])] = &[
    ("gateway.IngressGatewayPortAnalyzer", &["BL0220"]),
    ("gateway.SecretAnalyzer", &["BL0220", "BL0221"]),
    ("gateway.ConflictingGatewayAnalyzer", &["BL0222"]),
    ("gateway.CertificateAnalyzer", &["BL0223"]),
    (
        "virtualservice.ConflictingMeshGatewayHostsAnalyzer",
        &["BL0204"],
    ),
    (
        "virtualservice.DestinationHostAnalyzer",
        &["BL0202", "BL0213", "BL0214"],
    ),
    ("virtualservice.DestinationRuleAnalyzer", &["BL0201"]),
    (
        "virtualservice.GatewayAnalyzer",
        &["BL0203", "BL0210", "BL0211"],
    ),
    ("virtualservice.JWTClaimRouteAnalyzer", &["BL0219"]),
    ("authz.AuthorizationPoliciesAnalyzer", &["BL0215", "BL0216"]),
    (
        "destinationrule.CaCertificateAnalyzer",
        &["BL0217", "BL0218"],
    ),
    ("schema.VirtualService", &["BL0205", "BL0212"]),
    ("serviceentry.ProtocolAddressesAnalyzer", &["BL0224"]),
    (
        "serviceentry.ConflictingServiceEntryProtocolAnalyzer",
        &["BL0225"],
    ),
    ("sidecar.SelectorAnalyzer", &["BL0226", "BL0227", "BL0228"]),
    ("k8sgateway.SelectorAnalyzer", &["BL0229"]),
    (
        "destinationrule.PodNotSelectedAnalyzer",
        &["BL0230", "BL0231"],
    ),
];

/// Analyzers of kinds bowline reads that bowline has no check for yet: their cases run,
/// and every expectation counts as missing.
const NOT_IMPLEMENTED: &[&str] = &["deprecation.FieldAnalyzer"];

/// Findings bowline makes where Istio's test expects none: `(case, message, resource,
/// reason)`.
const KNOWN_EXTRAS: &[(&str, &str, &str, &str)] = &[
    (
        "virtualServiceKubernetesGateways",
        "ReferencedResourceNotFound",
        "VirtualService default/my-vs",
        GATEWAY_API_BINDING,
    ),
    (
        "virtualServiceKubernetesGateways",
        "ReferencedResourceNotFound",
        "VirtualService default/my-vs-host-mismatch",
        GATEWAY_API_BINDING,
    ),
];

const GATEWAY_API_BINDING: &str =
    "bowline binds VirtualServices to Istio Gateways only; a Gateway API Gateway needs an HTTPRoute";

/// Expectations met, out of the counted ones; raise it as checks are added.
const FLOOR: usize = 108;

/// `(message name, kind, namespace, name)` of a finding.
type Found = (String, String, String, String);

fn origin_matches(expected: &str, found: &Found) -> bool {
    let Some((kind, name)) = expected.split_once(' ') else {
        return false;
    };
    kind == found.1
        && match name.split_once('/') {
            Some((ns, name)) => ns == found.2 && name == found.3,
            None => name == found.3,
        }
}

fn bowline_kind(origin: &str) -> bool {
    let kind = origin.split(' ').next().unwrap_or("");
    [
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::ServiceEntry,
        Kind::WorkloadEntry,
        Kind::Gateway,
        Kind::Sidecar,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
        Kind::HttpRoute,
        Kind::GrpcRoute,
    ]
    .iter()
    .any(|k| k.as_str() == kind)
}

/// One case's outcome.
struct Outcome {
    counted: usize,
    matched: usize,
    missing: Vec<(String, String)>,
    extra: Vec<Found>,
    notes: String,
}

fn run(case: &Case, codes: &[&str]) -> Outcome {
    let inputs = read(case);
    let loaded = load_str(Path::new(&case.inputs[0]), &inputs.text);
    let config = &loaded.config;
    let mut found: Vec<Found> = analyze_in(config, &inputs.env)
        .into_iter()
        .filter(|(_, f)| codes.contains(&f.code))
        .map(|(i, f)| {
            let r = &config.resources[i];
            let message = istio_message(f.code).expect("analysis codes map to Istio");
            (
                message.name.to_string(),
                r.kind().as_str().to_string(),
                r.namespace().to_string(),
                r.name().to_string(),
            )
        })
        .collect();
    let mut outcome = Outcome {
        counted: 0,
        matched: 0,
        missing: Vec::new(),
        extra: Vec::new(),
        notes: String::new(),
    };
    for (message, origin) in &case.expected {
        if !bowline_kind(origin) {
            continue;
        }
        outcome.counted += 1;
        match found
            .iter()
            .position(|f| f.0 == *message && origin_matches(origin, f))
        {
            Some(k) => {
                found.remove(k);
                outcome.matched += 1;
            }
            None => outcome.missing.push((message.clone(), origin.clone())),
        }
    }
    outcome.extra = found;
    let documents = inputs.text.matches("\n---\n").count() + 1;
    if config.resources.len() < documents {
        outcome.notes = format!(
            "{} of {documents} documents not read; ",
            documents - config.resources.len()
        );
    }
    if !inputs.dropped.is_empty() {
        outcome.notes += &format!(
            "left out: {}",
            inputs
                .dropped
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    outcome
}

#[test]
fn istio_analyzer_test_cases() {
    let go = std::fs::read_to_string(analyzers_dir().join("analyzers_test.go"))
        .expect("analyzers_test.go");
    let (mut counted, mut matched) = (0, 0);
    let mut unexplained = Vec::new();
    println!(
        "{:<62} {:>3} {:>3} {:>3} {:>3}  notes",
        "case (analyzer)", "exp", "hit", "mis", "ext"
    );
    for case in cases(&go) {
        let label = format!("{} ({})", case.name, case.analyzer);
        let codes: &[&str] = match ANALYZERS.iter().find(|(a, _)| *a == case.analyzer) {
            Some((_, codes)) => codes,
            None if NOT_IMPLEMENTED.contains(&case.analyzer.as_str()) => &[],
            None => {
                println!("{label:<62} skipped: the analyzer checks kinds bowline does not read");
                continue;
            }
        };
        if case.needs_mesh_config {
            println!("{label:<62} skipped: needs a mesh config, which bowline does not read");
            continue;
        }
        let outcome = run(&case, codes);
        counted += outcome.counted;
        matched += outcome.matched;
        println!(
            "{label:<62} {:>3} {:>3} {:>3} {:>3}  {}{}",
            outcome.counted,
            outcome.matched,
            outcome.missing.len(),
            outcome.extra.len(),
            if codes.is_empty() {
                "not implemented; "
            } else {
                ""
            },
            outcome.notes
        );
        for (message, origin) in &outcome.missing {
            println!("    missing {message} {origin}");
        }
        for f in &outcome.extra {
            let origin = format!("{} {}/{}", f.1, f.2, f.3);
            println!("    extra   {} {origin}", f.0);
            let known = KNOWN_EXTRAS
                .iter()
                .any(|(c, m, o, _)| *c == case.name && *m == f.0 && *o == origin);
            if !known {
                unexplained.push(format!("{}: {} {origin}", case.name, f.0));
            }
        }
    }
    println!("matched {matched} of {counted} expected messages on kinds bowline reads");
    assert!(
        unexplained.is_empty(),
        "findings Istio's tests say must not be reported:\n{}",
        unexplained.join("\n")
    );
    assert!(matched >= FLOOR, "matched {matched} < floor {FLOOR}");
}
