//! telemetry.istio.io checks: Telemetry, following Istio's `ValidateTelemetry` and the CRD's
//! rules (`minLength: 1` on provider names and custom metrics).
//!
//! Not checked here, as in Istio: whether a named provider exists in MeshConfig
//! `extensionProviders`. istiod checks that at use and skips a provider it cannot find
//! (bowline's translate does the same); validation sees the resource alone.

use super::fields::{self, Findings};
use super::security::targets;
use crate::diag::{code, Finding};
use crate::istio::telemetry::{
    AccessLogging, CustomTag, Metrics, ProviderRef, TagOperation, Telemetry, Tracing,
};

pub fn check_telemetry(t: &Telemetry) -> Vec<Finding> {
    let mut out = Findings::default();
    targets(&t.selector, &t.target_ref, &t.target_refs, &mut out);
    for (i, m) in t.metrics.iter().enumerate() {
        metrics(m, &format!("spec.metrics[{i}]"), &mut out);
    }
    if t.tracing.len() > 1 {
        out.warning(
            code::NOT_ALLOWED,
            "spec.tracing",
            "multiple tracing entries are not supported by Istio; only one is meant to be written",
        );
    }
    for (i, tr) in t.tracing.iter().enumerate() {
        tracing(tr, &format!("spec.tracing[{i}]"), &mut out);
    }
    for (i, l) in t.access_logging.iter().enumerate() {
        access_logging(l, &format!("spec.accessLogging[{i}]"), &mut out);
    }
    out.0
}

fn providers(list: &[ProviderRef], p: &str, out: &mut Findings) {
    for (i, r) in list.iter().enumerate() {
        out.require(
            r.name.is_empty(),
            format!("{p}.providers[{i}].name"),
            "a provider needs a `name` (an extensionProviders name of MeshConfig)",
        );
    }
}

fn metrics(m: &Metrics, p: &str, out: &mut Findings) {
    providers(&m.providers, p, out);
    if let Some(d) = &m.reporting_interval {
        out.push(fields::duration(d, &format!("{p}.reportingInterval")));
    }
    for (i, o) in m.overrides.iter().enumerate() {
        let q = format!("{p}.overrides[{i}]");
        for (tag, to) in &o.tag_overrides {
            let field = format!("{q}.tagOverrides.{tag}");
            let value = to.value.as_deref().unwrap_or_default();
            match to.operation.unwrap_or(TagOperation::Upsert) {
                TagOperation::Upsert if value.is_empty() => out.error(
                    code::REQUIRED,
                    format!("{field}.value"),
                    "value must be set when operation is UPSERT (the default)",
                ),
                TagOperation::Remove if !value.is_empty() => out.error(
                    code::NOT_ALLOWED,
                    format!("{field}.value"),
                    "value must not be set when operation is REMOVE",
                ),
                TagOperation::Upsert => cel(value, &format!("{field}.value"), out),
                _ => {}
            }
        }
        if let Some(sel) = &o.matches {
            if sel.metric.is_some() && sel.custom_metric.is_some() {
                out.error(
                    code::CONFLICT,
                    format!("{q}.match"),
                    "set either `metric` or `customMetric`, not both",
                );
            }
            if sel.custom_metric.as_deref() == Some("") {
                out.error(
                    code::REQUIRED,
                    format!("{q}.match.customMetric"),
                    "customMetric, when written, must not be empty",
                );
            }
        }
    }
}

fn tracing(t: &Tracing, p: &str, out: &mut Findings) {
    providers(&t.providers, p, out);
    if t.providers.len() > 1 {
        out.warning(
            code::NOT_ALLOWED,
            format!("{p}.providers"),
            "Istio uses only the first tracing provider; the others are ignored",
        );
    }
    if let Some(pct) = t.random_sampling_percentage {
        out.push(fields::percent(
            pct,
            &format!("{p}.randomSamplingPercentage"),
        ));
    }
    for (name, tag) in &t.custom_tags {
        custom_tag(name, tag, &format!("{p}.customTags.{name}"), out);
    }
}

fn custom_tag(name: &str, tag: &CustomTag, q: &str, out: &mut Findings) {
    if name.is_empty() {
        out.error(code::REQUIRED, q, "a custom tag needs a name");
    }
    let set = [
        tag.literal.is_some(),
        tag.environment.is_some(),
        tag.header.is_some(),
        tag.formatter.is_some(),
    ];
    match set.iter().filter(|s| **s).count() {
        0 => out.error(
            code::REQUIRED,
            q,
            "set one of `literal`, `environment`, `header` or `formatter`",
        ),
        1 => {}
        _ => out.error(
            code::CONFLICT,
            q,
            "set only one of `literal`, `environment`, `header` or `formatter`",
        ),
    }
    let empty = |v: &str, field: &str, what: &str, out: &mut Findings| {
        out.require(v.is_empty(), format!("{q}.{field}"), what);
    };
    if let Some(l) = &tag.literal {
        empty(
            &l.value,
            "literal.value",
            "literal tag value may not be empty",
            out,
        );
    }
    if let Some(e) = &tag.environment {
        empty(
            &e.name,
            "environment.name",
            "environment tag name may not be empty",
            out,
        );
    }
    if let Some(h) = &tag.header {
        empty(
            &h.name,
            "header.name",
            "header tag name may not be empty",
            out,
        );
    }
    if let Some(f) = &tag.formatter {
        empty(
            &f.value,
            "formatter.value",
            "formatter tag value may not be empty",
            out,
        );
    }
}

fn access_logging(l: &AccessLogging, p: &str, out: &mut Findings) {
    providers(&l.providers, p, out);
    if let Some(f) = &l.filter {
        cel(&f.expression, &format!("{p}.filter.expression"), out);
    }
}

/// A CEL expression bowline-proxy evaluates (bowline-telemetry's parser: a syntax error,
/// or a function it does not have, refuses the resource, naming the field and the column).
fn cel(expression: &str, field: &str, out: &mut Findings) {
    if let Err(e) = bowline_telemetry::cel::Expr::parse(expression) {
        out.error(
            code::NOT_ALLOWED,
            field.to_string(),
            format!("must be a valid CEL expression: {e}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_slips_are_caught_and_plain_expressions_pass() {
        let problems = |expr: &str| {
            let mut out = Findings::default();
            cel(expr, "f", &mut out);
            out
        };
        for ok in [
            "true",
            "response.code >= 400",
            "request.headers['x-debug'] == 'a)b'",
            "xds.cluster_name.startsWith(\"outbound\")",
        ] {
            assert!(problems(ok).0.is_empty(), "{ok}");
        }
        for bad in ["", "  ", "(response.code", "a == 'b", "a]", "nosuch(1)"] {
            assert!(!problems(bad).0.is_empty(), "{bad:?}");
        }
    }
}
