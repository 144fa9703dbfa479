//! `tern_bytes`: immutable, reference-counted buffers, safe from any thread.

use super::boundary::{c_slice, set_last_error, SendPtr};
use crate::bytes::Bytes;
use crate::error::Error;
use std::ffi::c_void;

// tern.h: Buffers: tern_bytes
// An immutable, reference-counted byte buffer, usable from any thread. The whole
// ownership rule: every argument named `take` consumes one reference, whatever the call
// returns, success or error. tern_bytes_wrap hands your own memory over without copying;
// its free function runs exactly once, after the last byte was written on every
// connection it was queued on, or when it was discarded.

/// An immutable, reference-counted byte buffer. Every function argument named `take`
/// consumes one reference, whatever the call returns.
pub struct tern_bytes {
    _private: [u8; 0],
}

/// Called exactly once with the `ctx`, `data` and `len` given to tern_bytes_wrap,
/// when the last reference is gone; on any thread.
pub type tern_free_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, data: *mut c_void, len: usize)>;

pub(crate) fn into_handle(b: Bytes) -> *mut tern_bytes {
    b.into_raw() as *mut tern_bytes
}

/// Takes the reference a `take` argument hands over; `None` for NULL.
pub(crate) fn take_ref(p: *mut tern_bytes) -> Option<Bytes> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null tern_bytes pointers are references made by `into_handle`, and
    // a `take` argument gives that reference to us.
    Some(unsafe { Bytes::from_raw(p as *const ()) })
}

fn with<R>(p: *const tern_bytes, f: impl FnOnce(&Bytes) -> R) -> Option<R> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller holds a live reference made by `into_handle`.
    Some(unsafe { Bytes::with_raw(p as *const (), f) })
}

/// A new buffer holding a copy of `len` bytes at `data` (NULL allowed when `len` is
/// 0). The caller owns the returned reference. NULL on error (tern_last_error).
/// Any thread.
#[no_mangle]
pub extern "C" fn tern_bytes_copy(data: *const c_void, len: usize) -> *mut tern_bytes {
    boundary! {
        match c_slice(data, len) {
            Ok(s) => into_handle(Bytes::copy_from(s)),
            Err(e) => {
                set_last_error(e);
                std::ptr::null_mut()
            }
        }
    }
}

/// Wraps `len` bytes at `data` without copying. tern owns them from now on:
/// `fn(ctx, data, len)` (if not NULL) runs exactly once, on whichever thread drops
/// the last reference: after every byte was written on every connection the buffer
/// was queued on, or when it was discarded. Never before. The memory must stay
/// unchanged until then. On NULL (bad arguments) nothing was taken and `fn` is not
/// called. Any thread.
#[no_mangle]
pub extern "C" fn tern_bytes_wrap(data: *mut c_void, len: usize, r#fn: tern_free_fn, ctx: *mut c_void) -> *mut tern_bytes {
    boundary! {
        if data.is_null() && len > 0 {
            set_last_error(Error::Invalid);
            return std::ptr::null_mut();
        }
        let release = r#fn.map(|f| {
            let (ctx, data) = (SendPtr(ctx), SendPtr(data));
            Box::new(move || {
                let (ctx, data) = (ctx, data);
                // SAFETY: the C caller gave us this callback to free its buffer, with
                // these very arguments, to be called once from any thread.
                unsafe { f(ctx.0, data.0, len) }
            }) as Box<dyn FnOnce() + Send>
        });
        // SAFETY: the contract above: `data` stays valid and unchanged until release.
        into_handle(unsafe { Bytes::from_foreign(data as *const u8, len, release) })
    }
}

/// A new zero-filled buffer of `len` bytes; `*data_out` (if not NULL) receives a
/// pointer through which the caller may fill it until it first shares it or hands it
/// to tern. The caller owns the returned reference. Any thread.
#[no_mangle]
pub extern "C" fn tern_bytes_alloc(len: usize, data_out: *mut *mut c_void) -> *mut tern_bytes {
    boundary! {
        let (b, p) = Bytes::alloc(len);
        if !data_out.is_null() {
            // SAFETY: the caller passed a valid out-pointer.
            unsafe { *data_out = p as *mut c_void };
        }
        into_handle(b)
    }
}

/// One more reference to the same bytes (returns `b`; NULL for NULL). Each
/// reference is released once: by tern_bytes_release or by handing it to a `take`
/// argument. Any thread.
#[no_mangle]
pub extern "C" fn tern_bytes_share(b: *mut tern_bytes) -> *mut tern_bytes {
    boundary! {
        match with(b, |bytes| bytes.clone()) {
            Some(extra) => into_handle(extra),
            None => std::ptr::null_mut(),
        }
    }
}

/// Drops one reference that was never handed to tern. NULL is ignored. May run the
/// free callback (on this thread) if it was the last. Any thread.
#[no_mangle]
pub extern "C" fn tern_bytes_release(b: *mut tern_bytes) {
    boundary! { drop(take_ref(b)) }
}

/// The first byte of the buffer (valid while you hold a reference). Any thread.
#[no_mangle]
pub extern "C" fn tern_bytes_data(b: *const tern_bytes) -> *const c_void {
    boundary! { with(b, |bytes| bytes.as_slice().as_ptr() as *const c_void).unwrap_or(std::ptr::null()) }
}

/// The buffer's length in bytes (0 for NULL). Any thread.
#[no_mangle]
pub extern "C" fn tern_bytes_len(b: *const tern_bytes) -> usize {
    boundary! { with(b, Bytes::len).unwrap_or(0) }
}

/// How many tern_bytes buffers are alive in the process: a leak check for tests
/// (compare before and after). Any thread.
#[no_mangle]
pub extern "C" fn tern_bytes_live() -> u64 {
    boundary! { Bytes::live_count() }
}
