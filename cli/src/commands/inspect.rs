//! `docker inspect`, `docker container inspect`, `docker image inspect`.
//!
//! As docker: every name is looked up (a container first, then an image,
//! unless the type is fixed); what was found is printed first — a JSON
//! array indented with four spaces, or one template line per object — and
//! the errors follow on stderr, exit 1. Nothing found prints `[]` (or an
//! empty line with `-f`).

use serde_json::Value;

use crate::cli::InspectArgs;
use crate::client::Gateway;
use crate::containers;
use crate::error::{CliError, Result};
use crate::format::{self, json, output};
use crate::image::{self, ImageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Container,
    Image,
}

pub async fn inspect(gw: &Gateway, a: InspectArgs, kind: Option<Kind>) -> Result<i32> {
    output::finish(run(gw, a, kind).await)
}

async fn run(gw: &Gateway, a: InspectArgs, kind: Option<Kind>) -> Result<i32> {
    let kind = match (kind, a.kind.as_deref()) {
        (Some(k), _) => Some(k),
        (None, None | Some("")) => None,
        (None, Some("container")) => Some(Kind::Container),
        (None, Some("image")) => Some(Kind::Image),
        (None, Some(other)) => {
            return Err(CliError::general(format!(
                "{other:?} is not a valid value for --type"
            )))
        }
    };
    // docker parses the template before looking anything up.
    let template = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => {
            format::parse_inspect(f)?;
            Some(f)
        }
    };

    let mut found: Vec<Value> = Vec::new();
    let mut text = String::new();
    let mut errors: Vec<String> = Vec::new();
    for name in &a.names {
        let value = match lookup(gw, name, kind).await {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match &template {
            Some(t) => match format::render(t, &value) {
                Ok(line) => {
                    text.push_str(&line);
                    text.push('\n');
                }
                Err(e) => errors.push(e.message),
            },
            None => found.push(value),
        }
    }

    let out = match template {
        Some(_) if text.is_empty() => "\n".to_string(),
        Some(_) => text,
        None => format!("{}\n", json::encode_indent(&Value::Array(found), "    ")),
    };
    output::print(&out)?;
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(CliError::general(errors.join("\n")))
    }
}

/// One object's JSON, or the line docker prints when it is missing.
async fn lookup(
    gw: &Gateway,
    name: &str,
    kind: Option<Kind>,
) -> std::result::Result<Value, String> {
    if kind != Some(Kind::Image) {
        match containers::inspect_json(gw, name).await {
            Ok(v) => return Ok(v),
            Err(e) if is_missing_container(&e) && kind.is_none() => {}
            Err(e) => return Err(e.message),
        }
    }
    match image::inspect_value(gw, name).await {
        Ok(v) => Ok(v),
        Err(ImageError::NotFound(_)) if kind.is_none() => {
            Err(format!("Error: No such object: {name}"))
        }
        Err(e @ (ImageError::NotFound(_) | ImageError::Reference(_))) => {
            Err(format!("Error response from daemon: {e}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn is_missing_container(e: &CliError) -> bool {
    e.message.contains("No such container")
}
