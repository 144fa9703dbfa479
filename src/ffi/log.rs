//! Where tern's log lines go.

use super::boundary::SendPtr;
use crate::log::Level;
use std::ffi::{c_char, c_int, c_void, CString};

// tern.h: Logging
// Process-wide: a level and a sink (stderr by default). tern logs limits it enforces,
// connections it refuses and misuse it detects; it never aborts.

/// Logging off.
pub const TERN_LOG_NONE: c_int = 0;
/// Errors only (the default).
pub const TERN_LOG_ERROR: c_int = 1;
/// Also warnings: limits hit, connections refused.
pub const TERN_LOG_WARN: c_int = 2;
/// Also information.
pub const TERN_LOG_INFO: c_int = 3;
/// Everything, including each connection's errors.
pub const TERN_LOG_DEBUG: c_int = 4;

const _: () = assert!(
    TERN_LOG_ERROR == Level::Error as c_int
        && TERN_LOG_WARN == Level::Warn as c_int
        && TERN_LOG_INFO == Level::Info as c_int
        && TERN_LOG_DEBUG == Level::Debug as c_int
);

/// Receives one NUL-terminated log line (valid for the call) on any thread.
pub type tern_log_fn = Option<unsafe extern "C" fn(level: c_int, msg: *const c_char, ud: *mut c_void)>;

/// Sets the process-wide log level (TERN_LOG_*) and sink: `fn(level, msg, ud)`, or
/// stderr when `fn` is NULL. The sink may be called from any thread, and must not
/// call tern_log_set itself. Any thread.
#[no_mangle]
pub extern "C" fn tern_log_set(level: c_int, r#fn: tern_log_fn, ud: *mut c_void) {
    boundary! {
        let sink = r#fn.map(|f| {
            let ud = SendPtr(ud);
            Box::new(move |lvl: Level, msg: &str| {
                let ud = ud;
                let line = CString::new(msg.replace('\0', " ")).unwrap_or_default();
                // SAFETY: the embedder's callback, called as its contract says.
                unsafe { f(lvl as c_int, line.as_ptr(), ud.0) }
            }) as crate::log::Sink
        });
        crate::log::set(level, sink)
    }
}
