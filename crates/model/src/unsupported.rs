//! The rule that keeps the proxy honest: a field we do not implement must be at its proto
//! default, or the resource is refused naming the field.
//!
//! Every conversion destructures its protobuf message exhaustively (no `..`), so the fields
//! it handles and the ones it refuses are both listed, and a field added by a newer
//! envoy-types fails to compile here instead of being ignored. prost gives every field a
//! `Default` (0, "", `None`, empty list) equal to the proto3 default.

use crate::error::{At, Problem};

/// `Err(unsupported field <at>)` unless `value` is its type's default.
pub(crate) fn ensure_default<T: Default + PartialEq>(value: &T, at: At) -> Result<(), Problem> {
    if *value == T::default() {
        Ok(())
    } else {
        Err(at.unsupported())
    }
}

/// Refuses each listed field (a binding from an exhaustive destructuring) that is not at
/// its default: `refuse_unsupported!(at; per_connection_buffer_limit_bytes, metadata);`.
macro_rules! refuse_unsupported {
    ($at:expr; $($field:ident),* $(,)?) => {
        $( $crate::unsupported::ensure_default($field, $at.field(stringify!($field)))?; )*
    };
}
pub(crate) use refuse_unsupported;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_anything_else_is_named() {
        let at = At::root("listener");
        assert!(ensure_default(&0u32, at.field("x")).is_ok());
        assert!(ensure_default(&None::<u32>, at.field("x")).is_ok());
        assert!(ensure_default(&Vec::<u8>::new(), at.field("x")).is_ok());
        let err = ensure_default(&Some(1u32), at.field("per_connection_buffer_limit_bytes"));
        assert_eq!(
            err.unwrap_err().to_string(),
            "unsupported field listener.per_connection_buffer_limit_bytes"
        );
    }

    #[test]
    fn raw_identifiers_use_the_proto_name() {
        let r#match = &Some(1u32);
        let run = || -> Result<(), Problem> {
            refuse_unsupported!(At::root("route"); r#match);
            Ok(())
        };
        assert_eq!(run().unwrap_err().field(), "route.match");
    }
}
