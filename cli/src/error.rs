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
        if let Some(e) = Self::unavailable(status) {
            return e;
        }
        let msg = status.message().trim();
        let msg = if msg.is_empty() {
            format!("gateway error: {:?}", status.code())
        } else {
            msg.to_string()
        };
        Self::daemon(msg)
    }
}

/// What the gateway answers when the daemon behind it is away (its fixed
/// words, `containerd is not reachable from the gateway` and `buildkit is
/// not reachable from the gateway`).
const BEHIND_GATEWAY: &str = "is not reachable from the gateway";

impl CliError {
    /// The error (exit 125) when `status` says no daemon answered: the
    /// gateway itself could not be reached or the connection to it broke
    /// in the middle of a call (tonic's transport failures: the gateway
    /// restarted or died), or the gateway said the daemon behind it is away.
    /// Such a status carries connector and HTTP/2 words that mean nothing
    /// to a docker user; the message says what happened instead.
    pub fn unavailable(status: &tonic::Status) -> Option<Self> {
        let msg = status.message().trim();
        if status.code() == tonic::Code::Unavailable && msg.ends_with(BEHIND_GATEWAY) {
            let daemon = msg.trim_end_matches(BEHIND_GATEWAY).trim();
            return Some(Self::daemon(format!(
                "Error response from daemon: {daemon} is not reachable from the berth gateway (is it restarting?)"
            )));
        }
        if !connection_lost(status) {
            return None;
        }
        Some(Self::daemon(
            "the connection to the berth gateway was lost (is it restarting?)",
        ))
    }
}

/// A status tonic made itself because the connection failed or broke (as
/// opposed to one the gateway sent): Unavailable, or a stream cut by the
/// peer going away, which surfaces as Unknown, Cancelled or Internal with
/// hyper's or h2's words at the start (an answer may name connections
/// further in, e.g. a registry's `dial tcp: connection refused`).
fn connection_lost(status: &tonic::Status) -> bool {
    use tonic::Code;
    const CUT: [&str; 6] = [
        "transport error",
        "h2 protocol error",
        "error reading a body from connection",
        "connection error",
        "connection closed",
        "stream closed",
    ];
    match status.code() {
        Code::Unavailable => true,
        Code::Unknown | Code::Cancelled | Code::Internal => {
            let m = status.message().trim_start().to_ascii_lowercase();
            CUT.iter().any(|w| m.starts_with(w))
        }
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Status;

    #[test]
    fn a_lost_gateway_connection_is_one_clear_line_exit_125() {
        for s in [
            Status::unavailable("error trying to connect: No such file or directory (os error 2)"),
            Status::unknown("h2 protocol error: error reading a body from connection"),
            Status::cancelled("transport error"),
        ] {
            let e = CliError::from_status(&s);
            assert_eq!(e.code, exit::DAEMON, "{s:?}");
            assert_eq!(
                e.message,
                "the connection to the berth gateway was lost (is it restarting?)"
            );
        }
    }

    #[test]
    fn a_daemon_behind_the_gateway_away_is_named() {
        let e = CliError::from_status(&Status::unavailable(
            "buildkit is not reachable from the gateway",
        ));
        assert_eq!(e.code, exit::DAEMON);
        assert_eq!(
            e.message,
            "Error response from daemon: buildkit is not reachable from the berth gateway (is it restarting?)"
        );
    }

    #[test]
    fn answers_of_the_gateway_keep_their_words() {
        let e = CliError::from_status(&Status::unknown("runc did not terminate successfully"));
        assert_eq!(e.message, "runc did not terminate successfully");
        assert!(CliError::unavailable(&Status::not_found("no such container")).is_none());
        assert!(CliError::unavailable(&Status::cancelled("context canceled")).is_none());
        assert!(CliError::unavailable(&Status::unknown(
            "failed to do request: dial tcp 10.201.0.4:5000: connection refused"
        ))
        .is_none());
    }
}
