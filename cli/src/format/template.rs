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

mod exec;
mod funcs;
mod parse;

use serde_json::Value;

/// A template failed to parse or to execute; the text is Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        name: String,
        line: usize,
        msg: String,
    },
    #[error("template: {name}:{line}:{col}: executing \"{name}\" at <{context}>: {msg}")]
    Exec {
        name: String,
        line: usize,
        col: usize,
        context: String,
        msg: String,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    root: Vec<Node>,
}

/// What dot stands for in docker, which decides how missing keys, nulls and
/// `{{json .}}` behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An inspected object (docker's typed struct, then its raw JSON with
    /// `missingkey=error`): a missing key is an error; a null prints as the
    /// Go nil it stands for (`[]`, `map[]`, `<nil>`).
    Strict,
    /// A row of a list command, docker's formatter context of this Go type
    /// (`*formatter.imageContext`): a missing field is "can't evaluate
    /// field", and `{{json .}}` is HTML-escaped as its `MarshalJSON` does.
    Row(&'static str),
    /// A table header: a missing key prints `<no value>`, and docker's string
    /// functions return their argument unchanged.
    Header,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        pipe: Pipeline,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        els: Vec<Node>,
    },
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
const HEADER_FUNCS: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

impl Template {
    /// Parses `src`; `name` appears in messages (`template: NAME:1: …`).
    pub fn parse(name: &str, src: &str) -> Result<Self, TemplateError> {
        let root = parse::parse(name, src)?;
        Ok(Template {
            name: name.to_string(),
            src: src.to_string(),
            root,
        })
    }

    /// Executes the template with `data` as dot.
    pub fn execute(&self, data: &Value, mode: Mode) -> Result<String, TemplateError> {
        exec::execute(self, data, mode).map_err(|(e, _)| e)
    }

    /// Executes and returns what was written before an error too (docker
    /// keeps a partial table header).
    pub fn execute_partial(&self, data: &Value, mode: Mode) -> String {
        match exec::execute(self, data, mode) {
            Ok(s) => s,
            Err((_, partial)) => partial,
        }
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
            ("{{.Config.Entrypoint}}", "[]"),
            ("{{.Config.Entrypoint | print}}", "<nil>"),
            ("{{.Float}} {{.Big}}", "1.5 1000000"),
            (
                "{{\"lit\"}} {{`raw\\n`}} {{42}} {{true}} {{'a'}}",
                "lit raw\\n 42 true 97",
            ),
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
        assert_eq!(
            run("{{.}}", &json!({"k": [1, "x", null]})).as_deref(),
            Ok("map[k:[1 x <nil>]]")
        );
    }

    #[test]
    fn renders_functions() {
        let d = data();
        let cases = [
            ("{{json .Config.Env}}", r#"["A=1","B=2"]"#),
            ("{{json .Html}}", r#""<a&b>""#),
            (
                "{{json .State}}",
                r#"{"Status":"running","Running":true,"Pid":42,"ExitCode":0}"#,
            ),
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
            (
                "{{len .Config.Env}} {{len .Id}} {{len .Config.Labels}}",
                "2 10 3",
            ),
            (
                r#"{{printf "%-6s|%3d|%q|%v" "ab" 7 "q" .Args}}"#,
                "ab    |  7|\"q\"|[-c echo]",
            ),
            (r#"{{printf "%s %s" "only"}}"#, "only %!s(MISSING)"),
            ("{{print 1 2 \"a\" 3}}", "1 2a3"),
            ("{{println \"a\" 1}}", "a 1\n"),
            ("{{slice .Id 0 6}}", "sha256"),
            (
                "{{not .State.Running}} {{and 1 0}} {{or 0 \"x\"}}",
                "false 0 x",
            ),
            (r#"{{eq .State.Status "exited" "running"}}"#, "true"),
            (
                "{{lt 1 2}} {{ge 2 2}} {{ne .State.Pid 42}}",
                "true true false",
            ),
            ("{{(index .Config.Cmd 0)}}", "sh"),
            ("{{(index .Args 1) | upper}}", "ECHO"),
        ];
        for (t, want) in cases {
            assert_eq!(run(t, &d).as_deref(), Ok(want), "template {t}");
        }
        let nested = json!({"Mounts": [{"Source": "/a", "Destination": "/b"}]});
        assert_eq!(
            run("{{(index .Mounts 0).Destination}}", &nested).as_deref(),
            Ok("/b")
        );
    }

    #[test]
    fn renders_control_structures() {
        let d = data();
        let cases = [
            ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
            (
                "{{if .Config.User}}u{{else if .State.Pid}}pid{{else}}none{{end}}",
                "pid",
            ),
            ("{{if .Empty}}y{{else}}n{{end}}", "n"),
            ("{{if .Config.Entrypoint}}y{{else}}n{{end}}", "n"),
            ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
            (
                "{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}",
                "0=A=1;1=B=2;",
            ),
            (
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}",
                "a=1,b=2,com.example.x=y,",
            ),
            ("{{range .Empty}}x{{else}}empty{{end}}", "empty"),
            ("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none"),
            (
                "{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}};{{end}}",
                "sh;echo hi;",
            ),
            (
                "{{range .Config.Cmd}}{{if eq . \"-c\"}}{{break}}{{end}}{{.}};{{end}}",
                "sh;",
            ),
            (
                "{{with .State}}{{.Status}}/{{$.Name}}{{end}}",
                "running//web",
            ),
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
            ("{{if .A}}x", "template: :1: unexpected EOF"),
            ("{{end}}", "template: :1: unexpected {{end}}"),
            ("{{else}}", "template: :1: unexpected {{else}}"),
            (
                "{{nosuch .A}}",
                "template: :1: function \"nosuch\" not defined",
            ),
            ("{{}}", "template: :1: missing value for command"),
            ("a\n{{\"x}}", "template: :2: unterminated quoted string"),
            ("{{(.A}}", "template: :1: unclosed left paren"),
            ("{{.A)}}", "template: :1: unexpected right paren"),
            ("{{#}}", "template: :1: unexpected \"#\" in command"),
            ("{{break}}", "template: :1: {{break}} outside {{range}}"),
            (
                "{{template \"x\"}}",
                "template: :1: {{template}} is not supported by berth",
            ),
            ("{{/* x }}", "template: :1: unclosed comment"),
            ("{{.Foo}", "template: :1: bad character U+007D '}'"),
            ("{{.\"a\"}}", "template: :1: bad character U+0022 '\"'"),
            ("{{$x}}", "template: :1: undefined variable \"$x\""),
            (
                "{{if 1}}{{$y := 1}}{{end}}{{$y}}",
                "template: :1: undefined variable \"$y\"",
            ),
            (
                "{{range $a, $b, $c := .}}{{end}}",
                "template: :1: too many declarations in range",
            ),
            ("{{if}}{{end}}", "template: :1: missing value for if"),
            ("{{3x}}", "template: :1: bad number syntax: \"3x\""),
            (
                "{{with .A}}{{else if .B}}{{end}}",
                "template: :1: unexpected <if> in input",
            ),
            (
                "{{if .A}}{{else foo}}{{end}}",
                "template: :1: unexpected <foo> in else",
            ),
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
                "template: :1:9: executing \"\" at <.Config.Entrypoint.X>: nil pointer evaluating interface {}.X",
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
    fn row_mode_words_errors_and_json_as_docker_lists() {
        let row = json!({"ID": "abc", "Repository": "<none>"});
        let t = Template::parse("", "{{.ID}}\t{{.Foo}}").unwrap();
        let err = t
            .execute(&row, Mode::Row("*formatter.imageContext"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "template: :1:10: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.imageContext"
        );
        let t = Template::parse("", "{{json .}} {{json .Repository}}").unwrap();
        assert_eq!(
            t.execute(&row, Mode::Row("x")).unwrap(),
            r#"{"ID":"abc","Repository":"\u003cnone\u003e"} "<none>""#
        );
        let t = Template::parse("", "{{if .ID}}{{.Nope}}{{end}}").unwrap();
        assert!(t
            .execute(&row, Mode::Row("T"))
            .unwrap_err()
            .to_string()
            .ends_with("in type T"));
    }

    #[test]
    fn header_mode_is_lenient() {
        let headers = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let t = Template::parse(
            "",
            "{{.ID}}\t{{json .Names}}\t{{upper .Names}}\t{{.Missing}}",
        )
        .unwrap();
        assert_eq!(
            t.execute(&headers, Mode::Header).unwrap(),
            "CONTAINER ID\tNAMES\tNAMES\t<no value>"
        );
        let partial = Template::parse("", "{{.ID}} {{.ID.X}} tail").unwrap();
        assert_eq!(
            partial.execute_partial(&headers, Mode::Header),
            "CONTAINER ID "
        );
    }
}
