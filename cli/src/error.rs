//! The CLI's error type and its mapping to docker's exit codes.

use std::fmt;

/// Exit codes docker uses for failures of its own (not the container's).
pub mod exit {
    /// The daemon or the CLI failed (docker: "125 if the error is with Docker daemon itself").
    pub const DAEMON: i32 = 125;
    /// The command was found but could not be invoked.
    pub const CANNOT_INVOKE: i32 = 126;
    /// The command was not found.
    pub const NOT_FOUND: i32 = 127;
    /// Usage errors for commands other than run/create/exec (docker's cobra exit code).
    pub const USAGE: i32 = 1;
}

/// An error the user sees: one line, lower-case, naming the object, plus the
/// exit code docker would use.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: i32,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }

    /// A daemon-side or CLI-side failure (exit 125).
    pub fn daemon(message: impl Into<String>) -> Self {
        Self::new(exit::DAEMON, message)
    }

    /// A failure of a command that exits 1 in docker (e.g. `docker rm` of a missing container).
    pub fn general(message: impl Into<String>) -> Self {
        Self::new(1, message)
    }

    /// Converts a gRPC status from the gateway into a user-facing error. The
    /// gateway already words its refusals for users; this keeps the message
    /// and never prints the status's debug form.
    pub fn from_status(status: &tonic::Status) -> Self {
        let msg = status.message().trim();
        let msg = if msg.is_empty() {
            format!("gateway error: {:?}", status.code())
        } else {
            msg.to_string()
        };
        Self::daemon(msg)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        Self::from_status(&s)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::daemon(e.to_string())
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
