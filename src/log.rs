//! Process-wide logging. tern logs what a user debugging a connection needs (refused
//! connections, protocol errors, limits hit); the sink and the level are the
//! embedder's choice, with errors to stderr by default.

use parking_lot::RwLock;
use std::sync::atomic::{AtomicI32, Ordering};

/// Severity, most severe first; a message is emitted when its level <= the set level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

/// Where log lines go.
pub type Sink = Box<dyn Fn(Level, &str) + Send + Sync>;

static LEVEL: AtomicI32 = AtomicI32::new(Level::Error as i32);
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sets the level (0 turns logging off) and the sink (`None`: stderr).
pub fn set(level: i32, sink: Option<Sink>) {
    *SINK.write() = sink;
    LEVEL.store(level, Ordering::Release);
}

/// Whether a message at `level` would be emitted; lets callers skip formatting.
pub fn enabled(level: Level) -> bool {
    (level as i32) <= LEVEL.load(Ordering::Acquire)
}

/// Emits one line. Never panics into the caller: a sink that panics is the embedder's
/// bug, but it must not unwind through the reactor.
pub fn emit(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    let sink = SINK.read();
    match sink.as_ref() {
        Some(f) => {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(level, msg)));
        }
        None => eprintln!("tern: {msg}"),
    }
}

/// `tern_log!(Level::Warn, "fmt", args)`: formats only when the level is enabled.
#[macro_export]
macro_rules! tern_log {
    ($lvl:expr, $($arg:tt)+) => {
        if $crate::log::enabled($lvl) {
            $crate::log::emit($lvl, &format!($($arg)+));
        }
    };
}
