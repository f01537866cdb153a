//! Matchers of the supported subset: `envoy.type.matcher.v3.StringMatcher` and
//! `PathMatcher`, and `envoy.config.route.v3.HeaderMatcher` (`string_match` or
//! `present_match`).

use bowline_xds::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, HeaderMatcher,
};
use bowline_xds::pb::envoy::r#type::matcher::v3::{
    path_matcher, string_matcher::MatchPattern, PathMatcher, RegexMatcher, StringMatcher,
};

use crate::json::{Field, Result};

/// One of `exact`, `prefix`, `suffix`, `contains`, `safe_regex: {regex}`, and `ignore_case`.
pub(crate) fn string_matcher(f: Field<'_>) -> Result<StringMatcher> {
    f.object(|o| {
        let exact = o.opt("exact", Field::string)?.map(MatchPattern::Exact);
        let prefix = o.opt("prefix", Field::string)?.map(MatchPattern::Prefix);
        let suffix = o.opt("suffix", Field::string)?.map(MatchPattern::Suffix);
        let contains = o
            .opt("contains", Field::string)?
            .map(MatchPattern::Contains);
        let regex = o
            .opt("safe_regex", regex_matcher)?
            .map(MatchPattern::SafeRegex);
        Ok(StringMatcher {
            ignore_case: o.or_default("ignore_case", Field::bool)?,
            match_pattern: f.one_of(vec![
                ("exact", exact),
                ("prefix", prefix),
                ("suffix", suffix),
                ("contains", contains),
                ("safe_regex", regex),
            ])?,
        })
    })
}

/// `{regex}`: RE2, Envoy's only engine (`google_re2` is deprecated and not needed).
fn regex_matcher(f: Field<'_>) -> Result<RegexMatcher> {
    f.object(|o| {
        Ok(RegexMatcher {
            regex: o.or_default("regex", Field::string)?,
            ..Default::default()
        })
    })
}

/// `{path: StringMatcher}`: the URL path without the query string.
pub(crate) fn path_matcher(f: Field<'_>) -> Result<PathMatcher> {
    f.object(|o| {
        Ok(PathMatcher {
            rule: o.opt("path", string_matcher)?.map(path_matcher::Rule::Path),
        })
    })
}

/// `name`, one of `string_match` and `present_match`, and `invert_match`.
pub(crate) fn header_matcher(f: Field<'_>) -> Result<HeaderMatcher> {
    f.object(|o| {
        let string = o
            .opt("string_match", string_matcher)?
            .map(HeaderMatchSpecifier::StringMatch);
        let present = o
            .opt("present_match", Field::bool)?
            .map(HeaderMatchSpecifier::PresentMatch);
        Ok(HeaderMatcher {
            name: o.or_default("name", Field::string)?,
            invert_match: o.or_default("invert_match", Field::bool)?,
            header_match_specifier: f
                .one_of(vec![("string_match", string), ("present_match", present)])?,
            ..Default::default()
        })
    })
}
