//! Status codes and how to name them.

use super::boundary::{last_error, last_os_error};
use crate::error::Error;
use std::ffi::{c_char, c_int};

// tern.h: Errors
// Every call that acts returns TERN_OK (0) or one of the negative codes below; every
// call that creates a handle, an id or a token returns NULL, 0 or {0,0} on failure, and
// then tern_last_error() gives the code and tern_last_os_error() the errno behind it
// (thread-local, like errno: set on failure, left alone on success). Inside
// TERN_EV_ERROR, tern_conn_error() and tern_conn_os_error() say what failed. All the
// codes are here, in one place; tern_strerror() names each.

/// Success.
pub const TERN_OK: c_int = 0;
/// A bad argument, URL or option.
pub const TERN_EINVAL: c_int = -1;
/// The connection or manager is gone, or the id is unknown.
pub const TERN_ECLOSED: c_int = -2;
/// A bounded queue or limit is full.
pub const TERN_EFULL: c_int = -3;
/// The call is not valid in this state (a second reply; a poll from a callback).
pub const TERN_EPROTO: c_int = -4;
/// The operating system refused (bind, socket, ...).
pub const TERN_EIO: c_int = -5;
/// Out of memory.
pub const TERN_ENOMEM: c_int = -6;
/// A Rust panic was caught at the boundary (a tern bug; please report it).
pub const TERN_EINTERNAL: c_int = -7;
/// A deadline passed.
pub const TERN_ETIMEDOUT: c_int = -8;
/// Looked up and not there (tern_http_var, tern_http_basic_auth).
pub const TERN_ENOTFOUND: c_int = -9;
/// The address is already in use (tern_listen, tern_http_listen: EADDRINUSE).
pub const TERN_EADDRINUSE: c_int = -10;
/// Nothing listens at the address (an outgoing connection's TERN_EV_ERROR:
/// ECONNREFUSED).
pub const TERN_ECONNREFUSED: c_int = -11;
/// The peer reset the connection, or it broke while sending (ECONNRESET, EPIPE).
pub const TERN_ECONNRESET: c_int = -12;
/// No route to the host or to its network (EHOSTUNREACH, ENETUNREACH).
pub const TERN_EHOSTUNREACH: c_int = -13;
/// A host name did not resolve to any address.
pub const TERN_ENAME: c_int = -14;
/// TLS material or settings that cannot be used: a bad PEM, a key that does not
/// match its certificate, no trust anchor, a TLS URL without a configuration
/// (tern_tls_config_error says why); and, from tern_conn_error, a TLS handshake that
/// failed (a certificate that does not verify, an alert, not TLS at all).
pub const TERN_ETLS: c_int = -20;
/// A fetch was cancelled (tern_fetch_cancel): its callback's TERN_FETCH_DONE code.
pub const TERN_ECANCELED: c_int = -30;
/// A fetch met more redirects than TERN_FETCH_FOLLOW allows.
pub const TERN_EREDIRECTS: c_int = -31;

// The header's numbers are the core's.
const _: () = {
    assert!(TERN_EINVAL == Error::Invalid.code() && TERN_ECLOSED == Error::Closed.code());
    assert!(TERN_EFULL == Error::Full.code() && TERN_EPROTO == Error::Protocol.code());
    assert!(TERN_EIO == Error::Io.code() && TERN_ENOMEM == Error::NoMemory.code());
    assert!(TERN_EINTERNAL == Error::Internal.code() && TERN_ETIMEDOUT == Error::TimedOut.code());
    assert!(TERN_ENOTFOUND == Error::NotFound.code() && TERN_EADDRINUSE == Error::AddrInUse.code());
    assert!(TERN_ECONNREFUSED == Error::ConnRefused.code() && TERN_ECONNRESET == Error::ConnReset.code());
    assert!(TERN_EHOSTUNREACH == Error::HostUnreachable.code() && TERN_ENAME == Error::Name.code());
    assert!(TERN_ENOTFOUND == Error::NotFound.code());
    assert!(TERN_ETLS == Error::Tls.code());
    assert!(TERN_ECANCELED == Error::Canceled.code() && TERN_EREDIRECTS == Error::Redirects.code());
};

/// A static, NUL-terminated description of a status code ("success" for TERN_OK,
/// "unknown error" for codes tern does not define). Any thread.
#[no_mangle]
pub extern "C" fn tern_strerror(code: c_int) -> *const c_char {
    boundary! {
        let s: &'static [u8] = match Error::from_code(code) {
            _ if code == TERN_OK => b"success\0",
            Some(Error::Invalid) => b"invalid argument\0",
            Some(Error::Closed) => b"connection or manager closed\0",
            Some(Error::Full) => b"queue or limit full\0",
            Some(Error::Protocol) => b"call not valid in this state\0",
            Some(Error::Io) => b"input/output error\0",
            Some(Error::NoMemory) => b"out of memory\0",
            Some(Error::Internal) => b"internal error (panic caught)\0",
            Some(Error::TimedOut) => b"timed out\0",
            Some(Error::NotFound) => b"not found\0",
            Some(Error::AddrInUse) => b"address already in use\0",
            Some(Error::ConnRefused) => b"connection refused\0",
            Some(Error::ConnReset) => b"connection reset by peer\0",
            Some(Error::HostUnreachable) => b"host or network unreachable\0",
            Some(Error::Name) => b"host name did not resolve\0",
            Some(Error::Tls) => b"TLS certificate, key or configuration unusable\0",
            Some(Error::Canceled) => b"cancelled\0",
            Some(Error::Redirects) => b"too many redirects\0",
            None => b"unknown error\0",
        };
        s.as_ptr() as *const c_char
    }
}

/// Why the last call on this thread that returns a handle, an id or a token failed
/// (NULL, 0, {0,0}): a TERN_E* code; 0 if none failed yet. Like errno, it is set
/// when such a call fails and left alone when one succeeds: read it right after the
/// failed call, not after a success. Calls that return a status code return the code
/// itself and leave this alone. Thread-local; any thread.
#[no_mangle]
pub extern "C" fn tern_last_error() -> c_int {
    boundary! { last_error() }
}

/// The OS error number (errno: EADDRINUSE, EACCES, EMFILE, ...) behind the failure
/// tern_last_error reports, or 0 when that failure had none (a bad argument, a
/// closed manager) or nothing failed yet. Set and left alone like tern_last_error.
/// Thread-local; any thread.
#[no_mangle]
pub extern "C" fn tern_last_os_error() -> c_int {
    boundary! { last_os_error() }
}
