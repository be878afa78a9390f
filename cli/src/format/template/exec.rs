//! Execution: evaluating pipelines over JSON values, Go's functions and printing.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::{Command, Mode, Node, Operand, Pipeline, Template, TemplateError, Term, HEADER_FUNCS};
use crate::format::json;
use crate::format::units::format_float_g;

/// Runs `t` with `data` as dot; on error also returns what was written.
pub(super) fn execute<'t>(
    t: &'t Template,
    data: &'t Value,
    mode: Mode,
) -> Result<String, (TemplateError, String)> {
    let mut ex = Exec {
        t,
        mode,
        root: data,
        vars: vec![("$".to_string(), data.clone())],
        out: String::new(),
    };
    match ex.run_list(&t.root, data) {
        Ok(_) => Ok(ex.out),
        Err(e) => Err((e, ex.out)),
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'t> {
    t: &'t Template,
    mode: Mode,
    root: &'t Value,
    vars: Vec<(String, Value)>,
    out: String,
}

/// An execution error before its position is attached.
struct Fail {
    pos: usize,
    context: String,
    msg: String,
}

impl<'t> Exec<'t> {
    fn error(&self, f: Fail) -> TemplateError {
        let (line, col) = self.t.line_col(f.pos);
        let mut context = f.context;
        if context.chars().count() > 20 {
            context = format!("{}...", context.chars().take(20).collect::<String>());
        }
        TemplateError::Exec {
            name: self.t.name.clone(),
            line,
            col,
            context,
            msg: f.msg,
        }
    }

    fn run_list(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        for n in nodes {
            match self.run_node(n, dot)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn scoped(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        let mark = self.vars.len();
        let r = self.run_list(nodes, dot);
        self.vars.truncate(mark);
        r
    }

    fn run_node(&mut self, n: &Node, dot: &Value) -> Result<Flow, TemplateError> {
        match n {
            Node::Text(s) => self.out.push_str(s),
            Node::Action(p) => {
                let v = self.pipeline(p, dot).map_err(|f| self.error(f))?;
                if p.decl.is_empty() {
                    let printed = match (&v, self.mode) {
                        (Value::Null, Mode::Strict) => typed_nil(last_field(p)).to_string(),
                        (Value::Null, _) => "<no value>".to_string(),
                        (other, _) => print_value(other),
                    };
                    self.out.push_str(&printed);
                }
            }
            Node::If { pipe, then, els } | Node::With { pipe, then, els } => {
                let mark = self.vars.len();
                let v = self.pipeline(pipe, dot).map_err(|f| self.error(f))?;
                let is_with = matches!(n, Node::With { .. });
                let flow = if truth(&v) {
                    if is_with {
                        self.scoped(then, &v)?
                    } else {
                        self.scoped(then, dot)?
                    }
                } else {
                    self.scoped(els, dot)?
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range { pipe, body, els } => {
                let mark = self.vars.len();
                // The declared variables are bound per element, not to the pipeline's value.
                let decl = pipe.decl.clone();
                let bare = Pipeline {
                    decl: Vec::new(),
                    assign: false,
                    ..pipe.clone()
                };
                let v = self.pipeline(&bare, dot).map_err(|f| self.error(f))?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (Value::from(i), e.clone()))
                        .collect(),
                    Value::Object(o) => {
                        let mut keys: Vec<&String> = o.keys().collect();
                        keys.sort();
                        keys.into_iter()
                            .map(|k| (Value::String(k.clone()), o[k].clone()))
                            .collect()
                    }
                    Value::Null => Vec::new(),
                    Value::Number(n) if n.is_i64() || n.is_u64() => {
                        let count = n.as_i64().unwrap_or(0).max(0);
                        (0..count)
                            .map(|i| (Value::from(i), Value::from(i)))
                            .collect()
                    }
                    other => {
                        return Err(self.error(Fail {
                            pos: pipe.pos,
                            context: pipeline_text(pipe),
                            msg: format!("range can't iterate over {}", print_value(other)),
                        }))
                    }
                };
                if items.is_empty() {
                    let flow = self.scoped(els, dot)?;
                    self.vars.truncate(mark);
                    return Ok(match flow {
                        Flow::Normal => Flow::Normal,
                        // break/continue in range's else belong to an outer range.
                        other => other,
                    });
                }
                for (key, elem) in items {
                    let inner = self.vars.len();
                    match decl.len() {
                        1 => self.bind(&decl[0], elem.clone(), pipe.assign),
                        2 => {
                            self.bind(&decl[0], key, pipe.assign);
                            self.bind(&decl[1], elem.clone(), pipe.assign);
                        }
                        _ => {}
                    }
                    let flow = self.run_list(body, &elem)?;
                    self.vars.truncate(inner.max(mark));
                    if let Flow::Break = flow {
                        break;
                    }
                }
                self.vars.truncate(mark);
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn bind(&mut self, name: &str, v: Value, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
                return;
            }
        }
        self.vars.push((name.to_string(), v));
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, Fail> {
        let mut val: Option<Value> = None;
        for c in &p.cmds {
            val = Some(self.command(c, dot, val)?);
        }
        let v = val.unwrap_or(Value::Null);
        for name in &p.decl {
            if p.assign && !self.vars.iter().any(|(n, _)| n == name) {
                return Err(Fail {
                    pos: p.pos,
                    context: name.clone(),
                    msg: format!("undefined variable: {name}"),
                });
            }
            self.bind(name, v.clone(), p.assign);
        }
        Ok(v)
    }

    fn command(&mut self, c: &Command, dot: &Value, fin: Option<Value>) -> Result<Value, Fail> {
        let first = &c.args[0];
        if let Term::Func(name) = &first.term {
            let mut args = Vec::new();
            for a in &c.args[1..] {
                args.push(self.operand(a, dot)?);
            }
            if let Some(f) = fin {
                args.push(f);
            }
            // Go names the whole command when the function itself failed,
            // and only the function otherwise.
            return self.call(name, args).map_err(|msg| {
                let context = if msg.starts_with("error calling") {
                    c.text.clone()
                } else {
                    name.clone()
                };
                Fail {
                    pos: first.pos,
                    context,
                    msg,
                }
            });
        }
        if c.args.len() > 1 || fin.is_some() {
            let msg = match (&first.term, first.chain.last()) {
                (Term::Field | Term::Var(_) | Term::Sub(_), Some(name)) => {
                    format!("{name} is not a method but has arguments")
                }
                _ => format!("can't give argument to non-function {}", first.text),
            };
            return Err(Fail {
                pos: first.pos,
                context: first.text.clone(),
                msg,
            });
        }
        self.operand(first, dot)
    }

    fn operand(&mut self, o: &Operand, dot: &Value) -> Result<Value, Fail> {
        let base = match &o.term {
            Term::Dot | Term::Field => dot.clone(),
            Term::Var(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => {
                    return Err(Fail {
                        pos: o.pos,
                        context: name.clone(),
                        msg: format!("undefined variable: {name}"),
                    })
                }
            },
            Term::Func(name) => {
                return self.call(name, Vec::new()).map_err(|msg| Fail {
                    pos: o.pos,
                    context: o.text.clone(),
                    msg,
                })
            }
            Term::Const(v) => v.clone(),
            Term::Nil => Value::Null,
            Term::Sub(p) => self.pipeline(p, dot)?,
        };
        let mut cur = base;
        for name in &o.chain {
            cur = match cur {
                Value::Object(mut m) => match (m.remove(name), self.mode) {
                    (Some(v), _) => v,
                    (None, Mode::Header) => return Ok(Value::Null),
                    // A formatter context is a Go struct without that method.
                    (None, Mode::Row(type_name)) if std::ptr::eq(dot, self.root) && at_dot(o) => {
                        return Err(Fail {
                            pos: o.pos,
                            context: o.text.clone(),
                            msg: format!("can't evaluate field {name} in type {type_name}"),
                        })
                    }
                    // docker's raw-JSON fallback runs with missingkey=error.
                    (None, _) => {
                        return Err(Fail {
                            pos: o.pos,
                            context: o.text.clone(),
                            msg: format!("map has no entry for key {name:?}"),
                        })
                    }
                },
                Value::Null if self.mode == Mode::Header => return Ok(Value::Null),
                Value::Null => {
                    return Err(Fail {
                        pos: o.pos,
                        context: o.text.clone(),
                        msg: format!("nil pointer evaluating interface {{}}.{name}"),
                    })
                }
                other => {
                    return Err(Fail {
                        pos: o.pos,
                        context: o.text.clone(),
                        msg: format!("can't evaluate field {name} in type {}", go_type(&other)),
                    })
                }
            };
        }
        Ok(cur)
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        if self.mode == Mode::Header && HEADER_FUNCS.contains(&name) {
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
                    other => {
                        return Err(format!("error calling len: len of type {}", go_type(other)))
                    }
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
                                return Err(format!(
                                    "error calling index: index out of range: {i}"
                                ));
                            }
                            a[i as usize].clone()
                        }
                        (Value::String(s), Value::Number(n)) => {
                            let i = n.as_i64().unwrap_or(-1);
                            match s.as_bytes().get(i.max(0) as usize) {
                                Some(b) if i >= 0 => Value::from(*b),
                                _ => {
                                    return Err(format!(
                                        "error calling index: index out of range: {i}"
                                    ))
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
                        String::from_utf8_lossy(&s.as_bytes()[lo as usize..hi as usize])
                            .into_owned(),
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
                let row = matches!(self.mode, Mode::Row(_)) && args[0] == *self.root;
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
}

fn pipeline_text(p: &Pipeline) -> String {
    p.cmds
        .iter()
        .map(|c| c.text.clone())
        .collect::<Vec<_>>()
        .join(" | ")
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
fn truth(v: &Value) -> bool {
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
fn go_type(v: &Value) -> &'static str {
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

/// Whether the operand reads fields of dot (`.A.B`), not of a variable or
/// a sub-pipeline.
fn at_dot(o: &Operand) -> bool {
    matches!(o.term, Term::Field | Term::Dot)
}

/// The last field name of a pipeline that is a plain field chain.
fn last_field(p: &Pipeline) -> Option<&str> {
    let cmd = p.cmds.last()?;
    match cmd.args.as_slice() {
        [only] => only.chain.last().map(String::as_str),
        _ => None,
    }
}

/// How docker's typed structs print a JSON null: nil maps as `map[]`, nil
/// pointers as `<nil>`, nil slices (the common case) as `[]`.
fn typed_nil(field: Option<&str>) -> &'static str {
    const MAPS: &[&str] = &[
        "Labels",
        "Volumes",
        "ExposedPorts",
        "Data",
        "StorageOpt",
        "Tmpfs",
        "Sysctls",
        "Annotations",
        "DriverOpts",
        "Ports",
        "Networks",
        "PortBindings",
        "Options",
        "Config",
        "Details",
    ];
    const POINTERS: &[&str] = &[
        "Health",
        "Healthcheck",
        "IPAMConfig",
        "ContainerConfig",
        "Platform",
    ];
    match field {
        Some(f) if MAPS.contains(&f) => "map[]",
        Some(f) if POINTERS.contains(&f) => "<nil>",
        Some(_) => "[]",
        None => "<no value>",
    }
}

/// Go's `%v` of a value: `[a b]`, `map[k:v]` (sorted keys), `<nil>`.
fn print_value(v: &Value) -> String {
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
