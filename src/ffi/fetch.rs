//! `tern_fetch`: outbound HTTP requests with a keep-alive pool (a request, not a
//! handle: it lives from tern_fetch until its TERN_FETCH_DONE callback returns).

use super::boundary::{c_slice, c_str, set_last_error, status, try_ref, SendPtr};
use super::bytes::{take_ref, tern_bytes};
use super::conn::{conn, tern_conn, tern_str};
use super::http::tern_http_msg;
use super::mgr::{mgr, tern_mgr};
use super::remote::tern_remote;
use crate::bytes::Bytes;
use crate::error::{Error, Result};
use crate::fetch::{next_fetch_id, FetchCb, FetchEvent, FetchOpts};
use crate::{Manager, Msg, Remote};
use std::ffi::{c_char, c_int, c_void};
use std::rc::Rc;
use std::time::Duration;

// tern.h: Fetch (HTTP requests with a keep-alive pool)
// tern_fetch sends one request to an http:// or https:// URL over a connection from the
// manager's keep-alive pool (per scheme, host and port; bounded, with an idle timeout and
// a bounded wait queue) and reports through one callback, on the loop thread: the
// response whole, or streamed (TERN_FETCH_STREAM), and TERN_FETCH_DONE exactly once,
// whatever happens. Options are a list of TERN_FETCH_* key/value pairs ended by 0.
// Fetches can be cancelled, started from other threads (tern_remote_fetch), and stream
// their request bodies with flow control; tern_conn_pause holds any connection's input.

/// Identifies a fetch; unique in the process, never reused; 0 means none.
pub type tern_fetch_id = u64;

/// Streamed responses (TERN_FETCH_STREAM): the head; `resp` has the status and the
/// fields (tern_http_status, tern_http_header, ...), valid during the call.
pub const TERN_FETCH_HEAD: c_int = 1;
/// Streamed responses: `data` is the next piece of the body (de-chunked), valid
/// during the call.
pub const TERN_FETCH_BODY: c_int = 2;
/// Streamed request bodies (TERN_FETCH_STREAM_BODY): everything written so far
/// went to the kernel (write more now).
pub const TERN_FETCH_DRAIN: c_int = 3;
/// The end, exactly once, last, whatever happened. `code` TERN_OK: `resp` is the
/// response (its body whole, or empty when streamed). Otherwise `resp` is NULL,
/// `code` says why (TERN_ECONNREFUSED, TERN_ECONNRESET, TERN_ENAME, TERN_ETIMEDOUT,
/// TERN_EPROTO for an answer that is not valid HTTP, TERN_ETLS, TERN_EFULL for a
/// body past TERN_FETCH_MAX_SIZE or a full wait queue, TERN_EREDIRECTS,
/// TERN_ECANCELED, TERN_ECLOSED when the connection closed early or the manager
/// was freed) and `data` is a reason to show a person.
pub const TERN_FETCH_DONE: c_int = 4;

/// Keys of the `opts` list (pairs of int64_t key, value, ended by a key of 0).
/// The connection must be established within this long (ms; default: the
/// manager's TERN_OPT_CONNECT_TIMEOUT_MS).
pub const TERN_FETCH_CONNECT_TIMEOUT_MS: i64 = 1;
/// The response head must come within this long of the request going out, and each
/// body piece within this long of the one before (ms; default: none).
pub const TERN_FETCH_RESPONSE_TIMEOUT_MS: i64 = 2;
/// The whole fetch must be done within this long (ms; default: none).
pub const TERN_FETCH_TIMEOUT_MS: i64 = 3;
/// Follow at most this many redirects (301, 302, 303, 307, 308 with a Location;
/// 303, and 301/302 after a POST, become a GET without body); one more ends the
/// fetch with TERN_EREDIRECTS. 0 (default): redirects are responses like others.
pub const TERN_FETCH_FOLLOW: i64 = 4;
/// The largest body collected (bytes; default TERN_OPT_MAX_BODY_BYTES); a larger
/// one ends the fetch with TERN_EFULL. Streamed bodies have no such bound.
pub const TERN_FETCH_MAX_SIZE: i64 = 5;
/// 1: deliver TERN_FETCH_HEAD, then TERN_FETCH_BODY pieces as they arrive, then
/// TERN_FETCH_DONE (memory: one receive buffer, whatever the body's size).
pub const TERN_FETCH_STREAM: i64 = 6;
/// 1: the request body follows in pieces (tern_fetch_write, then tern_fetch_end),
/// sent chunked unless `headers` has a Content-Length; `take` must be NULL. Such a
/// request is never retried and its redirects are not followed.
pub const TERN_FETCH_STREAM_BODY: i64 = 7;

/// A fetch's callback (see TERN_FETCH_HEAD, _BODY, _DRAIN, _DONE): runs on the
/// loop thread, inside tern_mgr_poll (or tern_mgr_free). It may start, cancel or
/// write to fetches.
pub type tern_fetch_fn = Option<unsafe extern "C" fn(m: *mut tern_mgr, id: tern_fetch_id, ev: c_int, code: c_int, resp: *const tern_http_msg, data: tern_str, user: *mut c_void)>;

/// Reads the (key, value) list; `Invalid` for an unknown key or a bad value.
fn parse_opts(p: *const i64) -> Result<FetchOpts> {
    let mut o = FetchOpts::default();
    if p.is_null() {
        return Ok(o);
    }
    let ms = |v: i64| u64::try_from(v).ok().filter(|v| *v > 0).map(Duration::from_millis).ok_or(Error::Invalid);
    for i in 0..64 {
        // SAFETY: the caller's list, ended by a 0 key (at most 64 pairs read).
        let (k, v) = unsafe { (*p.add(2 * i), *p.add(2 * i + 1)) };
        match k {
            0 => return Ok(o),
            TERN_FETCH_CONNECT_TIMEOUT_MS => o.connect_timeout = Some(ms(v)?),
            TERN_FETCH_RESPONSE_TIMEOUT_MS => o.response_timeout = Some(ms(v)?),
            TERN_FETCH_TIMEOUT_MS => o.total_timeout = Some(ms(v)?),
            TERN_FETCH_FOLLOW => o.follow = u32::try_from(v).map_err(|_| Error::Invalid)?,
            TERN_FETCH_MAX_SIZE => o.max_size = Some(usize::try_from(v).map_err(|_| Error::Invalid)?),
            TERN_FETCH_STREAM => o.stream = flag(v)?,
            TERN_FETCH_STREAM_BODY => o.stream_body = flag(v)?,
            _ => return Err(Error::Invalid),
        }
    }
    Err(Error::Invalid)
}

fn flag(v: i64) -> Result<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::Invalid),
    }
}

/// Adapts a C callback to the core's.
fn c_callback(f: unsafe extern "C" fn(*mut tern_mgr, tern_fetch_id, c_int, c_int, *const tern_http_msg, tern_str, *mut c_void), user: SendPtr) -> FetchCb {
    Rc::new(move |m: &Manager, id, ev: FetchEvent<'_>| {
        let mp = m as *const Manager as *mut tern_mgr;
        let none = tern_str::from_slice(b"");
        let as_msg = |h: &crate::http::msg::HttpMsg<'_>| h as *const crate::http::msg::HttpMsg<'_> as *const tern_http_msg;
        // SAFETY (all calls): the embedder's callback with its own pointer, on the loop
        // thread, with data that outlives the call.
        match ev {
            FetchEvent::Head(h) => unsafe { f(mp, id, TERN_FETCH_HEAD, 0, as_msg(h), none, user.0) },
            FetchEvent::Body(b) => unsafe { f(mp, id, TERN_FETCH_BODY, 0, std::ptr::null(), tern_str::from_slice(b), user.0) },
            FetchEvent::Drain => unsafe { f(mp, id, TERN_FETCH_DRAIN, 0, std::ptr::null(), none, user.0) },
            FetchEvent::Done(Ok(h)) => unsafe { f(mp, id, TERN_FETCH_DONE, 0, as_msg(h), none, user.0) },
            FetchEvent::Done(Err((e, why))) => unsafe { f(mp, id, TERN_FETCH_DONE, e.code(), std::ptr::null(), tern_str::from_slice(why.as_bytes()), user.0) },
        }
    })
}

/// What a fetch call owns once its arguments are read (sendable to the loop).
struct Request {
    method: String,
    url: String,
    headers: Vec<u8>,
    body: Option<Bytes>,
    opts: FetchOpts,
}

fn read_request(method: *const c_char, url: *const c_char, headers: *const c_char, body: Option<Bytes>, opts: *const i64) -> Result<Request> {
    let method = if method.is_null() { "GET" } else { c_str(method)? };
    let headers = if headers.is_null() { b"" } else { c_str(headers)?.as_bytes() };
    let opts = parse_opts(opts)?;
    Ok(Request { method: method.to_string(), url: c_str(url)?.to_string(), headers: headers.to_vec(), body, opts })
}

fn id_or_zero(r: Result<u64>) -> u64 {
    r.unwrap_or_else(|e| {
        set_last_error(e);
        0
    })
}

/// Starts a request: `method` (NULL: "GET") to `url` ("http://host[:port]/path?q"
/// or "https://..."; names resolve off the loop thread, with a cache), extra
/// `headers` (lines each ending in "\r\n", or NULL; tern writes Host and the
/// framing), the body `take` (consumed whatever this returns; NULL for none) and
/// `opts` (NULL, or TERN_FETCH_* key/value pairs ended by 0). The connection comes
/// from the manager's keep-alive pool for the URL's scheme, host and port (at most
/// TERN_OPT_FETCH_MAX_CONNS_PER_HOST; beyond, the request waits in a queue of
/// TERN_OPT_FETCH_MAX_QUEUED_PER_HOST); an idempotent request (GET, HEAD, PUT,
/// DELETE, OPTIONS, TRACE) that a pooled connection lost before any answer (the
/// server had closed it) is sent once more on a new connection. Returns the fetch's
/// id: `fn` then runs exactly once with TERN_FETCH_DONE (and before it the events
/// `opts` ask for). Returns 0 when nothing started (and `fn` will never run):
/// tern_last_error TERN_EINVAL (URL, method, headers, options, NULL fn), TERN_EFULL
/// (the wait queue), TERN_ECLOSED (tern_mgr_shutdown was called). Loop thread.
#[no_mangle]
pub extern "C" fn tern_fetch(m: *mut tern_mgr, method: *const c_char, url: *const c_char, headers: *const c_char, take: *mut tern_bytes, opts: *const i64, r#fn: tern_fetch_fn, user: *mut c_void) -> tern_fetch_id {
    boundary! {
        let body = take_ref(take);
        id_or_zero((|| {
            let m = mgr(m).ok_or(Error::Invalid)?;
            let f = r#fn.ok_or(Error::Invalid)?;
            let r = read_request(method, url, headers, body, opts)?;
            let id = next_fetch_id();
            m.fetch(id, &r.method, &r.url, &r.headers, r.body, r.opts, c_callback(f, SendPtr(user)))?;
            Ok(id)
        })())
    }
}

/// Starts a fetch from any thread: like tern_fetch, run by the loop (where `fn`
/// runs, exactly once: a fetch that cannot start there ends with TERN_FETCH_DONE
/// and the reason). Returns its id (usable with tern_remote_fetch_cancel at once),
/// or 0: tern_last_error TERN_EINVAL, TERN_EFULL (TERN_OPT_MAX_POSTED), TERN_ECLOSED
/// (the manager is gone); then `fn` never runs. `take` is consumed either way.
/// Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_fetch(r: *mut tern_remote, method: *const c_char, url: *const c_char, headers: *const c_char, take: *mut tern_bytes, opts: *const i64, r#fn: tern_fetch_fn, user: *mut c_void) -> tern_fetch_id {
    boundary! {
        let body = take_ref(take);
        id_or_zero((|| {
            let remote: &Remote = try_ref(r).ok_or(Error::Invalid)?;
            let f = r#fn.ok_or(Error::Invalid)?;
            let req = read_request(method, url, headers, body, opts)?;
            let id = next_fetch_id();
            let user = SendPtr(user);
            remote.post(Msg::Call(Box::new(move |m: &Manager| {
                let cb = c_callback(f, user);
                let Request { method, url, headers, body, opts } = req;
                if let Err(e) = m.fetch(id, &method, &url, &headers, body, opts, cb.clone()) {
                    cb(m, id, FetchEvent::Done(Err((e, "the fetch could not be started"))));
                }
            })))?;
            Ok(id)
        })())
    }
}

/// Cancels a fetch: its connection (if it had one) is closed at once and its
/// callback runs with TERN_FETCH_DONE and TERN_ECANCELED at the next poll (never
/// inside this call). TERN_ECLOSED if the fetch is unknown or already done (its
/// DONE has run or is about to). Loop thread.
#[no_mangle]
pub extern "C" fn tern_fetch_cancel(m: *mut tern_mgr, id: tern_fetch_id) -> c_int {
    boundary! { status(mgr(m).ok_or(Error::Invalid).and_then(|m| m.fetch_cancel(id))) }
}

/// Cancels a fetch from any thread (as tern_fetch_cancel, on the loop). TERN_OK once
/// posted (a fetch already done is left alone), TERN_EFULL, TERN_ECLOSED. Any thread.
#[no_mangle]
pub extern "C" fn tern_remote_fetch_cancel(r: *mut tern_remote, id: tern_fetch_id) -> c_int {
    boundary! {
        let Some(remote) = try_ref::<tern_remote>(r) else { return Error::Invalid.code() };
        status(remote.post(Msg::Call(Box::new(move |m: &Manager| {
            let _ = m.fetch_cancel(id);
        }))))
    }
}

/// Appends a copy of `len` bytes to a TERN_FETCH_STREAM_BODY request's body
/// (buffered until the fetch has a connection). TERN_EPROTO if the fetch does not
/// stream its body or it was ended; TERN_EINVAL past a declared Content-Length;
/// TERN_ECLOSED if the fetch is done. Watch tern_fetch_queued and wait for
/// TERN_FETCH_DRAIN to keep memory bounded. Loop thread.
#[no_mangle]
pub extern "C" fn tern_fetch_write(m: *mut tern_mgr, id: tern_fetch_id, data: *const c_void, len: usize) -> c_int {
    boundary! {
        status((|| mgr(m).ok_or(Error::Invalid)?.fetch_write(id, Bytes::copy_from(c_slice(data, len)?)))())
    }
}

/// Ends a TERN_FETCH_STREAM_BODY request's body (short of a declared
/// Content-Length: TERN_EPROTO, and the fetch fails). Errors as tern_fetch_write.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_fetch_end(m: *mut tern_mgr, id: tern_fetch_id) -> c_int {
    boundary! { status(mgr(m).ok_or(Error::Invalid).and_then(|m| m.fetch_end(id))) }
}

/// Request body bytes of a fetch not yet written to the kernel (0 if done).
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_fetch_queued(m: *mut tern_mgr, id: tern_fetch_id) -> usize {
    boundary! { mgr(m).and_then(|m| m.fetch_queued(id).ok()).unwrap_or(0) }
}

/// `paused` 1: stop reading the fetch's response (no TERN_FETCH_BODY until resumed;
/// the server's sending stops at TCP's window: how a proxy keeps a fast backend
/// from outrunning a slow client); 0: resume. Timeouts still run. TERN_ECLOSED if
/// the fetch is done. Loop thread.
#[no_mangle]
pub extern "C" fn tern_fetch_pause(m: *mut tern_mgr, id: tern_fetch_id, paused: c_int) -> c_int {
    boundary! { status(mgr(m).ok_or(Error::Invalid).and_then(|m| m.fetch_pause(id, paused != 0))) }
}

/// What the fetch client holds, for leak checks: fetches whose DONE has not run,
/// pooled connections open (connecting, busy or idle) and, of them, idle. Any
/// pointer may be NULL. Loop thread.
#[no_mangle]
pub extern "C" fn tern_fetch_stats(m: *mut tern_mgr, pending: *mut usize, conns: *mut usize, idle: *mut usize) -> c_int {
    boundary! {
        let Some(m) = mgr(m) else { return Error::Invalid.code() };
        let s = m.fetch_stats();
        for (p, v) in [(pending, s.pending), (conns, s.conns), (idle, s.idle)] {
            if !p.is_null() {
                // SAFETY: the caller's pointer to a size_t.
                unsafe { *p = v };
            }
        }
        0
    }
}

/// `paused` 1: stop reading from connection `c` (no more input events; the peer's
/// sending stops at TCP's window); 0: resume (what it holds is looked at again).
/// Output, timers and closes go on; a peer's EOF or reset is seen once resumed.
/// TERN_ECLOSED if it is gone. Loop thread.
#[no_mangle]
pub extern "C" fn tern_conn_pause(c: *mut tern_conn, paused: c_int) -> c_int {
    boundary! { status(conn(c).and_then(|(m, id)| m.hold_input(id, paused != 0))) }
}
