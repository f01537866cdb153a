//! The trace context a request carries, read from and written to its headers.
//!
//! Three encodings are read, in this order of precedence (the first that yields a context or a
//! sampling decision wins, and the others are not looked at):
//!
//! 1. W3C Trace Context: `traceparent` and `tracestate` (what Envoy's OpenTelemetry tracer reads).
//! 2. B3 single header: `b3: {trace}-{span}[-{sampling}[-{parent}]]`, or a decision alone.
//! 3. B3 multiple headers: `x-b3-traceid`, `x-b3-spanid`, `x-b3-parentspanid`, `x-b3-sampled`,
//!    `x-b3-flags` (what Envoy's Zipkin tracer, Istio's default, reads).
//!
//! The B3 specification has the single header take precedence over the multiple headers, and
//! Envoy's Zipkin tracer looks at `b3` first too; that is why `b3` comes second here.
//!
//! Headers come from the network: a value that is not what its specification allows is
//! ignored, as if the header were absent, and nothing here panics on any input. Hex is
//! lowercase only, as both specifications write it (`HEXDIGLC`, "lower-hex"), and ids that
//! are all zeros are refused, as both specifications (and Zipkin's Brave) require.
//!
//! [`inject`] writes the context for the upstream in both W3C and B3 multi-header form, so
//! that an upstream tracer of either kind continues the same trace, and removes the headers
//! that could contradict it.

use http::header::{HeaderMap, HeaderName, HeaderValue, InvalidHeaderValue};

use super::{b3, w3c};

// Header names, lowercase as `HeaderName::from_static` wants them.
pub(super) const TRACEPARENT: &str = "traceparent";
pub(super) const TRACESTATE: &str = "tracestate";
pub(super) const B3: &str = "b3";
pub(super) const X_B3_TRACEID: &str = "x-b3-traceid";
pub(super) const X_B3_SPANID: &str = "x-b3-spanid";
pub(super) const X_B3_PARENTSPANID: &str = "x-b3-parentspanid";
pub(super) const X_B3_SAMPLED: &str = "x-b3-sampled";
pub(super) const X_B3_FLAGS: &str = "x-b3-flags";

/// Where a request is in a trace: the trace, the span that sent it, and the sampling decision.
///
/// Read by [`extract`], `span_id` is the caller's span (W3C's `parent-id`, B3's `SpanId`) and
/// `parent_id` is B3's `ParentSpanId`. The proxy's own span is then [`TraceContext::child`] of
/// it, or — B3's shared-span model, Envoy's Zipkin `shared_span_context` (default true) — the
/// same span id for the server side of the request. A context from [`extract`],
/// [`TraceContext::root`] or [`TraceContext::child`] never has a zero id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// 128-bit trace id; a 64-bit B3 trace id is the low half, the high half zero.
    pub trace_id: u128,
    pub span_id: u64,
    /// B3's `ParentSpanId` (W3C carries no parent; see [`extract`]).
    pub parent_id: Option<u64>,
    /// The sampling decision the context carries; `None` is B3's "defer" (no `x-b3-sampled`).
    /// A `traceparent` always carries one (its sampled flag).
    pub sampled: Option<bool>,
    /// The W3C `tracestate`, passed through as received (several headers joined by commas).
    pub tracestate: Option<String>,
}

/// What [`extract`] found on a request: a context, a sampling decision, both, or nothing.
///
/// B3 lets a caller send a decision without ids (`b3: 0`, `b3: 1`, `b3: d`, or `x-b3-sampled`
/// alone): then `context` is `None` and `sampled` is the decision, which [`super::decide`]
/// honours just as one that comes with a context. When `context` is `Some`, `sampled` is its
/// `sampled`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    pub context: Option<TraceContext>,
    pub sampled: Option<bool>,
}

impl TraceContext {
    /// A new trace started by the proxy, with no parent and no `tracestate`. `trace_id` and
    /// `span_id` are the caller's random values; a zero, which no specification allows as an
    /// id, is replaced by 1 (a caller drawing uniform random ids meets it with probability
    /// 2^-64 or less).
    pub fn root(trace_id: u128, span_id: u64, sampled: bool) -> TraceContext {
        TraceContext {
            trace_id: nonzero_u128(trace_id),
            span_id: nonzero_u64(span_id),
            parent_id: None,
            sampled: Some(sampled),
            tracestate: None,
        }
    }

    /// A span in the same trace whose parent is this context's span: same trace id, sampling
    /// decision and `tracestate`; `parent_id` is `self.span_id`. `new_span_id` is the caller's
    /// random value; zero is replaced by 1, as in [`TraceContext::root`].
    pub fn child(&self, new_span_id: u64) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: nonzero_u64(new_span_id),
            parent_id: Some(self.span_id),
            sampled: self.sampled,
            tracestate: self.tracestate.clone(),
        }
    }

    /// The W3C `traceparent` value: `00-{trace id}-{span id}-{flags}`, flags `01` when sampled
    /// and `00` otherwise (a deferred decision is written as not sampled, the W3C default for
    /// a component that starts a trace).
    pub fn traceparent(&self) -> String {
        String::from_utf8_lossy(&self.traceparent_bytes()).into_owned()
    }

    /// [`traceparent`](Self::traceparent) into a stack buffer (what [`inject_fresh`] sends).
    fn traceparent_bytes(&self) -> [u8; 55] {
        let mut buf = [0u8; 55];
        buf[..3].copy_from_slice(b"00-");
        hex_into(&mut buf[3..35], self.trace_id);
        buf[35] = b'-';
        hex_into(&mut buf[36..52], u128::from(self.span_id));
        buf[52] = b'-';
        let flags: &[u8] = if self.sampled == Some(true) {
            b"01"
        } else {
            b"00"
        };
        buf[53..55].copy_from_slice(flags);
        buf
    }
}

/// A trace id as 32 lowercase hex digits (a 64-bit id is zero-padded on the left).
pub fn trace_id_hex(id: u128) -> String {
    format!("{id:032x}")
}

/// A span id as 16 lowercase hex digits.
pub fn span_id_hex(id: u64) -> String {
    format!("{id:016x}")
}

fn nonzero_u128(id: u128) -> u128 {
    id.max(1)
}

fn nonzero_u64(id: u64) -> u64 {
    id.max(1)
}

/// Reads the trace context of an incoming request, or its sampling decision alone.
///
/// The first of these that yields a context or a decision wins (the others are not looked
/// at): `traceparent` (W3C, what Envoy's OpenTelemetry tracer reads), then `b3`, then the
/// `x-b3-*` headers (what Envoy's Zipkin tracer, Istio's default, reads). The B3
/// specification has `b3` take precedence over `x-b3-*`, and Envoy's Zipkin tracer looks at
/// `b3` first too. A header whose value its specification does not allow is ignored, as if
/// absent; nothing panics on any input. Hex digits are lowercase only, as both
/// specifications write them, and all-zero ids are refused, as both require.
///
/// * `traceparent`: version `00` is exactly `00-{32 hex}-{16 hex}-{2 hex}`; a higher version
///   is read by the W3C's forward-compatibility rules (at least 55 characters, the same first
///   four fields, and a `-` after them if anything follows); version `ff`, all-zero ids,
///   uppercase or non-hex digits, wrong lengths, and more than one `traceparent` header make
///   it invalid. Spaces and tabs around the value are allowed (HTTP's optional whitespace).
///   `tracestate` is read only with a valid `traceparent`: its headers are joined with `,` in
///   order, empty ones dropped, and the result is passed through without further checks
///   (a value that is not visible ASCII drops `tracestate`, not the context).
///   `traceparent` has no parent field; when `x-b3-traceid` and `x-b3-spanid` name the same
///   trace and span (as [`inject`] writes them), a valid `x-b3-parentspanid` supplies it.
/// * `b3`: `{trace}-{span}`, optionally `-{sampling}` and then `-{parent}`; trace 16 or 32
///   hex, span and parent 16 hex; sampling `1` (accept), `0` (deny) or `d` (debug, which is
///   an accept); or the sampling state alone (`b3: 0`, `b3: 1`, `b3: d`).
/// * `x-b3-*`: `x-b3-traceid` 16 or 32 hex and `x-b3-spanid` 16 hex make a context, with
///   `x-b3-parentspanid` (16 hex) when present; `x-b3-sampled` is `1` or `0` (`true` and
///   `false` too, which the B3 specification lets a lenient reader accept); `x-b3-flags: 1`
///   is debug, an accept that wins over `x-b3-sampled`. A decision without ids counts. Of
///   repeated B3 headers the first value is read, as the B3 specification says.
///
/// An invalid `x-b3-parentspanid` (or `b3` parent) invalidates the context it belongs to, as
/// in Zipkin's Brave; an invalid `x-b3-sampled` is as if absent.
pub fn extract(headers: &HeaderMap) -> Incoming {
    extract_as(headers, Propagation::Any)
}

/// Which trace headers a proxy reads and writes. Envoy's tracers differ, and a sidecar
/// must propagate as the Envoy it stands in for would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Both kinds, W3C read first ([`extract`], [`inject`]): a connection manager that
    /// propagates without a tracer.
    #[default]
    Any,
    /// Envoy's Zipkin tracer by default (`trace_context_option: USE_B3`): `b3` then
    /// `x-b3-*` read, `x-b3-*` written; `traceparent` passes through untouched.
    B3,
    /// Envoy's Zipkin tracer with `USE_B3_WITH_W3C_PROPAGATION`: B3 read first, then
    /// `traceparent`; both written.
    B3ThenW3c,
    /// Envoy's OpenTelemetry tracer: `traceparent` and `tracestate` only; B3 headers pass
    /// through untouched.
    W3c,
}

impl Propagation {
    fn writes_w3c(self) -> bool {
        self != Propagation::B3
    }

    fn writes_b3(self) -> bool {
        self != Propagation::W3c
    }
}

/// [`extract`] of the headers `propagation` reads, in its order.
pub fn extract_as(headers: &HeaderMap, propagation: Propagation) -> Incoming {
    let b3 = || {
        first(headers, B3)
            .and_then(b3::single)
            .or_else(|| b3::multi(headers))
    };
    let found = match propagation {
        Propagation::Any => w3c::extract(headers).or_else(b3),
        Propagation::B3 => b3(),
        Propagation::B3ThenW3c => b3().or_else(|| w3c::extract(headers)),
        Propagation::W3c => w3c::extract(headers),
    };
    found.unwrap_or_default()
}

/// Writes `ctx` for the upstream: `traceparent`, `tracestate` (when the context has one and it
/// is a valid header value), `x-b3-traceid` (32 hex), `x-b3-spanid`, `x-b3-parentspanid` (when
/// the context has a parent) and `x-b3-sampled` (`1`/`0`, when the context has a decision).
/// Each replaces any value already there; those of them the context has no value for are
/// removed, and so are `b3` and `x-b3-flags`, so that the upstream sees one consistent
/// context. Ids are written as given (see [`TraceContext`] for where they are non-zero).
pub fn inject(headers: &mut HeaderMap, ctx: &TraceContext) {
    inject_as(headers, ctx, Propagation::Any);
}

/// [`inject`] of the headers `propagation` writes (the others are left as they are).
pub fn inject_as(headers: &mut HeaderMap, ctx: &TraceContext, propagation: Propagation) {
    let w3c: &[&str] = if propagation.writes_w3c() {
        &[TRACESTATE]
    } else {
        &[]
    };
    let b3: &[&str] = if propagation.writes_b3() {
        &[B3, X_B3_FLAGS, X_B3_PARENTSPANID, X_B3_SAMPLED]
    } else {
        &[]
    };
    for name in w3c.iter().chain(b3) {
        if headers.contains_key(*name) {
            headers.remove(*name);
        }
    }
    inject_fresh_as(headers, ctx, propagation);
}

/// What [`scan`] saw of a request's tracing headers in one pass over them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// Some W3C or B3 header is there: [`extract`] has something to read, and [`inject`]
    /// something to replace.
    pub context: bool,
    /// `x-envoy-force-trace`.
    pub force: bool,
    /// `x-client-trace-id`.
    pub client_trace_id: bool,
}

/// One pass over the header names (a request carries a handful): most requests carry no
/// trace context, and then the dozen lookups by name that [`extract`] and [`inject`] make
/// are skipped ([`inject_fresh`]).
pub fn scan(headers: &HeaderMap) -> Seen {
    let mut seen = Seen::default();
    for name in headers.keys() {
        match name.as_str() {
            TRACEPARENT | TRACESTATE | B3 => seen.context = true,
            n if n.starts_with("x-b3-") => seen.context = true,
            "x-envoy-force-trace" => seen.force = true,
            "x-client-trace-id" => seen.client_trace_id = true,
            _ => {}
        }
    }
    seen
}

/// [`inject`] into headers that hold no W3C or B3 header (as [`scan`] found them, or after
/// [`inject`] removed them): the values are only added. The ids are written as hex into
/// stack buffers, each header value made once: every request of a tracing connection
/// manager comes through here, sampled or not.
pub fn inject_fresh(headers: &mut HeaderMap, ctx: &TraceContext) {
    inject_fresh_as(headers, ctx, Propagation::Any);
}

/// [`inject_fresh`] of the headers `propagation` writes.
pub fn inject_fresh_as(headers: &mut HeaderMap, ctx: &TraceContext, propagation: Propagation) {
    // Names parsed once, at compile time.
    const NAMES: [HeaderName; 6] = [
        HeaderName::from_static(TRACEPARENT),
        HeaderName::from_static(TRACESTATE),
        HeaderName::from_static(X_B3_TRACEID),
        HeaderName::from_static(X_B3_SPANID),
        HeaderName::from_static(X_B3_PARENTSPANID),
        HeaderName::from_static(X_B3_SAMPLED),
    ];
    let [traceparent, tracestate, trace_id, span_id, parent_span_id, sampled] = NAMES;
    // `traceparent`, then the trace and span ids again for B3, in one buffer: one
    // allocation for the three values.
    let mut buf = [0u8; 55 + 32 + 16];
    buf[..55].copy_from_slice(&ctx.traceparent_bytes());
    buf.copy_within(3..35, 55);
    buf.copy_within(36..52, 87);
    let all = bytes::Bytes::copy_from_slice(&buf);
    let value = |range: std::ops::Range<usize>| HeaderValue::from_maybe_shared(all.slice(range));
    let mut put = |name: HeaderName, value: Result<HeaderValue, InvalidHeaderValue>| {
        if let Ok(value) = value {
            headers.insert(name, value);
        }
    };
    if propagation.writes_w3c() {
        put(traceparent, value(0..55));
        if let Some(state) = ctx.tracestate.as_deref() {
            put(tracestate, HeaderValue::from_str(state));
        }
    }
    if !propagation.writes_b3() {
        return;
    }
    put(trace_id, value(55..87));
    put(span_id, value(87..103));
    if let Some(p) = ctx.parent_id {
        let mut id = [0u8; 16];
        hex_into(&mut id, u128::from(p));
        put(parent_span_id, HeaderValue::from_bytes(&id));
    }
    if let Some(s) = ctx.sampled {
        put(
            sampled,
            Ok(HeaderValue::from_static(if s { "1" } else { "0" })),
        );
    }
}

/// Lowercase hex of the low `2 × buf.len()` bits of `value`, most significant first.
fn hex_into(buf: &mut [u8], mut value: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in buf.iter_mut().rev() {
        *b = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// The first value of a header as text, without surrounding spaces and tabs.
pub(super) fn first<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(trim_ows)
}

pub(super) fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

pub(super) fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(super) fn hex_u64(s: &str) -> Option<u64> {
    (s.len() == 16 && is_lower_hex(s))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

pub(super) fn hex_u128(s: &str) -> Option<u128> {
    (s.len() == 32 && is_lower_hex(s))
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}
