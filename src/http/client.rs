//! The HTTP/1.1 client side of a connection (`http_connect`, `http_request`).
//!
//! Requests are written as they are made (pipelined when several are made at once);
//! responses are read in order, de-chunked, and each is delivered as one HTTP_MSG
//! whose `status` is set. Interim 1xx responses are skipped. Limits: a response head
//! within MAX_HEADER_BYTES, a body within MAX_BODY_BYTES, and no silence longer than
//! IDLE_TIMEOUT_MS while a response is awaited; past any of them the connection fails
//! with ERROR, and requests still waiting end with it (CLOSE follows).

use super::chunked::{ChunkError, ChunkedDecoder};
use super::msg::HttpMsg;
use super::parse::{Head, RespFraming};
use super::response::valid_extra_headers;
use super::server::Body;
use crate::conn::{ConnId, Flags, Phase, Proto};
use crate::error::{Error, Result};
use crate::net::url::{Target, Url};
use crate::reactor::{Event, Handler, Inner, Manager, TimerAction};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Requests written ahead of their responses at most.
const MAX_IN_FLIGHT: usize = 64;

pub struct ClientConn {
    /// The Host field: as given in the URL, with the port unless it is 80.
    host: Box<str>,
    /// One entry per request awaiting its response: whether it was a HEAD.
    waiting: VecDeque<bool>,
    state: RespState,
    /// A chunked body is decoded into `body` while its head waits in `head_buf`.
    head_buf: Vec<u8>,
    body: Vec<u8>,
    decoder: ChunkedDecoder,
    active_at: Instant,
    timer: Option<(u64, Instant)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespState {
    Head,
    Length { head_len: usize, len: usize },
    Chunked,
    UntilClose { head_len: usize },
}

/// What reading found.
enum Step {
    Wait,
    /// A whole response: head (and body, when not chunked) at the front of `recv`.
    Deliver { head_len: usize, body_len: usize, chunked: bool },
    /// An interim 1xx: drop it.
    Skip(usize),
    Fail(&'static str),
}

impl Manager {
    /// Connects to `http://HOST[:PORT]`; then `http_request` sends requests and each
    /// response arrives as `Event::HttpMsg` (with `status`). OPEN and CONNECT (or
    /// ERROR) come as for `connect`; requests made before CONNECT are queued.
    pub fn http_connect(&self, url: &str, handler: Rc<dyn Handler>, user: usize) -> Result<ConnId> {
        let u = Url::parse(url, 80)?;
        if u.scheme != "http" {
            return Err(Error::Invalid);
        }
        let host: Box<str> = if u.port == 80 { u.host.into() } else { format!("{}:{}", u.host, u.port).into() };
        let target = u.target();
        if let Target::Name(name, _) = &target {
            if name.is_empty() {
                return Err(Error::Invalid);
            }
        }
        let id = self.connect_target(target, handler, user)?;
        let conn = ClientConn {
            host,
            waiting: VecDeque::new(),
            state: RespState::Head,
            head_buf: Vec::new(),
            body: Vec::new(),
            decoder: ChunkedDecoder::new(),
            active_at: Instant::now(),
            timer: None,
        };
        self.with_conn_mut(id, |c| c.proto = Proto::HttpClient(Box::new(conn)))?;
        Ok(id)
    }

    /// Sends one request: `method` (a token), `target` (origin-form, e.g. "/a?b"),
    /// extra `headers` (lines ending in CRLF) and a body (Content-Length is added
    /// when there is one, or for POST, PUT and PATCH). `Protocol` if `id` is not an
    /// HTTP client connection, `Full` past 64 requests awaiting responses.
    pub fn http_request(&self, id: ConnId, method: &[u8], target: &[u8], headers: &[u8], body: Body<'_>) -> Result<()> {
        let token = |b: &u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(b);
        let target_ok = target.first() == Some(&b'/') || target == b"*" || target.starts_with(b"http://");
        if method.is_empty() || !method.iter().all(token) || !target_ok || !target.iter().all(u8::is_ascii_graphic) || !valid_extra_headers(headers) {
            return Err(Error::Invalid);
        }
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let c = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        if c.phase > Phase::Open || c.flags.has(Flags::CLOSE_NOW) {
            return Err(Error::Closed);
        }
        let Proto::HttpClient(h) = &mut c.proto else { return Err(Error::Protocol) };
        if h.waiting.len() >= MAX_IN_FLIGHT {
            return Err(Error::Full);
        }
        let len = match &body {
            Body::Copy(d) => d.len(),
            Body::Shared(b) => b.len(),
            Body::File(f) => f.len,
        };
        let q = &mut c.sendq;
        let pool = &mut inner.pool;
        for part in [method, b" ", target, b" HTTP/1.1\r\nHost: ", h.host.as_bytes(), b"\r\n", headers] {
            q.push_copy(part, pool);
        }
        if len > 0 || matches!(method, b"POST" | b"PUT" | b"PATCH") {
            let mut num = [0u8; 20];
            q.push_copy(b"Content-Length: ", pool);
            q.push_copy(super::response::decimal(len as u64, &mut num), pool);
            q.push_copy(b"\r\n", pool);
        }
        q.push_copy(b"\r\n", pool);
        match body {
            Body::Copy(d) => q.push_copy(d, pool),
            Body::Shared(b) => q.push_bytes(b),
            Body::File(f) => q.push_file(f),
        }
        if h.waiting.is_empty() {
            h.active_at = Instant::now();
        }
        h.waiting.push_back(method == b"HEAD");
        inner.schedule(id, Flags::DIRTY);
        client_arm(inner, id);
        Ok(())
    }

    /// New bytes on a client connection: deliver every complete response.
    pub(crate) fn http_client_on_data(&self, id: ConnId) {
        let mut head = std::mem::take(&mut self.inner.borrow_mut().http_head);
        loop {
            let step = {
                let mut inner = self.inner.borrow_mut();
                let s = client_step(&mut inner, id, &mut head);
                client_arm(&mut inner, id);
                s
            };
            match step {
                Step::Wait => break,
                Step::Fail(why) => {
                    self.inner.borrow_mut().fail_locked(id, why.to_string());
                    break;
                }
                Step::Skip(n) => {
                    let _ = self.with_conn_mut(id, |c| c.recv.consume(n));
                }
                Step::Deliver { head_len, body_len, chunked } => self.client_deliver(id, &mut head, head_len, body_len, chunked),
            }
        }
        self.inner.borrow_mut().http_head = head;
    }

    fn client_deliver(&self, id: ConnId, head: &mut Head, head_len: usize, body_len: usize, chunked: bool) {
        let (recv, bufs, is_head) = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            let Proto::HttpClient(h) = &mut c.proto else { return };
            let is_head = h.waiting.pop_front().unwrap_or(false);
            h.state = RespState::Head;
            h.active_at = Instant::now();
            let bufs = chunked.then(|| (std::mem::take(&mut h.head_buf), std::mem::take(&mut h.body)));
            (c.lend_recv(), bufs, is_head)
        };
        let keep_alive = {
            let (buf, body): (&[u8], &[u8]) = match &bufs {
                Some((hb, b)) => (hb, b),
                None => (recv.data(), &recv.data()[head_len..head_len + body_len]),
            };
            // Parsed again: the scratch head is shared by every connection of the loop.
            let status = head.parse_response(buf, usize::MAX, is_head).ok().flatten().map_or(0, |(s, _)| s);
            let msg = HttpMsg { buf, head, body, seq: 0, status };
            self.call_raw(id, &Event::HttpMsg(&msg));
            head.keep_alive
        };
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(c) = inner.conns.get_mut(&id) else { return };
        c.return_recv(recv, if chunked { 0 } else { head_len + body_len }, &mut inner.pool);
        if let (Proto::HttpClient(h), Some((mut hb, mut b))) = (&mut c.proto, bufs) {
            hb.clear();
            b.clear();
            h.head_buf = hb;
            h.body = b;
        }
        if !keep_alive {
            // The server closes after this response: later requests cannot be answered.
            inner.close_locked(id);
        }
    }

    /// EOF from the server: it ends a body delimited by the close; otherwise any
    /// request still waiting fails the connection.
    pub(crate) fn http_client_on_eof(&self, id: ConnId) {
        self.http_client_on_data(id);
        let until_close = self.with_conn(id, |c| match &c.proto {
            Proto::HttpClient(h) => match h.state {
                RespState::UntilClose { head_len } => Some((head_len, c.recv.len() - head_len)),
                _ => None,
            },
            _ => None,
        });
        if let Ok(Some((head_len, body_len))) = until_close {
            let mut head = std::mem::take(&mut self.inner.borrow_mut().http_head);
            self.client_deliver(id, &mut head, head_len, body_len, false);
            self.inner.borrow_mut().http_head = head;
        }
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(c) = inner.conns.get_mut(&id) else { return };
        let waiting = matches!(&c.proto, Proto::HttpClient(h) if !h.waiting.is_empty());
        if waiting {
            inner.fail_locked(id, "server closed before the response was complete".to_string());
        } else {
            inner.close_locked(id);
        }
    }

    /// The client's timer: silence while a response is awaited fails the connection;
    /// an idle kept-alive connection is closed.
    pub(crate) fn http_client_on_timer(&self, id: ConnId, tid: u64) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let idle = Duration::from_millis(inner.opts.idle_timeout_ms);
        let Some(c) = inner.conns.get_mut(&id) else { return };
        let Proto::HttpClient(h) = &mut c.proto else { return };
        if h.timer.map(|t| t.0) != Some(tid) {
            return;
        }
        h.timer = None;
        if Instant::now() >= h.active_at + idle {
            if h.waiting.is_empty() {
                inner.close_locked(id);
            } else {
                inner.fail_locked(id, "response timed out".to_string());
            }
            return;
        }
        client_arm(inner, id);
    }
}

impl ClientConn {
    /// The connection's timer, taken at close so it does not outlive the connection.
    pub fn take_timer(&mut self) -> Option<u64> {
        self.timer.take().map(|(id, _)| id)
    }
}

/// One reading step under the borrow.
fn client_step(inner: &mut Inner, id: ConnId, head: &mut Head) -> Step {
    let Inner { conns, opts, .. } = inner;
    let Some(c) = conns.get_mut(&id) else { return Step::Wait };
    if c.phase != Phase::Open || c.flags.has(Flags::CLOSE_NOW) || c.recv.is_empty() {
        return Step::Wait;
    }
    let Proto::HttpClient(h) = &mut c.proto else { return Step::Wait };
    h.active_at = Instant::now();
    match h.state {
        RespState::Head => {
            let Some(&is_head) = h.waiting.front() else { return Step::Fail("response without a request") };
            let (status, framing) = match head.parse_response(c.recv.data(), opts.max_header_bytes, is_head) {
                Ok(None) => return Step::Wait,
                Ok(Some(v)) => v,
                Err(r) => return Step::Fail(r.why),
            };
            let head_len = head.len;
            if (100..200).contains(&status) && status != 101 {
                return Step::Skip(head_len);
            }
            match framing {
                RespFraming::Empty => Step::Deliver { head_len, body_len: 0, chunked: false },
                RespFraming::Length(n) if n > opts.max_body_bytes as u64 => Step::Fail("response body too large"),
                RespFraming::Length(n) => {
                    h.state = RespState::Length { head_len, len: n as usize };
                    length_ready(c.recv.len(), head_len, n as usize)
                }
                RespFraming::Chunked => {
                    h.head_buf.clear();
                    h.head_buf.extend_from_slice(&c.recv.data()[..head_len]);
                    c.recv.consume(head_len);
                    h.decoder.reset();
                    h.body.clear();
                    h.state = RespState::Chunked;
                    decode(c, opts.max_body_bytes)
                }
                RespFraming::UntilClose => {
                    h.state = RespState::UntilClose { head_len };
                    if c.recv.len() - head_len > opts.max_body_bytes {
                        Step::Fail("response body too large")
                    } else {
                        Step::Wait
                    }
                }
            }
        }
        RespState::Length { head_len, len } => length_ready(c.recv.len(), head_len, len),
        RespState::Chunked => decode(c, opts.max_body_bytes),
        RespState::UntilClose { head_len } if c.recv.len() - head_len > opts.max_body_bytes => Step::Fail("response body too large"),
        RespState::UntilClose { .. } => Step::Wait,
    }
}

fn length_ready(have: usize, head_len: usize, len: usize) -> Step {
    if have >= head_len + len {
        Step::Deliver { head_len, body_len: len, chunked: false }
    } else {
        Step::Wait
    }
}

fn decode(c: &mut crate::conn::Conn, max_body: usize) -> Step {
    let Proto::HttpClient(h) = &mut c.proto else { return Step::Wait };
    let body = &mut h.body;
    match h.decoder.decode(c.recv.data(), max_body, &mut |piece: &[u8]| body.extend_from_slice(piece)) {
        Ok((used, done)) => {
            c.recv.consume(used);
            if done {
                Step::Deliver { head_len: 0, body_len: 0, chunked: true }
            } else {
                Step::Wait
            }
        }
        Err(ChunkError::TooLarge) => Step::Fail("response body too large"),
        Err(ChunkError::Malformed) => Step::Fail("malformed chunked response body"),
    }
}

/// Arms the client's timer for `active_at + IDLE_TIMEOUT_MS` (kept if already due
/// sooner; it re-arms when it fires).
fn client_arm(inner: &mut Inner, id: ConnId) {
    let Inner { conns, opts, timers, .. } = inner;
    let Some(c) = conns.get_mut(&id) else { return };
    if c.phase >= Phase::Draining {
        return;
    }
    let Proto::HttpClient(h) = &mut c.proto else { return };
    let due = h.active_at + Duration::from_millis(opts.idle_timeout_ms);
    if let Some((old, at)) = h.timer {
        if at <= due {
            return;
        }
        timers.cancel(old);
    }
    h.timer = Some((timers.add(due, TimerAction::Proto(id)), due));
}
