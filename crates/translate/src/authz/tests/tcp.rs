//! TCP ports: the same policies as network RBAC filters, HTTP-only fields inexpressible
//! (Istio's TCP builder): an ALLOW rule that needs HTTP allows nothing, a DENY rule denies
//! without its HTTP fields.

use super::*;
use bowline_model::rbac::Rbac as ModelRbac;

/// The network filters for `app: bar` in `foo`, converted through bowline-model (inside a
/// listener, as the proxy gets them).
fn network(yaml: &str) -> Vec<ModelRbac> {
    let snapshot = mesh(yaml);
    let filters = network_rbac_filters(
        &crate::PushContext::of(&snapshot),
        &proxy("foo", &[("app", "bar")]),
    );
    for f in &filters {
        assert_eq!(f.name, "envoy.filters.network.rbac");
    }
    let mut chain = filters.clone();
    chain.push(crate::listeners::tcp_proxy_to("inbound|9000||", &[]));
    let listener = bowline_xds::pb::envoy::config::listener::v3::Listener {
        name: "l".into(),
        address: Some(crate::proto::socket_address("10.1.0.5", 15006)),
        filter_chains: vec![bowline_xds::pb::envoy::config::listener::v3::FilterChain {
            filters: chain,
            ..Default::default()
        }],
        ..Default::default()
    };
    let model = bowline_model::Listener::try_from(&listener).expect("the proxy accepts it");
    model.filter_chains[0].network_rbac.clone()
}

/// A connection's verdict (no HTTP attributes).
fn connect(filters: &[ModelRbac], peer: &str) -> Result<(), Option<String>> {
    let r = Req {
        method: "",
        path: "",
        authority: "",
        ..req().by_sa("foo", peer)
    };
    let attrs = r.attrs();
    for f in filters {
        let d = f.evaluate(&attrs);
        if !d.allowed() {
            return Err(d.enforced.policy.map(str::to_string));
        }
    }
    Ok(())
}

#[test]
fn tcp_ports_get_network_rbac_without_http_fields() {
    // Principals only: expressible on TCP.
    let by_account = network(&policy(
        "foo",
        "db-clients",
        "  selector: {matchLabels: {app: bar}}\n  rules:\n  - from:\n    - source: {principals: [cluster.local/ns/foo/sa/app]}",
    ));
    assert_eq!(connect(&by_account, "app"), Ok(()));
    assert_eq!(connect(&by_account, "other"), DENIED);

    // An ALLOW rule with a path cannot match a connection: nothing is allowed.
    let with_path = network(&policy(
        "foo",
        "web-only",
        "  selector: {matchLabels: {app: bar}}\n  rules:\n  - from:\n    - source: {principals: [cluster.local/ns/foo/sa/app]}\n    to:\n    - operation: {paths: [/admin]}",
    ));
    assert_eq!(connect(&with_path, "app"), DENIED);

    // A DENY rule with a method denies on its principal alone.
    let deny = network(&policy(
        "foo",
        "no-writes",
        "  selector: {matchLabels: {app: bar}}\n  action: DENY\n  rules:\n  - from:\n    - source: {principals: [cluster.local/ns/foo/sa/app]}\n    to:\n    - operation: {methods: [POST]}",
    ));
    assert_eq!(
        connect(&deny, "app"),
        denied_by("ns[foo]-policy[no-writes]-rule[0]")
    );
    assert_eq!(connect(&deny, "other"), Ok(()));

    assert!(network("").is_empty(), "no policy, no filter");
}
