//! Writing a command's output and errors as docker's non-`run` commands do.

use std::io::Write;

use crate::error::{CliError, Result};

/// Writes `text` to stdout as is.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::general(format!("writing output: {e}")))
}

/// Ends a command: an error is printed on stderr bare, as docker prints the
/// errors of `images`, `inspect`, `load`, `version` and `info` (only
/// `run`-like commands prefix `docker: `), and its exit code is returned.
pub fn finish(r: Result<i32>) -> Result<i32> {
    match r {
        Ok(code) => Ok(code),
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("{}", e.message);
            }
            Ok(e.code)
        }
    }
}
