//! Parsing: action lexing, pipelines, control structures.

use serde_json::{Number, Value};

mod lex;

use lex::{describe, describe_kind, is_space, Tok, TokKind};

use super::{Command, Node, Operand, Pipeline, TemplateError, Term, FUNCS};

/// Parses a whole template.
pub(super) fn parse(name: &str, src: &str) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser {
        name,
        src,
        pos: 0,
        trim_next: false,
        range_depth: 0,
        vars: vec!["$".to_string()],
    };
    let (root, end) = p.parse_list()?;
    match end {
        Stop::Eof => Ok(root),
        Stop::End(pos) => Err(p.err_at(pos, "unexpected {{end}}")),
        Stop::Else(pos, _) => Err(p.err_at(pos, "unexpected {{else}}")),
    }
}

enum Stop {
    Eof,
    End(usize),
    /// `{{else}}` or `{{else if …}}`: the position and the tokens after `else`.
    Else(usize, Vec<Tok>),
}

struct Parser<'a> {
    name: &'a str,
    src: &'a str,
    pos: usize,
    /// The previous action ended with `-}}`: trim the next text's leading space.
    trim_next: bool,
    range_depth: usize,
    /// Variables in scope, innermost last; Go checks uses at parse time.
    vars: Vec<String>,
}

impl<'a> Parser<'a> {
    fn err_at(&self, pos: usize, msg: impl Into<String>) -> TemplateError {
        let line = 1 + self.src[..pos.min(self.src.len())].matches('\n').count();
        TemplateError::Parse {
            name: self.name.to_string(),
            line,
            msg: msg.into(),
        }
    }

    /// Parses nodes until EOF, `{{end}}` or `{{else…}}`.
    fn parse_list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let open = rest.find("{{");
            let mut text = match open {
                Some(i) => rest[..i].to_string(),
                None => rest.to_string(),
            };
            if self.trim_next {
                text = text.trim_start_matches(is_space).to_string();
                self.trim_next = false;
            }
            let Some(i) = open else {
                if !text.is_empty() {
                    nodes.push(Node::Text(text));
                }
                self.pos = self.src.len();
                return Ok((nodes, Stop::Eof));
            };
            let action_start = self.pos + i;
            self.pos = action_start + 2;
            // "{{- " trims the text before; the dash needs a space after it.
            let after = &self.src[self.pos..];
            if after.starts_with('-') && after[1..].starts_with(is_space) {
                text = text.trim_end_matches(is_space).to_string();
                // The marker is the dash and one space (Go's trimMarkerLen).
                self.pos += 2;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text));
            }
            if self.skip_comment(action_start)? {
                continue;
            }
            let toks = self.lex_action(action_start)?;
            let toks = strip_spaces_at_ends(toks);
            let Some(first) = toks.first() else {
                return Err(self.err_at(action_start, "missing value for command"));
            };
            match &first.kind {
                TokKind::Ident(k) if k == "end" => {
                    if toks.len() > 1 {
                        return Err(self.err_at(
                            first.pos,
                            format!("unexpected {} in end", describe(&toks[1])),
                        ));
                    }
                    return Ok((nodes, Stop::End(first.pos)));
                }
                TokKind::Ident(k) if k == "else" => {
                    let rest = strip_spaces_at_ends(toks[1..].to_vec());
                    return Ok((nodes, Stop::Else(first.pos, rest)));
                }
                TokKind::Ident(k) if k == "if" || k == "with" || k == "range" => {
                    let kw = k.clone();
                    let node = self.parse_control(&kw, first.pos, toks[1..].to_vec())?;
                    nodes.push(node);
                }
                TokKind::Ident(k) if k == "break" || k == "continue" => {
                    if self.range_depth == 0 {
                        return Err(
                            self.err_at(first.pos, format!("{{{{{k}}}}} outside {{{{range}}}}"))
                        );
                    }
                    if toks.len() > 1 {
                        return Err(self.err_at(
                            first.pos,
                            format!("unexpected {} in {{{{{k}}}}}", describe(&toks[1])),
                        ));
                    }
                    nodes.push(if k == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                TokKind::Ident(k) if k == "define" || k == "template" || k == "block" => {
                    return Err(
                        self.err_at(first.pos, format!("{{{{{k}}}}} is not supported by berth"))
                    );
                }
                _ => {
                    let pipe = self.parse_pipeline(&toks, "command", true)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
    }

    /// `if`, `with` or `range`: the pipeline, the body, and an else branch
    /// (which may itself be an `else if`/`else with` chain).
    fn parse_control(
        &mut self,
        kw: &str,
        pos: usize,
        toks: Vec<Tok>,
    ) -> Result<Node, TemplateError> {
        let toks = strip_spaces_at_ends(toks);
        if toks.is_empty() {
            return Err(self.err_at(pos, format!("missing value for {kw}")));
        }
        // Variables declared in the pipeline or the bodies end with the block.
        let scope = self.vars.len();
        let node = self.parse_control_body(kw, toks);
        self.vars.truncate(scope);
        node
    }

    fn parse_control_body(&mut self, kw: &str, toks: Vec<Tok>) -> Result<Node, TemplateError> {
        let pipe = self.parse_pipeline(&toks, kw, kw == "range")?;
        if kw == "range" {
            self.range_depth += 1;
        }
        let (body, end) = self.parse_list()?;
        if kw == "range" {
            self.range_depth -= 1;
        }
        let els = match end {
            Stop::Eof => return Err(self.err_at(self.src.len(), "unexpected EOF")),
            Stop::End(_) => Vec::new(),
            Stop::Else(_, rest) => {
                // Go chains `else if` in an if and `else with` in a with.
                let chained = match rest.first().map(|t| &t.kind) {
                    Some(TokKind::Ident(k)) if k == kw && kw != "range" => Some(k.clone()),
                    Some(TokKind::Ident(k)) if k == "if" || k == "with" => {
                        return Err(self.err_at(rest[0].pos, format!("unexpected <{k}> in input")));
                    }
                    _ => None,
                };
                if let Some(k2) = chained {
                    // `{{else if x}}…{{end}}` closes the outer block too.
                    vec![self.parse_control(&k2, rest[0].pos, rest[1..].to_vec())?]
                } else {
                    if let Some(t) = rest.first() {
                        return Err(
                            self.err_at(t.pos, format!("unexpected {} in else", describe(t)))
                        );
                    }
                    let (els, end2) = self.parse_list()?;
                    match end2 {
                        Stop::End(_) => els,
                        Stop::Eof => return Err(self.err_at(self.src.len(), "unexpected EOF")),
                        Stop::Else(p, _) => {
                            return Err(self.err_at(p, "expected end; found {{else}}"))
                        }
                    }
                }
            }
        };
        Ok(match kw {
            "if" => Node::If {
                pipe,
                then: body,
                els,
            },
            "with" => Node::With {
                pipe,
                then: body,
                els,
            },
            _ => Node::Range { pipe, body, els },
        })
    }

    /// Skips a `{{/* … */}}` comment (with optional trim markers) if one starts here.
    fn skip_comment(&mut self, action_start: usize) -> Result<bool, TemplateError> {
        let rest = &self.src[self.pos..];
        if !rest.starts_with("/*") {
            return Ok(false);
        }
        let Some(end) = rest.find("*/") else {
            return Err(self.err_at(action_start, "unclosed comment"));
        };
        let mut p = self.pos + end + 2;
        let after = &self.src[p..];
        if after.starts_with(" -}}")
            || after.starts_with("\t-}}")
            || after.starts_with("\n-}}")
            || after.starts_with("\r-}}")
        {
            self.trim_next = true;
            p += 4;
        } else if after.starts_with("}}") {
            p += 2;
        } else {
            return Err(self.err_at(action_start, "comment ends before closing delimiter"));
        }
        self.pos = p;
        Ok(true)
    }

    /// Parses a pipeline: optional declaration, commands separated by `|`.
    fn parse_pipeline(
        &mut self,
        toks: &[Tok],
        ctx: &str,
        allow_decl: bool,
    ) -> Result<Pipeline, TemplateError> {
        let pos = toks.first().map_or(0, |t| t.pos);
        let mut i = 0;
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, `$i, $v :=`
        let non_space: Vec<usize> = (0..toks.len())
            .filter(|&k| toks[k].kind != TokKind::Space)
            .collect();
        let kind_at = |n: usize| non_space.get(n).map(|&k| &toks[k].kind);
        if let Some(TokKind::Var(v)) = kind_at(0) {
            match kind_at(1) {
                Some(TokKind::Declare) | Some(TokKind::Assign) => {
                    assign = kind_at(1) == Some(&TokKind::Assign);
                    decl.push(v.clone());
                    i = non_space[1] + 1;
                }
                Some(TokKind::Comma) if allow_decl && ctx == "range" => {
                    if let (Some(TokKind::Var(_)), Some(TokKind::Comma)) = (kind_at(2), kind_at(3))
                    {
                        return Err(
                            self.err_at(toks[non_space[3]].pos, "too many declarations in range")
                        );
                    }
                    if let (Some(TokKind::Var(v2)), Some(TokKind::Declare | TokKind::Assign)) =
                        (kind_at(2), kind_at(3))
                    {
                        assign = kind_at(3) == Some(&TokKind::Assign);
                        decl.push(v.clone());
                        decl.push(v2.clone());
                        i = non_space[3] + 1;
                    } else {
                        return Err(self.err_at(
                            toks[non_space[1]].pos,
                            "range can only initialize variables",
                        ));
                    }
                }
                _ => {}
            }
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        let mut cmds = Vec::new();
        let rest = &toks[i..];
        for seg in split_top(rest, |k| *k == TokKind::Pipe) {
            let seg = strip_spaces_at_ends(seg.to_vec());
            if seg.is_empty() {
                let at = rest.first().map_or(pos, |t| t.pos);
                return Err(self.err_at(at, format!("missing value for {ctx}")));
            }
            cmds.push(self.parse_command(&seg)?);
        }
        if cmds.is_empty() {
            return Err(self.err_at(pos, format!("missing value for {ctx}")));
        }
        if let Some(first) = cmds.first() {
            if let Some(Operand {
                term: Term::Nil, ..
            }) = first.args.first()
            {
                if first.args.len() == 1 && cmds.len() == 1 {
                    return Err(self.err_at(first.pos, "nil is not a command"));
                }
            }
        }
        Ok(Pipeline {
            pos,
            decl,
            assign,
            cmds,
        })
    }

    fn parse_command(&mut self, toks: &[Tok]) -> Result<Command, TemplateError> {
        let pos = toks[0].pos;
        let text = self.src[pos..toks[toks.len() - 1].end].to_string();
        let mut args = Vec::new();
        for seg in split_top(toks, |k| *k == TokKind::Space) {
            if seg.is_empty() {
                continue;
            }
            args.push(self.parse_operand(seg)?);
        }
        Ok(Command { pos, text, args })
    }

    /// One operand: a term followed by directly attached `.Field`s.
    fn parse_operand(&mut self, toks: &[Tok]) -> Result<Operand, TemplateError> {
        let first = &toks[0];
        let text = self.src[first.pos..toks[toks.len() - 1].end].to_string();
        let mut pos = first.pos;
        let mut k = 1;
        let mut chain = Vec::new();
        let term = match &first.kind {
            TokKind::Dot => Term::Dot,
            TokKind::Field(f) => {
                chain.push(f.clone());
                Term::Field
            }
            TokKind::Var(v) => {
                if !self.vars.contains(v) {
                    return Err(self.err_at(first.pos, format!("undefined variable {v:?}")));
                }
                Term::Var(v.clone())
            }
            TokKind::Ident(name) => {
                if !FUNCS.contains(&name.as_str()) {
                    return Err(self.err_at(first.pos, format!("function {name:?} not defined")));
                }
                Term::Func(name.clone())
            }
            TokKind::Str(s) => Term::Const(Value::String(s.clone())),
            TokKind::Char(c) => Term::Const(Value::from(*c as u32)),
            TokKind::Num(n) => Term::Const(
                parse_number(n)
                    .ok_or_else(|| self.err_at(first.pos, format!("bad number syntax: {n:?}")))?,
            ),
            TokKind::Bool(b) => Term::Const(Value::Bool(*b)),
            TokKind::Nil => Term::Nil,
            TokKind::LParen => {
                // Find the matching paren.
                let mut depth = 0;
                let mut close = None;
                for (j, t) in toks.iter().enumerate() {
                    match t.kind {
                        TokKind::LParen => depth += 1,
                        TokKind::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                close = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let Some(close) = close else {
                    return Err(self.err_at(first.pos, "unclosed left paren"));
                };
                let inner = strip_spaces_at_ends(toks[1..close].to_vec());
                if inner.is_empty() {
                    return Err(self.err_at(first.pos, "missing value for parenthesized pipeline"));
                }
                k = close + 1;
                Term::Sub(Box::new(self.parse_pipeline(
                    &inner,
                    "parenthesized pipeline",
                    false,
                )?))
            }
            other => {
                return Err(self.err_at(
                    first.pos,
                    format!("unexpected {} in operand", describe_kind(other)),
                ));
            }
        };
        for (n, t) in toks[k..].iter().enumerate() {
            match &t.kind {
                TokKind::Field(f) => {
                    if matches!(term, Term::Const(_) | Term::Nil | Term::Func(_)) {
                        return Err(self.err_at(
                            t.pos,
                            format!("unexpected . after term {:?}", &self.src[first.pos..t.pos]),
                        ));
                    }
                    // Go reports a chain at the position of its second field.
                    if n == 0 && !chain.is_empty() {
                        pos = t.pos;
                    }
                    chain.push(f.clone());
                }
                other => {
                    return Err(self.err_at(
                        t.pos,
                        format!("unexpected {} in operand", describe_kind(other)),
                    ))
                }
            }
        }
        Ok(Operand {
            pos,
            text,
            term,
            chain,
        })
    }
}

fn parse_number(s: &str) -> Option<Value> {
    let clean = s.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(b, 2).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Value::from(if neg { -i } else { i }));
    }
    let f: f64 = body.parse().ok()?;
    Number::from_f64(if neg { -f } else { f }).map(Value::Number)
}

fn strip_spaces_at_ends(mut toks: Vec<Tok>) -> Vec<Tok> {
    while toks.last().is_some_and(|t| t.kind == TokKind::Space) {
        toks.pop();
    }
    while toks.first().is_some_and(|t| t.kind == TokKind::Space) {
        toks.remove(0);
    }
    toks
}

/// Splits at separators that are outside parentheses.
fn split_top(toks: &[Tok], is_sep: impl Fn(&TokKind) -> bool) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            TokKind::LParen => depth += 1,
            TokKind::RParen => depth -= 1,
            ref k if depth == 0 && is_sep(k) => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&toks[start..]);
    out
}
