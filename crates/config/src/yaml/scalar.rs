//! YAML 1.2 core-schema resolution of scalars: which plain scalars are null, booleans,
//! integers or floats; quoted and block scalars are always strings; `!!tags` force a type.

use super::{unsupported, Pos, Yaml, YamlError};
use saphyr_parser::{ScalarStyle, Tag};

pub(super) fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    pos: Pos,
) -> Result<Yaml, YamlError> {
    match tag {
        None if style == ScalarStyle::Plain => Ok(resolve_plain(text)),
        None => Ok(Yaml::Str(text.to_string())),
        Some(tag) if tag.is_yaml_core_schema() => {
            let value = resolve_plain(text);
            let fits = match tag.suffix.as_str() {
                "str" => return Ok(Yaml::Str(text.to_string())),
                "null" => matches!(value, Yaml::Null),
                "bool" => matches!(value, Yaml::Bool(_)),
                "int" => matches!(&value, Yaml::Number(n) if !n.is_f64()),
                "float" => return float_tagged(text, pos),
                other => return Err(unsupported(pos, format!("tag !!{other} is not supported"))),
            };
            if fits {
                Ok(value)
            } else {
                Err(unsupported(
                    pos,
                    format!("{text:?} is not a valid !!{}", tag.suffix),
                ))
            }
        }
        // `! value` is the non-specific tag: a string.
        Some(tag) if tag.handle == "!" && tag.suffix.is_empty() => Ok(Yaml::Str(text.to_string())),
        Some(tag) => Err(unsupported(
            pos,
            format!("custom tag {tag} is not supported (Kubernetes resources use plain YAML)"),
        )),
    }
}

fn float_tagged(text: &str, pos: Pos) -> Result<Yaml, YamlError> {
    match resolve_plain(text) {
        Yaml::Number(n) => Ok(Yaml::Number(
            serde_json::Number::from_f64(n.as_f64().unwrap_or_default()).unwrap_or(n),
        )),
        _ => Err(unsupported(pos, format!("{text:?} is not a valid !!float"))),
    }
}

/// YAML 1.2 core-schema resolution of a plain scalar.
pub fn resolve_plain(s: &str) -> Yaml {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Yaml::Null,
        "true" | "True" | "TRUE" => return Yaml::Bool(true),
        "false" | "False" | "FALSE" => return Yaml::Bool(false),
        _ => {}
    }
    if has_leading_zero(s) {
        return Yaml::LeadingZero(s.to_string());
    }
    if let Some(n) = parse_int(s) {
        return Yaml::Number(n);
    }
    if is_core_float(s) {
        if let Some(n) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Yaml::Number(n);
        }
    }
    // `.inf` and `.nan` have no JSON form and no meaning in mesh config: keep them as text so
    // a numeric field reports a type error naming the value.
    Yaml::Str(s.to_string())
}

/// `[-+]?0[0-9]+`: a decimal integer with a leading zero, which YAML 1.1 (kubectl) reads as
/// octal and YAML 1.2 as decimal. A lone `0` is not one.
fn has_leading_zero(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// What a [`Yaml::LeadingZero`] scalar means to each reader, and what to write instead.
pub fn leading_zero_message(s: &str) -> String {
    let negative = s.starts_with('-');
    let digits = s.trim_start_matches(['-', '+']);
    let decimal = digits.trim_start_matches('0');
    let decimal = if decimal.is_empty() { "0" } else { decimal };
    let sign = if negative { "-" } else { "" };
    let octal = u64::from_str_radix(digits, 8)
        .map(|n| format!("octal {sign}{n}"))
        .unwrap_or_else(|_| "an error or a float".into());
    format!(
        "`{s}` is ambiguous: YAML 1.2 reads {sign}{decimal}, while kubectl and other YAML 1.1 tools read {octal}; write `{sign}{decimal}` without the leading zero (or `0o{digits}` for octal), or quote it (\"{s}\") if it is text"
    )
}

fn parse_int(s: &str) -> Option<serde_json::Number> {
    if let Some(oct) = s.strip_prefix("0o") {
        return u64::from_str_radix(oct, 8).ok().map(Into::into);
    }
    if let Some(hex) = s.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(Into::into);
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = s.parse::<u64>() {
        return Some(u.into());
    }
    // Too large for 64 bits: a float, as JSON decoders do.
    s.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = digits(0);
    let int_digits = i;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        frac_digits = digits(i + 1);
        i += 1 + frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = digits(i);
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        let cases = [
            ("true", Yaml::Bool(true)),
            ("False", Yaml::Bool(false)),
            ("~", Yaml::Null),
            ("null", Yaml::Null),
            ("80", Yaml::Number(80.into())),
            ("-3", Yaml::Number((-3).into())),
            ("0x1F", Yaml::Number(31.into())),
            ("0o17", Yaml::Number(15.into())),
            (
                "1.5",
                Yaml::Number(serde_json::Number::from_f64(1.5).unwrap()),
            ),
            (
                "1e3",
                Yaml::Number(serde_json::Number::from_f64(1000.0).unwrap()),
            ),
            // YAML 1.1 booleans are strings in 1.2.
            ("yes", Yaml::Str("yes".into())),
            ("on", Yaml::Str("on".into())),
            ("1.2.3", Yaml::Str("1.2.3".into())),
            ("5s", Yaml::Str("5s".into())),
            (".inf", Yaml::Str(".inf".into())),
            ("012abc", Yaml::Str("012abc".into())),
            // A leading zero: octal to YAML 1.1 (kubectl), decimal to YAML 1.2.
            ("012", Yaml::LeadingZero("012".into())),
            ("-007", Yaml::LeadingZero("-007".into())),
            ("00", Yaml::LeadingZero("00".into())),
            ("0", Yaml::Number(0.into())),
            ("-0", Yaml::Number(0.into())),
            ("10", Yaml::Number(10.into())),
            (
                "012.5",
                Yaml::Number(serde_json::Number::from_f64(12.5).unwrap()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(resolve_plain(input), want, "{input}");
        }
    }

    #[test]
    fn leading_zeros_explain_both_readings() {
        let m = leading_zero_message("012");
        assert!(m.contains("reads 12") && m.contains("octal 10"), "{m}");
        assert!(m.contains("`12`") && m.contains("\"012\""), "{m}");
        let m = leading_zero_message("09");
        assert!(m.contains("reads 9"), "{m}");
    }
}
