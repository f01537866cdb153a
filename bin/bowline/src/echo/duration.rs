//! Human durations for flags and headers: `250ms`, `2s`, `1.5s`, `1m`, `0`.

use std::time::Duration;

/// Parses a non-negative duration written as a number followed by a unit: `us`, `ms`, `s`
/// or `m` (fractions allowed: `1.5s`). A bare `0` is zero. Anything else is an error whose
/// text names the accepted forms, so it can be shown to an operator or an HTTP client as is.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(invalid(text)),
    };
    let value: f64 = number.parse().map_err(|_| invalid(text))?;
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| invalid(text))
}

fn invalid(text: &str) -> String {
    format!("invalid duration {text:?}: expected a number with a unit, like 250ms, 2s, 1.5s or 1m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("0", Some(Duration::ZERO)),
            ("0s", Some(Duration::ZERO)),
            ("250ms", Some(Duration::from_millis(250))),
            ("2s", Some(Duration::from_secs(2))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("1m", Some(Duration::from_secs(60))),
            ("100us", Some(Duration::from_micros(100))),
            (" 3s ", Some(Duration::from_secs(3))),
            ("", None),
            ("2", None),
            ("s", None),
            ("-1s", None),
            ("2h", None),
            ("1..5s", None),
            ("2 s", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).ok(), want, "{text:?}");
        }
    }
}
