//! The library version.

use std::ffi::c_char;

// tern.h: Version
// The header's version and the library's: compare them to detect a header/library
// mismatch. The soname (libtern.so.MAJOR) changes only with an incompatible ABI.

/// Major version: an incompatible ABI change bumps it (and the soname, libtern.so.MAJOR).
pub const TERN_VERSION_MAJOR: u32 = 0;
/// Minor version: additions only.
pub const TERN_VERSION_MINOR: u32 = 1;
/// Patch version: fixes only.
pub const TERN_VERSION_PATCH: u32 = 0;

const VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

// The header's numbers and the crate's version must agree.
const _: () = {
    let v = VERSION_C.as_bytes();
    assert!(v[0] == b'0' + TERN_VERSION_MAJOR as u8 && v[2] == b'0' + TERN_VERSION_MINOR as u8 && v[4] == b'0' + TERN_VERSION_PATCH as u8);
};

/// The library's version, "MAJOR.MINOR.PATCH", as a static string. Any thread.
#[no_mangle]
pub extern "C" fn tern_version() -> *const c_char {
    VERSION_C.as_ptr() as *const c_char
}
