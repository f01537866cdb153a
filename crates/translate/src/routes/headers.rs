//! VirtualService `headers` (request/response set, add, remove) as Envoy header mutations.

use crate::proto::header_option;
use bowline_config::istio::virtual_service::{HeaderOperations, Headers};
use bowline_xds::pb::envoy::config::core::v3::HeaderValueOption;

/// Header mutations for a route or one weighted destination.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HeaderOps {
    pub request_add: Vec<HeaderValueOption>,
    pub request_remove: Vec<String>,
    pub response_add: Vec<HeaderValueOption>,
    pub response_remove: Vec<String>,
    /// A request `set` of `host`/`:authority` is a host rewrite in Envoy (which refuses to
    /// touch those headers through header mutations).
    pub host_rewrite: Option<String>,
}

/// `set` overwrites (OVERWRITE_IF_EXISTS_OR_ADD), `add` appends (APPEND_IF_EXISTS_OR_ADD),
/// each in header-name order. Envoy refuses mutations of `:`-prefixed pseudo-headers and of
/// `host`, and header values carrying NUL, CR or LF: those are left out.
pub(crate) fn header_ops(headers: Option<&Headers>) -> HeaderOps {
    let mut out = HeaderOps::default();
    let Some(headers) = headers else {
        return out;
    };
    if let Some(req) = &headers.request {
        out.host_rewrite = req
            .set
            .iter()
            .find(|(k, _)| is_authority(k))
            .map(|(_, v)| v.clone())
            .filter(|v| value_ok(v) && !v.is_empty());
        (out.request_add, out.request_remove) = mutations(req);
    }
    if let Some(resp) = &headers.response {
        (out.response_add, out.response_remove) = mutations(resp);
    }
    out
}

fn mutations(ops: &HeaderOperations) -> (Vec<HeaderValueOption>, Vec<String>) {
    let set = ops.set.iter().map(|(k, v)| (k, v, true));
    let add = ops.add.iter().map(|(k, v)| (k, v, false));
    let to_add = set
        .chain(add)
        .filter(|(k, v, _)| modifiable(k) && value_ok(v))
        .map(|(k, v, overwrite)| header_option(k, v, overwrite))
        .collect();
    let to_remove = ops
        .remove
        .iter()
        .filter(|k| modifiable(k))
        .cloned()
        .collect();
    (to_add, to_remove)
}

fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case(":authority")
}

/// Envoy's `isModifiableHeader`: not empty, not a pseudo-header, not `host`; and a name
/// free of characters an HTTP header name cannot hold.
fn modifiable(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(':')
        && !name.eq_ignore_ascii_case("host")
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

fn value_ok(value: &str) -> bool {
    !value.contains(['\0', '\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(options: &[HeaderValueOption]) -> Vec<(String, i32)> {
        options
            .iter()
            .map(|o| (o.header.as_ref().unwrap().key.clone(), o.append_action))
            .collect()
    }

    #[test]
    fn set_overwrites_add_appends_and_forbidden_headers_are_dropped() {
        use bowline_xds::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction as A;
        let headers: Headers = serde_json::from_value(serde_json::json!({
            "request": {
                "set": {"x-b": "1", "x-a": "2", ":path": "/evil", "Host": "reviews.internal"},
                "add": {"x-c": "3", "x-bad": "a\r\nb"},
                "remove": ["x-d", ":authority", "host"]
            },
            "response": {"set": {"x-served-by": "bowline"}, "remove": ["server"]}
        }))
        .unwrap();
        let ops = header_ops(Some(&headers));
        let set = A::OverwriteIfExistsOrAdd as i32;
        let add = A::AppendIfExistsOrAdd as i32;
        assert_eq!(
            keys(&ops.request_add),
            [
                ("x-a".into(), set),
                ("x-b".into(), set),
                ("x-c".into(), add)
            ]
        );
        assert_eq!(ops.request_remove, ["x-d"]);
        assert_eq!(ops.host_rewrite.as_deref(), Some("reviews.internal"));
        assert_eq!(keys(&ops.response_add), [("x-served-by".into(), set)]);
        assert_eq!(ops.response_remove, ["server"]);
    }

    #[test]
    fn no_headers_no_mutations() {
        assert_eq!(header_ops(None), HeaderOps::default());
    }
}
