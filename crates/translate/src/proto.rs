//! Small constructors for the protobuf values every generator needs, so the generators read
//! as "what" rather than as nested `Some(..)`s.

use bowline_config::common::StringMatch;
use bowline_xds::pb::envoy::config::core::v3::{
    config_source, Address, AggregatedConfigSource, ApiVersion, ConfigSource, HeaderValue,
    HeaderValueOption, RuntimeFractionalPercent,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::{string_matcher, RegexMatcher, StringMatcher};
use bowline_xds::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use bowline_xds::pb::google::protobuf::{BoolValue, Duration, UInt32Value};

/// Envoy's `google.protobuf.Duration` from a std duration (saturating at i64 seconds).
pub(crate) fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

pub(crate) fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}

pub(crate) fn u32_value(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

pub(crate) fn bool_value(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

/// "Fetch this over the ADS stream, v3": how every dynamic resource here is sourced.
pub(crate) fn ads_config_source() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    }
}

/// A TCP socket address. `port` must already be a valid port (callers check 1..=65535, or
/// allow 0 for listeners, where Envoy binds an ephemeral port).
pub(crate) fn socket_address(ip_or_host: &str, port: u16) -> Address {
    bowline_xds::build::socket_address(ip_or_host, u32::from(port))
}

/// A percentage `0..=100` as Envoy's FractionalPercent: per hundred when it is a whole number
/// (reads naturally in config dumps), per million when it has a fraction (Istio's precision).
pub(crate) fn fractional_percent(percent: f64) -> FractionalPercent {
    let percent = if percent.is_finite() {
        percent.clamp(0.0, 100.0)
    } else {
        0.0
    };
    if percent.fract() == 0.0 {
        FractionalPercent {
            numerator: percent as u32,
            denominator: DenominatorType::Hundred as i32,
        }
    } else {
        FractionalPercent {
            numerator: (percent * 10_000.0).round() as u32,
            denominator: DenominatorType::Million as i32,
        }
    }
}

pub(crate) fn runtime_percent(percent: f64) -> RuntimeFractionalPercent {
    RuntimeFractionalPercent {
        default_value: Some(fractional_percent(percent)),
        runtime_key: String::new(),
    }
}

/// A header to add. `overwrite` is Istio's `set` (replace any value); otherwise `add`
/// (append another value).
pub(crate) fn header_option(key: &str, value: &str, overwrite: bool) -> HeaderValueOption {
    use bowline_xds::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
    let action = if overwrite {
        HeaderAppendAction::OverwriteIfExistsOrAdd
    } else {
        HeaderAppendAction::AppendIfExistsOrAdd
    };
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_string(),
            value: value.to_string(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

/// True for a regex Envoy's RE2 will compile. Rust's `regex` accepts (nearly) the same syntax
/// as RE2 and refuses what RE2 refuses (look-around, back-references), so a pattern it refuses
/// is dropped here instead of being NACKed by Envoy.
pub(crate) fn regex_is_valid(pattern: &str) -> bool {
    !pattern.is_empty() && regex::Regex::new(pattern).is_ok()
}

pub(crate) fn regex_matcher(pattern: &str) -> RegexMatcher {
    RegexMatcher {
        regex: pattern.to_string(),
        engine_type: None,
    }
}

/// Istio's StringMatch as Envoy's StringMatcher. `None` when Envoy would refuse it: an empty
/// prefix (Envoy requires `min_len: 1`; callers treat it as "anything") or a bad regex.
pub(crate) fn string_matcher(m: &StringMatch, ignore_case: bool) -> Option<StringMatcher> {
    use string_matcher::MatchPattern;
    let pattern = match m {
        StringMatch::Exact(s) => MatchPattern::Exact(s.clone()),
        StringMatch::Prefix(s) if s.is_empty() => return None,
        StringMatch::Prefix(s) => MatchPattern::Prefix(s.clone()),
        StringMatch::Regex(r) if !regex_is_valid(r) => return None,
        StringMatch::Regex(r) => MatchPattern::SafeRegex(regex_matcher(r)),
    };
    Some(StringMatcher {
        match_pattern: Some(pattern),
        // Envoy refuses ignore_case on a regex; a regex says its own case rules.
        ignore_case: ignore_case && !matches!(m, StringMatch::Regex(_)),
    })
}

/// Valid TCP port for an upstream or a filter-chain match (Envoy: `1..=65535`).
pub(crate) fn valid_port(port: u32) -> Option<u16> {
    u16::try_from(port).ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_percentages_are_per_hundred_and_fractions_per_million() {
        let cases = [
            (100.0, 100, DenominatorType::Hundred),
            (0.0, 0, DenominatorType::Hundred),
            (12.5, 125_000, DenominatorType::Million),
            (0.1, 1_000, DenominatorType::Million),
            (250.0, 100, DenominatorType::Hundred),
            (-3.0, 0, DenominatorType::Hundred),
            (f64::NAN, 0, DenominatorType::Hundred),
        ];
        for (input, numerator, denominator) in cases {
            let got = fractional_percent(input);
            assert_eq!(got.numerator, numerator, "{input}");
            assert_eq!(got.denominator, denominator as i32, "{input}");
        }
    }

    #[test]
    fn ports_outside_envoys_range_are_refused() {
        assert_eq!(valid_port(9080), Some(9080));
        assert_eq!(valid_port(65535), Some(65535));
        assert_eq!(valid_port(0), None);
        assert_eq!(valid_port(65536), None);
        assert_eq!(valid_port(70000), None);
    }

    #[test]
    fn string_matches_envoy_would_refuse_are_dropped() {
        assert!(string_matcher(&StringMatch::Prefix(String::new()), false).is_none());
        assert!(string_matcher(&StringMatch::Regex("(?=x)".into()), false).is_none());
        assert!(string_matcher(&StringMatch::Regex("a(".into()), false).is_none());
        let exact = string_matcher(&StringMatch::Exact("v1".into()), true).unwrap();
        assert!(exact.ignore_case);
        let re = string_matcher(&StringMatch::Regex("v[0-9]+".into()), true).unwrap();
        assert!(!re.ignore_case, "Envoy refuses ignore_case on safe_regex");
    }

    #[test]
    fn durations_keep_sub_second_precision() {
        let d = duration(std::time::Duration::from_millis(1500));
        assert_eq!((d.seconds, d.nanos), (1, 500_000_000));
    }
}
