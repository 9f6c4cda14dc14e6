//! The error type and its mapping to kubectl's exit codes.
//!
//! Every variant renders as one line (printed after `error: `) that names the problem and, where
//! one helps, the fix. No variant ever carries secret material: callers pass only names, paths and
//! server messages, and server messages are sanitised before they get here.
use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a command ended with, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 3: `audit`/`inspect` found findings at or above `--fail-on`.
    Findings,
    /// Exit 4: `audit` could not read everything it was asked to.
    Incomplete,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Findings => 3,
            Outcome::Incomplete => 4,
        }
    }
}

/// A status returned by the Kubernetes API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiStatus {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

#[derive(Debug)]
pub enum Error {
    /// Invalid input caught before any API call (exit 1).
    Invalid(String),
    /// Usage error: missing argument, conflicting flags (exit 2).
    Usage(String),
    /// The API server answered with an error status.
    Api {
        status: ApiStatus,
        hint: Option<String>,
    },
    /// Could not reach the API server or a registry.
    Connection(String),
    /// Kubeconfig problems.
    Config(String),
    /// Local file problems.
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Anything else, already worded for the user.
    Other(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    pub fn other(msg: impl Into<String>) -> Self {
        Error::Other(msg.into())
    }
    pub fn io(path: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The HTTP status when this is an API error.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(status.code),
            _ => None,
        }
    }

    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        match self {
            Error::Api { status, .. } => Error::Api {
                status,
                hint: Some(hint.into()),
            },
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(m) | Error::Usage(m) | Error::Config(m) | Error::Other(m) => {
                f.write_str(m)
            }
            Error::Connection(m) => f.write_str(m),
            Error::Api { status, hint } => {
                // kubectl words these "Error from server (Reason): message".
                if status.reason.is_empty() {
                    write!(
                        f,
                        "the server returned HTTP {}: {}",
                        status.code, status.message
                    )?;
                } else {
                    write!(
                        f,
                        "Error from server ({}): {}",
                        status.reason, status.message
                    )?;
                }
                if let Some(h) = hint {
                    write!(f, "; {h}")?;
                }
                Ok(())
            }
            Error::Io { path, source } => write!(f, "{path}: {}", io_reason(source)),
        }
    }
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Other(e.to_string())
    }
}
