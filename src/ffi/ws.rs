//! WebSocket: upgrading HTTP requests, connecting, sending, closing, and topics.

use super::boundary::{c_slice, c_str, status};
use super::bytes::{take_ref, tern_bytes};
use super::conn::{conn, open_with, tern_conn, tern_handler, tern_str, CHandler};
use super::http::tern_http_msg;
use super::mgr::{mgr, tern_mgr};
use crate::error::Error;
use crate::http::h1::Body;
use crate::http::msg::HttpMsg;
use std::ffi::{c_char, c_int, c_void};

// tern.h: WebSocket
// RFC 6455 server (tern_ws_upgrade inside TERN_EV_HTTP_MSG) and client
// (tern_ws_connect), with permessage-deflate (TERN_OPT_WS_DEFLATE). Messages arrive whole
// as TERN_EV_WS_MSG; control frames are answered by tern and reported as TERN_EV_WS_CTL.
// Topics fan one shared buffer out to many connections without copying it.

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

/// ev_data of TERN_EV_WS_MSG (a whole text or binary message) and TERN_EV_WS_CTL (a
/// ping, pong or close from the peer, already answered; a close's data is its 2-byte
/// code and its reason, as received). `data` is valid during the event only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct tern_ws_msg {
    pub op: c_int,
    pub data: tern_str,
}

pub(crate) fn op_u8(op: c_int) -> Result<u8, Error> {
    match op {
        TERN_WS_TEXT | TERN_WS_BINARY | TERN_WS_CLOSE | TERN_WS_PING | TERN_WS_PONG => Ok(op as u8),
        _ => Err(Error::Invalid),
    }
}

fn opt_str<'a>(p: *const c_char) -> Result<&'a str, Error> {
    if p.is_null() {
        Ok("")
    } else {
        c_str(p)
    }
}

/// Inside TERN_EV_HTTP_MSG for `h`: answers the WebSocket upgrade request with 101
/// (plus the extra `headers`, lines each ending in "\r\n", or NULL: e.g. the chosen
/// `Sec-WebSocket-Protocol`) and makes the connection speak WebSocket once the
/// handler returns; its next event is TERN_EV_WS_OPEN (ev_data: this request). The
/// handshake is checked: GET over HTTP/1.1, `Upgrade: websocket`, a Connection token
/// `upgrade`, `Sec-WebSocket-Version: 13` (else 426 with `Sec-WebSocket-Version: 13`)
/// and a 16-byte base64 `Sec-WebSocket-Key` (else 400): a bad one is answered by
/// tern, the connection closes after that answer, and this returns TERN_EINVAL. With
/// TERN_OPT_WS_DEFLATE, permessage-deflate is agreed when the client offers it.
/// Bytes the client sent after the request are its first frames. TERN_EPROTO if `h`
/// is not the oldest unanswered request, or others were read after it. Loop thread.
#[no_mangle]
pub extern "C" fn tern_ws_upgrade(c: *mut tern_conn, h: *const tern_http_msg, headers: *const c_char) -> c_int {
    boundary! {
        status((|| {
            let (m, id) = conn(c)?;
            let msg: &HttpMsg<'_> = super::boundary::try_ref(h).ok_or(Error::Invalid)?;
            m.ws_upgrade(id, msg, opt_str(headers)?.as_bytes())
        })())
    }
}

/// Connects to a WebSocket server at `url` ("ws://host[:port]/path?query", port 80
/// by default; names resolved off the loop thread). Events: OPEN, CONNECT, then
/// TERN_EV_WS_OPEN (ev_data: the server's 101 as a `tern_http_msg *`) once its
/// handshake checks out (status, Upgrade, Connection, the accept value); a refused or
/// invalid answer, or none within TERN_OPT_WS_HANDSHAKE_TIMEOUT_MS, is TERN_EV_ERROR
/// then TERN_EV_CLOSE. With TERN_OPT_WS_CLIENT_DEFLATE it offers permessage-deflate.
/// Messages may be sent from TERN_EV_WS_OPEN on. NULL on a bad URL (TERN_EINVAL).
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_ws_connect(m: *mut tern_mgr, url: *const c_char, r#fn: tern_handler, user: *mut c_void) -> *mut tern_conn {
    boundary! { open_with(m, url, |m, url| m.ws_connect(url, CHandler::boxed(r#fn), user as usize)) }
}

/// Sends a copy of `len` bytes at `data` as one message (TERN_WS_TEXT: must be
/// UTF-8; TERN_WS_BINARY) or control frame (TERN_WS_PING, TERN_WS_PONG: at most 125
/// bytes; TERN_WS_CLOSE: a 2-byte code and a reason, or nothing: as tern_ws_close).
/// TERN_EINVAL for a bad op or payload, TERN_EPROTO on a connection that is not (yet)
/// a WebSocket, TERN_ECLOSED once a close was sent or received, TERN_EFULL past
/// TERN_OPT_MAX_SEND_QUEUE (the connection is then closed with TERN_EV_ERROR).
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_ws_send(c: *mut tern_conn, op: c_int, data: *const c_void, len: usize) -> c_int {
    boundary! {
        status((|| {
            let (m, id) = conn(c)?;
            m.ws_send(id, op_u8(op)?, Body::Copy(c_slice(data, len)?))
        })())
    }
}

/// Like tern_ws_send with the payload in `take` (consumed whatever this returns): a
/// server sends it without copying (the frame header is separate), so one buffer
/// shared (tern_bytes_share) across many connections is never copied per
/// connection; its free callback runs once every connection wrote it or dropped it.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_ws_send_bytes(c: *mut tern_conn, op: c_int, take: *mut tern_bytes) -> c_int {
    boundary! {
        let b = take_ref(take);
        status((|| {
            let (m, id) = conn(c)?;
            m.ws_send(id, op_u8(op)?, Body::Shared(b.ok_or(Error::Invalid)?))
        })())
    }
}

/// Starts the closing handshake: queues a close frame with `code` (0: none) and
/// `reason` (NULL: none; cut to fit a control frame), waits at most
/// TERN_OPT_WS_CLOSE_TIMEOUT_MS for the peer's close, then the connection closes
/// (a server closes TCP first); TERN_EV_CLOSE follows. TERN_EINVAL for a code that
/// may not be sent (1005, 1006, 1015, unassigned ones). Closing twice is fine.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_ws_close(c: *mut tern_conn, code: c_int, reason: *const c_char) -> c_int {
    boundary! {
        status((|| {
            let (m, id) = conn(c)?;
            let code = u16::try_from(code).map_err(|_| Error::Invalid)?;
            m.ws_close(id, code, opt_str(reason)?)
        })())
    }
}

/// Adds WebSocket connection `c` to `topic` (a NUL-terminated name, copied), so that
/// tern_ws_publish and tern_remote_ws_publish reach it; it leaves by itself when it
/// closes. Subscribing twice is fine. TERN_EFULL past 64 topics per connection.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_ws_subscribe(c: *mut tern_conn, topic: *const c_char) -> c_int {
    boundary! { status((|| { let (m, id) = conn(c)?; m.ws_subscribe(id, c_str(topic)?) })()) }
}

/// Takes `c` out of `topic`: TERN_OK, or TERN_ENOTFOUND if it was not in it.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_ws_unsubscribe(c: *mut tern_conn, topic: *const c_char) -> c_int {
    boundary! { status((|| { let (m, id) = conn(c)?; m.ws_unsubscribe(id, c_str(topic)?) })()) }
}

/// Sends `take` (consumed) as one message with opcode `op` (TERN_WS_TEXT or
/// TERN_WS_BINARY) to every subscriber of `topic`: one frame, queued by reference on
/// every connection. Returns how many subscribers it was queued to (0 if none), or a
/// TERN_E* code. A subscriber whose queue passes TERN_OPT_MAX_SEND_QUEUE is closed
/// with TERN_EV_ERROR; the others are unaffected. Loop thread (from other threads:
/// tern_remote_ws_publish).
#[no_mangle]
pub extern "C" fn tern_ws_publish(m: *mut tern_mgr, topic: *const c_char, op: c_int, take: *mut tern_bytes) -> c_int {
    boundary! {
        let b = take_ref(take);
        let r = (|| {
            let m = mgr(m).ok_or(Error::Invalid)?;
            m.ws_publish(c_str(topic)?, op_u8(op)?, b.ok_or(Error::Invalid)?)
        })();
        match r {
            Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
            Err(e) => e.code(),
        }
    }
}
