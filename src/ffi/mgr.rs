//! `tern_mgr`: the event loop and its options.

use super::boundary::{set_last_error, status, to_boxed, try_ref, Castable};
use crate::error::Error;
use crate::options::Opt;
use crate::Manager;
use std::ffi::c_int;
use std::time::Duration;

// tern.h: Manager and its options
// A tern_mgr is one event loop and every connection on it. It belongs to the thread
// that calls tern_mgr_poll (the loop thread); every callback runs there, inside
// tern_mgr_poll (or inside tern_mgr_free, for the final CLOSE events). The TERN_OPT_*
// limits and switches are per manager, each with a safe default; tern_mgr_set refuses
// values that would mean "unbounded". Stop with tern_mgr_shutdown (graceful) and
// tern_mgr_free (hard).

/// An event loop and every connection on it (a handle). It belongs to the thread
/// that polls it; other threads use a tern_remote.
pub struct tern_mgr {
    _private: [u8; 0],
}

impl Castable for tern_mgr {
    type Rust = Manager;
}

/// A keep-alive connection with no request in flight closes after this long (ms).
pub const TERN_OPT_IDLE_TIMEOUT_MS: c_int = 1;
/// A request head must arrive within this long of its first byte (ms).
pub const TERN_OPT_HEADER_TIMEOUT_MS: c_int = 2;
/// Largest request head (request line plus headers), bytes.
pub const TERN_OPT_MAX_HEADER_BYTES: c_int = 3;
/// Largest request body held in memory, bytes.
pub const TERN_OPT_MAX_BODY_BYTES: c_int = 4;
/// Accepted connections alive at once; further ones are closed on accept.
pub const TERN_OPT_MAX_CONNS: c_int = 5;
/// Bytes queued in memory per connection (file bytes waiting for sendfile do not
/// count); past it the connection is closed with TERN_EV_ERROR and its buffers
/// released (default 16 MiB).
pub const TERN_OPT_MAX_SEND_QUEUE: c_int = 6;
/// Messages waiting from remotes; past it tern_remote_* returns TERN_EFULL
/// (default 8192). Settable only before the first tern_mgr_remote.
pub const TERN_OPT_MAX_POSTED: c_int = 7;
/// A deferred HTTP request not answered within this long gets 503 (ms).
pub const TERN_OPT_DEFER_TIMEOUT_MS: c_int = 8;
/// Largest WebSocket message received (after inflating), bytes (default 1 MiB);
/// past it the connection is closed with 1009.
pub const TERN_OPT_MAX_WS_MESSAGE: c_int = 9;
/// An outgoing connection must be established within this long (ms, default 15000).
pub const TERN_OPT_CONNECT_TIMEOUT_MS: c_int = 10;
/// Unconsumed received bytes kept per connection (default 1 MiB); when full,
/// reading pauses until the handler consumes some.
pub const TERN_OPT_MAX_RECV_BUFFER: c_int = 11;
/// A tern_close that cannot flush its queue within this long becomes a
/// tern_close_now, with TERN_EV_ERROR (ms, default 10000).
pub const TERN_OPT_CLOSE_TIMEOUT_MS: c_int = 12;
/// 1: deliver TERN_EV_HTTP_HEAD before reading a request body, so the handler can
/// take large bodies in pieces (tern_http_stream_body); 0 (default): off.
pub const TERN_OPT_HTTP_HEAD_EVENTS: c_int = 13;
/// The largest body taken in pieces through tern_http_stream_body; larger ones get
/// 413 (bytes, default 64 GiB). Buffered bodies obey TERN_OPT_MAX_BODY_BYTES.
pub const TERN_OPT_MAX_STREAM_BODY_BYTES: c_int = 14;
/// 1: tern_http_serve_dir answers a directory without index.html with an HTML
/// listing (names escaped); 0 (default): 403.
pub const TERN_OPT_DIR_LISTING: c_int = 15;
/// 1: tern_http_serve_dir follows symlinks that lead out of the root directory;
/// 0 (default): such requests get 403. `..` and its encodings are refused either way.
pub const TERN_OPT_FOLLOW_SYMLINKS_OUT: c_int = 16;
/// permessage-deflate (RFC 7692) on WebSocket servers, when the client offers it:
/// 0 (default) off; 1 on, without context takeover either way (no compressor state
/// kept between messages: little memory per connection); 2 on, with context
/// takeover when the client allows it (better ratio, about 400 KiB per connection).
pub const TERN_OPT_WS_DEFLATE: c_int = 21;
/// 1: WebSocket clients offer permessage-deflate (without context takeover); 0
/// (default): they do not.
pub const TERN_OPT_WS_CLIENT_DEFLATE: c_int = 22;
/// A WebSocket client's handshake must be answered within this long (ms, default
/// 10000).
pub const TERN_OPT_WS_HANDSHAKE_TIMEOUT_MS: c_int = 23;
/// After tern_ws_close (or the peer's close), the closing handshake must finish
/// within this long, else the connection is closed anyway (ms, default 5000).
pub const TERN_OPT_WS_CLOSE_TIMEOUT_MS: c_int = 24;
/// 1: the HTTP server takes a bare LF (no CR) as a line end in request heads, for
/// old clients; 0 (default): a request head with a bare LF gets 400 and the
/// connection closes (a proxy in front may read such a head differently, and a
/// field after the bare LF would smuggle a second request past it).
pub const TERN_OPT_HTTP_LENIENT_LF: c_int = 17;
/// 1: the HTTP client takes a bare LF as a line end in response heads; 0 (default):
/// such a response is malformed: TERN_EV_ERROR, then TERN_EV_CLOSE.
pub const TERN_OPT_HTTP_CLIENT_LENIENT_LF: c_int = 18;
/// A TLS handshake must finish within this long of the TCP connection (ms, default
/// 10000); else the connection ends with TERN_EV_ERROR "TLS handshake timed out".
pub const TERN_OPT_TLS_HANDSHAKE_TIMEOUT_MS: c_int = 30;
/// tern_fetch: connections to one origin (scheme, host, port) open at once,
/// connecting, busy or idle (default 256); further requests wait.
pub const TERN_OPT_FETCH_MAX_CONNS_PER_HOST: c_int = 40;
/// tern_fetch: idle keep-alive connections kept per origin (default 32).
pub const TERN_OPT_FETCH_MAX_IDLE_PER_HOST: c_int = 41;
/// tern_fetch: idle keep-alive connections kept in all (default 1024).
pub const TERN_OPT_FETCH_MAX_IDLE: c_int = 42;
/// tern_fetch: an idle pooled connection is closed after this long (ms, default
/// 30000).
pub const TERN_OPT_FETCH_IDLE_TIMEOUT_MS: c_int = 43;
/// tern_fetch: requests waiting for a connection to one origin (default 1024);
/// past it tern_fetch fails with TERN_EFULL.
pub const TERN_OPT_FETCH_MAX_QUEUED_PER_HOST: c_int = 44;
/// Host names resolved are reused for this long (ms, default 30000; 0: every
/// connection asks the resolver again).
pub const TERN_OPT_DNS_TTL_MS: c_int = 45;

// The header's numbers are the core's.
const _: () = {
    assert!(TERN_OPT_IDLE_TIMEOUT_MS == Opt::IdleTimeoutMs as c_int);
    assert!(TERN_OPT_HEADER_TIMEOUT_MS == Opt::HeaderTimeoutMs as c_int);
    assert!(TERN_OPT_MAX_HEADER_BYTES == Opt::MaxHeaderBytes as c_int);
    assert!(TERN_OPT_MAX_BODY_BYTES == Opt::MaxBodyBytes as c_int);
    assert!(TERN_OPT_MAX_CONNS == Opt::MaxConns as c_int);
    assert!(TERN_OPT_MAX_SEND_QUEUE == Opt::MaxSendQueue as c_int);
    assert!(TERN_OPT_MAX_POSTED == Opt::MaxPosted as c_int);
    assert!(TERN_OPT_DEFER_TIMEOUT_MS == Opt::DeferTimeoutMs as c_int);
    assert!(TERN_OPT_MAX_WS_MESSAGE == Opt::MaxWsMessage as c_int);
    assert!(TERN_OPT_CONNECT_TIMEOUT_MS == Opt::ConnectTimeoutMs as c_int);
    assert!(TERN_OPT_MAX_RECV_BUFFER == Opt::MaxRecvBuffer as c_int);
    assert!(TERN_OPT_CLOSE_TIMEOUT_MS == Opt::CloseTimeoutMs as c_int);
    assert!(TERN_OPT_HTTP_HEAD_EVENTS == Opt::HttpHeadEvents as c_int);
    assert!(TERN_OPT_MAX_STREAM_BODY_BYTES == Opt::MaxStreamBodyBytes as c_int);
    assert!(TERN_OPT_DIR_LISTING == Opt::DirListing as c_int);
    assert!(TERN_OPT_FOLLOW_SYMLINKS_OUT == Opt::FollowSymlinksOut as c_int);
    assert!(TERN_OPT_WS_DEFLATE == Opt::WsDeflate as c_int);
    assert!(TERN_OPT_WS_CLIENT_DEFLATE == Opt::WsClientDeflate as c_int);
    assert!(TERN_OPT_WS_HANDSHAKE_TIMEOUT_MS == Opt::WsHandshakeTimeoutMs as c_int);
    assert!(TERN_OPT_WS_CLOSE_TIMEOUT_MS == Opt::WsCloseTimeoutMs as c_int);
    assert!(TERN_OPT_HTTP_LENIENT_LF == Opt::HttpLenientLf as c_int);
    assert!(TERN_OPT_HTTP_CLIENT_LENIENT_LF == Opt::HttpClientLenientLf as c_int);
    assert!(TERN_OPT_TLS_HANDSHAKE_TIMEOUT_MS == Opt::TlsHandshakeTimeoutMs as c_int);
    assert!(TERN_OPT_FETCH_MAX_CONNS_PER_HOST == Opt::FetchMaxConnsPerHost as c_int);
    assert!(TERN_OPT_FETCH_MAX_IDLE_PER_HOST == Opt::FetchMaxIdlePerHost as c_int);
    assert!(TERN_OPT_FETCH_MAX_IDLE == Opt::FetchMaxIdle as c_int);
    assert!(TERN_OPT_FETCH_IDLE_TIMEOUT_MS == Opt::FetchIdleTimeoutMs as c_int);
    assert!(TERN_OPT_FETCH_MAX_QUEUED_PER_HOST == Opt::FetchMaxQueuedPerHost as c_int);
    assert!(TERN_OPT_DNS_TTL_MS == Opt::DnsTtlMs as c_int);
};

pub(crate) fn mgr<'a>(m: *const tern_mgr) -> Option<&'a Manager> {
    try_ref(m)
}

/// A new manager with default options, or NULL (tern_last_error). The thread that
/// will poll it owns it; it may be created on another thread and handed over before
/// the first poll.
#[no_mangle]
pub extern "C" fn tern_mgr_new() -> *mut tern_mgr {
    boundary! {
        match Manager::new() {
            Ok(m) => to_boxed(m),
            Err(e) => {
                set_last_error(e);
                std::ptr::null_mut()
            }
        }
    }
}

/// Sets an option (TERN_OPT_*). Values must be positive: TERN_EINVAL for an unknown
/// option or a bad value, TERN_EPROTO for TERN_OPT_MAX_POSTED after the first
/// tern_mgr_remote. Loop thread.
#[no_mangle]
pub extern "C" fn tern_mgr_set(m: *mut tern_mgr, option: c_int, value: i64) -> c_int {
    boundary! {
        let Some(m) = mgr(m) else { return Error::Invalid.code() };
        status(Opt::from_id(option).and_then(|o| m.set_option(o, value)))
    }
}

/// One loop iteration: waits at most `timeout_ms` (forever if negative; returns
/// sooner on events), then runs the callbacks for what happened, the messages posted
/// by remotes and the timers due. Returns the number of callbacks run, or a TERN_E*
/// code: TERN_EPROTO when called from inside a callback (never a deadlock);
/// TERN_ECLOSED after tern_mgr_shutdown once every connection is closed (from the
/// iteration that closed the last one on): the manager has shut down; call
/// tern_mgr_free. Loop thread.
#[no_mangle]
pub extern "C" fn tern_mgr_poll(m: *mut tern_mgr, timeout_ms: c_int) -> c_int {
    boundary! {
        let Some(m) = mgr(m) else { return Error::Invalid.code() };
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        match m.poll(timeout) {
            Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
            Err(e) => e.code(),
        }
    }
}

/// Shuts the manager down gracefully; tern_mgr_poll does the work and returns
/// TERN_ECLOSED when it is done. At once: listeners close (new connections are
/// refused; their TERN_EV_CLOSE comes at the next poll) and tern_listen and
/// tern_connect fail with TERN_ECLOSED. Then, while the loop keeps polling: idle
/// keep-alive HTTP connections close; HTTP requests already read are answered
/// (deferred ones too: messages posted by remotes are still handled) and each
/// connection closes after the answer to the last request it has read, as after
/// `Connection: close`; HTTP client connections close once the responses they
/// await are in (tern_http_request then returns TERN_ECLOSED); WebSocket
/// connections send what was posted to them before, then a close frame with 1001
/// (going away), and close once the peer answers it (or after
/// TERN_OPT_WS_CLOSE_TIMEOUT_MS, with TERN_EV_ERROR); raw connections close
/// gracefully, as tern_close (what is queued is written). After `timeout_ms`
/// whatever is still open is closed hard: TERN_EV_ERROR "shutdown timed out"
/// (tern_conn_error: TERN_ETIMEDOUT), then TERN_EV_CLOSE; only a connection already
/// done writing and waiting for its peer's FIN closes without the ERROR. Remotes
/// work until the manager is done (then they return TERN_ECLOSED); timers fire
/// until then and never after (they keep no manager alive). tern_mgr_free
/// stays the hard stop, at any point. Returns TERN_OK (a second call only brings
/// the deadline forward), TERN_EINVAL for a negative timeout, TERN_ECLOSED once
/// the manager is done. Runs no callback itself. Loop thread (inside a callback
/// too).
#[no_mangle]
pub extern "C" fn tern_mgr_shutdown(m: *mut tern_mgr, timeout_ms: c_int) -> c_int {
    boundary! {
        let Some(m) = mgr(m) else { return Error::Invalid.code() };
        let Ok(ms) = u64::try_from(timeout_ms) else { return Error::Invalid.code() };
        status(m.begin_shutdown(Duration::from_millis(ms)))
    }
}

/// Frees the manager: every connection gets its TERN_EV_CLOSE (inside this call),
/// every queued and posted buffer is released, posted tern_remote_call functions
/// still run, helper threads are joined. Remotes stay valid (their calls return
/// TERN_ECLOSED) until freed with tern_remote_free. NULL is ignored. Called from
/// inside a callback it does nothing (and logs an error). Loop thread.
#[no_mangle]
pub extern "C" fn tern_mgr_free(m: *mut tern_mgr) {
    boundary! {
        let Some(mref) = mgr(m) else { return };
        // Close everything through a shared reference first: the CLOSE handlers
        // reach the manager through their own pointers.
        if !mref.shutdown() {
            return;
        }
        drop(super::boundary::from_boxed(m));
    }
}

/// Connections alive in the manager (listeners included), for leak checks.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_mgr_conn_count(m: *const tern_mgr) -> usize {
    boundary! { mgr(m).map_or(0, Manager::conn_count) }
}
