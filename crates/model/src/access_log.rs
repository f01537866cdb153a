//! Access logs of a connection manager or a TCP proxy (Envoy's `access_log` field): where
//! each request's (or connection's) line goes and in what format. The proxy writes them;
//! the format strings are parsed where lines are rendered (bowline-telemetry).

use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::accesslog::v3::{
    access_log, access_log_filter, extension_filter, AccessLog as PbAccessLog, AccessLogFilter,
};
use bowline_xds::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, DataSource, SubstitutionFormatString,
};
use bowline_xds::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use bowline_xds::pb::envoy::extensions::access_loggers::filters::cel::v3::ExpressionFilter;
use bowline_xds::pb::envoy::extensions::access_loggers::stream::v3::{
    stdout_access_log, StdoutAccessLog,
};
use bowline_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use bowline_xds::prost::Name;

/// One access log: every request (or connection) ends with a line in `path` — or only
/// those its filter lets through.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub struct AccessLog {
    /// A file, appended to; `/dev/stdout` for the stdout logger.
    pub path: String,
    pub format: AccessLogFormat,
    /// Envoy's CEL filter (`envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter`):
    /// a line is written only when the expression is true; an evaluation error counts as
    /// false, as in Envoy. The expression is parsed where lines are rendered. `None`: every
    /// request is logged.
    pub filter: Option<String>,
}

/// What a line says.
#[derive(serde::Serialize, Debug, Clone, PartialEq)]
pub enum AccessLogFormat {
    /// No format given: Envoy's default text format.
    EnvoyDefault,
    /// A format string of command operators (`%START_TIME% %REQ(:METHOD)% …`).
    Text(String),
    /// One JSON object per line: key → format string (or a nested object of them).
    Json(serde_json::Map<String, serde_json::Value>),
}

/// The `access_log` list of a connection manager or TCP proxy.
pub(crate) fn access_logs(logs: &[PbAccessLog], at: &At) -> Result<Vec<AccessLog>, Problem> {
    logs.iter()
        .enumerate()
        .map(|(i, log)| access_log(log, &at.index("access_log", i)))
        .collect()
}

fn access_log(log: &PbAccessLog, at: &At) -> Result<AccessLog, Problem> {
    let PbAccessLog {
        name: _,
        filter,
        config_type,
    } = log;
    let filter = filter
        .as_ref()
        .map(|f| cel_filter(f, &at.field("filter")))
        .transpose()?;
    let Some(access_log::ConfigType::TypedConfig(any)) = config_type else {
        return Err(at.field("typed_config").invalid("is required"));
    };
    let at = at.field("typed_config");
    let bad = |e: bowline_xds::UnpackError| at.invalid(e);
    if any.type_url == FileAccessLog::type_url() {
        let FileAccessLog {
            path,
            access_log_format,
        } = bowline_xds::unpack(any).map_err(bad)?;
        if path.is_empty() {
            return Err(at.field("path").invalid("must not be empty"));
        }
        #[allow(deprecated)]
        let format = match access_log_format {
            None => AccessLogFormat::EnvoyDefault,
            Some(file_access_log::AccessLogFormat::Format(text)) => text_format(text),
            Some(file_access_log::AccessLogFormat::JsonFormat(s))
            | Some(file_access_log::AccessLogFormat::TypedJsonFormat(s)) => {
                AccessLogFormat::Json(json_object(&s))
            }
            Some(file_access_log::AccessLogFormat::LogFormat(f)) => {
                substitution(&f, &at.field("log_format"))?
            }
        };
        Ok(AccessLog {
            path,
            format,
            filter,
        })
    } else if any.type_url == StdoutAccessLog::type_url() {
        let StdoutAccessLog { access_log_format } = bowline_xds::unpack(any).map_err(bad)?;
        let format = match access_log_format {
            None => AccessLogFormat::EnvoyDefault,
            Some(stdout_access_log::AccessLogFormat::LogFormat(f)) => {
                substitution(&f, &at.field("log_format"))?
            }
        };
        Ok(AccessLog {
            path: "/dev/stdout".into(),
            format,
            filter,
        })
    } else {
        Err(at.unsupported_because(format!(
            "access logger {:?} is not implemented (file and stdout are)",
            any.type_url
        )))
    }
}

/// The expression of a CEL extension filter (the one filter Istio generates); other
/// filters are refused, naming them.
fn cel_filter(filter: &AccessLogFilter, at: &At) -> Result<String, Problem> {
    let Some(access_log_filter::FilterSpecifier::ExtensionFilter(ext)) = &filter.filter_specifier
    else {
        return Err(at.unsupported_because(
            "only the CEL extension filter (what Istio generates) is implemented",
        ));
    };
    let at = at.field("extension_filter");
    let Some(extension_filter::ConfigType::TypedConfig(any)) = &ext.config_type else {
        return Err(at.field("typed_config").invalid("is required"));
    };
    let at = at.field("typed_config");
    if any.type_url != ExpressionFilter::type_url() {
        return Err(at.unsupported_because(format!(
            "access log filter {:?} is not implemented (the CEL ExpressionFilter is)",
            any.type_url
        )));
    }
    let decoded: ExpressionFilter = bowline_xds::unpack(any).map_err(|e| at.invalid(e))?;
    let ExpressionFilter {
        expression,
        cel_config,
    } = &decoded;
    refuse_unsupported!(at; cel_config);
    if expression.trim().is_empty() {
        return Err(at.field("expression").invalid("must not be empty"));
    }
    Ok(expression.clone())
}

/// A text format as written; an empty one is Envoy's default.
fn text_format(text: String) -> AccessLogFormat {
    if text.is_empty() {
        AccessLogFormat::EnvoyDefault
    } else {
        AccessLogFormat::Text(text)
    }
}

fn substitution(f: &SubstitutionFormatString, at: &At) -> Result<AccessLogFormat, Problem> {
    #[allow(deprecated)]
    let SubstitutionFormatString {
        omit_empty_values,
        content_type: _,
        formatters,
        json_format_options,
        format,
    } = f;
    refuse_unsupported!(at; omit_empty_values, formatters, json_format_options);
    #[allow(deprecated)]
    Ok(match format {
        None => AccessLogFormat::EnvoyDefault,
        Some(substitution_format_string::Format::TextFormat(text)) => text_format(text.clone()),
        Some(substitution_format_string::Format::JsonFormat(s)) => {
            AccessLogFormat::Json(json_object(s))
        }
        Some(substitution_format_string::Format::TextFormatSource(source)) => {
            let DataSource { specifier, .. } = source;
            match specifier {
                Some(data_source::Specifier::InlineString(text)) => text_format(text.clone()),
                Some(data_source::Specifier::InlineBytes(bytes)) => {
                    text_format(String::from_utf8_lossy(bytes).into_owned())
                }
                _ => {
                    return Err(at
                        .field("text_format_source")
                        .unsupported_because("only inline formats are implemented"))
                }
            }
        }
    })
}

fn json_object(s: &Struct) -> serde_json::Map<String, serde_json::Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), json_value(v)))
        .collect()
}

fn json_value(v: &Value) -> serde_json::Value {
    match &v.kind {
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StructValue(s)) => serde_json::Value::Object(json_object(s)),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(json_value).collect())
        }
        Some(Kind::NullValue(_)) | None => serde_json::Value::Null,
    }
}
