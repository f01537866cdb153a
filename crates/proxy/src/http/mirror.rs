//! Request mirroring: a fire-and-forget copy to another cluster; its answer is read and
//! dropped, so the connection goes back to the pool.

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::request::Parts;
use http::Uri;
use http_body_util::BodyExt;

use super::body::UpstreamBody;
use super::conn::Conn;
use super::upstream_request::upstream_request;
use crate::config::Config;
use crate::upstream::pool::Protocol;

/// Fire-and-forget copy of the request to `cluster` (Host gets Envoy's `-shadow` suffix).
pub fn send_mirror(
    conn: &Conn,
    snapshot: &Config,
    cluster: &str,
    parts: &Parts,
    body: Option<Bytes>,
) {
    let Some(cluster) = snapshot.clusters.get(cluster).cloned() else {
        return;
    };
    let Some(endpoint) = cluster.pick(None, rand::random(), &[]) else {
        return;
    };
    let mut request = upstream_request(parts, UpstreamBody::Buffered(body), cluster.protocol);
    if let Some(host) = parts.headers.get(HOST).and_then(|h| h.to_str().ok()) {
        let shadow = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{name}-shadow:{port}")
            }
            _ => format!("{host}-shadow"),
        };
        if let Ok(value) = HeaderValue::try_from(shadow) {
            if cluster.protocol == Protocol::Http1 {
                request.headers_mut().insert(HOST, value);
            } else if let Ok(authority) = value
                .to_str()
                .unwrap_or_default()
                .parse::<http::uri::Authority>()
            {
                let mut uri = std::mem::take(request.uri_mut()).into_parts();
                uri.authority = Some(authority);
                *request.uri_mut() = Uri::from_parts(uri).unwrap_or_default();
            }
        }
    }
    let pool = conn.pool.clone();
    tokio::spawn(async move {
        let stats = cluster.stats.clone();
        stats.upstream_rq_total.inc();
        if let Ok(response) = pool.send(endpoint.addr, &cluster, request).await {
            stats.upstream_rq_xx.record(response.status().as_u16());
            // Read to the end so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
        }
    });
}
