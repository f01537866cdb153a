//! W3C Trace Context: `traceparent` and `tracestate` (see [`super::extract`] for the rules).

use http::header::HeaderMap;

use super::b3;
use super::context::{
    first, hex_u128, hex_u64, is_lower_hex, trim_ows, Incoming, TraceContext, TRACEPARENT,
    TRACESTATE, X_B3_PARENTSPANID, X_B3_SPANID, X_B3_TRACEID,
};

/// The context of a valid `traceparent` (with its `tracestate`), or `None`.
pub(super) fn extract(headers: &HeaderMap) -> Option<Incoming> {
    let mut values = headers.get_all(TRACEPARENT).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None; // W3C's test suite: two traceparent headers restart the trace.
    }
    let (trace_id, span_id, sampled) = traceparent(trim_ows(value.to_str().ok()?))?;
    let parent_id = b3_parent_of(headers, trace_id, span_id);
    let context = TraceContext {
        trace_id,
        span_id,
        parent_id,
        sampled: Some(sampled),
        tracestate: tracestate(headers),
    };
    Some(Incoming {
        context: Some(context),
        sampled: Some(sampled),
    })
}

/// Parses a `traceparent` value into (trace id, parent id, sampled flag).
fn traceparent(v: &str) -> Option<(u128, u64, bool)> {
    let b = v.as_bytes();
    if !v.is_ascii() || b.len() < 55 {
        return None;
    }
    let version = &v[0..2];
    if !is_lower_hex(version) || version == "ff" {
        return None;
    }
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    // Version 00 is exactly 55 characters; a future version may append `-`-separated fields.
    if b.len() > 55 && (version == "00" || b[55] != b'-') {
        return None;
    }
    let trace_id = hex_u128(&v[3..35]).filter(|&id| id != 0)?;
    let span_id = hex_u64(&v[36..52]).filter(|&id| id != 0)?;
    let flags = &v[53..55];
    if !is_lower_hex(flags) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, span_id, flags & 1 == 1))
}

fn tracestate(headers: &HeaderMap) -> Option<String> {
    let mut joined = String::new();
    for value in headers.get_all(TRACESTATE) {
        let value = trim_ows(value.to_str().ok()?); // not visible ASCII: no tracestate
        if value.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(value);
    }
    (!joined.is_empty()).then_some(joined)
}

/// `x-b3-parentspanid`, when the `x-b3-traceid` and `x-b3-spanid` beside it name this span.
fn b3_parent_of(headers: &HeaderMap, trace_id: u128, span_id: u64) -> Option<u64> {
    let same_trace = first(headers, X_B3_TRACEID).and_then(b3::parse_trace_id) == Some(trace_id);
    let same_span = first(headers, X_B3_SPANID).and_then(b3::parse_id) == Some(span_id);
    if same_trace && same_span {
        first(headers, X_B3_PARENTSPANID).and_then(b3::parse_id)
    } else {
        None
    }
}
