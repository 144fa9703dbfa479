//! WebSocket opcodes (the protocol layer comes with its own issue).

use std::ffi::c_int;

/// A text message (UTF-8).
pub const TERN_WS_TEXT: c_int = 1;
/// A binary message.
pub const TERN_WS_BINARY: c_int = 2;
/// A close frame.
pub const TERN_WS_CLOSE: c_int = 8;
/// A ping.
pub const TERN_WS_PING: c_int = 9;
/// A pong.
pub const TERN_WS_PONG: c_int = 10;
