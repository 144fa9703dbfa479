//! What every exported function shares: the panic boundary, the thread-local last
//! error, and conversions between opaque C handles and Rust values.
//!
//! Modelled on rustls-ffi: each handle type names the Rust type behind it once
//! (`Castable`), and pointers are converted only through the helpers here, so raw
//! casts and `Box::from_raw` do not spread through the layer.

use crate::error::Error;
use std::cell::Cell;
use std::ffi::{c_char, CStr};

thread_local! {
    /// The code and the OS error number of the last failure (`tern_last_error`).
    static LAST_ERROR: Cell<(i32, i32)> = const { Cell::new((0, 0)) };
}

/// Records why a handle-returning call returned NULL (read by `tern_last_error`),
/// with the OS error behind it, if the core met one on the way.
pub(crate) fn set_last_error(e: Error) {
    let os = crate::error::take_os_error(e);
    LAST_ERROR.with(|c| c.set((e.code(), os)));
}

pub(crate) fn last_error() -> i32 {
    LAST_ERROR.with(|c| c.get().0)
}

pub(crate) fn last_os_error() -> i32 {
    LAST_ERROR.with(|c| c.get().1)
}

/// What a function returns when a panic was caught inside it.
pub(crate) trait PanicDefault {
    fn panic_value() -> Self;
}

impl PanicDefault for i32 {
    fn panic_value() -> i32 {
        Error::Internal.code()
    }
}
impl PanicDefault for u64 {
    fn panic_value() -> u64 {
        set_last_error(Error::Internal);
        0
    }
}
impl PanicDefault for usize {
    fn panic_value() -> usize {
        0
    }
}
impl PanicDefault for () {
    fn panic_value() {}
}
impl<T> PanicDefault for *mut T {
    fn panic_value() -> *mut T {
        set_last_error(Error::Internal);
        std::ptr::null_mut()
    }
}
impl<T> PanicDefault for *const T {
    fn panic_value() -> *const T {
        set_last_error(Error::Internal);
        std::ptr::null()
    }
}

/// Runs the body of an exported function; a panic becomes the return type's
/// `PanicDefault` (TERN_EINTERNAL, NULL, 0) and never crosses into C.
macro_rules! boundary {
    ($($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(v) => v,
            Err(_) => {
                $crate::tern_log!($crate::log::Level::Error, "internal error: panic caught at the C boundary");
                $crate::ffi::boundary::PanicDefault::panic_value()
            }
        }
    };
}

/// Maps a core result to a C status.
pub(crate) fn status(r: crate::error::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

/// Maps a core result carrying a handle to a pointer, recording the error on NULL.
pub(crate) fn handle_or_null<T>(r: crate::error::Result<*mut T>) -> *mut T {
    match r {
        Ok(p) => p,
        Err(e) => {
            set_last_error(e);
            std::ptr::null_mut()
        }
    }
}

/// An opaque C handle type and the Rust value it stands for.
pub(crate) trait Castable {
    type Rust;
}

/// Borrows the value behind a handle; `None` for NULL.
pub(crate) fn try_ref<'a, C: Castable>(p: *const C) -> Option<&'a C::Rust> {
    // SAFETY: non-null handles of type C are only ever made by `to_boxed`, pointing at a
    // live `C::Rust`; the C contract forbids using a handle after it was freed.
    unsafe { (p as *const C::Rust).as_ref() }
}

/// Moves a value to the heap and returns it as a handle.
pub(crate) fn to_boxed<C: Castable>(v: C::Rust) -> *mut C {
    Box::into_raw(Box::new(v)) as *mut C
}

/// Takes back ownership of a handle made by `to_boxed`; `None` for NULL.
pub(crate) fn from_boxed<C: Castable>(p: *mut C) -> Option<Box<C::Rust>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null handles of type C come from `to_boxed` (Box::into_raw of a
    // `C::Rust`), and the caller gives up the handle with this call.
    Some(unsafe { Box::from_raw(p as *mut C::Rust) })
}

/// A NUL-terminated UTF-8 C string argument; `Invalid` for NULL or bad UTF-8.
pub(crate) fn c_str<'a>(p: *const c_char) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: the C contract: a non-null string argument is NUL-terminated and lives
    // for the call.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Error::Invalid)
}

/// A file-system path argument: any bytes but NUL (paths need not be UTF-8).
pub(crate) fn c_path<'a>(p: *const c_char) -> Result<&'a std::path::Path, Error> {
    use std::os::unix::ffi::OsStrExt;
    if p.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: the C contract: a non-null string argument is NUL-terminated and lives
    // for the call.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(Error::Invalid);
    }
    Ok(std::path::Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// A (pointer, length) argument as a slice; `Invalid` for NULL with a length.
pub(crate) fn c_slice<'a>(p: *const std::ffi::c_void, len: usize) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: the C contract: `p` is valid for reads of `len` bytes for the call.
    Ok(unsafe { std::slice::from_raw_parts(p as *const u8, len) })
}

/// Copies `s` into a caller's buffer with a NUL; its length, or `Invalid` if it does
/// not fit.
pub(crate) fn write_c_string(s: &str, buf: *mut c_char, len: usize) -> Result<i32, Error> {
    if buf.is_null() || s.len() >= len {
        return Err(Error::Invalid);
    }
    // SAFETY: the caller passed `buf` valid for `len` bytes, and `s.len() + 1 <= len`.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, s.len());
        *buf.add(s.len()) = 0;
    }
    Ok(s.len() as i32)
}

/// A pointer that C promises may be used from the thread it is handed to.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut std::ffi::c_void);

// SAFETY: tern never dereferences it; it only hands it back to the C callback it came
// with, and the C contract makes that callback responsible for its thread-safety.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}
