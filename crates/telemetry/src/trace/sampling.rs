//! Whether the proxy traces a request: Envoy's HTTP connection manager's sampling rules.

/// The connection manager's three sampling percentages (Envoy's `HttpConnectionManager.Tracing`
/// `client_sampling`, `random_sampling` and `overall_sampling`; a route's `Tracing` may
/// override them, and the caller passes the ones in effect). Each is a percentage in
/// `[0, 100]`: 100 or more always passes, 0 or less (or NaN) never does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Of requests neither requested by the client nor forced, the share randomly selected
    /// for tracing. Envoy's default is 100; Istio sets it from the mesh config's sampling rate
    /// (`meshConfig.defaultConfig.tracing.sampling`, or the pod's `proxy.istio.io/config`),
    /// 1% unless configured.
    pub random_percent: f64,
    /// Of requests carrying `x-client-trace-id`, the share traced. Envoy's default, and
    /// Istio's setting, is 100.
    pub client_percent: f64,
    /// An upper limit applied after the other checks (client, forced, random): with
    /// `client_percent` 100 and `overall_percent` 1, only 1% of requests with
    /// `x-client-trace-id` are traced. Envoy's default, and Istio's setting, is 100.
    pub overall_percent: f64,
}

impl Default for Sampling {
    /// Envoy's defaults: 100% random, client and overall sampling (Istio lowers random to 1%).
    fn default() -> Self {
        Sampling {
            random_percent: 100.0,
            client_percent: 100.0,
            overall_percent: 100.0,
        }
    }
}

/// Whether to trace a request, by Envoy's rules, in this order:
///
/// 1. **An incoming decision is honoured.** A request that arrives with a sampling decision
///    (the `traceparent` sampled flag, `x-b3-sampled`, `x-b3-flags: 1`, the `b3` sampling
///    state: [`super::Incoming::sampled`]) is traced exactly when that decision says so, whatever
///    the percentages — Envoy's tracers (Zipkin's, OpenTelemetry's) use the propagated decision
///    in place of the connection manager's, so all spans of a trace are kept or none.
/// 2. **Client-requested:** a request carrying `x-client-trace-id` is traced at
///    `client_percent`. Envoy honours that header only from an external client at the edge;
///    the caller says whether it counts (`client_trace_id`).
/// 3. **Forced:** `x-envoy-force-trace` traces the request ("Envoy will modify the generated
///    `x-request-id` such that it forces traces to be collected"). Envoy honours it only on
///    internal requests; the caller says whether it counts (`force`).
/// 4. **Random:** otherwise the request is traced at `random_percent`.
/// 5. **Overall:** whatever 2–4 chose is then kept only at `overall_percent`, the upper limit
///    on all of them (it does not apply to an incoming decision, rule 1).
///
/// `roll` is the caller's uniform random value in `[0, 100)`; a check at `p` percent passes
/// when `roll < p` (and always at 100 or more, never at 0 or less), so the function is
/// deterministic. One roll serves every check, as Envoy uses one value (from the request id)
/// for its random and overall checks: random and overall together trace `min(random,
/// overall)` percent of requests, as in Envoy.
///
/// Difference from Envoy: Envoy draws the client check from a separate random value, so a
/// request with `x-client-trace-id` that fails it falls back to force and random with a fresh
/// chance; with one roll, a client request is traced at `max(client, random)` percent (capped
/// by overall), where Envoy traces about `client + (1 - client) × random`.
pub fn decide(
    incoming: Option<bool>,
    force: bool,
    client_trace_id: bool,
    s: &Sampling,
    roll: f64,
) -> bool {
    if let Some(decision) = incoming {
        return decision;
    }
    let chosen = (client_trace_id && passes(s.client_percent, roll))
        || force
        || passes(s.random_percent, roll);
    chosen && passes(s.overall_percent, roll)
}

fn passes(percent: f64, roll: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && roll < percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(random: f64, client: f64, overall: f64) -> Sampling {
        Sampling {
            random_percent: random,
            client_percent: client,
            overall_percent: overall,
        }
    }

    #[test]
    fn envoy_defaults_sample_everything() {
        let d = Sampling::default();
        assert_eq!(d, s(100.0, 100.0, 100.0));
        for roll in [0.0, 50.0, 99.999] {
            assert!(decide(None, false, false, &d, roll));
        }
    }

    /// incoming, force, client trace id, sampling, roll, traced, rule
    type Row = (Option<bool>, bool, bool, Sampling, f64, bool, &'static str);

    #[test]
    fn table() {
        let istio = s(1.0, 100.0, 100.0);
        #[rustfmt::skip]
        let rows: &[Row] = &[
            // 1. an incoming decision is honoured, over force, client, random and overall
            (Some(true),  false, false, s(0.0, 0.0, 0.0),       99.0, true,  "incoming accept beats 0% everywhere"),
            (Some(false), true,  true,  s(100.0, 100.0, 100.0), 0.0,  false, "incoming deny beats force and client"),
            (Some(true),  false, false, istio,                  50.0, true,  "incoming accept beats Istio's 1% random"),
            (Some(false), false, false, istio,                  0.0,  false, "incoming deny beats a passing roll"),
            // 2. x-client-trace-id at client_percent
            (None, false, true,  s(0.0, 100.0, 100.0), 99.9, true,  "client at 100%"),
            (None, false, true,  s(0.0, 30.0, 100.0),  29.9, true,  "client roll under client%"),
            (None, false, true,  s(0.0, 30.0, 100.0),  30.0, false, "client roll at client% fails"),
            (None, false, true,  s(50.0, 30.0, 100.0), 40.0, true,  "client fails, random passes"),
            (None, false, true,  s(0.0, 0.0, 100.0),   0.0,  false, "client at 0%"),
            (None, false, false, s(0.0, 100.0, 100.0), 0.0,  false, "client% without the header does nothing"),
            // 3. x-envoy-force-trace
            (None, true,  false, s(0.0, 0.0, 100.0),   99.9, true,  "forced at 0% random"),
            (None, true,  true,  s(0.0, 0.0, 100.0),   99.9, true,  "forced when the client check fails"),
            // 4. random_percent
            (None, false, false, istio,                0.99, true,  "Istio's 1%: roll under 1"),
            (None, false, false, istio,                1.0,  false, "Istio's 1%: roll at 1"),
            (None, false, false, s(0.0, 100.0, 100.0), 0.0,  false, "random 0% never"),
            (None, false, false, s(100.0, 0.0, 100.0), 99.99, true, "random 100% always"),
            // 5. overall_percent caps client, forced and random
            (None, true,  false, s(100.0, 100.0, 1.0), 0.5,  true,  "forced under overall"),
            (None, true,  false, s(100.0, 100.0, 1.0), 1.0,  false, "forced capped by overall"),
            (None, false, true,  s(0.0, 100.0, 1.0),   5.0,  false, "client capped by overall (Envoy's doc example)"),
            (None, false, true,  s(0.0, 100.0, 1.0),   0.5,  true,  "client under overall"),
            (None, false, false, s(100.0, 100.0, 10.0), 9.9, true,  "random under overall"),
            (None, false, false, s(100.0, 100.0, 10.0), 10.0, false, "random capped by overall"),
            (None, false, false, s(100.0, 100.0, 0.0), 0.0,  false, "overall 0% stops everything"),
            // bounds: percentages past 100 always pass, NaN never; a NaN roll passes only 100%
            (None, false, false, s(150.0, 0.0, 100.0), 99.0, true,  "random over 100"),
            (None, false, false, s(f64::NAN, 0.0, 100.0), 0.0, false, "NaN percent"),
            (None, true,  false, s(0.0, 0.0, 100.0), f64::NAN, true, "NaN roll, forced, overall 100"),
            (None, false, false, s(50.0, 0.0, 100.0), f64::NAN, false, "NaN roll, random 50"),
        ];
        for (incoming, force, client, sampling, roll, traced, rule) in rows {
            assert_eq!(
                decide(*incoming, *force, *client, sampling, *roll),
                *traced,
                "{rule}"
            );
        }
    }

    #[test]
    fn random_rate_is_the_percentage() {
        let sampling = s(25.0, 100.0, 100.0);
        let traced = (0..10_000)
            .filter(|i| decide(None, false, false, &sampling, *i as f64 / 100.0))
            .count();
        assert_eq!(traced, 2_500);
    }
}
