//! Parsing: action lexing, pipelines, control structures.

use serde_json::{Number, Value};

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
    /// Variables in scope, innermost last; Go checks uses at parse time.
    vars: Vec<String>,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
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
                let ws_end = rest
                    .find(|c: char| !is_space(c))
                    .map_or(src.len(), |i| p + i);
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
                toks.push(Tok {
                    kind: TokKind::Space,
                    pos: p,
                    end: ws_end,
                });
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
                c if c.is_ascii_digit()
                    || c == '.'
                    || ((c == '-' || c == '+')
                        && rest[1..].starts_with(|d: char| d.is_ascii_digit() || d == '.')) =>
                {
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
                c if c.is_ascii() && !c.is_ascii_control() => {
                    return Err(self.err_at(p, format!("unexpected {:?} in command", c.to_string())))
                }
                c => {
                    return Err(self.err_at(
                        p,
                        format!(
                            "unrecognized character in action: U+{:04X} '{}'",
                            c as u32, c
                        ),
                    ))
                }
            };
            let end = p + len;
            // Go's lexer wants a terminator right after a name.
            if matches!(
                kind,
                TokKind::Field(_)
                    | TokKind::Var(_)
                    | TokKind::Ident(_)
                    | TokKind::Dot
                    | TokKind::Bool(_)
                    | TokKind::Nil
            ) {
                let after = &src[end..];
                let terminated = after.is_empty()
                    || after.starts_with(is_space)
                    || after.starts_with(['.', ',', '|', ':', ')', '('])
                    || after.starts_with("}}");
                if !terminated {
                    let c = after.chars().next().unwrap_or('\0');
                    return Err(
                        self.err_at(end, format!("bad character U+{:04X} '{}'", c as u32, c))
                    );
                }
            }
            toks.push(Tok { kind, pos: p, end });
            self.pos = end;
        }
    }

    fn close_parens(
        &self,
        paren: usize,
        action_start: usize,
        toks: Vec<Tok>,
    ) -> Result<Vec<Tok>, TemplateError> {
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
                            let hex: String = (0..n)
                                .filter_map(|_| chars.next().map(|(_, h)| h))
                                .collect();
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

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

fn number_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c.is_ascii_alphanumeric()
            || c == '.'
            || c == '_'
            || ((c == '-' || c == '+') && (i == 0 || s[..i].ends_with(['e', 'E', 'p', 'P'])));
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
