//! HTTP/1.1: listening, reading requests, answering them inline or from any thread.

use super::boundary::{c_path, c_slice, c_str, set_last_error, status, try_ref, Castable};
use super::bytes::{take_ref, tern_bytes};
use super::conn::{conn, open_with, tern_conn, tern_handler, tern_str, CHandler};
use super::mgr::tern_mgr;
use super::remote::tern_remote;
use crate::error::Error;
use crate::http::defer::Stage;
use crate::http::msg::HttpMsg;
use crate::http::h1::Body;
use crate::http::{auth, form, glob, multipart};
use crate::Remote;
use std::ffi::{c_char, c_int, c_void};

// tern.h: HTTP messages
// A parsed request (server side) or response (client side): ev_data of TERN_EV_HTTP_MSG,
// valid during that event only. The accessors return borrowed tern_str views; the helpers
// decode query and form variables, glob-match paths, read Basic credentials and walk
// multipart bodies.

/// A parsed HTTP request (or response, client side): ev_data of TERN_EV_HTTP_MSG,
/// valid only during that event. Copy what you need before returning.
pub struct tern_http_msg {
    _private: [u8; 0],
}

impl Castable for tern_http_msg {
    type Rust = HttpMsg<'static>;
}

// tern.h: HTTP server
// tern_http_listen delivers one TERN_EV_HTTP_MSG per complete request, pipelined
// requests in order. Answer on the loop thread (tern_http_reply, or begin/write/end to
// stream), or defer the request (tern_http_defer) and answer from any thread through a
// remote (tern_http_respond*): a deferred request keeps its connection and its place,
// whatever it said about Connection: close. tern owns the framing and refuses answers it
// cannot frame honestly; malformed requests are answered by tern and cost only their
// connection. Large bodies can be streamed in (TERN_OPT_HTTP_HEAD_EVENTS).

/// Names one request for a deferred answer: the connection id and the request's
/// position on it. A plain value: copy it to any thread.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct tern_http_token {
    pub conn: u64,
    pub seq: u64,
}

fn msg<'a>(h: *const tern_http_msg) -> Option<&'a HttpMsg<'a>> {
    try_ref(h)
}

fn opt_str(p: *const c_char) -> Result<&'static [u8], Error> {
    if p.is_null() {
        Ok(b"")
    } else {
        c_str(p).map(str::as_bytes)
    }
}

fn status_u16(status: c_int) -> Result<u16, Error> {
    u16::try_from(status).ok().filter(|s| (100..=999).contains(s)).ok_or(Error::Invalid)
}

/// Listens for HTTP/1.1 on `url` ("http://127.0.0.1:8000"; port 0 picks one).
/// Each complete request arrives as TERN_EV_HTTP_MSG (body decoded); answer it with
/// tern_http_reply / begin-write-end, or tern_http_defer it to another thread. A
/// request neither answered nor deferred stays pending until answered on the loop
/// thread or until TERN_OPT_DEFER_TIMEOUT_MS (then 503 and close). Malformed
/// requests are answered by tern (400, 413, 414, 417, 431, 501, 505; 408 after
/// TERN_OPT_HEADER_TIMEOUT_MS) and cost only their connection. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_listen(m: *mut tern_mgr, url: *const c_char, r#fn: tern_handler, user: *mut c_void) -> *mut tern_conn {
    boundary! { open_with(m, url, |m, url| m.http_listen(url, CHandler::boxed(r#fn), user as usize)) }
}

// tern.h: HTTP client
// tern_http_connect opens a client connection (names resolved off the loop);
// tern_http_request pipelines requests on it; each response arrives in order as
// TERN_EV_HTTP_MSG. Bounded by the same limits as the server; clients and servers may
// share a manager.

/// Connects to an HTTP/1.1 server at `url` ("http://HOST[:PORT]", port 80 by
/// default; names resolved off the loop thread). Events: OPEN, then CONNECT (or
/// ERROR and CLOSE); each response to tern_http_request arrives, in order, as
/// TERN_EV_HTTP_MSG (tern_http_status, headers, de-chunked body; interim 1xx are
/// skipped). A response not started within TERN_OPT_IDLE_TIMEOUT_MS of silence, a
/// head past TERN_OPT_MAX_HEADER_BYTES or a body past TERN_OPT_MAX_BODY_BYTES ends
/// the connection with TERN_EV_ERROR; so does a server that closes before answering
/// every request. A client and servers may share one manager. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_connect(m: *mut tern_mgr, url: *const c_char, r#fn: tern_handler, user: *mut c_void) -> *mut tern_conn {
    boundary! { open_with(m, url, |m, url| m.http_connect(url, CHandler::boxed(r#fn), user as usize)) }
}

/// Sends a request on a tern_http_connect connection (queued if not connected
/// yet): `method` ("GET"), `target` ("/path?query"), extra `headers` (lines each
/// ending in "\r\n", or NULL; names are tokens, no CR, LF or NUL in values) and
/// `len` bytes of `body` (copied; NULL if len is 0). tern adds Host (a Host line in
/// `headers` replaces it) and, with a body (or for POST, PUT, PATCH), Content-Length:
/// tern frames the body, so a Content-Length in `headers` must equal `len` (it is
/// then written once, by tern) and a Transfer-Encoding is refused. Requests may be
/// pipelined: up to 64 awaiting their responses (TERN_EFULL past that). TERN_EINVAL
/// for a bad method, target or header block (nothing is sent), TERN_EPROTO on a
/// connection that is not an HTTP client, TERN_ECLOSED once it is closing (or the
/// manager shuts down). Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_request(c: *mut tern_conn, method: *const c_char, target: *const c_char, headers: *const c_char, body: *const c_void, len: usize) -> c_int {
    boundary! {
        status_of(|| {
            let (m, id) = conn(c)?;
            let method = c_str(method)?;
            let target = c_str(target)?;
            m.http_request(id, method.as_bytes(), target.as_bytes(), opt_str(headers)?, Body::Copy(c_slice(body, len)?))
        })
    }
}

// tern.h: HTTP messages

/// The request method ("GET"). Loop thread, during the event.
#[no_mangle]
pub extern "C" fn tern_http_method(h: *const tern_http_msg) -> tern_str {
    boundary! { tern_str::from_slice(msg(h).map_or(&[][..], HttpMsg::method)) }
}

/// The path, without the query ("/a/b" of "/a/b?x=1"), not decoded. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_uri(h: *const tern_http_msg) -> tern_str {
    boundary! { tern_str::from_slice(msg(h).map_or(&[][..], HttpMsg::uri)) }
}

/// The query, after '?' and without it ({NULL,0} if none). Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_query(h: *const tern_http_msg) -> tern_str {
    boundary! { tern_str::from_slice(msg(h).map_or(&[][..], HttpMsg::query)) }
}

/// The value of the first header field called `name` (case-insensitive), or
/// {NULL,0}. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_header(h: *const tern_http_msg, name: *const c_char) -> tern_str {
    boundary! {
        match (msg(h), c_str(name)) {
            (Some(m), Ok(n)) => tern_str::from_slice(m.header(n.as_bytes()).unwrap_or(&[])),
            _ => tern_str::from_slice(&[]),
        }
    }
}

/// The body, decoded from chunked if it was. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_body(h: *const tern_http_msg) -> tern_str {
    boundary! { tern_str::from_slice(msg(h).map_or(&[][..], HttpMsg::body)) }
}

/// The status of a response (client side); 0 for requests. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_status(h: *const tern_http_msg) -> c_int {
    boundary! { msg(h).map_or(0, |m| c_int::from(m.status())) }
}

/// How many header fields the message has. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_header_count(h: *const tern_http_msg) -> usize {
    boundary! { msg(h).map_or(0, HttpMsg::header_count) }
}

/// The `i`th header field, in arrival order: TERN_OK, or TERN_EINVAL past the end.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_header_at(h: *const tern_http_msg, i: usize, name: *mut tern_str, value: *mut tern_str) -> c_int {
    boundary! {
        let Some((n, v)) = msg(h).and_then(|m| m.header_at(i)) else { return Error::Invalid.code() };
        // SAFETY: the caller passes valid out-pointers or NULL.
        unsafe {
            if let Some(name) = name.as_mut() {
                *name = tern_str::from_slice(n);
            }
            if let Some(value) = value.as_mut() {
                *value = tern_str::from_slice(v);
            }
        }
        0
    }
}

// tern.h: Static files
// Answers a request from a directory or a file: GET and HEAD, types by extension,
// index.html, ETag / Last-Modified and 304, one Range, NAME.gz when accepted, bodies sent
// with sendfile, never through memory. Paths that try to leave the root get 400, symlinks
// out of it 403 (TERN_OPT_FOLLOW_SYMLINKS_OUT, TERN_OPT_DIR_LISTING change that).

/// Answers request `h` with the file its path names under `root_dir`: GET and HEAD
/// (405 otherwise), Content-Type by extension, `index.html` for a directory (301 to
/// add a missing trailing slash; 403 if there is no index), ETag and Last-Modified
/// with 304 for If-None-Match / If-Modified-Since, one Range (206, 416, If-Range),
/// and `NAME.gz` with Content-Encoding: gzip when the client accepts gzip. Paths that
/// try to leave the root (`..`, encoded dots or slashes, backslashes, NUL) get 400;
/// symlinks resolving outside the root get 403. The body goes from the file to the
/// socket with sendfile, in pieces, never through memory; the file stays open until
/// it is sent. Loop thread, inside TERN_EV_HTTP_MSG for `h`, like tern_http_reply.
/// Returns TERN_OK once an answer is queued (a 404 or 403 is an answer, not an
/// error); TERN_EINVAL for NULL or empty arguments; TERN_ECLOSED if the connection
/// is closing; TERN_EPROTO if the request is already answered or deferred.
#[no_mangle]
pub extern "C" fn tern_http_serve_dir(c: *mut tern_conn, h: *const tern_http_msg, root_dir: *const c_char) -> c_int {
    boundary! {
        status_of(|| {
            let (m, id) = conn(c)?;
            m.http_serve_dir(id, msg(h).ok_or(Error::Invalid)?, c_path(root_dir)?)
        })
    }
}

/// tern_http_serve_dir for the part of the request's path under the URL `prefix`
/// ("/static": "/static/css/a.css" is served from `root_dir`/css/a.css, as nginx's
/// `location /static/ { alias root_dir/; }`). The path must start with `prefix` at a
/// segment boundary ("/static" matches "/static" and "/static/x", not "/staticx";
/// compared as sent, before percent-decoding; trailing slashes of `prefix` do not
/// count, and "/" or "" is no prefix): otherwise the answer is 404. A redirect to add
/// a directory's slash keeps the prefix ("/static" gets 301 to "/static/"). Returns
/// as tern_http_serve_dir; TERN_EINVAL also for a `prefix` that does not start with
/// '/'. `prefix` and `root_dir` are read during the call only. Loop thread, inside
/// TERN_EV_HTTP_MSG for `h`.
#[no_mangle]
pub extern "C" fn tern_http_serve_prefix(c: *mut tern_conn, h: *const tern_http_msg, prefix: *const c_char, root_dir: *const c_char) -> c_int {
    boundary! {
        status_of(|| {
            let (m, id) = conn(c)?;
            let prefix = c_str(prefix)?;
            m.http_serve_prefix(id, msg(h).ok_or(Error::Invalid)?, prefix.as_bytes(), c_path(root_dir)?)
        })
    }
}

/// Answers request `h` with the file at `path`, whatever the request's path, with
/// everything tern_http_serve_dir does for a file (methods, types, validators,
/// ranges, `path.gz`); 404 if it does not exist, 403 if it is not a regular file.
/// Loop thread, inside TERN_EV_HTTP_MSG for `h`. Returns as tern_http_serve_dir.
#[no_mangle]
pub extern "C" fn tern_http_serve_file(c: *mut tern_conn, h: *const tern_http_msg, path: *const c_char) -> c_int {
    boundary! {
        status_of(|| {
            let (m, id) = conn(c)?;
            m.http_serve_file(id, msg(h).ok_or(Error::Invalid)?, c_path(path)?)
        })
    }
}

// tern.h: HTTP messages

/// Finds variable `name` in `buf` (a query string or an
/// application/x-www-form-urlencoded body), URL-decodes its value into `dst`
/// (NUL-terminated) and returns its length; TERN_ENOTFOUND if absent, TERN_EFULL if
/// `dst_len` is too small, TERN_EINVAL for a bad %-escape. Any thread.
#[no_mangle]
pub extern "C" fn tern_http_var(buf: tern_str, name: *const c_char, dst: *mut c_char, dst_len: usize) -> c_int {
    boundary! {
        let (Ok(src), Ok(name)) = (c_slice(buf.ptr as *const c_void, buf.len), c_str(name)) else { return Error::Invalid.code() };
        if dst.is_null() || dst_len == 0 {
            return Error::Invalid.code();
        }
        // SAFETY: the caller passed `dst` valid for `dst_len` bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(dst as *mut u8, dst_len) };
        match form::var(src, name.as_bytes(), out) {
            Ok(n) => n as c_int,
            Err(form::VarError::NotFound) => Error::NotFound.code(),
            Err(form::VarError::TooSmall) => Error::Full.code(),
            Err(form::VarError::BadEncoding) => Error::Invalid.code(),
        }
    }
}

/// Whether `uri` matches the glob `pattern` (`?` one character, `*` any run without
/// '/', `**` any run): 1 or 0. Any thread.
#[no_mangle]
pub extern "C" fn tern_http_match(uri: tern_str, pattern: *const c_char) -> c_int {
    boundary! {
        match (c_slice(uri.ptr as *const c_void, uri.len), c_str(pattern)) {
            (Ok(u), Ok(p)) => c_int::from(glob::glob_match(p.as_bytes(), u)),
            _ => 0,
        }
    }
}

/// Decodes `Authorization: Basic` credentials into `user` and `pass`
/// (NUL-terminated): TERN_OK, TERN_ENOTFOUND without Basic credentials, TERN_EFULL
/// if a buffer is too small. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_basic_auth(h: *const tern_http_msg, user: *mut c_char, user_len: usize, pass: *mut c_char, pass_len: usize) -> c_int {
    boundary! {
        let Some(m) = msg(h) else { return Error::Invalid.code() };
        if user.is_null() || pass.is_null() {
            return Error::Invalid.code();
        }
        let Some(v) = m.header(b"authorization") else { return Error::NotFound.code() };
        // SAFETY: the caller passed buffers valid for the given lengths.
        let (u, p) = unsafe {
            (std::slice::from_raw_parts_mut(user as *mut u8, user_len), std::slice::from_raw_parts_mut(pass as *mut u8, pass_len))
        };
        match auth::basic_auth(v, u, p) {
            Some(_) => 0,
            None if v.len() > 6 && v[..6].eq_ignore_ascii_case(b"basic ") => Error::Full.code(),
            None => Error::NotFound.code(),
        }
    }
}

/// One part of a multipart/form-data body.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct tern_http_part {
    pub name: tern_str,
    pub filename: tern_str,
    pub content_type: tern_str,
    pub body: tern_str,
}

/// Iterates a multipart/form-data request body: fills `part` with the part at
/// `offset` (0 first) and returns the offset of the next, or 0 when there are no
/// more parts (or the body is not multipart). The parts borrow the message.
/// Loop thread, during the event.
#[no_mangle]
pub extern "C" fn tern_http_next_multipart(h: *const tern_http_msg, offset: usize, part: *mut tern_http_part) -> usize {
    boundary! {
        let Some(m) = msg(h) else { return 0 };
        let Some(boundary) = m.header(b"content-type").and_then(multipart::multipart_boundary) else { return 0 };
        let Some((p, next)) = multipart::multipart_next(m.body(), boundary, offset) else { return 0 };
        // SAFETY: the caller passes a valid out-pointer or NULL.
        if let Some(out) = unsafe { part.as_mut() } {
            *out = tern_http_part {
                name: tern_str::from_slice(p.name),
                filename: tern_str::from_slice(p.filename),
                content_type: tern_str::from_slice(p.content_type),
                body: tern_str::from_slice(p.body),
            };
        }
        next
    }
}

// tern.h: HTTP server

/// Answers the oldest request on `c` that is neither answered nor deferred:
/// status, extra `headers` (lines each ending in "\r\n", or NULL) and `len` bytes
/// of `body` (copied). tern adds Date, Content-Length and, when it will close,
/// `Connection: close`. TERN_EPROTO if there is no such request.
///
/// tern owns the framing; TERN_EINVAL (nothing is written, the request stays
/// unanswered) for what it cannot frame: a status below 200 (tern sends 100
/// Continue itself, 101 comes only with a protocol switch), a Content-Length in
/// `headers` other than `len`, any Transfer-Encoding, a body or a Content-Length
/// with 204 or 304, a header name that is not a token, CR, LF or NUL in a value. A
/// Content-Length in `headers` is written once (tern's); `Connection` lines in
/// `headers` are never copied: tern writes one Connection field when it has one to
/// write, and `Connection: close` there makes the connection close after this
/// answer. To HEAD the body is counted for Content-Length and not sent. Loop
/// thread.
#[no_mangle]
pub extern "C" fn tern_http_reply(c: *mut tern_conn, status: c_int, headers: *const c_char, body: *const c_void, len: usize) -> c_int {
    boundary! {
        status_of(|| {
            let (m, id) = conn(c)?;
            m.http_reply(id, status_u16(status)?, opt_str(headers)?, Body::Copy(c_slice(body, len)?))
        })
    }
}

/// Like tern_http_reply with the body in `take` (consumed whatever this returns,
/// TERN_EINVAL included; released once written). NULL `take` means an empty body.
/// Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_reply_bytes(c: *mut tern_conn, status: c_int, headers: *const c_char, take: *mut tern_bytes) -> c_int {
    boundary! {
        let b = take_ref(take);
        status_of(|| {
            let (m, id) = conn(c)?;
            let body = b.map_or(Body::Copy(&[]), Body::Shared);
            m.http_reply(id, status_u16(status)?, opt_str(headers)?, body)
        })
    }
}

/// Starts a streamed answer to the oldest unanswered request: chunked (for an
/// HTTP/1.0 client the end is marked by closing), unless `headers` carries
/// Content-Length: then exactly that many bytes must follow (tern_http_write
/// refuses more, tern_http_end refuses fewer). No framing and no body for 204 and
/// 304, nor for an answer to HEAD (its writes are accepted and dropped). The same
/// rules as tern_http_reply otherwise (TERN_EINVAL for a status below 200, any
/// Transfer-Encoding, a Content-Length with 204 or 304, a bad header block; one
/// Connection field, tern's). Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_begin(c: *mut tern_conn, status: c_int, headers: *const c_char) -> c_int {
    boundary! {
        status_of(|| {
            let (m, id) = conn(c)?;
            m.http_begin(id, status_u16(status)?, opt_str(headers)?)
        })
    }
}

/// Appends `len` bytes (copied) to the streamed answer. TERN_EINVAL, writing
/// nothing, if they would go past the Content-Length the head promised (or if the
/// status has no body). Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_write(c: *mut tern_conn, data: *const c_void, len: usize) -> c_int {
    boundary! { status_of(|| { let (m, id) = conn(c)?; m.http_write(id, Body::Copy(c_slice(data, len)?)) }) }
}

/// Appends `take` (consumed, whatever this returns) to the streamed answer, without
/// copying; refused as tern_http_write. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_write_bytes(c: *mut tern_conn, take: *mut tern_bytes) -> c_int {
    boundary! {
        let b = take_ref(take);
        status_of(|| { let (m, id) = conn(c)?; m.http_write(id, Body::Shared(b.ok_or(Error::Invalid)?)) })
    }
}

/// Ends the streamed answer; the connection then closes if the request or the
/// answer asked for it. If fewer bytes were written than the head's Content-Length
/// promised, that answer can never be completed: TERN_EPROTO, and the connection
/// fails (TERN_EV_ERROR, TERN_EV_CLOSE; the client sees a truncated body, never one
/// it waits for). Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_end(c: *mut tern_conn) -> c_int {
    boundary! { status_of(|| { let (m, id) = conn(c)?; m.http_end(id) }) }
}

/// Inside TERN_EV_HTTP_HEAD (TERN_OPT_HTTP_HEAD_EVENTS on): take this request's
/// body as TERN_EV_HTTP_BODY pieces as it arrives, instead of buffered whole, so an
/// upload of any size (up to TERN_OPT_MAX_STREAM_BODY_BYTES) costs one receive
/// buffer. `Expect: 100-continue` is answered now. After the last piece the request
/// comes as TERN_EV_HTTP_MSG with an empty body; answer (or defer) it there.
/// TERN_EPROTO outside TERN_EV_HTTP_HEAD. Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_stream_body(c: *mut tern_conn) -> c_int {
    boundary! { status_of(|| { let (m, id) = conn(c)?; m.http_stream_body(id) }) }
}

/// Defers request `h` (inside its TERN_EV_HTTP_MSG) to be answered later, from any
/// thread, with tern_http_respond*. The request keeps its connection and its place
/// among pipelined requests, whatever it said about `Connection: close`: the
/// connection closes only after its answer is fully written. Unanswered after
/// TERN_OPT_DEFER_TIMEOUT_MS, it gets 503 and the connection closes. Returns the
/// token, or {0,0} on error (tern_last_error). Loop thread.
#[no_mangle]
pub extern "C" fn tern_http_defer(c: *mut tern_conn, h: *const tern_http_msg) -> tern_http_token {
    boundary_token(|| {
        let (m, id) = conn(c)?;
        let seq = msg(h).ok_or(Error::Invalid)?.seq();
        let (conn, seq) = m.http_defer(id, seq)?;
        Ok(tern_http_token { conn, seq })
    })
}

fn boundary_token(f: impl FnOnce() -> Result<tern_http_token, Error>) -> tern_http_token {
    let none = tern_http_token { conn: 0, seq: 0 };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            set_last_error(e);
            none
        }
        Err(_) => {
            set_last_error(Error::Internal);
            none
        }
    }
}

fn status_of(f: impl FnOnce() -> Result<(), Error>) -> c_int {
    status(f())
}

fn respond(r: *mut tern_remote, t: tern_http_token, stage: Stage, status: c_int, headers: *const c_char, body: Option<crate::bytes::Bytes>) -> c_int {
    status_of(|| {
        let r: &Remote = try_ref(r).ok_or(Error::Invalid)?;
        let status = if stage == Stage::Write || stage == Stage::End { 200 } else { status_u16(status)? };
        r.http_respond((t.conn, t.seq), stage, status, opt_str(headers)?, body)
    })
}

/// Answers a deferred request from any thread: status, extra `headers` (copied),
/// and the body in `take` (consumed whatever this returns; NULL for none), framed
/// by tern as tern_http_reply (checked here, on the calling thread: TERN_EINVAL for
/// what tern_http_reply refuses, nothing posted). TERN_ECLOSED if the request timed
/// out, its connection is gone or the manager's shutdown deadline passed;
/// TERN_EPROTO if it was already answered; TERN_EFULL past TERN_OPT_MAX_POSTED: in
/// every error case the body is released here, once. TERN_OK means the answer is on
/// its way and will be written (unless the client leaves first). Any thread; never
/// blocks on the loop.
#[no_mangle]
pub extern "C" fn tern_http_respond(r: *mut tern_remote, t: tern_http_token, status: c_int, headers: *const c_char, take: *mut tern_bytes) -> c_int {
    boundary! { respond(r, t, Stage::Whole, status, headers, take_ref(take)) }
}

/// Starts a streamed answer to a deferred request (chunked unless `headers` has
/// Content-Length), with the rules of tern_http_begin, checked on the calling
/// thread. Any thread.
#[no_mangle]
pub extern "C" fn tern_http_respond_begin(r: *mut tern_remote, t: tern_http_token, status: c_int, headers: *const c_char) -> c_int {
    boundary! { respond(r, t, Stage::Begin, status, headers, None) }
}

/// Appends `take` (consumed) to a streamed deferred answer. TERN_EINVAL (nothing
/// posted) past the Content-Length the head promised. Any thread.
#[no_mangle]
pub extern "C" fn tern_http_respond_write(r: *mut tern_remote, t: tern_http_token, take: *mut tern_bytes) -> c_int {
    boundary! {
        let b = take_ref(take);
        if b.is_none() {
            return Error::Invalid.code();
        }
        respond(r, t, Stage::Write, 0, std::ptr::null(), b)
    }
}

/// Ends a streamed deferred answer. TERN_EPROTO if fewer bytes were written than
/// the head's Content-Length promised: the end is still posted, and the loop fails
/// the connection (the client sees a truncated body). Any thread.
#[no_mangle]
pub extern "C" fn tern_http_respond_end(r: *mut tern_remote, t: tern_http_token) -> c_int {
    boundary! { respond(r, t, Stage::End, 0, std::ptr::null(), None) }
}
