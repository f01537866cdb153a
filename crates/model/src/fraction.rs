//! Envoy's `FractionalPercent`: a share of requests, decided by a caller-supplied roll so
//! that every decision is deterministic under test.

use crate::error::{At, Problem};
use bowline_xds::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use bowline_xds::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};

/// `numerator / denominator` with a denominator of 100, 10 000 or 1 000 000.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    pub numerator: u32,
    pub denominator: u32,
}

impl Fraction {
    /// Every request.
    pub const ALL: Fraction = Fraction {
        numerator: 100,
        denominator: 100,
    };
    /// No request.
    pub const NONE: Fraction = Fraction {
        numerator: 0,
        denominator: 100,
    };

    /// Whether a request with this uniformly random `roll` is in the share. Envoy's rule
    /// (`ProtobufPercentHelper::evaluateFractionalPercent`): `roll % denominator < numerator`,
    /// so a numerator above the denominator means every request.
    pub fn hits(&self, roll: u64) -> bool {
        roll % u64::from(self.denominator) < u64::from(self.numerator)
    }

    /// The share in parts per million (capped at one million).
    pub fn per_million(&self) -> u32 {
        let scale = 1_000_000 / self.denominator;
        self.numerator.saturating_mul(scale).min(1_000_000)
    }
}

pub(crate) fn fraction(f: &FractionalPercent, at: &At) -> Result<Fraction, Problem> {
    let denominator = match DenominatorType::try_from(f.denominator) {
        Ok(DenominatorType::Hundred) => 100,
        Ok(DenominatorType::TenThousand) => 10_000,
        Ok(DenominatorType::Million) => 1_000_000,
        Err(_) => {
            return Err(at
                .field("denominator")
                .invalid(format!("unknown denominator {}", f.denominator)))
        }
    };
    Ok(Fraction {
        numerator: f.numerator,
        denominator,
    })
}

/// A runtime fraction: the proxy has no runtime, so its `default_value` always applies (as
/// in Envoy when the runtime key is not set). An unset default value is 0%.
pub(crate) fn runtime_fraction(f: &RuntimeFractionalPercent, at: &At) -> Result<Fraction, Problem> {
    let RuntimeFractionalPercent {
        default_value,
        runtime_key: _,
    } = f;
    match default_value {
        Some(v) => fraction(v, &at.field("default_value")),
        None => Ok(Fraction::NONE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per(numerator: u32, denominator: u32) -> Fraction {
        Fraction {
            numerator,
            denominator,
        }
    }

    #[test]
    fn rolls_below_the_numerator_hit() {
        let cases = [
            (per(50, 100), 0, true),
            (per(50, 100), 49, true),
            (per(50, 100), 50, false),
            (per(50, 100), 149, true),
            (per(0, 100), 0, false),
            (per(100, 100), 99, true),
            (per(150, 100), 99, true),
            (per(1, 1_000_000), 0, true),
            (per(1, 1_000_000), 1, false),
        ];
        for (f, roll, want) in cases {
            assert_eq!(f.hits(roll), want, "{f:?} roll {roll}");
        }
    }

    #[test]
    fn denominators_convert_and_unknown_ones_are_refused() {
        let at = At::root("x");
        let pb = |n, d: DenominatorType| FractionalPercent {
            numerator: n,
            denominator: d as i32,
        };
        assert_eq!(
            fraction(&pb(125_000, DenominatorType::Million), &at).unwrap(),
            per(125_000, 1_000_000)
        );
        assert_eq!(per(5, 10_000).per_million(), 500);
        let bad = FractionalPercent {
            numerator: 1,
            denominator: 7,
        };
        assert!(fraction(&bad, &at).is_err());
    }
}
