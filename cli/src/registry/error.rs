//! Registry errors, worded as docker words them (`Get "URL": reason`,
//! `manifest unknown: manifest unknown`), one line each.

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request could not be made or answered (connection, proxy, TLS).
    #[error("{method} \"{url}\": {reason}")]
    Transport {
        method: &'static str,
        url: String,
        reason: String,
    },
    /// The registry answered with an error status.
    #[error("{0}")]
    Status(StatusError),
    /// A tag or digest the registry does not have.
    #[error("{what} not found: {reason}")]
    NotFound { what: String, reason: String },
    /// Content that is not what it claims (digest, size, format).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An error status with the registry's own error list.
#[derive(Debug)]
pub struct StatusError {
    pub method: &'static str,
    pub url: String,
    pub status: u16,
    /// `code: message` pairs from the body, docker's wording of each.
    pub errors: Vec<String>,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.errors.is_empty() {
            write!(
                f,
                "{} \"{}\": unexpected status code {} {}",
                self.method,
                self.url,
                self.status,
                reason_phrase(self.status)
            )
        } else {
            write!(
                f,
                "{} \"{}\": {}",
                self.method,
                self.url,
                self.errors.join("; ")
            )
        }
    }
}

pub fn reason_phrase(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The `errors` list of a distribution error body, as docker's errcode
/// prints them: the code lower-cased with spaces, then the message.
pub fn parse_errors(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(b) = serde_json::from_slice::<Body>(body) else {
        return Vec::new();
    };
    b.errors
        .into_iter()
        .map(|e| {
            let code = e.code.to_ascii_lowercase().replace('_', " ");
            match (code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{code}: {}", e.message),
                (false, true) => code,
                _ => e.message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_read_like_docker() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(parse_errors(body), ["manifest unknown: manifest unknown"]);
        assert!(parse_errors(b"<html>").is_empty());
        let e = StatusError {
            method: "Get",
            url: "https://r/v2/".into(),
            status: 401,
            errors: parse_errors(
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            ),
        };
        assert_eq!(
            e.to_string(),
            "Get \"https://r/v2/\": unauthorized: authentication required"
        );
        let e = StatusError {
            method: "Head",
            url: "https://r/v2/x".into(),
            status: 502,
            errors: vec![],
        };
        assert_eq!(
            e.to_string(),
            "Head \"https://r/v2/x\": unexpected status code 502 Bad Gateway"
        );
    }
}
