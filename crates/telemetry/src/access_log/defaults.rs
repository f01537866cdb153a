//! The default formats users get without writing one, copied from their sources so that
//! bowline's lines read like Envoy's and Istio's.

/// Envoy's default access log format (`SubstitutionFormatUtils::DEFAULT_FORMAT` in
/// `source/common/formatter/substitution_formatter.cc`): used when a file access log has no
/// `log_format`.
pub const ENVOY_DEFAULT_TEXT: &str = concat!(
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" ",
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ",
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% ",
    "\"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" ",
    "\"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n",
);

/// Istio's sidecar text format (`EnvoyTextLogFormat` in
/// `pilot/pkg/model/telemetry_logging.go`): MeshConfig `accessLogEncoding: TEXT` with an
/// empty `accessLogFormat`. Istio appends `\n` to a user's format when it lacks one.
pub const ISTIO_DEFAULT_TEXT: &str = concat!(
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% ",
    "%PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% ",
    "%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ",
    "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% ",
    "%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" ",
    "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" ",
    "%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ",
    "%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n",
);
