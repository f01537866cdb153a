//! Names (routes, matches, servers, ports): printable text only. Names end up in Envoy's
//! route and stat names and in logs, where a control character corrupts the output and an
//! invisible one makes two different names look the same.

use crate::diag::{code, Finding};

/// Characters that must not be in a name: control characters (C0, DEL, C1) and invisible
/// formatting characters (zero-width, bidi controls, BOM/ZWNBSP, soft hyphen) that make two
/// different names look the same.
fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A name (route, match, server or port name): no control or invisible characters. Names
/// end up in Envoy's route and stat names and in logs, where such a character corrupts the
/// output or hides what the name is.
pub fn name(value: &str, field: &str) -> Option<Finding> {
    let (at, c) = value.char_indices().find(|(_, c)| is_hidden_char(*c))?;
    Some(Finding::error(
        code::CONTROL_CHAR,
        field,
        format!(
            "name {value:?} contains the invisible or control character U+{:04X} at byte {at}; names must be printable text",
            u32::from(c)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_control_and_invisible_characters() {
        for ok in ["reviews-v1", "route 1", "ünïcode"] {
            assert!(name(ok, "n").is_none(), "{ok}");
        }
        for bad in [
            "a\0b",
            "tab\there",
            "line\n",
            "\u{feff}bom",
            "zero\u{200b}width",
            "del\u{7f}",
        ] {
            let f = name(bad, "n").unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(f.code, code::CONTROL_CHAR);
        }
    }
}
