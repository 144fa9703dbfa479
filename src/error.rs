//! The one error type of the core. Each variant has a stable negative code that the
//! C layer returns as-is, so the mapping lives here and nowhere else.

use std::fmt;

/// Why an operation failed. The numeric values are part of the C ABI (`TERN_E*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A bad argument, URL or option.
    Invalid,
    /// The connection or manager is gone, or the id is unknown.
    Closed,
    /// A bounded queue or limit is full.
    Full,
    /// The call is not valid in this state (a second reply, a poll from inside a callback).
    Protocol,
    /// The operating system refused (bind, socket, ...).
    Io,
    /// Memory could not be had.
    NoMemory,
    /// A panic was caught at the C boundary.
    Internal,
    /// A deadline passed.
    TimedOut,
    /// Looked up and not there (a form variable, credentials).
    NotFound,
    /// TLS material or settings that cannot be used (a bad PEM, a key that does not
    /// match its certificate, no trust anchor, a TLS URL without a configuration).
    Tls,
}

impl Error {
    /// The stable code, as returned to C.
    pub const fn code(self) -> i32 {
        match self {
            Error::Invalid => -1,
            Error::Closed => -2,
            Error::Full => -3,
            Error::Protocol => -4,
            Error::Io => -5,
            Error::NoMemory => -6,
            Error::Internal => -7,
            Error::TimedOut => -8,
            Error::NotFound => -9,
            Error::Tls => -20,
        }
    }

    /// The inverse of [`Error::code`]; `None` for 0 and unknown codes.
    pub fn from_code(code: i32) -> Option<Error> {
        [
            Error::Invalid,
            Error::Closed,
            Error::Full,
            Error::Protocol,
            Error::Io,
            Error::NoMemory,
            Error::Internal,
            Error::TimedOut,
            Error::NotFound,
            Error::Tls,
        ]
        .into_iter()
        .find(|e| e.code() == code)
    }

    /// A short, static, human description (what `tern_strerror` returns).
    pub const fn message(self) -> &'static str {
        match self {
            Error::Invalid => "invalid argument",
            Error::Closed => "connection or manager closed",
            Error::Full => "queue or limit full",
            Error::Protocol => "call not valid in this state",
            Error::Io => "input/output error",
            Error::NoMemory => "out of memory",
            Error::Internal => "internal error (panic caught)",
            Error::TimedOut => "timed out",
            Error::NotFound => "not found",
            Error::Tls => "TLS certificate, key or configuration unusable",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        match e.kind() {
            std::io::ErrorKind::OutOfMemory => Error::NoMemory,
            std::io::ErrorKind::TimedOut => Error::TimedOut,
            std::io::ErrorKind::InvalidInput => Error::Invalid,
            _ => Error::Io,
        }
    }
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;
