//! docker's `--format`: Go templates over JSON values, the `table` and `json`
//! forms of list commands, Go-style JSON, and human-readable units.
//!
//! Commands hand over docker-shaped JSON (the same keys docker's templates
//! see) and get docker's text back.

pub mod json;
pub mod output;
pub mod tabwriter;
mod template;
pub mod time;
pub mod units;

use serde_json::Value;

use crate::error::{CliError, Result};
pub use template::{Mode, Template, TemplateError};

/// Exit code of `docker inspect`, `version` and `info` when `--format` does not parse.
pub const TEMPLATE_PARSE_EXIT: i32 = 64;

/// The prefix that makes a list format a table with a header row.
const TABLE_PREFIX: &str = "table";
/// `--format json` on list commands.
const JSON_FORMAT: &str = "{{json .}}";

/// Tabwriter settings of docker's list tables.
const TABLE_MIN_WIDTH: usize = 10;
const TABLE_PADDING: usize = 3;

/// Renders a Go text/template subset (`{{.Field.Sub}}`, `{{json .}}`, `table`) over a JSON value.
///
/// This is `docker inspect -f` for one object: the result has no trailing
/// newline; a template that does not parse fails with exit 64 and one that
/// fails on this value with exit 1, both worded `template parsing error: …`
/// as docker words them.
pub fn render(template: &str, value: &Value) -> Result<String> {
    let t = parse_inspect(template)?;
    execute_inspect(&t, value)
}

/// Parses an inspect/version/info `--format`; a parse error is exit 64.
pub fn parse_inspect(template: &str) -> Result<Template> {
    parse_named("", template)
}

/// As [`parse_inspect`], with the template name docker gives it (`version`).
pub fn parse_named(name: &str, template: &str) -> Result<Template> {
    Template::parse(name, template)
        .map_err(|e| CliError::new(TEMPLATE_PARSE_EXIT, format!("template parsing error: {e}")))
}

/// Executes a parsed inspect template; a failure is exit 1.
pub fn execute_inspect(t: &Template, value: &Value) -> Result<String> {
    t.execute(value, Mode::Strict)
        .map_err(|e| CliError::general(format!("template parsing error: {e}")))
}

/// A list command's `--format` (`docker images`, `docker ps`): `table …`
/// with a header row and aligned columns, `json`, or a template per row.
#[derive(Debug, Clone)]
pub struct ListFormat {
    template: Template,
    table: bool,
    mode: Mode,
}

impl ListFormat {
    /// Parses a final format (the caller has already replaced a bare
    /// `table` by its default). As docker: `json` is `{{json .}}`, the
    /// `table` prefix is cut, surrounding spaces are trimmed, and the
    /// two-character sequences `\t` and `\n` become tab and newline.
    pub fn parse(format: &str) -> Result<Self, TemplateError> {
        let (table, body) = match format.strip_prefix(TABLE_PREFIX) {
            Some(rest) => (true, rest),
            None if format == "json" => (false, JSON_FORMAT),
            None => (false, format),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Ok(Self {
            template: Template::parse("", &body)?,
            table,
            mode: Mode::Strict,
        })
    }

    /// Renders rows as docker's formatter context of this Go type
    /// (`*formatter.imageContext`): a missing field is "can't evaluate field
    /// … in type …" and `{{json .}}` is HTML-escaped, as in docker.
    pub fn with_row_type(mut self, go_type: &'static str) -> Self {
        self.mode = Mode::Row(go_type);
        self
    }

    /// Renders the rows, each followed by a newline. A table gets a header
    /// row rendered from `headers` (field name → column title, e.g.
    /// `{"ID": "IMAGE ID"}`) and is aligned as docker aligns it.
    pub fn render(&self, rows: &[Value], headers: &Value) -> Result<String, TemplateError> {
        let mut body = String::new();
        for row in rows {
            body.push_str(&self.template.execute(row, self.mode)?);
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        // docker ignores errors in the header row and keeps what was written.
        let mut text = self.template.execute_partial(headers, Mode::Header);
        text.push('\n');
        text.push_str(&body);
        Ok(tabwriter::align(&text, TABLE_MIN_WIDTH, TABLE_PADDING))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers() -> Value {
        json!({"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Status": "STATUS"})
    }

    #[test]
    fn table_has_docker_header_and_alignment() {
        let rows = vec![
            json!({"ID": "0123456789ab", "Names": "web", "Image": "busybox", "Status": "Up 2 seconds"}),
            json!({"ID": "ba9876543210", "Names": "a-much-longer-name", "Image": "x", "Status": "Exited (0)"}),
        ];
        let f = ListFormat::parse(r"table {{.ID}}\t{{.Names}}").unwrap();
        let want = "CONTAINER ID   NAMES\n0123456789ab   web\nba9876543210   a-much-longer-name\n";
        assert_eq!(f.render(&rows, &headers()).unwrap(), want);
        // An empty list still prints the header.
        assert_eq!(f.render(&[], &headers()).unwrap(), "CONTAINER ID   NAMES\n");
    }

    #[test]
    fn plain_and_json_list_formats() {
        let rows = vec![
            json!({"ID": "a", "Names": "<x>"}),
            json!({"ID": "b", "Names": "y"}),
        ];
        let f = ListFormat::parse(r"  {{.ID}}\t{{.Names}}  ").unwrap();
        assert_eq!(f.render(&rows, &headers()).unwrap(), "a\t<x>\nb\ty\n");
        let j = ListFormat::parse("json").unwrap();
        assert_eq!(
            j.render(&rows, &headers()).unwrap(),
            "{\"ID\":\"a\",\"Names\":\"<x>\"}\n{\"ID\":\"b\",\"Names\":\"y\"}\n"
        );
        let err = ListFormat::parse("{{.ID").unwrap_err();
        assert_eq!(err.to_string(), "template: :1: unclosed action");
        let missing = ListFormat::parse("{{.Nope}}")
            .unwrap()
            .render(&rows, &headers())
            .unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("map has no entry for key \"Nope\""),
            "{missing}"
        );
    }

    #[test]
    fn inspect_render_errors_carry_docker_codes() {
        let v = json!({"Id": "x"});
        assert_eq!(render("{{.Id}}", &v).unwrap(), "x");
        let parse = render("{{.Id", &v).unwrap_err();
        assert_eq!(parse.code, TEMPLATE_PARSE_EXIT);
        assert_eq!(
            parse.message,
            "template parsing error: template: :1: unclosed action"
        );
        let exec = render("{{.Nope}}", &v).unwrap_err();
        assert_eq!(exec.code, 1);
        assert_eq!(
            exec.message,
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
        );
    }
}
