//! Just enough of the Dockerfile to know which base images a build names:
//! the `FROM` lines, with the `ARG`s declared before the first `FROM`
//! substituted, as BuildKit's Dockerfile frontend expands them.
//!
//! berth resolves each base image against the sandbox's own images before
//! the solve, so a locally built or loaded image works as a `FROM` base
//! without a registry. A name this scan misreads is only a name not offered
//! locally: BuildKit still parses the Dockerfile itself and stays the
//! authority on what it means.

use std::collections::HashMap;

/// A base image named by a `FROM` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The name after argument expansion, as written (`busybox`, `app:1`).
    pub name: String,
    /// The expanded `--platform` flag of the line, if it had one.
    pub platform: Option<String>,
}

/// The values BuildKit predefines for `FROM` lines (`$BUILDPLATFORM`,
/// `$TARGETARCH`, …) for a native build on `os/arch[/variant]`.
pub fn platform_args(os: &str, arch: &str, variant: Option<&str>) -> HashMap<String, String> {
    let platform = match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    let mut m = HashMap::new();
    for prefix in ["BUILD", "TARGET"] {
        m.insert(format!("{prefix}PLATFORM"), platform.clone());
        m.insert(format!("{prefix}OS"), os.to_string());
        m.insert(format!("{prefix}ARCH"), arch.to_string());
        m.insert(
            format!("{prefix}VARIANT"),
            variant.unwrap_or_default().to_string(),
        );
    }
    m
}

/// The base images of a Dockerfile in order of first use, without
/// `scratch` and without references to earlier stages. `build_args` are the
/// user's `--build-arg`s; `builtin` the predefined platform args.
pub fn base_images(
    text: &str,
    build_args: &HashMap<String, String>,
    builtin: &HashMap<String, String>,
) -> Vec<BaseImage> {
    let mut meta: HashMap<String, String> = builtin.clone();
    let mut stages: Vec<String> = Vec::new();
    let mut out: Vec<BaseImage> = Vec::new();
    let mut seen_from = false;
    for (keyword, rest) in instructions(text) {
        match keyword.as_str() {
            "arg" if !seen_from => {
                for (name, default) in arg_pairs(&rest) {
                    let value = build_args
                        .get(&name)
                        .cloned()
                        .or_else(|| default.map(|d| expand(&d, &meta)));
                    match value {
                        Some(v) => meta.insert(name, v),
                        None => meta.remove(&name),
                    };
                }
            }
            "from" => {
                seen_from = true;
                let words = split_words(&rest);
                let mut platform = None;
                let mut positional = Vec::new();
                for w in words {
                    if let Some(p) = w.strip_prefix("--platform=") {
                        platform = Some(expand(p, &meta));
                    } else if w.starts_with("--") {
                        // Other flags of FROM; none names an image.
                    } else {
                        positional.push(w);
                    }
                }
                let Some(image) = positional.first() else {
                    continue;
                };
                let name = expand(image, &meta);
                let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(&name));
                if !name.is_empty()
                    && !name.eq_ignore_ascii_case("scratch")
                    && !is_stage
                    && !out.iter().any(|b| b.name == name && b.platform == platform)
                {
                    out.push(BaseImage { name, platform });
                }
                if positional.len() >= 3 && positional[1].eq_ignore_ascii_case("as") {
                    stages.push(positional[2].to_ascii_lowercase());
                }
            }
            _ => {}
        }
    }
    out
}

/// The Dockerfile's instructions as (lower-case keyword, rest of the line),
/// with continuation lines joined, comments and parser directives dropped
/// and heredoc bodies skipped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let escape = escape_char(&lines);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut joined = String::new();
        let mut current = line.to_string();
        loop {
            let trimmed = current.trim_end();
            if let Some(stripped) = trimmed.strip_suffix(escape) {
                joined.push_str(stripped);
                // Continuation: skip comment and empty lines in between, as
                // the Dockerfile parser does.
                let mut next = None;
                while i < lines.len() {
                    let l = lines[i].trim_start();
                    i += 1;
                    if l.starts_with('#') || l.is_empty() {
                        continue;
                    }
                    next = Some(l.to_string());
                    break;
                }
                match next {
                    Some(n) => current = n,
                    None => break,
                }
            } else {
                joined.push_str(trimmed);
                break;
            }
        }
        let (keyword, rest) = match joined.split_once(char::is_whitespace) {
            Some((k, r)) => (k.to_ascii_lowercase(), r.trim().to_string()),
            None => (joined.to_ascii_lowercase(), String::new()),
        };
        for (word, strip_tabs) in heredoc_words(&rest) {
            while i < lines.len() {
                let l = lines[i];
                i += 1;
                let l = if strip_tabs {
                    l.trim_start_matches('\t')
                } else {
                    l
                };
                if l == word {
                    break;
                }
            }
        }
        out.push((keyword, rest));
    }
    out
}

/// The `# escape=` parser directive, if it appears before anything else.
fn escape_char(lines: &[&str]) -> char {
    for line in lines {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        if key.trim().eq_ignore_ascii_case("escape") {
            if let Some(c) = value.trim().chars().next() {
                return c;
            }
        }
    }
    '\\'
}

/// Heredoc terminators opened on an instruction line (`<<EOF`, `<<-"EOF"`).
fn heredoc_words(rest: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut s = rest;
    while let Some(pos) = s.find("<<") {
        let mut after = &s[pos + 2..];
        let strip = after.starts_with('-');
        if strip {
            after = &after[1..];
        }
        let quoted = after.starts_with('"') || after.starts_with('\'');
        let body = if quoted { &after[1..] } else { after };
        let word: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !word.is_empty() {
            out.push((word.clone(), strip));
        }
        s = &body[word.len().min(body.len())..];
    }
    out
}

/// `ARG a=1 b="x y" c`: names with their optional defaults (quotes removed).
fn arg_pairs(rest: &str) -> Vec<(String, Option<String>)> {
    split_words(rest)
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(unquote(v))),
            None => (w, None),
        })
        .collect()
}

fn unquote(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

/// Splits on whitespace outside double or single quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Expands `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`,
/// `${NAME:+word}` and `${NAME+word}`; `\$` is a literal dollar.
pub fn expand(word: &str, vars: &HashMap<String, String>) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'{') {
            let Some(close) = chars[i + 2..].iter().position(|&c| c == '}') else {
                out.extend(&chars[i..]);
                break;
            };
            let inner: String = chars[i + 2..i + 2 + close].iter().collect();
            out.push_str(&expand_braced(&inner, vars));
            i += close + 3;
            continue;
        }
        let name: String = chars[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect();
        if name.is_empty() {
            out.push('$');
            i += 1;
        } else {
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
            i += 1 + name.len();
        }
    }
    out
}

fn expand_braced(inner: &str, vars: &HashMap<String, String>) -> String {
    let name_len = inner
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .count();
    let (name, op) = inner.split_at(name_len);
    let value = vars.get(name);
    let word = |w: &str| expand(w, vars);
    if let Some(w) = op.strip_prefix(":-") {
        match value {
            Some(v) if !v.is_empty() => v.clone(),
            _ => word(w),
        }
    } else if let Some(w) = op.strip_prefix(":+") {
        match value {
            Some(v) if !v.is_empty() => word(w),
            _ => String::new(),
        }
    } else if let Some(w) = op.strip_prefix('-') {
        value.cloned().unwrap_or_else(|| word(w))
    } else if let Some(w) = op.strip_prefix('+') {
        if value.is_some() {
            word(w)
        } else {
            String::new()
        }
    } else {
        value.cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str, args: &[(&str, &str)]) -> Vec<String> {
        let args = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        base_images(text, &args, &platform_args("linux", "amd64", None))
            .into_iter()
            .map(|b| b.name)
            .collect()
    }

    #[test]
    fn plain_from_lines() {
        let df = "FROM busybox\nRUN true\nfrom alpine:3 AS build\n";
        assert_eq!(names(df, &[]), ["busybox", "alpine:3"]);
    }

    #[test]
    fn skips_scratch_and_earlier_stages() {
        let df = "FROM busybox AS base\nFROM base\nFROM scratch\nFROM BASE AS other\nFROM other\n";
        assert_eq!(names(df, &[]), ["busybox"]);
    }

    #[test]
    fn a_later_stage_name_is_still_an_image_before_it_is_declared() {
        let df = "FROM app\nFROM busybox AS app\n";
        assert_eq!(names(df, &[]), ["app", "busybox"]);
    }

    #[test]
    fn args_before_the_first_from_are_substituted() {
        let df = "ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest}\nARG LATE=x\nFROM $LATE\n";
        assert_eq!(names(df, &[]), ["busybox:latest"]);
        assert_eq!(names(df, &[("TAG", "1.36")]), ["busybox:1.36"]);
        assert_eq!(names(df, &[("BASE", "app")]), ["app:latest"]);
    }

    #[test]
    fn build_arg_without_declaration_is_not_used() {
        assert_eq!(names("FROM ${X:-busybox}\n", &[("X", "app")]), ["busybox"]);
    }

    #[test]
    fn multiple_args_per_line_and_quotes() {
        let df = "ARG A=\"one\" B='two'\nFROM ${A}-${B}\n";
        assert_eq!(names(df, &[]), ["one-two"]);
    }

    #[test]
    fn platform_flag_is_expanded() {
        let df = "FROM --platform=$BUILDPLATFORM busybox AS b\n";
        let got = base_images(
            df,
            &HashMap::new(),
            &platform_args("linux", "arm64", Some("v8")),
        );
        assert_eq!(
            got,
            [BaseImage {
                name: "busybox".into(),
                platform: Some("linux/arm64/v8".into())
            }]
        );
    }

    #[test]
    fn continuation_lines_comments_and_heredocs() {
        let df = "# syntax=docker/dockerfile:1\nFROM \\\n  # a comment\n  busybox\nRUN <<EOF\nFROM nope\nEOF\nCOPY <<-\"END\" /x\n\tFROM nope2\n\tEND\nFROM alpine\n";
        assert_eq!(names(df, &[]), ["busybox", "alpine"]);
    }

    #[test]
    fn escape_directive() {
        let df = "# escape=`\nFROM `\n busybox\n";
        assert_eq!(names(df, &[]), ["busybox"]);
    }

    #[test]
    fn duplicates_are_reported_once() {
        assert_eq!(names("FROM a\nFROM a\nFROM b\n", &[]), ["a", "b"]);
    }

    #[test]
    fn expansion_forms() {
        let vars: HashMap<String, String> = [
            ("A".to_string(), "x".to_string()),
            ("E".to_string(), String::new()),
        ]
        .into();
        assert_eq!(expand("$A/${A}", &vars), "x/x");
        assert_eq!(expand("${E:-d}|${E-d}|${U-d}", &vars), "d||d");
        assert_eq!(expand("${A:+y}|${E:+y}|${E+y}|${U+y}", &vars), "y||y|");
        assert_eq!(expand("\\$A", &vars), "$A");
        assert_eq!(expand("$", &vars), "$");
    }
}
