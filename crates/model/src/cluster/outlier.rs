//! Outlier detection: consecutive-error ejection of hosts.

use std::time::Duration;

/// Envoy's `OutlierDetection`, consecutive-error detectors only (success-rate and
/// failure-percentage ejection must be left unenforced: conversion refuses them).
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Envoy's default: 5.
    pub consecutive_5xx: u32,
    /// Percent chance an ejection by `consecutive_5xx` happens. Envoy's default: 100.
    pub enforcing_consecutive_5xx: u32,
    /// 502/503/504 in a row. Envoy's default: 5.
    pub consecutive_gateway_failure: u32,
    /// Envoy's default: 0 (detected, not enforced).
    pub enforcing_consecutive_gateway_failure: u32,
    /// Envoy's default: 10 s.
    pub interval: Duration,
    /// Ejection time = base × times ejected. Envoy's default: 30 s.
    pub base_ejection_time: Duration,
    /// Envoy's default: 300 s.
    pub max_ejection_time: Duration,
    /// Envoy's default: 10.
    pub max_ejection_percent: u32,
    /// Count local-origin failures (connect failures, timeouts, resets) apart from
    /// upstream responses. Envoy's default: false.
    pub split_external_local_origin_errors: bool,
    /// Envoy's default: 5.
    pub consecutive_local_origin_failure: u32,
    /// Envoy's default: 100.
    pub enforcing_consecutive_local_origin_failure: u32,
}

impl Default for OutlierDetection {
    fn default() -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: 5,
            enforcing_consecutive_5xx: 100,
            consecutive_gateway_failure: 5,
            enforcing_consecutive_gateway_failure: 0,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            split_external_local_origin_errors: false,
            consecutive_local_origin_failure: 5,
            enforcing_consecutive_local_origin_failure: 100,
        }
    }
}
