//! The one error the engine returns: a stable `kind` the page can react to (`too_large`,
//! `corrupt`, `no_lattice`, `state`, …: the readers' and the core's own names, see
//! `IoError::kind` and `CoreError::kind`) and the message it shows.
use atomlens_core::CoreError;
use atomlens_io::IoError;
use serde::Serialize;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Error {
    /// A stable snake_case name.
    pub kind: &'static str,
    /// For the person using the page.
    pub message: String,
}

/// The engine's results.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The operation needs something done first (an image shown, columns found…).
    pub fn state(message: impl Into<String>) -> Error {
        Error { kind: "state", message: message.into() }
    }

    /// The caller asked for something that does not exist (a signal, a map, a plane…).
    pub fn invalid(message: impl Into<String>) -> Error {
        Error { kind: "invalid_parameter", message: message.into() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<CoreError> for Error {
    fn from(e: CoreError) -> Error {
        Error { kind: e.kind(), message: e.to_string() }
    }
}

impl From<IoError> for Error {
    fn from(e: IoError) -> Error {
        Error { kind: e.kind(), message: e.to_string() }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::invalid(e.to_string())
    }
}
