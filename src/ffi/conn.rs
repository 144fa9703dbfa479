//! `tern_conn`: connections, their events and the calls a handler makes.
//!
//! A `tern_conn *` is a small handle (manager, id) created with the connection and
//! freed right after its TERN_EV_CLOSE handler returns, so a pointer stays valid for
//! exactly the connection's life, as the contract says.

use super::boundary::{c_slice, c_str, from_boxed, handle_or_null, status, to_boxed, try_ref, write_c_string, Castable};
use super::bytes::{take_ref, tern_bytes};
use super::mgr::{mgr, tern_mgr};
use crate::proto::ConnId;
use crate::error::{Error, Result};
use crate::{DynHandler, Event, Manager, ProtoEvent};
use std::ffi::{c_char, c_int, c_void, CString};
use std::rc::Rc;

// tern.h: Connections and events
// A tern_conn is a listener, an accepted connection or an outgoing one, valid from its
// creation until its TERN_EV_CLOSE handler returns; its id (never reused) reaches it
// later or from other threads. Every connection that got TERN_EV_OPEN gets exactly one
// TERN_EV_CLOSE, last, on every path. The handler gets the events below with their
// ev_data, valid during the call only. Loop thread, unless a comment says otherwise.

/// A connection: a listener, an accepted connection or an outgoing one (a handle,
/// valid from its creation until its TERN_EV_CLOSE handler returns).
pub struct tern_conn {
    _private: [u8; 0],
}

pub(crate) struct ConnHandle {
    mgr: *const Manager,
    id: ConnId,
}

impl Castable for tern_conn {
    type Rust = ConnHandle;
}

/// Unique within a manager, never reused; 0 means none.
pub type tern_conn_id = u64;

/// A borrowed byte range, not NUL-terminated; absent values are {NULL, 0}.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct tern_str {
    pub ptr: *const c_char,
    pub len: usize,
}

impl super::boundary::PanicDefault for tern_str {
    fn panic_value() -> tern_str {
        tern_str { ptr: std::ptr::null(), len: 0 }
    }
}

impl tern_str {
    pub(crate) fn from_slice(s: &[u8]) -> tern_str {
        if s.is_empty() {
            return tern_str { ptr: std::ptr::null(), len: 0 };
        }
        tern_str { ptr: s.as_ptr() as *const c_char, len: s.len() }
    }
}

/// Something failed; ev_data is a `const char *` message (tern_conn_error and
/// tern_conn_os_error say what it was). TERN_EV_CLOSE follows.
pub const TERN_EV_ERROR: c_int = 1;
/// The first event of every connection (listener, accepted, outgoing).
pub const TERN_EV_OPEN: c_int = 2;
/// An outgoing connection is established.
pub const TERN_EV_CONNECT: c_int = 3;
/// A connection was accepted (after its OPEN).
pub const TERN_EV_ACCEPT: c_int = 4;
/// ev_data is a `tern_str *` holding every received byte not yet consumed; call
/// tern_conn_consume for the bytes you have used.
pub const TERN_EV_READ: c_int = 5;
/// ev_data is a `size_t *`: bytes just written to the kernel.
pub const TERN_EV_WRITE: c_int = 6;
/// The last event of every connection; the tern_conn * is invalid after it returns.
pub const TERN_EV_CLOSE: c_int = 7;
/// ev_data is a `tern_http_msg *`: one complete request (server side; its body read
/// and de-chunked), valid during the call. Answer it with tern_http_reply (or
/// begin/write/end), now or later in another event on the loop thread, or hand it to
/// another thread with tern_http_defer. A request the handler neither answers nor
/// defers stays pending, holding its place among pipelined requests, until it is
/// answered or TERN_OPT_DEFER_TIMEOUT_MS passes: then tern answers 503 and closes
/// the connection.
pub const TERN_EV_HTTP_MSG: c_int = 8;
/// The connection speaks WebSocket from now on: on a server, once after the
/// TERN_EV_HTTP_MSG handler that called tern_ws_upgrade returns (the 101 is queued by
/// then), ev_data the upgrade request (`tern_http_msg *`); on a client, once after a
/// valid 101, ev_data that answer (tern_http_status gives 101). From this event on the
/// tern_ws_* send functions work and the HTTP reply functions return TERN_EPROTO.
pub const TERN_EV_WS_OPEN: c_int = 9;
/// ev_data is a `tern_ws_msg *`: one whole text or binary message (fragments
/// reassembled, inflated, text validated UTF-8), valid during the event.
pub const TERN_EV_WS_MSG: c_int = 10;
/// ev_data is a `tern_ws_msg *`: a ping (answered with a pong already), a pong, or
/// the peer's close (data: its 2-byte code and reason as received; answered with the
/// same code already; TERN_EV_CLOSE follows).
pub const TERN_EV_WS_CTL: c_int = 11;
/// ev_data is a `tern_str *`: the bytes given to tern_remote_wakeup ({NULL,0} if none).
pub const TERN_EV_WAKEUP: c_int = 12;
/// The send queue became empty.
pub const TERN_EV_DRAIN: c_int = 13;
/// ev_data is a `tern_http_msg *` whose body is not read yet: the head of a request
/// with a body, delivered only when TERN_OPT_HTTP_HEAD_EVENTS is 1. Headers can be
/// inspected; tern_http_stream_body may be called; answering belongs in
/// TERN_EV_HTTP_MSG (tern_http_reply here returns TERN_EPROTO).
pub const TERN_EV_HTTP_HEAD: c_int = 14;
/// ev_data is a `tern_str *`: the next piece of a request body the handler chose to
/// stream (tern_http_stream_body), de-chunked. Valid during the call; TERN_EV_HTTP_MSG
/// with an empty body follows the last piece.
pub const TERN_EV_HTTP_BODY: c_int = 15;

/// A connection's event handler: runs on the loop thread, inside tern_mgr_poll (or
/// tern_mgr_free for the final CLOSE). `ev_data` is valid for the call only.
pub type tern_handler = Option<unsafe extern "C" fn(c: *mut tern_conn, ev: c_int, ev_data: *mut c_void, user: *mut c_void)>;

/// Adapts a C handler to the core's `Handler`.
pub(crate) struct CHandler(tern_handler);

impl CHandler {
    pub(crate) fn boxed(f: tern_handler) -> DynHandler {
        Rc::new(CHandler(f))
    }
}

impl crate::Handler<crate::AnyProto> for CHandler {
    fn event(&self, m: &Manager, id: ConnId, ev: &Event<'_>) {
        let handle = handle_for(m, id);
        if let Some(f) = self.0 {
            let user = m.user(id).unwrap_or(0) as *mut c_void;
            deliver(f, handle, ev, user);
        }
        if matches!(ev, Event::Close) {
            let _ = m.set_attachment(id, 0);
            drop(from_boxed(handle));
        }
    }
}

fn deliver(f: unsafe extern "C" fn(*mut tern_conn, c_int, *mut c_void, *mut c_void), c: *mut tern_conn, ev: &Event<'_>, user: *mut c_void) {
    let code = ev.code();
    // SAFETY (all calls below): the embedder's handler, called on the loop thread
    // with a live handle and event data that outlives the call.
    match ev {
        Event::Error(msg) => {
            let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
            unsafe { f(c, code, msg.as_ptr() as *mut c_void, user) }
        }
        Event::Read(data) | Event::Wakeup(data) | Event::Proto(ProtoEvent::HttpBody(data)) => {
            let mut s = tern_str::from_slice(data);
            unsafe { f(c, code, &mut s as *mut tern_str as *mut c_void, user) }
        }
        Event::Proto(ProtoEvent::WsMsg(w) | ProtoEvent::WsCtl(w)) => {
            let mut msg = super::ws::tern_ws_msg { op: c_int::from(w.op), data: tern_str::from_slice(w.data) };
            unsafe { f(c, code, &mut msg as *mut super::ws::tern_ws_msg as *mut c_void, user) }
        }
        Event::Proto(ProtoEvent::HttpMsg(m) | ProtoEvent::HttpHead(m) | ProtoEvent::WsOpen(m)) => {
            let p = m as *const crate::http::msg::HttpMsg<'_> as *mut c_void;
            unsafe { f(c, code, p, user) }
        }
        Event::Write(n) => {
            let mut n = *n;
            unsafe { f(c, code, &mut n as *mut usize as *mut c_void, user) }
        }
        _ => unsafe { f(c, code, std::ptr::null_mut(), user) },
    }
}

/// The handle of connection `id`, made on its first event if it has none yet.
pub(crate) fn handle_for(m: &Manager, id: ConnId) -> *mut tern_conn {
    match m.attachment(id) {
        Some(a) if a != 0 => a as *mut tern_conn,
        _ => new_handle(m, id),
    }
}

fn new_handle(m: &Manager, id: ConnId) -> *mut tern_conn {
    let h: *mut tern_conn = to_boxed(ConnHandle { mgr: m as *const Manager, id });
    let _ = m.set_attachment(id, h as usize);
    h
}

/// The manager and id behind a handle.
pub(crate) fn conn<'a>(c: *const tern_conn) -> Result<(&'a Manager, ConnId)> {
    let h = try_ref(c).ok_or(Error::Invalid)?;
    // SAFETY: a live handle's manager outlives it (handles are freed at CLOSE, which
    // the manager delivers before it is freed).
    let m = unsafe { h.mgr.as_ref() }.ok_or(Error::Invalid)?;
    Ok((m, h.id))
}

/// Creates a connection with `create` and gives it its handle.
pub(crate) fn open_with(m: *mut tern_mgr, url: *const c_char, create: impl FnOnce(&Manager, &str) -> Result<ConnId>) -> *mut tern_conn {
    handle_or_null((|| {
        let m = mgr(m).ok_or(Error::Invalid)?;
        let url = c_str(url)?;
        let id = create(m, url)?;
        Ok(new_handle(m, id))
    })())
}

/// Listens on `url` ("tcp://127.0.0.1:8000"; port 0 picks a free one, see
/// tern_conn_local_port). Accepted connections inherit `fn` and `user`. Returns the
/// listener, or NULL (tern_last_error: TERN_EINVAL for a bad URL, also one with a
/// path other than "/" or a query; TERN_EADDRINUSE if the address is taken,
/// TERN_EIO if it cannot be bound otherwise, tern_last_os_error the errno;
/// TERN_ECLOSED once tern_mgr_shutdown was called). Its TERN_EV_OPEN comes at the
/// next poll. Loop thread.
#[no_mangle]
pub extern "C" fn tern_listen(m: *mut tern_mgr, url: *const c_char, r#fn: tern_handler, user: *mut c_void) -> *mut tern_conn {
    boundary! { open_with(m, url, |m, url| m.listen(url, CHandler::boxed(r#fn), user as usize)) }
}

/// Connects to `url` ("tcp://host:port"). Host names are resolved on a helper
/// thread, never blocking the loop; the attempt is bounded by
/// TERN_OPT_CONNECT_TIMEOUT_MS. Events: OPEN, then CONNECT, or ERROR then CLOSE
/// (tern_conn_error inside it: TERN_ECONNREFUSED, TERN_ETIMEDOUT, TERN_ENAME,
/// TERN_EHOSTUNREACH, ...). Data sent before CONNECT is queued. NULL on a bad URL
/// (TERN_EINVAL; also for a path other than "/" or a query, which mean nothing to
/// TCP) and after tern_mgr_shutdown (TERN_ECLOSED). Loop thread.
#[no_mangle]
pub extern "C" fn tern_connect(m: *mut tern_mgr, url: *const c_char, r#fn: tern_handler, user: *mut c_void) -> *mut tern_conn {
    boundary! { open_with(m, url, |m, url| m.connect(url, CHandler::boxed(r#fn), user as usize)) }
}

/// The connection's id (0 for NULL): use it to reach the connection from other
/// threads (tern_remote_*) or later (tern_conn_lookup). Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_get_id(c: *const tern_conn) -> tern_conn_id {
    boundary! { conn(c).map_or(0, |(_, id)| id) }
}

/// The connection with this id, or NULL if it is gone. Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_lookup(m: *mut tern_mgr, id: tern_conn_id) -> *mut tern_conn {
    boundary! {
        match mgr(m).and_then(|m| m.attachment(id)) {
            Some(a) if a != 0 => a as *mut tern_conn,
            _ => std::ptr::null_mut(),
        }
    }
}

/// The manager a connection belongs to. Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_mgr(c: *const tern_conn) -> *mut tern_mgr {
    boundary! { conn(c).map_or(std::ptr::null_mut(), |(m, _)| m as *const Manager as *mut tern_mgr) }
}

/// The connection's user pointer (accepted connections start with their
/// listener's). Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_user(c: *const tern_conn) -> *mut c_void {
    boundary! { conn(c).ok().and_then(|(m, id)| m.user(id)).unwrap_or(0) as *mut c_void }
}

/// Replaces the connection's user pointer (tern never dereferences it). Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_set_user(c: *mut tern_conn, user: *mut c_void) {
    boundary! {
        if let Ok((m, id)) = conn(c) {
            let _ = m.set_user(id, user as usize);
        }
    }
}

/// Queues a copy of `len` bytes at `data` (tern copies; the caller keeps `data`).
/// Written after the current callback returns, in order with everything else queued.
/// TERN_ECLOSED if the connection is closing or gone; TERN_EFULL if it would pass
/// TERN_OPT_MAX_SEND_QUEUE (the connection is then closed with TERN_EV_ERROR);
/// TERN_EPROTO on a listener and on a connection that speaks HTTP (server or
/// client: tern frames its bytes; answer with tern_http_reply and friends). Loop
/// thread.
#[no_mangle]
pub extern "C" fn tern_send(c: *mut tern_conn, data: *const c_void, len: usize) -> c_int {
    boundary! {
        status(conn(c).and_then(|(m, id)| m.send(id, c_slice(data, len)?)))
    }
}

/// Queues `take` without copying; its reference is released once its last byte is
/// written or the connection discards it (and on any error: TERN_EPROTO on an HTTP
/// connection releases it too). Same errors as tern_send. Loop thread.
#[no_mangle]
pub extern "C" fn tern_send_bytes(c: *mut tern_conn, take: *mut tern_bytes) -> c_int {
    boundary! {
        let b = take_ref(take);
        status(conn(c).and_then(|(m, id)| m.send_bytes(id, b.ok_or(Error::Invalid)?)))
    }
}

/// Bytes queued and not yet written (0 if gone). Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_queued(c: *const tern_conn) -> usize {
    boundary! { conn(c).and_then(|(m, id)| m.queued(id)).unwrap_or(0) }
}

/// Drops the first `n` received bytes (those offered by TERN_EV_READ); bytes not
/// consumed are offered again with the next READ. Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_consume(c: *mut tern_conn, n: usize) -> c_int {
    boundary! { status(conn(c).and_then(|(m, id)| m.consume(id, n))) }
}

/// Graceful close: stops reading, writes what is queued (within
/// TERN_OPT_CLOSE_TIMEOUT_MS), then closes; TERN_EV_CLOSE follows. Idempotent.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_close(c: *mut tern_conn) -> c_int {
    boundary! { status(conn(c).and_then(|(m, id)| m.close(id))) }
}

/// Immediate close: the queue is discarded (its buffers released now), then
/// TERN_EV_CLOSE follows after the current callback. Loop thread.
#[no_mangle]
pub extern "C" fn tern_close_now(c: *mut tern_conn) -> c_int {
    boundary! { status(conn(c).and_then(|(m, id)| m.close_now(id))) }
}

/// The local port of a listener or connection, or a negative TERN_E* code.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_local_port(c: *const tern_conn) -> c_int {
    boundary! {
        match conn(c).map(|(m, id)| m.local_addr(id)) {
            Ok(Some(a)) => c_int::from(a.port()),
            Ok(None) => Error::Closed.code(),
            Err(e) => e.code(),
        }
    }
}

fn addr_to_c(a: Option<std::net::SocketAddr>, buf: *mut c_char, len: usize) -> c_int {
    match a {
        Some(a) => write_c_string(&a.to_string(), buf, len).unwrap_or_else(|e| e.code()),
        None => Error::Closed.code(),
    }
}

/// Writes the peer's address ("1.2.3.4:80" or "[::1]:80") with a NUL into `buf`
/// of `len` bytes; returns its length, or TERN_EINVAL if it does not fit, or
/// TERN_ECLOSED. Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_peer_addr(c: *const tern_conn, buf: *mut c_char, len: usize) -> c_int {
    boundary! {
        match conn(c) {
            Ok((m, id)) => addr_to_c(m.peer_addr(id), buf, len),
            Err(e) => e.code(),
        }
    }
}

/// Like tern_conn_peer_addr, for the local address. Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_local_addr(c: *const tern_conn, buf: *mut c_char, len: usize) -> c_int {
    boundary! {
        match conn(c) {
            Ok((m, id)) => addr_to_c(m.local_addr(id), buf, len),
            Err(e) => e.code(),
        }
    }
}

/// Inside TERN_EV_ERROR: the TERN_E* code of the error being delivered
/// (TERN_ECONNREFUSED, TERN_ECONNRESET, TERN_ETIMEDOUT, TERN_ENAME, TERN_EFULL for
/// the send queue limit, TERN_EPROTO for a peer that broke the protocol, ...); the
/// message stays ev_data. TERN_OK outside TERN_EV_ERROR (and for NULL). Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_error(c: *const tern_conn) -> c_int {
    boundary! { conn(c).ok().and_then(|(m, id)| m.conn_error(id)).map_or(0, |(e, _)| e.code()) }
}

/// Inside TERN_EV_ERROR: the OS error number (errno) behind the error being
/// delivered (ECONNREFUSED, ECONNRESET, EPIPE, ...), or 0 when it had none (a
/// timeout, a protocol error). 0 outside TERN_EV_ERROR. Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_os_error(c: *const tern_conn) -> c_int {
    boundary! { conn(c).ok().and_then(|(m, id)| m.conn_error(id)).map_or(0, |(_, os)| os) }
}
