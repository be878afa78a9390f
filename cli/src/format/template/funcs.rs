//! Go's template functions and docker's, and Go's `fmt` printing of values.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::{Mode, HEADER_FUNCS};
use crate::format::json;
use crate::format::units::format_float_g;

pub(super) fn call(
    name: &str,
    args: Vec<Value>,
    mode: Mode,
    root: &Value,
) -> Result<Value, String> {
    if mode == Mode::Header && HEADER_FUNCS.contains(&name) {
        return Ok(args.into_iter().next().unwrap_or(Value::Null));
    }
    let want = |n: usize| -> Result<(), String> {
        if args.len() != n {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        } else {
            Ok(())
        }
    };
    let at_least = |n: usize| -> Result<(), String> {
        if args.len() < n {
            Err(format!(
                "wrong number of args for {name}: want at least {n} got {}",
                args.len()
            ))
        } else {
            Ok(())
        }
    };
    Ok(match name {
        "and" => {
            at_least(1)?;
            let mut last = Value::Null;
            for a in args {
                if !truth(&a) {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "or" => {
            at_least(1)?;
            let mut last = Value::Null;
            for a in args {
                if truth(&a) {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "not" => {
            want(1)?;
            Value::Bool(!truth(&args[0]))
        }
        "len" => {
            want(1)?;
            let n = match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::Null => 0,
                other => return Err(format!("error calling len: len of type {}", go_type(other))),
            };
            Value::from(n)
        }
        "index" => {
            at_least(1)?;
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Value::Object(o), Value::String(k)) => {
                        o.get(k).cloned().unwrap_or(Value::String(String::new()))
                    }
                    (Value::Null, Value::String(_)) => Value::String(String::new()),
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_i64().unwrap_or(-1);
                        if i < 0 || i as usize >= a.len() {
                            return Err(format!("error calling index: index out of range: {i}"));
                        }
                        a[i as usize].clone()
                    }
                    (Value::String(s), Value::Number(n)) => {
                        let i = n.as_i64().unwrap_or(-1);
                        match s.as_bytes().get(i.max(0) as usize) {
                            Some(b) if i >= 0 => Value::from(*b),
                            _ => {
                                return Err(format!("error calling index: index out of range: {i}"))
                            }
                        }
                    }
                    (Value::Null, _) => {
                        return Err("error calling index: index of untyped nil".into())
                    }
                    (c, k) => {
                        return Err(format!(
                            "error calling index: cannot index {} with {}",
                            go_type(c),
                            go_type(k)
                        ))
                    }
                };
            }
            cur
        }
        "slice" => {
            at_least(1)?;
            let idx: Vec<i64> = args[1..].iter().map(|a| a.as_i64().unwrap_or(-1)).collect();
            let len = match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                other => {
                    return Err(format!(
                        "error calling slice: can't slice item of type {}",
                        go_type(other)
                    ))
                }
            };
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(len as i64);
            if lo < 0 || hi < lo || hi as usize > len || idx.len() > 2 {
                return Err(format!(
                    "error calling slice: index out of range: {}",
                    if lo < 0 { lo } else { hi }
                ));
            }
            match &args[0] {
                Value::String(s) => Value::String(
                    String::from_utf8_lossy(&s.as_bytes()[lo as usize..hi as usize]).into_owned(),
                ),
                Value::Array(a) => Value::Array(a[lo as usize..hi as usize].to_vec()),
                _ => unreachable!("checked above"),
            }
        }
        "print" => Value::String(go_sprint(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(print_value).collect();
            Value::String(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            at_least(1)?;
            let Value::String(f) = &args[0] else {
                return Err(format!(
                    "wrong type for value; expected string; got {}",
                    go_type(&args[0])
                ));
            };
            Value::String(go_sprintf(f, &args[1..]))
        }
        "eq" => {
            at_least(2)?;
            let mut any = false;
            for b in &args[1..] {
                if compare(&args[0], b, name)? == std::cmp::Ordering::Equal {
                    any = true;
                }
            }
            Value::Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let o = compare(&args[0], &args[1], name)?;
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "json" => {
            want(1)?;
            // A list row marshals itself with json.Marshal (HTML-escaped);
            // everything else goes through the templates' encoder.
            let row = matches!(mode, Mode::Row(_)) && args[0] == *root;
            Value::String(json::encode(&args[0], row))
        }
        "split" => {
            want(2)?;
            let (s, sep) = (as_str(&args[0], name)?, as_str(&args[1], name)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Value::Array(parts)
        }
        "join" => {
            want(2)?;
            let sep = as_str(&args[1], name)?;
            let items: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(print_value).collect(),
                Value::Null => Vec::new(),
                other => {
                    return Err(format!(
                        "wrong type for value; expected []string; got {}",
                        go_type(other)
                    ))
                }
            };
            Value::String(items.join(&sep))
        }
        "lower" => {
            want(1)?;
            Value::String(as_str(&args[0], name)?.to_lowercase())
        }
        "upper" => {
            want(1)?;
            Value::String(as_str(&args[0], name)?.to_uppercase())
        }
        "title" => {
            want(1)?;
            Value::String(title(&as_str(&args[0], name)?))
        }
        "pad" => {
            want(3)?;
            let s = as_str(&args[0], name)?;
            let (pre, post) = (
                args[1].as_i64().unwrap_or(0).max(0) as usize,
                args[2].as_i64().unwrap_or(0).max(0) as usize,
            );
            Value::String(format!("{}{s}{}", " ".repeat(pre), " ".repeat(post)))
        }
        "truncate" => {
            want(2)?;
            let s = as_str(&args[0], name)?;
            let n = args[1].as_i64().unwrap_or(0).max(0) as usize;
            Value::String(s.chars().take(n).collect())
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn as_str(v: &Value, func: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {} (in {func})",
            go_type(other)
        )),
    }
}

/// Go's `strings.Title`: upper-cases letters that start a word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

/// Go's truthiness: false, 0, "", empty collections and nil are false.
pub(super) fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn compare(a: &Value, b: &Value, func: &str) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return Ok(x.cmp(&y));
            }
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if matches!(func, "eq" | "ne") => Ok(x.cmp(y)),
        (Value::Null, Value::Null) if matches!(func, "eq" | "ne") => Ok(Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) if matches!(func, "eq" | "ne") => Ok(Ordering::Less),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Err(format!("error calling {func}: non-comparable type"))
        }
        (Value::Bool(_), Value::Bool(_)) => {
            Err(format!("error calling {func}: invalid type for comparison"))
        }
        _ => Err(format!(
            "error calling {func}: incompatible types for comparison"
        )),
    }
}

/// The Go type name docker's raw-JSON fallback would report.
pub(super) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `%v` of a value: `[a b]`, `map[k:v]` (sorted keys), `<nil>`.
pub(super) fn print_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => print_number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(print_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => format!("map[{}]", print_map(o)),
    }
}

fn print_map(o: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = o.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| format!("{k}:{}", print_value(&o[*k])))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        format_float_g(n.as_f64().unwrap_or(0.0), None)
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&print_value(a));
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs scripts use: `%s %v %d %q %t %x %f %%`,
/// with flags `-`/`0`, width and precision.
fn go_sprintf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = f.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut zero = false;
        let mut plus = false;
        while let Some(&fl) = chars.peek() {
            match fl {
                '-' => minus = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next_arg += 1;
        let body = match (verb, arg) {
            ('d', Value::Number(n)) if n.as_i64().is_some() => {
                let i = n.as_i64().unwrap_or(0);
                if plus && i >= 0 {
                    format!("+{i}")
                } else {
                    i.to_string()
                }
            }
            ('x', Value::Number(n)) if n.as_i64().is_some() => {
                format!("{:x}", n.as_i64().unwrap_or(0))
            }
            ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('f' | 'F', Value::Number(n)) => {
                format!("{:.*}", prec.unwrap_or(6), n.as_f64().unwrap_or(0.0))
            }
            ('g', Value::Number(n)) => format_float_g(n.as_f64().unwrap_or(0.0), prec),
            ('q', Value::String(s)) => json::go_quote(s),
            ('t', Value::Bool(b)) => b.to_string(),
            ('s' | 'v', v) => {
                let s = print_value(v);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            (verb, v) => format!("%!{verb}({}={})", go_type(v), print_value(v)),
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if minus {
            out.push_str(&body);
            out.push_str(&" ".repeat(w - len));
        } else if zero && arg.is_number() {
            out.push_str(&"0".repeat(w - len));
            out.push_str(&body);
        } else {
            out.push_str(&" ".repeat(w - len));
            out.push_str(&body);
        }
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| format!("{}={}", go_type(a), print_value(a)))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}
