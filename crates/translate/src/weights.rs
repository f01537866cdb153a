//! Weights as Envoy takes them: u32s whose sum must fit in a u32 (and, for weighted
//! clusters, be positive).

/// The weights unchanged when their sum fits in a u32; otherwise scaled down proportionally
/// so that it does, every positive weight staying at least 1 (a destination the user gave a
/// share keeps one). Zero stays zero.
pub(crate) fn fit_u32(weights: &[u64]) -> Vec<u32> {
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    let limit = u128::from(u32::MAX);
    if sum <= limit {
        return weights.iter().map(|w| *w as u32).collect();
    }
    // Leave room for the rounding-up of tiny weights to 1.
    let room = limit - weights.len() as u128;
    weights
        .iter()
        .map(|w| match u128::from(*w) * room / sum {
            0 if *w > 0 => 1,
            scaled => scaled as u32,
        })
        .collect()
}

/// Istio's weight rules for a rule's destinations: a single destination takes everything
/// whatever its weight; with several, a weight of 0 (or negative) drops that destination,
/// and if every weight is unset the traffic splits evenly (Istio's validation would have
/// refused it; Envoy needs a positive sum). `None` weights count as 0 when any is set.
/// Returns one weight per destination (0 = leave it out).
pub(crate) fn destination_weights(weights: &[Option<i32>]) -> Vec<u32> {
    if weights.len() == 1 {
        return vec![1];
    }
    if weights.iter().all(Option::is_none) {
        return vec![1; weights.len()];
    }
    let raw: Vec<u64> = weights
        .iter()
        .map(|w| u64::try_from(w.unwrap_or(0)).unwrap_or(0))
        .collect();
    fit_u32(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_that_fit_are_kept() {
        assert_eq!(fit_u32(&[75, 25]), vec![75, 25]);
        assert_eq!(fit_u32(&[0, 1]), vec![0, 1]);
        assert_eq!(fit_u32(&[]), Vec::<u32>::new());
    }

    #[test]
    fn overflowing_sums_scale_down_keeping_shares() {
        let big = u64::from(u32::MAX);
        let got = fit_u32(&[big, big, 1, 0]);
        let sum: u64 = got.iter().map(|w| u64::from(*w)).sum();
        assert!(sum <= u64::from(u32::MAX), "{got:?}");
        assert_eq!(got[0], got[1]);
        assert_eq!(got[2], 1, "a tiny positive weight stays routable");
        assert_eq!(got[3], 0);
    }

    #[test]
    fn destination_weights_follow_istio() {
        let cases: [(&[Option<i32>], &[u32]); 6] = [
            (&[None], &[1]),
            (&[Some(0)], &[1]),
            (&[Some(75), Some(25)], &[75, 25]),
            (&[Some(100), None], &[100, 0]),
            (&[None, None, None], &[1, 1, 1]),
            (&[Some(-5), Some(10)], &[0, 10]),
        ];
        for (input, want) in cases {
            assert_eq!(destination_weights(input), want, "{input:?}");
        }
    }
}
