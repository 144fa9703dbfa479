//! Status codes and how to name them.

use super::boundary::last_error;
use crate::error::Error;
use std::ffi::{c_char, c_int};

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
/// TLS material or settings that cannot be used: a bad PEM, a key that does not
/// match its certificate, no trust anchor, a TLS URL without a configuration
/// (tern_tls_config_error says why).
pub const TERN_ETLS: c_int = -20;

// The header's numbers are the core's.
const _: () = {
    assert!(TERN_EINVAL == Error::Invalid.code() && TERN_ECLOSED == Error::Closed.code());
    assert!(TERN_EFULL == Error::Full.code() && TERN_EPROTO == Error::Protocol.code());
    assert!(TERN_EIO == Error::Io.code() && TERN_ENOMEM == Error::NoMemory.code());
    assert!(TERN_EINTERNAL == Error::Internal.code() && TERN_ETIMEDOUT == Error::TimedOut.code());
    assert!(TERN_ENOTFOUND == Error::NotFound.code());
    assert!(TERN_ETLS == Error::Tls.code());
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
            Some(Error::Tls) => b"TLS certificate, key or configuration unusable\0",
            None => b"unknown error\0",
        };
        s.as_ptr() as *const c_char
    }
}

/// Why the last call on this thread that returns a handle (or 0 for an id) failed:
/// a TERN_E* code; 0 if none failed yet. Thread-local; any thread.
#[no_mangle]
pub extern "C" fn tern_last_error() -> c_int {
    boundary! { last_error() }
}
