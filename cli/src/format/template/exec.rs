//! Execution: walking the parsed nodes over JSON values, variables and scopes.

use serde_json::Value;

use super::funcs::{call, go_type, print_value, truth};
use super::{Command, Mode, Node, Operand, Pipeline, Template, TemplateError, Term};

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
            return call(name, args, self.mode, self.root).map_err(|msg| {
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
                return call(name, Vec::new(), self.mode, self.root).map_err(|msg| Fail {
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
}

fn pipeline_text(p: &Pipeline) -> String {
    p.cmds
        .iter()
        .map(|c| c.text.clone())
        .collect::<Vec<_>>()
        .join(" | ")
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
