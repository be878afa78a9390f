//! Lexing one action (`{{ … }}`) into tokens, with Go's rules for names,
//! literals and bad characters.

use super::Parser;
use crate::format::template::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokKind {
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
pub(super) struct Tok {
    pub(super) kind: TokKind,
    pub(super) pos: usize,
    pub(super) end: usize,
}

pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

impl Parser<'_> {
    /// Lexes one action's tokens up to and including `}}` (or ` -}}`).
    pub(super) fn lex_action(&mut self, action_start: usize) -> Result<Vec<Tok>, TemplateError> {
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

pub(super) fn describe(t: &Tok) -> String {
    describe_kind(&t.kind)
}

pub(super) fn describe_kind(k: &TokKind) -> String {
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
