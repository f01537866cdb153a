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
        ];
        for (input, want) in cases {
            assert_eq!(resolve_plain(input), want, "{input}");
        }
    }
}
