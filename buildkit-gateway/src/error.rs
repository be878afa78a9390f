//! The one place where gateway errors become gRPC statuses.
//!
//! * a refusal (policy or gateway rule) → PermissionDenied with its message;
//! * containerd's own answer → the same code and message, since the CLI must
//!   show containerd's and runc's words (`exec: "foo": executable file not
//!   found in $PATH` is how it knows to exit 127);
//! * a client mistake the gateway detects itself → its code and message;
//! * anything internal → Internal with a fixed message; the details go to the
//!   gateway's log only.

use berth_gateway::admission::Denied;
use berth_gateway::load::LoadError;
use tonic::{Code, Status};

use crate::audit;
use crate::stdio::RelayError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Denied(#[from] Denied),
    /// containerd answered with this status.
    #[error("containerd: {}", .0.message())]
    Upstream(#[from] Status),
    /// The request is wrong in a way the gateway detects before forwarding.
    #[error("{message}")]
    Client { code: Code, message: String },
    /// A failure inside the gateway; the text is for the log, never the client.
    #[error("{0}")]
    Internal(String),
    /// An upstream status the gateway already filtered (BuildKit's error
    /// with only the details the client may see), passed on as it is.
    #[error("{}", .0.message())]
    Relayed(Status),
}

pub type Result<T, E = GatewayError> = std::result::Result<T, E>;

impl GatewayError {
    pub fn client(code: Code, message: impl Into<String>) -> Self {
        Self::Client {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::client(Code::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client(Code::NotFound, message)
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        Self::Internal(format!("{context}: {err}"))
    }
}

impl From<GatewayError> for Status {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Denied(d) => Status::permission_denied(d.message),
            GatewayError::Upstream(s) => upstream_status(s),
            GatewayError::Client { code, message } => Status::new(code, message),
            GatewayError::Relayed(s) => s,
            GatewayError::Internal(detail) => {
                audit::internal_error(&detail);
                Status::internal("internal gateway error")
            }
        }
    }
}

/// containerd's status, stripped of metadata and details. A transport
/// failure carries the gateway's own socket path and connector errors, so
/// it is reworded.
fn upstream_status(s: Status) -> Status {
    if s.code() == Code::Unavailable {
        audit::internal_error(&format!("containerd unavailable: {}", s.message()));
        return Status::unavailable("containerd is not reachable from the gateway");
    }
    Status::new(s.code(), s.message().to_string())
}

impl From<RelayError> for GatewayError {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::InvalidId(_) => GatewayError::invalid(e.to_string()),
            RelayError::Busy(_) => GatewayError::client(Code::AlreadyExists, e.to_string()),
            RelayError::NotRelayed(_) => GatewayError::not_found(e.to_string()),
            RelayError::NoStdin(_) => GatewayError::client(Code::FailedPrecondition, e.to_string()),
            RelayError::Io { .. } => GatewayError::Internal(e.to_string()),
        }
    }
}

impl From<LoadError> for GatewayError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Invalid(m) => GatewayError::invalid(m),
            LoadError::Upstream(s) => GatewayError::Upstream(s),
            LoadError::Io(e) => GatewayError::internal("image load", e),
            LoadError::Refused(d) => GatewayError::Denied(d),
            LoadError::Quota(e) => GatewayError::client(Code::ResourceExhausted, e.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_becomes_permission_denied_with_its_message() {
        let d = Denied {
            rule: "containers.create".into(),
            message: "refusing container web: privileged (rule containers.create)".into(),
            reasons: vec!["privileged".into()],
        };
        let s = Status::from(GatewayError::from(d));
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(
            s.message(),
            "refusing container web: privileged (rule containers.create)"
        );
    }

    #[test]
    fn upstream_status_keeps_code_and_words() {
        let msg = r#"failed to create shim task: OCI runtime exec failed: exec: "foo": executable file not found in $PATH"#;
        let s = Status::from(GatewayError::from(Status::failed_precondition(msg)));
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(s.message(), msg);
    }

    #[test]
    fn upstream_unavailable_hides_the_socket_path() {
        let s = Status::from(GatewayError::from(Status::unavailable(
            "error trying to connect: /run/berth-stack/containerd/containerd.sock: No such file",
        )));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("/run"), "{}", s.message());
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let s = Status::from(GatewayError::internal("creating fifo /var/lib/x", "EACCES"));
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal gateway error");
    }

    #[test]
    fn invalid_archive_is_invalid_argument() {
        let s = Status::from(GatewayError::from(LoadError::Invalid(
            "archive has no index.json".into(),
        )));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "archive has no index.json");
    }
}
