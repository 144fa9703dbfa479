//! `tern_remote`: how other threads reach a manager.

use super::boundary::{from_boxed, handle_or_null, status, to_boxed, try_ref, Castable, SendPtr};
use super::bytes::{take_ref, tern_bytes};
use super::conn::tern_conn_id;
use super::mgr::{mgr, tern_mgr};
use crate::error::Error;
use crate::{Manager, Msg, Remote};
use std::ffi::{c_char, c_int, c_void};

// tern.h: Remotes: other threads
// The only way other threads reach a manager. Every tern_remote_* call is safe from
// any thread, never blocks on the loop (it queues a message and wakes the loop), keeps
// order per remote and connection, returns TERN_EFULL past TERN_OPT_MAX_POSTED and
// TERN_ECLOSED once the manager is gone; a remote stays safe to call after that.

/// A thread-safe handle to post to one manager (a handle; free it with
/// tern_remote_free). Stays valid after the manager is freed: calls then return
/// TERN_ECLOSED.
pub struct tern_remote {
    _private: [u8; 0],
}

impl Castable for tern_remote {
    type Rust = Remote;
}

/// A function run on the loop thread by tern_remote_call.
pub type tern_call_fn = Option<unsafe extern "C" fn(m: *mut tern_mgr, user: *mut c_void)>;

fn remote<'a>(r: *mut tern_remote) -> Option<&'a Remote> {
    try_ref(r)
}

/// A new remote for this manager; the caller owns it (tern_remote_free). NULL if the
/// manager is being freed. Loop thread (the remote itself may then go to any thread).
#[no_mangle]
pub extern "C" fn tern_mgr_remote(m: *mut tern_mgr) -> *mut tern_remote {
    boundary! { handle_or_null(mgr(m).ok_or(Error::Invalid).and_then(Manager::remote).map(to_boxed)) }
}

/// Another remote for the same manager (the caller owns it). Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_clone(r: *mut tern_remote) -> *mut tern_remote {
    boundary! { handle_or_null(remote(r).cloned().ok_or(Error::Invalid).map(to_boxed)) }
}

/// Frees a remote; messages it posted are still delivered. NULL is ignored.
/// Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_free(r: *mut tern_remote) {
    boundary! { drop(from_boxed(r)) }
}

fn post(r: *mut tern_remote, msg: Msg) -> c_int {
    match remote(r) {
        Some(r) => status(r.post(msg)),
        None => Error::Invalid.code(),
    }
}

/// Queues `take` for connection `id` (consumed whatever this returns). TERN_OK once
/// posted (the loop wakes at once); TERN_EFULL past TERN_OPT_MAX_POSTED;
/// TERN_ECLOSED after the manager was freed (or shut down). If the connection is
/// gone when the loop gets the message, or speaks HTTP (whose bytes tern frames, as
/// tern_send refuses them), the buffer is released there (the latter with a
/// warning in the log). Order is kept per remote and connection. Any thread; never
/// blocks on the loop.
#[no_mangle]
pub extern "C" fn tern_remote_send(r: *mut tern_remote, id: tern_conn_id, take: *mut tern_bytes) -> c_int {
    boundary! {
        match take_ref(take) {
            Some(b) => post(r, Msg::Send(id, b)),
            None => Error::Invalid.code(),
        }
    }
}

/// Like tern_remote_send, framed as one WebSocket message with opcode `op`
/// (TERN_WS_TEXT: must be UTF-8, checked here; TERN_WS_BINARY; TERN_WS_PING,
/// TERN_WS_PONG, TERN_WS_CLOSE: at most 125 bytes). `take` is consumed whatever this
/// returns. On a connection that is gone or not a WebSocket when the loop gets it, the
/// buffer is released there. Order is kept per remote and connection. Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_ws_send(r: *mut tern_remote, id: tern_conn_id, op: c_int, take: *mut tern_bytes) -> c_int {
    boundary! {
        let b = take_ref(take);
        status((|| {
            let r = remote(r).ok_or(Error::Invalid)?;
            r.ws_send(id, super::ws::op_u8(op)?, b.ok_or(Error::Invalid)?)
        })())
    }
}

/// Publishes `take` (consumed) as one message with opcode `op` (TERN_WS_TEXT, UTF-8
/// checked here, or TERN_WS_BINARY) to every WebSocket connection subscribed to
/// `topic` (tern_ws_subscribe) when the loop handles it: one frame queued by
/// reference on each, its free callback run once all of them wrote it or dropped it.
/// TERN_OK once posted; TERN_EFULL past TERN_OPT_MAX_POSTED; TERN_ECLOSED after the
/// manager was freed. Order is kept with this remote's other posts. Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_ws_publish(r: *mut tern_remote, topic: *const c_char, op: c_int, take: *mut tern_bytes) -> c_int {
    boundary! {
        let b = take_ref(take);
        status((|| {
            let r = remote(r).ok_or(Error::Invalid)?;
            r.ws_publish(super::boundary::c_str(topic)?, super::ws::op_u8(op)?, b.ok_or(Error::Invalid)?)
        })())
    }
}

/// Delivers TERN_EV_WAKEUP to connection `id` on the loop thread, with the bytes of
/// `take` as its `tern_str *` ({NULL,0} when `take` is NULL); the buffer is released
/// after the handler returns (or when the connection is gone). Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_wakeup(r: *mut tern_remote, id: tern_conn_id, take: *mut tern_bytes) -> c_int {
    boundary! { post(r, Msg::Wakeup(id, take_ref(take))) }
}

/// Gracefully closes connection `id` (as tern_close) from another thread. Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_close(r: *mut tern_remote, id: tern_conn_id) -> c_int {
    boundary! { post(r, Msg::Close(id)) }
}

/// Runs `fn(m, user)` on the loop thread, inside tern_mgr_poll (or inside
/// tern_mgr_free if the manager is freed first, when tern calls on `m` return
/// TERN_ECLOSED). Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_call(r: *mut tern_remote, r#fn: tern_call_fn, user: *mut c_void) -> c_int {
    boundary! {
        let Some(f) = r#fn else { return Error::Invalid.code() };
        let user = SendPtr(user);
        post(r, Msg::Call(Box::new(move |m: &Manager| {
            let user = user;
            // SAFETY: the embedder's function with its own pointer, on the loop thread.
            unsafe { f(m as *const Manager as *mut tern_mgr, user.0) }
        })))
    }
}
