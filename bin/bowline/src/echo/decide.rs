//! The echo server's one decision per request: which status to answer and how long to wait
//! first. Pure, so every precedence rule is a table test.

use super::duration::parse_duration;
use http::{HeaderMap, StatusCode};
use std::time::Duration;

/// Request header that forces the response status (`x-echo-status: 418`).
pub const STATUS_HEADER: &str = "x-echo-status";
/// Request header that delays the response (`x-echo-delay: 2s`); overrides `--delay`.
pub const DELAY_HEADER: &str = "x-echo-delay";
/// Longest delay a request may ask for, so a typo cannot park a connection for hours.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// What the server was told on its command line.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Status of a request that neither fails nor overrides it (`--status`).
    pub status: StatusCode,
    /// Share of requests, 0.0–1.0, answered with `fail_status` (`--fail-rate`).
    pub fail_rate: f64,
    /// Status of the failing share (`--fail-status`).
    pub fail_status: StatusCode,
    /// Wait before answering (`--delay`).
    pub delay: Duration,
}

/// How to answer one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub status: StatusCode,
    pub delay: Duration,
}

/// A request override header that could not be understood; answered with 400 and this text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOverride(pub String);

/// Decides status and delay. Precedence for the status: `x-echo-status` header, then the
/// failing share (`roll < fail_rate`), then `--status`. The delay is `x-echo-delay` if
/// present, else `--delay`. `roll` is a uniform sample from `[0, 1)` drawn by the caller, which
/// keeps this function deterministic.
pub fn decide(
    headers: &HeaderMap,
    behaviour: &Behaviour,
    roll: f64,
) -> Result<Decision, BadOverride> {
    let status = match header_text(headers, STATUS_HEADER)? {
        Some(text) => {
            parse_status(text).map_err(|e| BadOverride(format!("{STATUS_HEADER}: {e}")))?
        }
        None if roll < behaviour.fail_rate => behaviour.fail_status,
        None => behaviour.status,
    };
    let delay = match header_text(headers, DELAY_HEADER)? {
        Some(text) => {
            parse_duration(text).map_err(|e| BadOverride(format!("{DELAY_HEADER}: {e}")))?
        }
        None => behaviour.delay,
    };
    if delay > MAX_DELAY {
        return Err(BadOverride(format!(
            "{DELAY_HEADER}: longer than the maximum of {MAX_DELAY:?}"
        )));
    }
    Ok(Decision { status, delay })
}

/// Parses a final response status, 200–599 (1xx cannot end an exchange).
pub fn parse_status(text: &str) -> Result<StatusCode, String> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| format!("invalid status {text:?}: expected a number from 200 to 599"))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, BadOverride> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| BadOverride(format!("{name}: value is not visible ASCII"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behaviour() -> Behaviour {
        Behaviour {
            status: StatusCode::OK,
            fail_rate: 0.25,
            fail_status: StatusCode::SERVICE_UNAVAILABLE,
            delay: Duration::from_millis(10),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn precedence_table() {
        let ms = Duration::from_millis;
        let ok = |status: u16, delay| {
            Ok(Decision {
                status: StatusCode::from_u16(status).unwrap(),
                delay,
            })
        };
        // (request headers, roll, expected decision or Err for a 400)
        type Case = (
            &'static [(&'static str, &'static str)],
            f64,
            Result<Decision, ()>,
        );
        let cases: Vec<Case> = vec![
            (&[], 0.9, ok(200, ms(10))),
            (&[], 0.1, ok(503, ms(10))),
            (&[], 0.25, ok(200, ms(10))),
            (&[("x-echo-status", "418")], 0.1, ok(418, ms(10))),
            (&[("x-echo-delay", "2s")], 0.9, ok(200, ms(2000))),
            (&[("x-echo-delay", "0")], 0.9, ok(200, ms(0))),
            (
                &[("x-echo-status", "204"), ("x-echo-delay", "5ms")],
                0.9,
                ok(204, ms(5)),
            ),
            (&[("x-echo-status", "teapot")], 0.9, Err(())),
            (&[("x-echo-status", "100")], 0.9, Err(())),
            (&[("x-echo-status", "600")], 0.9, Err(())),
            (&[("x-echo-delay", "soon")], 0.9, Err(())),
            (&[("x-echo-delay", "11m")], 0.9, Err(())),
        ];
        for (pairs, roll, want) in cases {
            let got = decide(&headers(pairs), &behaviour(), roll).map_err(|_| ());
            assert_eq!(got, want, "{pairs:?} roll={roll}");
        }
    }

    #[test]
    fn zero_and_full_fail_rates_are_absolute() {
        let mut b = behaviour();
        b.fail_rate = 0.0;
        assert_eq!(
            decide(&HeaderMap::new(), &b, 0.0).unwrap().status,
            StatusCode::OK
        );
        b.fail_rate = 1.0;
        assert_eq!(
            decide(&HeaderMap::new(), &b, 0.999_999).unwrap().status,
            503
        );
    }
}
