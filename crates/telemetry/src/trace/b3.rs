//! B3: the single `b3` header and the multiple `x-b3-*` headers (see [`super::extract`] for
//! the rules).

use http::header::HeaderMap;

use super::context::{
    first, hex_u128, hex_u64, Incoming, TraceContext, X_B3_FLAGS, X_B3_PARENTSPANID, X_B3_SAMPLED,
    X_B3_SPANID, X_B3_TRACEID,
};

/// The context or decision of a `b3` value, or `None` when it is invalid.
pub(super) fn single(v: &str) -> Option<Incoming> {
    if let Some(sampled) = sampling_state(v) {
        return Some(Incoming {
            context: None,
            sampled: Some(sampled),
        });
    }
    let mut fields = v.split('-');
    let trace_id = parse_trace_id(fields.next()?)?;
    let span_id = parse_id(fields.next()?)?;
    let sampled = match fields.next() {
        None => None,
        Some(state) => Some(sampling_state(state)?),
    };
    let parent_id = match fields.next() {
        None => None,
        Some(parent) => Some(parse_id(parent)?),
    };
    if fields.next().is_some() {
        return None;
    }
    let context = TraceContext {
        trace_id,
        span_id,
        parent_id,
        sampled,
        tracestate: None,
    };
    Some(Incoming {
        context: Some(context),
        sampled,
    })
}

/// B3 single's sampling state: `1` accept, `0` deny, `d` debug (an accept).
fn sampling_state(s: &str) -> Option<bool> {
    match s {
        "0" => Some(false),
        "1" | "d" => Some(true),
        _ => None,
    }
}

pub(super) fn multi(headers: &HeaderMap) -> Option<Incoming> {
    let debug = first(headers, X_B3_FLAGS) == Some("1");
    let sampled = if debug {
        Some(true)
    } else {
        match first(headers, X_B3_SAMPLED) {
            Some("1") => Some(true),
            Some("0") => Some(false),
            Some(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    };
    let context = (|| {
        let trace_id = parse_trace_id(first(headers, X_B3_TRACEID)?)?;
        let span_id = parse_id(first(headers, X_B3_SPANID)?)?;
        let parent_id = match first(headers, X_B3_PARENTSPANID) {
            None => None,
            Some(parent) => Some(parse_id(parent)?),
        };
        Some(TraceContext {
            trace_id,
            span_id,
            parent_id,
            sampled,
            tracestate: None,
        })
    })();
    if context.is_none() && sampled.is_none() {
        return None;
    }
    Some(Incoming { context, sampled })
}

/// A B3 trace id: 32 or 16 lowercase hex digits (16 is the low half), not all zeros.
pub(super) fn parse_trace_id(s: &str) -> Option<u128> {
    match s.len() {
        16 => hex_u64(s).map(u128::from),
        32 => hex_u128(s),
        _ => None,
    }
    .filter(|&id| id != 0)
}

/// A span or parent id: 16 lowercase hex digits, not all zeros.
pub(super) fn parse_id(s: &str) -> Option<u64> {
    hex_u64(s).filter(|&id| id != 0)
}
