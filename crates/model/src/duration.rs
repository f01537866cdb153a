//! `google.protobuf.Duration` as `std::time::Duration`.

use crate::error::{At, Problem};
use bowline_xds::pb::google::protobuf::Duration as PbDuration;
use std::time::Duration;

/// A non-negative duration. Envoy's protos constrain durations to be non-negative
/// (`gte: {}`) almost everywhere; the well-known type itself bounds nanos to ±999,999,999.
pub(crate) fn duration(d: &PbDuration, at: &At) -> Result<Duration, Problem> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(at.invalid("must not be negative"));
    }
    if d.nanos > 999_999_999 {
        return Err(at.invalid("nanos must be below one second"));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// An optional duration that must be strictly positive when set (`gt: {}` in the protos).
pub(crate) fn positive(d: &Option<PbDuration>, at: &At) -> Result<Option<Duration>, Problem> {
    match d {
        None => Ok(None),
        Some(d) => {
            let d = duration(d, at)?;
            if d.is_zero() {
                return Err(at.invalid("must be greater than zero"));
            }
            Ok(Some(d))
        }
    }
}

/// Envoy's timeout convention: unset = `default`, zero = disabled (`None`).
pub(crate) fn timeout(
    d: &Option<PbDuration>,
    default: Option<Duration>,
    at: &At,
) -> Result<Option<Duration>, Problem> {
    match d {
        None => Ok(default),
        Some(d) => {
            let d = duration(d, at)?;
            Ok((!d.is_zero()).then_some(d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(seconds: i64, nanos: i32) -> PbDuration {
        PbDuration { seconds, nanos }
    }

    #[test]
    fn durations_convert_and_negative_ones_are_refused() {
        let at = At::root("cluster").field("connect_timeout");
        assert_eq!(
            duration(&pb(1, 500_000_000), &at).unwrap(),
            Duration::from_millis(1500)
        );
        assert!(duration(&pb(-1, 0), &at).is_err());
        assert!(duration(&pb(0, -1), &at).is_err());
        assert!(duration(&pb(0, 1_000_000_000), &at).is_err());
    }

    #[test]
    fn timeouts_default_when_unset_and_zero_disables() {
        let at = At::root("route").field("timeout");
        let fifteen = Some(Duration::from_secs(15));
        assert_eq!(timeout(&None, fifteen, &at).unwrap(), fifteen);
        assert_eq!(timeout(&Some(pb(0, 0)), fifteen, &at).unwrap(), None);
        assert_eq!(
            timeout(&Some(pb(2, 0)), fifteen, &at).unwrap(),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn positive_durations_refuse_zero() {
        let at = At::root("x");
        assert!(positive(&Some(pb(0, 0)), &at).is_err());
        assert_eq!(positive(&None, &at).unwrap(), None);
    }
}
