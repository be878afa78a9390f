//! A Go `text/template` subset over JSON values, as docker's `--format` uses it.
//!
//! Supported: text, `{{.}}`, field chains (`.State.Status`, `$v.Name`,
//! `(index .X 0).Name`), variables (`$`, `$x := …`, `$x = …`), pipelines
//! (`.Name | upper`), `if`/`else if`/`else`, `range` (with `$i, $v :=`,
//! `else`, `break`, `continue`), `with`, comments, `{{-`/`-}}` trimming,
//! string/raw/char/number/bool/nil literals, and the functions docker's
//! templates offer: Go's `and or not len index slice print printf println eq
//! ne lt le gt ge` and docker's `json split join title lower upper pad
//! truncate`. `define`/`template`/`block` are refused.
//!
//! Values print as Go's `fmt` prints them (`[a b]`, `map[k:v]`, `<no value>`
//! for a null), and errors carry Go's wording and positions, because scripts
//! written against docker match on both.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::json;
use super::units::format_float_g;

/// A template failed to parse or to execute; the text is Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {name}:{line}: {msg}")]
    Parse { name: String, line: usize, msg: String },
    #[error("template: {name}:{line}:{col}: executing \"{name}\" at <{context}>: {msg}")]
    Exec { name: String, line: usize, col: usize, context: String, msg: String },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    root: Vec<Node>,
}

/// How missing map keys and functions behave during execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A missing key is an error (docker's inspect fallback, typed contexts).
    Strict,
    /// A missing key prints `<no value>`, and docker's string functions return
    /// their argument unchanged: how docker renders a table header.
    Header,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If { pipe: Pipeline, then: Vec<Node>, els: Vec<Node> },
    With { pipe: Pipeline, then: Vec<Node>, els: Vec<Node> },
    Range { pipe: Pipeline, body: Vec<Node>, els: Vec<Node> },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Pipeline {
    pos: usize,
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
struct Command {
    pos: usize,
    text: String,
    args: Vec<Operand>,
}

#[derive(Debug, Clone)]
struct Operand {
    pos: usize,
    text: String,
    term: Term,
    /// Fields applied to the term's value (`(…).A.B`, `$x.A`).
    chain: Vec<String>,
}

#[derive(Debug, Clone)]
enum Term {
    Dot,
    /// `.A.B` on dot; the chain holds the names.
    Field,
    Var(String),
    Func(String),
    Const(Value),
    Nil,
    Sub(Box<Pipeline>),
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

/// docker's string helpers, which a header rendering turns into identity.
const HEADER_FUNCS: &[&str] = &["json", "split", "join", "title", "lower", "upper", "pad", "truncate"];

impl Template {
    /// Parses `src`; `name` appears in messages (`template: NAME:1: …`).
    pub fn parse(name: &str, src: &str) -> Result<Self, TemplateError> {
        let mut p = Parser { name, src, pos: 0, trim_next: false, range_depth: 0 };
        let (root, end) = p.parse_list()?;
        match end {
            End::Eof => Ok(Template { name: name.to_string(), src: src.to_string(), root }),
            End::End(pos) => Err(p.err_at(pos, "unexpected {{end}}")),
            End::Else(pos, _) => Err(p.err_at(pos, "unexpected {{else}}")),
        }
    }

    /// Executes the template with `data` as dot.
    pub fn execute(&self, data: &Value, mode: Mode) -> Result<String, TemplateError> {
        let mut ex = Exec { t: self, mode, vars: vec![("$".to_string(), data.clone())], out: String::new() };
        match ex.run_list(&self.root, data) {
            Ok(_) => Ok(ex.out),
            Err(e) => Err(e),
        }
    }

    /// Executes and returns what was written before an error too (docker
    /// keeps a partial table header).
    pub fn execute_partial(&self, data: &Value, mode: Mode) -> String {
        let mut ex = Exec { t: self, mode, vars: vec![("$".to_string(), data.clone())], out: String::new() };
        let _ = ex.run_list(&self.root, data);
        ex.out
    }

    fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = &self.src[..pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(i) => pos - i - 1,
            None => pos,
        };
        (line, col)
    }
}

// ---------------------------------------------------------------------------
// Parsing

enum End {
    Eof,
    End(usize),
    /// `{{else}}` or `{{else if …}}`: the position and the tokens after `else`.
    Else(usize, Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq)]
enum TokKind {
    Field(String),
    Dot,
    Var(String),
    Ident(String),
    Str(String),
    Char(char),
    Num(String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Space,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: TokKind,
    pos: usize,
    end: usize,
}

struct Parser<'a> {
    name: &'a str,
    src: &'a str,
    pos: usize,
    /// The previous action ended with `-}}`: trim the next text's leading space.
    trim_next: bool,
    range_depth: usize,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

impl<'a> Parser<'a> {
    fn err_at(&self, pos: usize, msg: impl Into<String>) -> TemplateError {
        let line = 1 + self.src[..pos.min(self.src.len())].matches('\n').count();
        TemplateError::Parse { name: self.name.to_string(), line, msg: msg.into() }
    }

    /// Parses nodes until EOF, `{{end}}` or `{{else…}}`.
    fn parse_list(&mut self) -> Result<(Vec<Node>, End), TemplateError> {
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
                return Ok((nodes, End::Eof));
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
                        return Err(self.err_at(first.pos, format!("unexpected {} in end", describe(&toks[1]))));
                    }
                    return Ok((nodes, End::End(first.pos)));
                }
                TokKind::Ident(k) if k == "else" => {
                    let rest = strip_spaces_at_ends(toks[1..].to_vec());
                    return Ok((nodes, End::Else(first.pos, rest)));
                }
                TokKind::Ident(k) if k == "if" || k == "with" || k == "range" => {
                    let kw = k.clone();
                    let node = self.parse_control(&kw, first.pos, toks[1..].to_vec())?;
                    nodes.push(node);
                }
                TokKind::Ident(k) if k == "break" || k == "continue" => {
                    if self.range_depth == 0 {
                        return Err(self.err_at(first.pos, format!("{{{{{k}}}}} outside {{{{range}}}}")));
                    }
                    if toks.len() > 1 {
                        return Err(self.err_at(first.pos, format!("unexpected {} in {{{{{k}}}}}", describe(&toks[1]))));
                    }
                    nodes.push(if k == "break" { Node::Break } else { Node::Continue });
                }
                TokKind::Ident(k) if k == "define" || k == "template" || k == "block" => {
                    return Err(self.err_at(first.pos, format!("{{{{{k}}}}} is not supported by berth")));
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
    fn parse_control(&mut self, kw: &str, pos: usize, toks: Vec<Tok>) -> Result<Node, TemplateError> {
        let toks = strip_spaces_at_ends(toks);
        if toks.is_empty() {
            return Err(self.err_at(pos, format!("missing value for {kw}")));
        }
        let pipe = self.parse_pipeline(&toks, kw, kw == "range")?;
        if kw == "range" {
            self.range_depth += 1;
        }
        let (body, end) = self.parse_list()?;
        if kw == "range" {
            self.range_depth -= 1;
        }
        let els = match end {
            End::Eof => return Err(self.err_at(self.src.len(), "unexpected EOF")),
            End::End(_) => Vec::new(),
            End::Else(_, rest) => {
                let chained = match rest.first().map(|t| &t.kind) {
                    Some(TokKind::Ident(k)) if (k == "if" || k == "with") && kw != "range" => Some(k.clone()),
                    _ => None,
                };
                if let Some(k2) = chained {
                    // `{{else if x}}…{{end}}` closes the outer block too.
                    vec![self.parse_control(&k2, rest[0].pos, rest[1..].to_vec())?]
                } else {
                    if let Some(t) = rest.first() {
                        return Err(self.err_at(t.pos, format!("unexpected {} in else", describe(t))));
                    }
                    let (els, end2) = self.parse_list()?;
                    match end2 {
                        End::End(_) => els,
                        End::Eof => return Err(self.err_at(self.src.len(), "unexpected EOF")),
                        End::Else(p, _) => return Err(self.err_at(p, "expected end; found {{else}}")),
                    }
                }
            }
        };
        Ok(match kw {
            "if" => Node::If { pipe, then: body, els },
            "with" => Node::With { pipe, then: body, els },
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
        if after.starts_with(" -}}") || after.starts_with("\t-}}") || after.starts_with("\n-}}") || after.starts_with("\r-}}") {
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

    /// Lexes one action's tokens up to and including `}}` (or ` -}}`).
    fn lex_action(&mut self, action_start: usize) -> Result<Vec<Tok>, TemplateError> {
        let src = self.src;
        let mut toks = Vec::new();
        let mut paren = 0usize;
        loop {
            let p = self.pos;
            let rest = &src[p..];
            if rest.is_empty() {
                return Err(self.err_at(action_start, "unclosed action"));
            }
            // " -}}" ends the action and trims the following text.
            if rest.starts_with(is_space) {
                let ws_end = rest.find(|c: char| !is_space(c)).map_or(src.len(), |i| p + i);
                if src[ws_end..].starts_with("-}}") {
                    self.pos = ws_end + 3;
                    self.trim_next = true;
                    return self.close_parens(paren, action_start, toks);
                }
                if src[ws_end..].starts_with("}}") {
                    self.pos = ws_end + 2;
                    return self.close_parens(paren, action_start, toks);
                }
                if ws_end == src.len() {
                    return Err(self.err_at(action_start, "unclosed action"));
                }
                toks.push(Tok { kind: TokKind::Space, pos: p, end: ws_end });
                self.pos = ws_end;
                continue;
            }
            if rest.starts_with("}}") {
                self.pos = p + 2;
                return self.close_parens(paren, action_start, toks);
            }
            let c = rest.chars().next().unwrap_or('\0');
            let (kind, len) = match c {
                '|' => (TokKind::Pipe, 1),
                '(' => {
                    paren += 1;
                    (TokKind::LParen, 1)
                }
                ')' => {
                    if paren == 0 {
                        return Err(self.err_at(p, "unexpected right paren"));
                    }
                    paren -= 1;
                    (TokKind::RParen, 1)
                }
                ',' => (TokKind::Comma, 1),
                ':' if rest.starts_with(":=") => (TokKind::Declare, 2),
                '=' => (TokKind::Assign, 1),
                '"' => self.lex_quoted(p)?,
                '`' => match rest[1..].find('`') {
                    Some(i) => (TokKind::Str(rest[1..1 + i].to_string()), i + 2),
                    None => return Err(self.err_at(p, "unterminated raw quoted string")),
                },
                '\'' => self.lex_char(p)?,
                '$' => {
                    let n = ident_len(&rest[1..]);
                    (TokKind::Var(rest[..1 + n].to_string()), 1 + n)
                }
                '.' if !rest[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                    let n = ident_len(&rest[1..]);
                    if n == 0 {
                        (TokKind::Dot, 1)
                    } else {
                        (TokKind::Field(rest[1..1 + n].to_string()), 1 + n)
                    }
                }
                c if c.is_ascii_digit() || c == '.' || ((c == '-' || c == '+') && rest[1..].starts_with(|d: char| d.is_ascii_digit() || d == '.')) => {
                    let n = number_len(rest);
                    (TokKind::Num(rest[..n].to_string()), n)
                }
                c if c.is_alphabetic() || c == '_' => {
                    let n = ident_len(rest);
                    let word = &rest[..n];
                    let kind = match word {
                        "true" => TokKind::Bool(true),
                        "false" => TokKind::Bool(false),
                        "nil" => TokKind::Nil,
                        _ => TokKind::Ident(word.to_string()),
                    };
                    (kind, n)
                }
                c => {
                    return Err(self.err_at(
                        p,
                        format!("unexpected bad character U+{:04X} '{}' in command", c as u32, c),
                    ))
                }
            };
            toks.push(Tok { kind, pos: p, end: p + len });
            self.pos = p + len;
        }
    }

    fn close_parens(&self, paren: usize, action_start: usize, toks: Vec<Tok>) -> Result<Vec<Tok>, TemplateError> {
        if paren > 0 {
            return Err(self.err_at(action_start, "unclosed left paren"));
        }
        Ok(toks)
    }

    fn lex_quoted(&self, p: usize) -> Result<(TokKind, usize), TemplateError> {
        let rest = &self.src[p + 1..];
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((TokKind::Str(out), i + 2)),
                '\n' => break,
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'a' => out.push('\u{7}'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        'x' | 'u' | 'U' => {
                            let n = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex: String = (0..n).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                            let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                            match ch {
                                Some(ch) if hex.len() == n => out.push(ch),
                                _ => return Err(self.err_at(p, "invalid syntax in quoted string")),
                            }
                        }
                        _ => return Err(self.err_at(p, "invalid syntax in quoted string")),
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.err_at(p, "unterminated quoted string"))
    }

    fn lex_char(&self, p: usize) -> Result<(TokKind, usize), TemplateError> {
        let rest = &self.src[p + 1..];
        let mut it = rest.char_indices();
        let c = match it.next() {
            Some((_, '\\')) => match it.next() {
                Some((_, 'n')) => '\n',
                Some((_, 't')) => '\t',
                Some((_, '\\')) => '\\',
                Some((_, '\'')) => '\'',
                _ => return Err(self.err_at(p, "unterminated character constant")),
            },
            Some((_, c)) => c,
            None => return Err(self.err_at(p, "unterminated character constant")),
        };
        match it.next() {
            Some((i, '\'')) => Ok((TokKind::Char(c), i + 2)),
            _ => Err(self.err_at(p, "unterminated character constant")),
        }
    }

    /// Parses a pipeline: optional declaration, commands separated by `|`.
    fn parse_pipeline(&self, toks: &[Tok], ctx: &str, allow_decl: bool) -> Result<Pipeline, TemplateError> {
        let pos = toks.first().map_or(0, |t| t.pos);
        let mut i = 0;
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, `$i, $v :=`
        let non_space: Vec<usize> = (0..toks.len()).filter(|&k| toks[k].kind != TokKind::Space).collect();
        let kind_at = |n: usize| non_space.get(n).map(|&k| &toks[k].kind);
        if let Some(TokKind::Var(v)) = kind_at(0) {
            match kind_at(1) {
                Some(TokKind::Declare) | Some(TokKind::Assign) => {
                    assign = kind_at(1) == Some(&TokKind::Assign);
                    decl.push(v.clone());
                    i = non_space[1] + 1;
                }
                Some(TokKind::Comma) if allow_decl && ctx == "range" => {
                    if let (Some(TokKind::Var(v2)), Some(TokKind::Declare | TokKind::Assign)) = (kind_at(2), kind_at(3)) {
                        assign = kind_at(3) == Some(&TokKind::Assign);
                        decl.push(v.clone());
                        decl.push(v2.clone());
                        i = non_space[3] + 1;
                    } else {
                        return Err(self.err_at(toks[non_space[1]].pos, "range can only initialize variables"));
                    }
                }
                _ => {}
            }
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
            if let Some(Operand { term: Term::Nil, .. }) = first.args.first() {
                if first.args.len() == 1 && cmds.len() == 1 {
                    return Err(self.err_at(first.pos, "nil is not a command"));
                }
            }
        }
        Ok(Pipeline { pos, decl, assign, cmds })
    }

    fn parse_command(&self, toks: &[Tok]) -> Result<Command, TemplateError> {
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
    fn parse_operand(&self, toks: &[Tok]) -> Result<Operand, TemplateError> {
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
            TokKind::Var(v) => Term::Var(v.clone()),
            TokKind::Ident(name) => {
                if !FUNCS.contains(&name.as_str()) {
                    return Err(self.err_at(first.pos, format!("function {name:?} not defined")));
                }
                Term::Func(name.clone())
            }
            TokKind::Str(s) => Term::Const(Value::String(s.clone())),
            TokKind::Char(c) => Term::Const(Value::from(*c as u32)),
            TokKind::Num(n) => Term::Const(parse_number(n).ok_or_else(|| self.err_at(first.pos, format!("bad number syntax: {n:?}")))?),
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
                Term::Sub(Box::new(self.parse_pipeline(&inner, "parenthesized pipeline", false)?))
            }
            other => {
                return Err(self.err_at(first.pos, format!("unexpected {} in operand", describe_kind(other))));
            }
        };
        for (n, t) in toks[k..].iter().enumerate() {
            match &t.kind {
                TokKind::Field(f) => {
                    if matches!(term, Term::Const(_) | Term::Nil | Term::Func(_)) {
                        return Err(self.err_at(t.pos, format!("unexpected . after term {:?}", &self.src[first.pos..t.pos])));
                    }
                    // Go reports a chain at the position of its second field.
                    if n == 0 && !chain.is_empty() {
                        pos = t.pos;
                    }
                    chain.push(f.clone());
                }
                other => return Err(self.err_at(t.pos, format!("unexpected {} in operand", describe_kind(other)))),
            }
        }
        Ok(Operand { pos, text, term, chain })
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

fn number_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c.is_ascii_alphanumeric() || c == '.' || c == '_' || ((c == '-' || c == '+') && (i == 0 || s[..i].ends_with(['e', 'E', 'p', 'P'])));
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
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

fn describe(t: &Tok) -> String {
    describe_kind(&t.kind)
}

fn describe_kind(k: &TokKind) -> String {
    match k {
        TokKind::Field(f) => format!("<.{f}>"),
        TokKind::Dot => "<.>".into(),
        TokKind::Var(v) => format!("<{v}>"),
        TokKind::Ident(i) => format!("<{i}>"),
        TokKind::Str(s) => format!("{s:?}"),
        TokKind::Char(c) => format!("'{c}'"),
        TokKind::Num(n) => format!("<{n}>"),
        TokKind::Bool(b) => format!("<{b}>"),
        TokKind::Nil => "<nil>".into(),
        TokKind::Pipe => "\"|\"".into(),
        TokKind::LParen => "\"(\"".into(),
        TokKind::RParen => "\")\"".into(),
        TokKind::Declare => "\":=\"".into(),
        TokKind::Assign => "\"=\"".into(),
        TokKind::Comma => "\",\"".into(),
        TokKind::Space => "space".into(),
    }
}

// ---------------------------------------------------------------------------
// Execution

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'t> {
    t: &'t Template,
    mode: Mode,
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
        TemplateError::Exec { name: self.t.name.clone(), line, col, context, msg: f.msg }
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
                    self.out.push_str(&print_top(&v));
                }
            }
            Node::If { pipe, then, els } | Node::With { pipe, then, els } => {
                let mark = self.vars.len();
                let v = self.pipeline(pipe, dot).map_err(|f| self.error(f))?;
                let is_with = matches!(n, Node::With { .. });
                let flow = if truth(&v) {
                    let inner_dot = if is_with { v } else { dot.clone() };
                    self.scoped(then, &inner_dot)?
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
                let bare = Pipeline { decl: Vec::new(), assign: false, ..pipe.clone() };
                let v = self.pipeline(&bare, dot).map_err(|f| self.error(f))?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a.iter().enumerate().map(|(i, e)| (Value::from(i), e.clone())).collect(),
                    Value::Object(o) => {
                        let mut keys: Vec<&String> = o.keys().collect();
                        keys.sort();
                        keys.into_iter().map(|k| (Value::String(k.clone()), o[k].clone())).collect()
                    }
                    Value::Null => Vec::new(),
                    Value::Number(n) if n.is_i64() || n.is_u64() => {
                        let count = n.as_i64().unwrap_or(0).max(0);
                        (0..count).map(|i| (Value::from(i), Value::from(i))).collect()
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
                return Err(Fail { pos: p.pos, context: name.clone(), msg: format!("undefined variable: {name}") });
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
                let context = if msg.starts_with("error calling") { c.text.clone() } else { name.clone() };
                Fail { pos: first.pos, context, msg }
            });
        }
        if c.args.len() > 1 || fin.is_some() {
            let msg = match (&first.term, first.chain.last()) {
                (Term::Field | Term::Var(_) | Term::Sub(_), Some(name)) => {
                    format!("{name} is not a method but has arguments")
                }
                _ => format!("can't give argument to non-function {}", first.text),
            };
            return Err(Fail { pos: first.pos, context: first.text.clone(), msg });
        }
        self.operand(first, dot)
    }

    fn operand(&mut self, o: &Operand, dot: &Value) -> Result<Value, Fail> {
        let base = match &o.term {
            Term::Dot | Term::Field => dot.clone(),
            Term::Var(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => {
                    return Err(Fail { pos: o.pos, context: name.clone(), msg: format!("undefined variable: {name}") })
                }
            },
            Term::Func(name) => {
                return self.call(name, Vec::new()).map_err(|msg| Fail { pos: o.pos, context: o.text.clone(), msg })
            }
            Term::Const(v) => v.clone(),
            Term::Nil => Value::Null,
            Term::Sub(p) => self.pipeline(p, dot)?,
        };
        let mut cur = base;
        for name in &o.chain {
            cur = match cur {
                Value::Object(mut m) => match m.remove(name) {
                    Some(v) => v,
                    None if self.mode == Mode::Strict => {
                        return Err(Fail {
                            pos: o.pos,
                            context: o.text.clone(),
                            msg: format!("map has no entry for key {name:?}"),
                        })
                    }
                    None => return Ok(Value::Null),
                },
                // docker's raw-JSON fallback runs with missingkey=error.
                Value::Null if self.mode == Mode::Strict => {
                    return Err(Fail {
                        pos: o.pos,
                        context: o.text.clone(),
                        msg: format!("nil data; no entry for key {name:?}"),
                    })
                }
                Value::Null => return Ok(Value::Null),
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
                Err(format!("wrong number of args for {name}: want {n} got {}", args.len()))
            } else {
                Ok(())
            }
        };
        let at_least = |n: usize| -> Result<(), String> {
            if args.len() < n {
                Err(format!("wrong number of args for {name}: want at least {n} got {}", args.len()))
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
                        (Value::Object(o), Value::String(k)) => o.get(k).cloned().unwrap_or(Value::String(String::new())),
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
                                _ => return Err(format!("error calling index: index out of range: {i}")),
                            }
                        }
                        (Value::Null, _) => return Err("error calling index: index of untyped nil".into()),
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
                    other => return Err(format!("error calling slice: can't slice item of type {}", go_type(other))),
                };
                let lo = idx.first().copied().unwrap_or(0);
                let hi = idx.get(1).copied().unwrap_or(len as i64);
                if lo < 0 || hi < lo || hi as usize > len || idx.len() > 2 {
                    return Err(format!("error calling slice: index out of range: {}", if lo < 0 { lo } else { hi }));
                }
                match &args[0] {
                    Value::String(s) => Value::String(String::from_utf8_lossy(&s.as_bytes()[lo as usize..hi as usize]).into_owned()),
                    Value::Array(a) => Value::Array(a[lo as usize..hi as usize].to_vec()),
                    _ => unreachable!("checked above"),
                }
            }
            "print" => Value::String(go_sprint(&args)),
            "println" => {
                let parts: Vec<String> = args.iter().map(|a| print_value(a)).collect();
                Value::String(format!("{}\n", parts.join(" ")))
            }
            "printf" => {
                at_least(1)?;
                let Value::String(f) = &args[0] else {
                    return Err(format!("wrong type for value; expected string; got {}", go_type(&args[0])));
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
                Value::String(json::encode(&args[0], false))
            }
            "split" => {
                want(2)?;
                let (s, sep) = (as_str(&args[0], name)?, as_str(&args[1], name)?);
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    s.split(sep.as_str()).map(|p| Value::String(p.to_string())).collect()
                };
                Value::Array(parts)
            }
            "join" => {
                want(2)?;
                let sep = as_str(&args[1], name)?;
                let items: Vec<String> = match &args[0] {
                    Value::Array(a) => a.iter().map(|v| print_value(v)).collect(),
                    Value::Null => Vec::new(),
                    other => return Err(format!("wrong type for value; expected []string; got {}", go_type(other))),
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
                let (pre, post) = (args[1].as_i64().unwrap_or(0).max(0) as usize, args[2].as_i64().unwrap_or(0).max(0) as usize);
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
    p.cmds.iter().map(|c| c.text.clone()).collect::<Vec<_>>().join(" | ")
}

fn as_str(v: &Value, func: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("wrong type for value; expected string; got {} (in {func})", go_type(other))),
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
pub fn truth(v: &Value) -> bool {
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
        (Value::Bool(_), Value::Bool(_)) => Err(format!("error calling {func}: invalid type for comparison")),
        _ => Err(format!("error calling {func}: incompatible types for comparison")),
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

/// What an action prints: `<no value>` for a null, otherwise Go's `%v`.
fn print_top(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        other => print_value(other),
    }
}

/// Go's `%v` of a value: `[a b]`, `map[k:v]` (sorted keys), `<nil>`.
pub fn print_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => print_number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(|e| print_value(e)).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => format!("map[{}]", print_map(o)),
    }
}

fn print_map(o: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = o.keys().collect();
    keys.sort();
    keys.iter().map(|k| format!("{k}:{}", print_value(&o[*k]))).collect::<Vec<_>>().join(" ")
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
                if plus && i >= 0 { format!("+{i}") } else { i.to_string() }
            }
            ('x', Value::Number(n)) if n.as_i64().is_some() => format!("{:x}", n.as_i64().unwrap_or(0)),
            ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('f' | 'F', Value::Number(n)) => format!("{:.*}", prec.unwrap_or(6), n.as_f64().unwrap_or(0.0)),
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
        let extra: Vec<String> =
            args[next_arg..].iter().map(|a| format!("{}={}", go_type(a), print_value(a))).collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> Result<String, String> {
        Template::parse("", t)
            .map_err(|e| e.to_string())?
            .execute(v, Mode::Strict)
            .map_err(|e| e.to_string())
    }

    fn data() -> Value {
        json!({
            "Id": "sha256:abc",
            "Name": "/web",
            "State": {"Status": "running", "Running": true, "Pid": 42, "ExitCode": 0},
            "Config": {
                "Labels": {"b": "2", "a": "1", "com.example.x": "y"},
                "Env": ["A=1", "B=2"],
                "Cmd": ["sh", "-c", "echo hi"],
                "Entrypoint": null,
                "User": ""
            },
            "Args": ["-c", "echo"],
            "Empty": [],
            "Html": "<a&b>",
            "Float": 1.5,
            "Big": 1000000
        })
    }

    #[test]
    fn renders_fields_and_literals() {
        let d = data();
        let cases = [
            ("{{.Id}}", "sha256:abc"),
            ("id={{.Id}} name={{.Name}}", "id=sha256:abc name=/web"),
            ("{{.State.Status}}", "running"),
            ("{{.State.Pid}}", "42"),
            ("{{.State.Running}}", "true"),
            ("{{.Config.Env}}", "[A=1 B=2]"),
            ("{{.Config.Labels}}", "map[a:1 b:2 com.example.x:y]"),
            ("{{.Config.Entrypoint}}", "<no value>"),
            ("{{.Float}} {{.Big}}", "1.5 1000000"),
            ("{{\"lit\"}} {{`raw\\n`}} {{42}} {{true}} {{'a'}}", "lit raw\\n 42 true 97"),
            ("{{ .Id }}", "sha256:abc"),
            ("a\n  {{- .Id -}}  \nb", "asha256:abcb"),
            ("x{{/* a comment */}}y", "xy"),
            ("x {{- /* c */ -}} y", "xy"),
            ("{{.Empty}}", "[]"),
        ];
        for (t, want) in cases {
            assert_eq!(run(t, &d).as_deref(), Ok(want), "template {t}");
        }
        assert_eq!(run("{{.}}", &json!("plain")).as_deref(), Ok("plain"));
        assert_eq!(run("{{.}}", &json!({"k": [1, "x", null]})).as_deref(), Ok("map[k:[1 x <nil>]]"));
    }

    #[test]
    fn renders_functions() {
        let d = data();
        let cases = [
            ("{{json .Config.Env}}", r#"["A=1","B=2"]"#),
            ("{{json .Html}}", r#""<a&b>""#),
            ("{{json .State}}", r#"{"Status":"running","Running":true,"Pid":42,"ExitCode":0}"#),
            ("{{json .Config.Entrypoint}}", "null"),
            (r#"{{index .Config.Labels "com.example.x"}}"#, "y"),
            (r#"{{index .Config.Labels "missing"}}"#, ""),
            ("{{index .Config.Cmd 2}}", "echo hi"),
            (r#"{{join .Config.Cmd " "}}"#, "sh -c echo hi"),
            (r#"{{join .Config.Entrypoint ","}}"#, ""),
            (r#"{{split "a,b,c" ","}}"#, "[a b c]"),
            ("{{lower .State.Status | upper}}", "RUNNING"),
            ("{{.State.Status | printf \"%s!\"}}", "running!"),
            (r#"{{title "hello big-world"}}"#, "Hello Big-World"),
            (r#"{{pad "x" 1 2}}|"#, " x  |"),
            (r#"{{truncate "abcdef" 3}}"#, "abc"),
            ("{{len .Config.Env}} {{len .Id}} {{len .Config.Labels}}", "2 10 3"),
            (r#"{{printf "%-6s|%3d|%q|%v" "ab" 7 "q" .Args}}"#, "ab    |  7|\"q\"|[-c echo]"),
            (r#"{{printf "%s %s" "only"}}"#, "only %!s(MISSING)"),
            ("{{print 1 2 \"a\" 3}}", "1 2a3"),
            ("{{println \"a\" 1}}", "a 1\n"),
            ("{{slice .Id 0 6}}", "sha256"),
            ("{{not .State.Running}} {{and 1 0}} {{or 0 \"x\"}}", "false 0 x"),
            (r#"{{eq .State.Status "exited" "running"}}"#, "true"),
            ("{{lt 1 2}} {{ge 2 2}} {{ne .State.Pid 42}}", "true true false"),
            ("{{(index .Config.Cmd 0)}}", "sh"),
            ("{{(index .Args 1) | upper}}", "ECHO"),
        ];
        for (t, want) in cases {
            assert_eq!(run(t, &d).as_deref(), Ok(want), "template {t}");
        }
        let nested = json!({"Mounts": [{"Source": "/a", "Destination": "/b"}]});
        assert_eq!(run("{{(index .Mounts 0).Destination}}", &nested).as_deref(), Ok("/b"));
    }

    #[test]
    fn renders_control_structures() {
        let d = data();
        let cases = [
            ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
            ("{{if .Config.User}}u{{else if .State.Pid}}pid{{else}}none{{end}}", "pid"),
            ("{{if .Empty}}y{{else}}n{{end}}", "n"),
            ("{{if .Config.Entrypoint}}y{{else}}n{{end}}", "n"),
            ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
            ("{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}", "0=A=1;1=B=2;"),
            ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "a=1,b=2,com.example.x=y,"),
            ("{{range .Empty}}x{{else}}empty{{end}}", "empty"),
            ("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none"),
            ("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}};{{end}}", "sh;echo hi;"),
            ("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{break}}{{end}}{{.}};{{end}}", "sh;"),
            ("{{with .State}}{{.Status}}/{{$.Name}}{{end}}", "running//web"),
            ("{{with .Config.User}}u{{else}}nouser{{end}}", "nouser"),
            ("{{$n := .Name}}{{range .Args}}{{$n}}{{end}}", "/web/web"),
            ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
            ("{{range 3}}{{.}}{{end}}", "012"),
        ];
        for (t, want) in cases {
            assert_eq!(run(t, &d).as_deref(), Ok(want), "template {t}");
        }
    }

    #[test]
    fn parse_errors_match_go() {
        let cases = [
            ("{{.Foo", "template: :1: unclosed action"),
            ("{{.Foo}", "template: :1: unclosed action"),
            ("{{if .A}}x", "template: :1: unexpected EOF"),
            ("{{end}}", "template: :1: unexpected {{end}}"),
            ("{{else}}", "template: :1: unexpected {{else}}"),
            ("{{nosuch .A}}", "template: :1: function \"nosuch\" not defined"),
            ("{{}}", "template: :1: missing value for command"),
            ("a\n{{\"x}}", "template: :2: unterminated quoted string"),
            ("{{(.A}}", "template: :1: unclosed left paren"),
            ("{{.A)}}", "template: :1: unexpected right paren"),
            ("{{#}}", "template: :1: unexpected bad character U+0023 '#' in command"),
            ("{{break}}", "template: :1: {{break}} outside {{range}}"),
            ("{{template \"x\"}}", "template: :1: {{template}} is not supported by berth"),
            ("{{/* x }}", "template: :1: unclosed comment"),
        ];
        for (t, want) in cases {
            assert_eq!(run(t, &json!({})), Err(want.to_string()), "template {t:?}");
        }
        let named = Template::parse("version", "{{.X").unwrap_err().to_string();
        assert_eq!(named, "template: version:1: unclosed action");
    }

    #[test]
    fn exec_errors_match_go() {
        let d = data();
        let cases = [
            ("{{.Foo}}", "template: :1:2: executing \"\" at <.Foo>: map has no entry for key \"Foo\""),
            (
                "{{.Config.Foo}}",
                "template: :1:9: executing \"\" at <.Config.Foo>: map has no entry for key \"Foo\"",
            ),
            (
                "x\n {{.Id.Sub}}",
                "template: :2:6: executing \"\" at <.Id.Sub>: can't evaluate field Sub in type string",
            ),
            (
                "{{.Config.Entrypoint.X}}",
                "template: :1:9: executing \"\" at <.Config.Entrypoint.X>: nil data; no entry for key \"X\"",
            ),
            (
                "{{index .Args 5}}",
                "template: :1:2: executing \"\" at <index .Args 5>: error calling index: index out of range: 5",
            ),
            ("{{.Id 1}}", "template: :1:2: executing \"\" at <.Id>: Id is not a method but has arguments"),
            ("{{\"s\" 1}}", "template: :1:2: executing \"\" at <\"s\">: can't give argument to non-function \"s\""),
            ("{{join .Args}}", "template: :1:2: executing \"\" at <join>: wrong number of args for join: want 2 got 1"),
        ];
        for (t, want) in cases {
            assert_eq!(run(t, &d), Err(want.to_string()), "template {t:?}");
        }
    }

    #[test]
    fn header_mode_is_lenient() {
        let headers = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let t = Template::parse("", "{{.ID}}\t{{json .Names}}\t{{upper .Names}}\t{{.Missing}}").unwrap();
        assert_eq!(t.execute(&headers, Mode::Header).unwrap(), "CONTAINER ID\tNAMES\tNAMES\t<no value>");
        let partial = Template::parse("", "{{.ID}} {{.ID.X}} tail").unwrap();
        assert_eq!(partial.execute_partial(&headers, Mode::Header), "CONTAINER ID ");
    }
}
