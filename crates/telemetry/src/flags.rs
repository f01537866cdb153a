//! Envoy's response flags: why a request or connection ended the way it did, beyond its
//! status code. Access logs print them (`%RESPONSE_FLAGS%`: short codes joined by `,`, `-`
//! when none) and Istio's metrics label by them (`response_flags`), so dashboards and alerts
//! written for Envoy read bowline's the same.
//!
//! The order is Envoy's (`ResponseFlagUtils::ALL_RESPONSE_STRINGS_FLAGS`): several flags of
//! one request print in that order, not in the order they were raised.

use std::fmt;

/// One flag. Declared in Envoy's printing order; the discriminant is the bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ResponseFlag {
    FailedLocalHealthCheck,
    NoHealthyUpstream,
    UpstreamRequestTimeout,
    LocalReset,
    UpstreamRemoteReset,
    UpstreamConnectionFailure,
    UpstreamConnectionTermination,
    UpstreamOverflow,
    NoRouteFound,
    DelayInjected,
    FaultInjected,
    RateLimited,
    UnauthorizedExternalService,
    RateLimitServiceError,
    DownstreamConnectionTermination,
    UpstreamRetryLimitExceeded,
    StreamIdleTimeout,
    InvalidEnvoyRequestHeaders,
    DownstreamProtocolError,
    UpstreamMaxStreamDurationReached,
    ResponseFromCacheFilter,
    NoFilterConfigFound,
    DurationTimeout,
    UpstreamProtocolError,
    NoClusterFound,
    OverloadManager,
    DnsResolutionFailed,
    DropOverload,
    DownstreamRemoteReset,
    UnconditionalDropOverload,
}

impl ResponseFlag {
    /// Every flag, in printing order.
    pub const ALL: [ResponseFlag; 30] = [
        ResponseFlag::FailedLocalHealthCheck,
        ResponseFlag::NoHealthyUpstream,
        ResponseFlag::UpstreamRequestTimeout,
        ResponseFlag::LocalReset,
        ResponseFlag::UpstreamRemoteReset,
        ResponseFlag::UpstreamConnectionFailure,
        ResponseFlag::UpstreamConnectionTermination,
        ResponseFlag::UpstreamOverflow,
        ResponseFlag::NoRouteFound,
        ResponseFlag::DelayInjected,
        ResponseFlag::FaultInjected,
        ResponseFlag::RateLimited,
        ResponseFlag::UnauthorizedExternalService,
        ResponseFlag::RateLimitServiceError,
        ResponseFlag::DownstreamConnectionTermination,
        ResponseFlag::UpstreamRetryLimitExceeded,
        ResponseFlag::StreamIdleTimeout,
        ResponseFlag::InvalidEnvoyRequestHeaders,
        ResponseFlag::DownstreamProtocolError,
        ResponseFlag::UpstreamMaxStreamDurationReached,
        ResponseFlag::ResponseFromCacheFilter,
        ResponseFlag::NoFilterConfigFound,
        ResponseFlag::DurationTimeout,
        ResponseFlag::UpstreamProtocolError,
        ResponseFlag::NoClusterFound,
        ResponseFlag::OverloadManager,
        ResponseFlag::DnsResolutionFailed,
        ResponseFlag::DropOverload,
        ResponseFlag::DownstreamRemoteReset,
        ResponseFlag::UnconditionalDropOverload,
    ];

    /// Envoy's short code (`UH`, `UF`, …), as `%RESPONSE_FLAGS%` prints it.
    pub fn short(self) -> &'static str {
        use ResponseFlag::*;
        match self {
            FailedLocalHealthCheck => "LH",
            NoHealthyUpstream => "UH",
            UpstreamRequestTimeout => "UT",
            LocalReset => "LR",
            UpstreamRemoteReset => "UR",
            UpstreamConnectionFailure => "UF",
            UpstreamConnectionTermination => "UC",
            UpstreamOverflow => "UO",
            NoRouteFound => "NR",
            DelayInjected => "DI",
            FaultInjected => "FI",
            RateLimited => "RL",
            UnauthorizedExternalService => "UAEX",
            RateLimitServiceError => "RLSE",
            DownstreamConnectionTermination => "DC",
            UpstreamRetryLimitExceeded => "URX",
            StreamIdleTimeout => "SI",
            InvalidEnvoyRequestHeaders => "IH",
            DownstreamProtocolError => "DPE",
            UpstreamMaxStreamDurationReached => "UMSDR",
            ResponseFromCacheFilter => "RFCF",
            NoFilterConfigFound => "NFCF",
            DurationTimeout => "DT",
            UpstreamProtocolError => "UPE",
            NoClusterFound => "NC",
            OverloadManager => "OM",
            DnsResolutionFailed => "DF",
            DropOverload => "DO",
            DownstreamRemoteReset => "DR",
            UnconditionalDropOverload => "UDO",
        }
    }

    /// Envoy's long name (`NoHealthyUpstream`, …), as `%RESPONSE_FLAGS_LONG%` prints it.
    pub fn long(self) -> &'static str {
        use ResponseFlag::*;
        match self {
            FailedLocalHealthCheck => "FailedLocalHealthCheck",
            NoHealthyUpstream => "NoHealthyUpstream",
            UpstreamRequestTimeout => "UpstreamRequestTimeout",
            LocalReset => "LocalReset",
            UpstreamRemoteReset => "UpstreamRemoteReset",
            UpstreamConnectionFailure => "UpstreamConnectionFailure",
            UpstreamConnectionTermination => "UpstreamConnectionTermination",
            UpstreamOverflow => "UpstreamOverflow",
            NoRouteFound => "NoRouteFound",
            DelayInjected => "DelayInjected",
            FaultInjected => "FaultInjected",
            RateLimited => "RateLimited",
            UnauthorizedExternalService => "UnauthorizedExternalService",
            RateLimitServiceError => "RateLimitServiceError",
            DownstreamConnectionTermination => "DownstreamConnectionTermination",
            UpstreamRetryLimitExceeded => "UpstreamRetryLimitExceeded",
            StreamIdleTimeout => "StreamIdleTimeout",
            InvalidEnvoyRequestHeaders => "InvalidEnvoyRequestHeaders",
            DownstreamProtocolError => "DownstreamProtocolError",
            UpstreamMaxStreamDurationReached => "UpstreamMaxStreamDurationReached",
            ResponseFromCacheFilter => "ResponseFromCacheFilter",
            NoFilterConfigFound => "NoFilterConfigFound",
            DurationTimeout => "DurationTimeout",
            UpstreamProtocolError => "UpstreamProtocolError",
            NoClusterFound => "NoClusterFound",
            OverloadManager => "OverloadManagerTerminated",
            DnsResolutionFailed => "DnsResolutionFailed",
            DropOverload => "DropOverload",
            DownstreamRemoteReset => "DownstreamRemoteReset",
            UnconditionalDropOverload => "UnconditionalDropOverload",
        }
    }

    /// The flag of a short code.
    pub fn from_short(code: &str) -> Option<ResponseFlag> {
        ResponseFlag::ALL.into_iter().find(|f| f.short() == code)
    }

    fn bit(self) -> u32 {
        1 << (self as u8)
    }
}

/// The flags one request or connection raised. Copy, one word: the request path carries it
/// by value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResponseFlags(u32);

impl ResponseFlags {
    pub const NONE: ResponseFlags = ResponseFlags(0);

    pub fn insert(&mut self, flag: ResponseFlag) {
        self.0 |= flag.bit();
    }

    pub fn with(mut self, flag: ResponseFlag) -> ResponseFlags {
        self.insert(flag);
        self
    }

    pub fn contains(self, flag: ResponseFlag) -> bool {
        self.0 & flag.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raised flags in Envoy's order.
    pub fn iter(self) -> impl Iterator<Item = ResponseFlag> {
        ResponseFlag::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }

    /// `%RESPONSE_FLAGS_LONG%`: long names joined by `,`, `-` when none.
    pub fn long(self) -> String {
        if self.is_empty() {
            return "-".into();
        }
        self.iter()
            .map(ResponseFlag::long)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses `%RESPONSE_FLAGS%` output (`-`, or short codes joined by `,`).
    pub fn parse(text: &str) -> Option<ResponseFlags> {
        if text == "-" {
            return Some(ResponseFlags::NONE);
        }
        text.split(',')
            .map(ResponseFlag::from_short)
            .try_fold(ResponseFlags::NONE, |all, f| Some(all.with(f?)))
    }
}

impl From<ResponseFlag> for ResponseFlags {
    fn from(flag: ResponseFlag) -> ResponseFlags {
        ResponseFlags::NONE.with(flag)
    }
}

/// `%RESPONSE_FLAGS%`: short codes joined by `,` in Envoy's order, `-` when none (also
/// Istio's `response_flags` label value).
impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, flag) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(flag.short())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponseFlag::*;

    #[test]
    fn prints_as_envoy_does() {
        let cases: &[(&[ResponseFlag], &str)] = &[
            (&[], "-"),
            (&[NoHealthyUpstream], "UH"),
            (&[UpstreamConnectionFailure], "UF"),
            // Envoy's order, not the order raised: a retried connect failure.
            (
                &[UpstreamRetryLimitExceeded, UpstreamConnectionFailure],
                "UF,URX",
            ),
            (
                &[DownstreamConnectionTermination, UpstreamRequestTimeout],
                "UT,DC",
            ),
            (&[UnauthorizedExternalService], "UAEX"),
            (&[NoRouteFound], "NR"),
        ];
        for (flags, want) in cases {
            let set = flags
                .iter()
                .fold(ResponseFlags::NONE, |all, f| all.with(*f));
            assert_eq!(set.to_string(), *want);
            assert_eq!(ResponseFlags::parse(want), Some(set), "{want}");
        }
    }

    #[test]
    fn codes_are_distinct_and_round_trip() {
        let mut shorts: Vec<&str> = ResponseFlag::ALL.iter().map(|f| f.short()).collect();
        shorts.sort();
        shorts.dedup();
        assert_eq!(shorts.len(), ResponseFlag::ALL.len());
        for (i, f) in ResponseFlag::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i, "ALL is in declaration order");
            assert_eq!(ResponseFlag::from_short(f.short()), Some(*f));
        }
        assert_eq!(ResponseFlags::parse("XX"), None);
        assert_eq!(
            ResponseFlags::from(OverloadManager).long(),
            "OverloadManagerTerminated"
        );
    }
}
