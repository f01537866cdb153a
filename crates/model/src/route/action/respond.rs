//! Envoy's `RedirectAction` and `DirectResponseAction` → [`Redirect`], [`DirectResponse`].

use super::convert::regex_substitution;
use super::{DirectResponse, Redirect, RedirectPath};
use crate::error::{At, Problem};
use crate::unsupported::refuse_unsupported;
use bowline_xds::pb::envoy::config::core::v3::{data_source, DataSource};
use bowline_xds::pb::envoy::config::route::v3::{
    redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier},
    DirectResponseAction, RedirectAction,
};

pub(crate) fn redirect(r: &RedirectAction, at: &At) -> Result<Redirect, Problem> {
    let RedirectAction {
        host_redirect,
        port_redirect,
        response_code,
        strip_query,
        scheme_rewrite_specifier,
        path_rewrite_specifier,
    } = r;
    let code = match RedirectResponseCode::try_from(*response_code) {
        Ok(RedirectResponseCode::MovedPermanently) => 301,
        Ok(RedirectResponseCode::Found) => 302,
        Ok(RedirectResponseCode::SeeOther) => 303,
        Ok(RedirectResponseCode::TemporaryRedirect) => 307,
        Ok(RedirectResponseCode::PermanentRedirect) => 308,
        Err(_) => {
            return Err(at
                .field("response_code")
                .invalid(format!("unknown value {response_code}")))
        }
    };
    let port = match *port_redirect {
        0 => None,
        p => Some(u16::try_from(p).map_err(|_| {
            at.field("port_redirect")
                .invalid(format!("{p} is above 65535"))
        })?),
    };
    let scheme = match scheme_rewrite_specifier {
        None | Some(SchemeRewriteSpecifier::HttpsRedirect(false)) => None,
        Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => Some("https".to_string()),
        Some(SchemeRewriteSpecifier::SchemeRedirect(s)) => Some(s.to_ascii_lowercase()),
    };
    let path = match path_rewrite_specifier {
        None => None,
        Some(PathRewriteSpecifier::PathRedirect(p)) => Some(RedirectPath::Path(p.clone())),
        Some(PathRewriteSpecifier::PrefixRewrite(p)) => Some(RedirectPath::Prefix(p.clone())),
        Some(PathRewriteSpecifier::RegexRewrite(rx)) => {
            let (regex, substitution) = regex_substitution(rx, &at.field("regex_rewrite"))?;
            Some(RedirectPath::Regex {
                regex,
                substitution,
            })
        }
        Some(PathRewriteSpecifier::PathRewrite(_)) => {
            return Err(at.field("path_rewrite").unsupported())
        }
    };
    Ok(Redirect {
        scheme,
        host: (!host_redirect.is_empty()).then(|| host_redirect.clone()),
        port,
        path,
        code,
        strip_query: *strip_query,
    })
}

/// Envoy: a status in 200..600 and an inline body (files and environment variables are not
/// implemented); the body size limit is checked by the route configuration.
pub(crate) fn direct_response(
    d: &DirectResponseAction,
    at: &At,
) -> Result<DirectResponse, Problem> {
    let DirectResponseAction {
        status,
        body,
        body_format,
    } = d;
    refuse_unsupported!(at; body_format);
    if !(200..600).contains(status) {
        return Err(at
            .field("status")
            .invalid(format!("{status} is not in 200..600")));
    }
    let body = match body {
        None => None,
        Some(DataSource {
            watched_directory,
            specifier,
        }) => {
            let at = at.field("body");
            refuse_unsupported!(at; watched_directory);
            match specifier {
                Some(data_source::Specifier::InlineString(s)) => Some(s.clone().into_bytes()),
                Some(data_source::Specifier::InlineBytes(b)) => Some(b.clone()),
                Some(data_source::Specifier::Filename(_)) => {
                    return Err(at.field("filename").unsupported())
                }
                Some(data_source::Specifier::EnvironmentVariable(_)) => {
                    return Err(at.field("environment_variable").unsupported())
                }
                None => None,
            }
        }
    };
    Ok(DirectResponse {
        status: *status as u16,
        body,
    })
}
