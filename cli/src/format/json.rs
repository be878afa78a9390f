//! JSON written the way Go's `encoding/json` writes it.
//!
//! docker's `inspect` prints the daemon's `json.Marshal` output re-indented
//! with `json.Indent(…, "", "    ")`, which escapes `<`, `>` and `&` as
//! `\u003c` and so on; its templates' `json` function uses an encoder with
//! HTML escaping off. Key order is the value's own (serde_json's
//! `preserve_order`), as Go keeps struct field order.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Compact encoding; `escape_html` as Go's `json.Marshal` (true) or the
/// templates' encoder (false).
pub fn encode(v: &Value, escape_html: bool) -> String {
    let mut out = String::new();
    write_value(&mut out, v, escape_html, None, 0);
    out
}

/// `json.MarshalIndent(v, "", indent)` with HTML escaping, as docker's
/// inspect output.
pub fn encode_indent(v: &Value, indent: &str) -> String {
    let mut out = String::new();
    write_value(&mut out, v, true, Some(indent), 0);
    out
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

fn write_value(out: &mut String, v: &Value, html: bool, indent: Option<&str>, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => write_string(out, s, html),
        // Go's json.Indent leaves empty arrays and objects on one line.
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(o) if o.is_empty() => out.push_str("{}"),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_value(out, e, html, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_string(out, k, html);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_value(out, e, html, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push('}');
        }
    }
}

/// Go formats floats with `'f'` unless the exponent is below -6 or at least
/// 21, then as `1e+21`.
fn number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if e.starts_with('-') => format!("{m}e-{}", &e[1..]),
            Some((m, e)) => format!("{m}e+{e}"),
            None => s,
        }
    } else {
        format!("{f}")
    }
}

fn write_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            // Go escapes the JavaScript line separators even without HTML escaping.
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.Quote`, for `printf "%q"`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_keeps_order_and_escapes_like_go() {
        let v = json!({"Z": 1, "A": "<a&b>", "n": null, "f": 1.5, "e": [], "o": {}});
        assert_eq!(
            encode(&v, false),
            r#"{"Z":1,"A":"<a&b>","n":null,"f":1.5,"e":[],"o":{}}"#
        );
        assert_eq!(
            encode(&v, true),
            r#"{"Z":1,"A":"\u003ca\u0026b\u003e","n":null,"f":1.5,"e":[],"o":{}}"#
        );
        assert_eq!(
            encode(&json!("a\u{1}\u{2028}\t\"\\"), false),
            r#""a\u0001\u2028\t\"\\""#
        );
        assert_eq!(encode(&json!(1e21), false), "1e+21");
        assert_eq!(encode(&json!(1e-7), false), "1e-7");
        assert_eq!(encode(&json!(123456789.0), false), "123456789");
    }

    #[test]
    fn indents_like_json_indent() {
        let v =
            json!([{"Id": "x", "Tags": ["a", "b"], "Empty": [], "Map": {}, "Nested": {"K": true}}]);
        let want = r#"[
    {
        "Id": "x",
        "Tags": [
            "a",
            "b"
        ],
        "Empty": [],
        "Map": {},
        "Nested": {
            "K": true
        }
    }
]"#;
        assert_eq!(encode_indent(&v, "    "), want);
        assert_eq!(encode_indent(&json!([]), "    "), "[]");
    }

    #[test]
    fn quotes_like_strconv() {
        assert_eq!(go_quote("a\"b\n\u{1}"), r#""a\"b\n\x01""#);
    }
}
