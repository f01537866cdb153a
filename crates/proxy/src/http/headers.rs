//! Header hygiene between hops: hop-by-hop headers are the connection's, not the message's,
//! and must not be forwarded (HTTP/2 refuses them outright).

use http::header::{self, HeaderMap, HeaderName};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers, and the headers a `Connection` header names. `upgrading`
/// keeps `Connection` and `Upgrade` for a WebSocket hand-shake over HTTP/1.1.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrading: bool) {
    if let Some(connection) = headers.get(header::CONNECTION) {
        if !upgrading {
            // Rare: only look the named headers up when there are any besides keep-alive/close.
            let named: Vec<HeaderName> = connection
                .to_str()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|n| {
                    !n.is_empty()
                        && !n.eq_ignore_ascii_case("keep-alive")
                        && !n.eq_ignore_ascii_case("close")
                })
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect();
            for name in named {
                headers.remove(name);
            }
            headers.remove(header::CONNECTION);
        }
    }
    headers.remove(KEEP_ALIVE);
    headers.remove(PROXY_CONNECTION);
    headers.remove(header::TRANSFER_ENCODING);
    if !upgrading {
        headers.remove(header::UPGRADE);
    }
    if let Some(te) = headers.get(header::TE) {
        // Only `te: trailers` may cross (gRPC needs it).
        if te.as_bytes() != b"trailers" {
            headers.remove(header::TE);
        }
    }
}

/// Whether the request asks for a protocol upgrade (WebSocket) over HTTP/1.1.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// What the connection manager does with an HTTP/1.1 request that asks for an upgrade, as
/// Envoy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeDecision {
    /// Not an upgrade request.
    NotUpgrade,
    /// `Upgrade: h2c`: Envoy's HTTP/1.1 codec does not support it and drops the upgrade
    /// headers; the request goes on as a plain one.
    DropH2c,
    /// A WebSocket upgrade the connection manager allows (`upgrade_configs`): forwarded, then
    /// tunnelled.
    Allow,
    /// Any other upgrade (Envoy's default allows none): 403, never forwarded.
    Refuse,
}

/// Decides what to do with `headers`' upgrade; `websocket` is whether the connection manager
/// allows WebSocket upgrades.
pub fn decide_upgrade(headers: &HeaderMap, websocket: bool) -> UpgradeDecision {
    if !is_upgrade(headers) {
        return UpgradeDecision::NotUpgrade;
    }
    let kind = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim();
    if kind.eq_ignore_ascii_case("h2c") {
        UpgradeDecision::DropH2c
    } else if websocket && kind.eq_ignore_ascii_case("websocket") {
        UpgradeDecision::Allow
    } else {
        UpgradeDecision::Refuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn an_upgrade_keeps_connection_and_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn upgrades_are_allowed_only_when_configured() {
        use UpgradeDecision::*;
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                h.append(*name, HeaderValue::from_static(value));
            }
            h
        };
        let ws = headers(&[("connection", "Upgrade"), ("upgrade", "WebSocket")]);
        let h2c = headers(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
            ("http2-settings", "AAMAAABkAAQAAP__"),
        ]);
        let other = headers(&[("connection", "keep-alive, upgrade"), ("upgrade", "foo")]);
        // `Upgrade` without `Connection: upgrade` asks for nothing.
        let stray = headers(&[("upgrade", "websocket")]);
        for (name, h, websocket, want) in [
            ("websocket allowed", &ws, true, Allow),
            ("websocket not configured", &ws, false, Refuse),
            ("h2c", &h2c, true, DropH2c),
            ("h2c, no websocket", &h2c, false, DropH2c),
            ("other type", &other, true, Refuse),
            ("stray upgrade header", &stray, false, NotUpgrade),
            ("plain request", &HeaderMap::new(), false, NotUpgrade),
        ] {
            assert_eq!(decide_upgrade(h, websocket), want, "{name}");
        }
    }
}
