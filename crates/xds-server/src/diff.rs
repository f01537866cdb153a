//! Comparing one proxy's resources across snapshots: resource versions, changed types, order.

use bowline_xds::pb::google::protobuf::Any;
use bowline_xds::type_url;

use crate::Resources;

/// Version of one resource: 16 hex digits of FNV-1a 64 over its type URL and encoded bytes.
///
/// A content hash rather than a counter, so a proxy that reconnects (possibly to a restarted
/// control plane) and reports `initial_resource_versions` is not sent what it already has.
/// FNV is fixed by its definition, unlike std's hasher, so versions are stable across builds.
pub(crate) fn resource_version(resource: &Any) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = resource
        .type_url
        .as_bytes()
        .iter()
        .chain(&[0u8])
        .chain(&resource.value);
    let hash = bytes.fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    });
    format!("{hash:016x}")
}

/// Types whose resources differ between two views (added, removed or changed).
pub(crate) fn changed_types(previous: &Resources, next: &Resources) -> Vec<String> {
    let mut types: Vec<&String> = previous.keys().chain(next.keys()).collect();
    types.sort();
    types.dedup();
    types
        .into_iter()
        .filter(|t| previous.get(*t) != next.get(*t))
        .cloned()
        .collect()
}

/// Sorts type URLs make-before-break: `type_url::PUSH_ORDER` first, any other type after,
/// alphabetically, so a proxy never learns of a name before the thing it names.
pub(crate) fn in_push_order<'a>(types: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let rank = |t: &str| {
        type_url::PUSH_ORDER
            .iter()
            .position(|p| *p == t)
            .unwrap_or(type_url::PUSH_ORDER.len())
    };
    let mut types: Vec<String> = types.into_iter().cloned().collect();
    types.sort_by(|a, b| (rank(a), a).cmp(&(rank(b), b)));
    types
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn any(type_url: &str, value: &[u8]) -> Any {
        Any {
            type_url: type_url.into(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn versions_depend_on_content_and_type_only() {
        let a = resource_version(&any(type_url::CLUSTER, b"x"));
        assert_eq!(a, resource_version(&any(type_url::CLUSTER, b"x")));
        assert_ne!(a, resource_version(&any(type_url::CLUSTER, b"y")));
        assert_ne!(a, resource_version(&any(type_url::LISTENER, b"x")));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn changed_types_sees_additions_removals_and_edits() {
        let one = |v: &[u8]| BTreeMap::from([("a".to_string(), any(type_url::CLUSTER, v))]);
        let previous = Resources::from([
            (type_url::CLUSTER.to_string(), one(b"1")),
            (type_url::LISTENER.to_string(), one(b"1")),
            (type_url::ROUTE.to_string(), one(b"1")),
        ]);
        let next = Resources::from([
            (type_url::CLUSTER.to_string(), one(b"2")),
            (type_url::LISTENER.to_string(), one(b"1")),
            (type_url::ENDPOINT.to_string(), one(b"1")),
        ]);
        assert_eq!(
            changed_types(&previous, &next),
            vec![type_url::CLUSTER, type_url::ENDPOINT, type_url::ROUTE]
        );
    }

    #[test]
    fn push_order_is_make_before_break_then_the_rest() {
        let types = [
            "type.googleapis.com/z.Other".to_string(),
            type_url::ROUTE.to_string(),
            type_url::LISTENER.to_string(),
            type_url::CLUSTER.to_string(),
        ];
        assert_eq!(
            in_push_order(&types),
            vec![
                type_url::CLUSTER,
                type_url::LISTENER,
                type_url::ROUTE,
                "type.googleapis.com/z.Other"
            ]
        );
    }
}
