//! Timers on the loop.

use super::boundary::{set_last_error, status, SendPtr};
use super::mgr::{mgr, tern_mgr};
use crate::error::Error;
use std::ffi::{c_int, c_void};
use std::time::Duration;

// tern.h: Timers
// Callbacks on the loop thread after a delay, once or repeated, cancelled by id.
// Timers keep no manager alive: after a completed shutdown they never fire.

/// Repeat every `ms` instead of firing once.
pub const TERN_TIMER_REPEAT: c_int = 1;
/// Fire at the next poll as well (then every `ms` with TERN_TIMER_REPEAT).
pub const TERN_TIMER_RUN_NOW: c_int = 2;

/// A timer callback: runs on the loop thread inside tern_mgr_poll.
pub type tern_timer_fn = Option<unsafe extern "C" fn(user: *mut c_void)>;

/// Calls `fn(user)` after `ms` milliseconds (flags: TERN_TIMER_REPEAT,
/// TERN_TIMER_RUN_NOW). Returns the timer's id, or 0 on error (tern_last_error:
/// TERN_EINVAL for a NULL fn or unknown flags). Timers cost O(log n). A timer may
/// cancel itself from its callback. Loop thread.
#[no_mangle]
pub extern "C" fn tern_timer_add(m: *mut tern_mgr, ms: u64, flags: c_int, r#fn: tern_timer_fn, user: *mut c_void) -> u64 {
    boundary! {
        let (Some(m), Some(f)) = (mgr(m), r#fn) else {
            set_last_error(Error::Invalid);
            return 0;
        };
        if flags & !(TERN_TIMER_REPEAT | TERN_TIMER_RUN_NOW) != 0 {
            set_last_error(Error::Invalid);
            return 0;
        }
        let user = SendPtr(user);
        let cb = Box::new(move |_: &crate::Manager| {
            // SAFETY: the embedder's callback with its own user pointer, on the loop thread.
            unsafe { f(user.0) }
        });
        let repeat = flags & TERN_TIMER_REPEAT != 0;
        let run_now = flags & TERN_TIMER_RUN_NOW != 0;
        match m.timer_add(Duration::from_millis(ms), repeat, run_now, cb) {
            Ok(id) => id,
            Err(e) => {
                set_last_error(e);
                0
            }
        }
    }
}

/// Cancels a timer: TERN_OK, or TERN_ECLOSED if it is unknown or already fired
/// (one-shot). Loop thread.
#[no_mangle]
pub extern "C" fn tern_timer_cancel(m: *mut tern_mgr, id: u64) -> c_int {
    boundary! {
        match mgr(m) {
            Some(m) => status(m.timer_cancel(id)),
            None => Error::Invalid.code(),
        }
    }
}
