//! The order types are pushed in.

use bowline_xds::type_url;

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
