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
    /// The address is in use (bind).
    AddrInUse,
    /// Nothing listens at the address (connect).
    ConnRefused,
    /// The peer reset the connection (or it broke: EPIPE).
    ConnReset,
    /// No route to the host or its network.
    HostUnreachable,
    /// A host name did not resolve to an address.
    Name,
    /// TLS material or settings that cannot be used (a bad PEM, a key that does not
    /// match its certificate, no trust anchor, a TLS URL without a configuration), or
    /// a TLS handshake that failed (a certificate that does not verify, an alert).
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
            Error::AddrInUse => -10,
            Error::ConnRefused => -11,
            Error::ConnReset => -12,
            Error::HostUnreachable => -13,
            Error::Name => -14,
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
            Error::AddrInUse,
            Error::ConnRefused,
            Error::ConnReset,
            Error::HostUnreachable,
            Error::Name,
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
            Error::AddrInUse => "address already in use",
            Error::ConnRefused => "connection refused",
            Error::ConnReset => "connection reset by peer",
            Error::HostUnreachable => "host or network unreachable",
            Error::Name => "host name did not resolve",
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

impl Error {
    /// The code for an OS error: the common causes get their own, the rest are `Io`.
    pub fn of_io(e: &std::io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<TlsFailure>()) {
            return Error::Tls;
        }
        match e.raw_os_error() {
            Some(libc::EADDRINUSE) => return Error::AddrInUse,
            Some(libc::ECONNREFUSED) => return Error::ConnRefused,
            Some(libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED) => return Error::ConnReset,
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => return Error::HostUnreachable,
            _ => {}
        }
        match e.kind() {
            std::io::ErrorKind::OutOfMemory => Error::NoMemory,
            std::io::ErrorKind::TimedOut => Error::TimedOut,
            std::io::ErrorKind::InvalidInput => Error::Invalid,
            _ => Error::Io,
        }
    }
}

thread_local! {
    /// The last OS error turned into an `Error` on this thread, and what it became.
    static LAST_OS: std::cell::Cell<(i32, i32)> = const { std::cell::Cell::new((0, 0)) };
}

/// The OS error number behind `e`, if `e` is what the last OS error converted on this
/// thread became (0 otherwise); forgets it. How the C layer says which errno a failed
/// call met (`tern_last_os_error`) without every error carrying one.
pub fn take_os_error(e: Error) -> i32 {
    let (code, errno) = LAST_OS.with(|c| c.replace((0, 0)));
    if code == e.code() {
        errno
    } else {
        0
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        let err = Error::of_io(&e);
        LAST_OS.with(|c| c.set((err.code(), e.raw_os_error().unwrap_or(0))));
        err
    }
}

/// A failed TLS handshake or a TLS protocol error, carried inside the `io::Error` a
/// transport returns, so that the connection's failure gets `Error::Tls`.
#[derive(Debug)]
pub struct TlsFailure(pub String);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

/// Why a connection failed: the message of its ERROR event, the code and the OS error
/// number behind it (0 when there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Error,
    pub os: i32,
    pub msg: Box<str>,
}

impl Failure {
    pub fn new(code: Error, msg: impl Into<Box<str>>) -> Failure {
        Failure { code, os: 0, msg: msg.into() }
    }

    /// `what: <the OS error>`, with its code and number.
    pub fn io(what: &str, e: &std::io::Error) -> Failure {
        Failure { code: Error::of_io(e), os: e.raw_os_error().unwrap_or(0), msg: format!("{what}: {e}").into() }
    }
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn os_errors_get_the_codes_a_caller_can_act_on() {
        for (errno, want) in [
            (libc::EADDRINUSE, Error::AddrInUse),
            (libc::ECONNREFUSED, Error::ConnRefused),
            (libc::ECONNRESET, Error::ConnReset),
            (libc::EPIPE, Error::ConnReset),
            (libc::EHOSTUNREACH, Error::HostUnreachable),
            (libc::ENETUNREACH, Error::HostUnreachable),
            (libc::ETIMEDOUT, Error::TimedOut),
            (libc::ENOMEM, Error::NoMemory),
            (libc::EACCES, Error::Io),
        ] {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(Error::of_io(&e), want, "errno {errno}");
            let f = Failure::io("connect", &e);
            assert_eq!((f.code, f.os), (want, errno));
        }
        assert_eq!(Error::from_code(Error::Name.code()), Some(Error::Name));
    }

    #[test]
    fn the_os_error_is_kept_for_the_error_it_became() {
        let e = Error::from(io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert_eq!(take_os_error(Error::Invalid), 0, "another error does not get it");
        let e2 = Error::from(io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert_eq!((e, e2), (Error::AddrInUse, Error::AddrInUse));
        assert_eq!(take_os_error(Error::AddrInUse), libc::EADDRINUSE);
        assert_eq!(take_os_error(Error::AddrInUse), 0, "taken once");
        let _ = Error::from(io::Error::other("no errno"));
        assert_eq!(take_os_error(Error::Io), 0);
    }
}
