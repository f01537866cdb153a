//! Scenarios: record, render, parse the text back with a small line parser, check values.
//! Expected names and label orders are written out here from Istio's own test data
//! (istio/proxy `testdata/metric/client_request_total.yaml.tmpl`,
//! `tcp_client_sent_bytes.yaml.tmpl`), not taken from the code under test.

use super::*;
use crate::ResponseFlags;
use std::sync::Arc;

mod http;
mod load;
mod tcp;
mod text;

use text::{parse, Exposition};

fn peer(workload: &str, app: &str, principal: &str) -> Peer {
    Peer {
        workload: workload.into(),
        namespace: "default".into(),
        principal: principal.into(),
        app: app.into(),
        version: "v1".into(),
        cluster: "Kubernetes".into(),
        canonical_service: app.into(),
        canonical_revision: "v1".into(),
    }
}

/// productpage's sidecar calling ratings, as in Istio's client_request_total test data.
pub(super) fn productpage_to_ratings() -> RequestLabels {
    RequestLabels {
        reporter: Reporter::Source,
        source: Arc::new(peer("productpage-v1", "productpage", "")),
        destination: Arc::new(peer(
            "ratings-v1",
            "ratings",
            "spiffe://cluster.local/ns/default/sa/r",
        )),
        destination_service: "ratings.default.svc.cluster.local".into(),
        destination_service_name: "ratings".into(),
        destination_service_namespace: "default".into(),
        request_protocol: Protocol::Http,
        response_code: 200,
        grpc_response_status: None,
        response_flags: ResponseFlags::NONE,
        connection_security_policy: SecurityPolicy::Unknown,
    }
}

pub(super) fn tcp_labels() -> TcpLabels {
    let http = productpage_to_ratings();
    TcpLabels {
        reporter: Reporter::Destination,
        source: http.source,
        destination: http.destination,
        destination_service: http.destination_service,
        destination_service_name: http.destination_service_name,
        destination_service_namespace: http.destination_service_namespace,
        response_flags: ResponseFlags::NONE,
        connection_security_policy: SecurityPolicy::MutualTls,
    }
}

pub(super) fn scraped(metrics: &IstioMetrics) -> Exposition {
    let mut out = String::new();
    metrics.render_prometheus(&mut out);
    parse(&out)
}
