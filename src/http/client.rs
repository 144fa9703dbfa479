//! The HTTP/1.1 client side of a connection (`http_connect`, `http_request`).
//!
//! Requests are written as they are made (pipelined when several are made at once);
//! responses are read in order, de-chunked, and each is delivered as one HTTP_MSG
//! whose `status` is set. Interim 1xx responses are skipped. Limits: a response head
//! within MAX_HEADER_BYTES, a body within MAX_BODY_BYTES, and no silence longer than
//! IDLE_TIMEOUT_MS while a response is awaited; past any of them the connection fails
//! with ERROR, and requests still waiting end with it (CLOSE follows). A response
//! head with a bare LF line end is malformed unless `Opt::HttpClientLenientLf`.
//!
//! tern frames the requests: `Content-Length` is its own (a caller's must match the
//! body; `Transfer-Encoding` is refused), and a caller's `Host` replaces tern's.

use super::h1::{Body, Chunked, Delivery, HttpEvent, Lent};
use super::parse::Framing;
use super::fields;
use super::response::decimal;
use super::shared::Shared;
use crate::buf::recv_buf::RecvBuf;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::proto::{ConnId, Ctx, Protocol, Step};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// Requests written ahead of their responses at most.
const MAX_IN_FLIGHT: usize = 64;

/// A response past MAX_BODY_BYTES (or its head past MAX_HEADER_BYTES: a limit full).
const TOO_LARGE: (Error, &str) = (Error::Full, "response body too large");

type Cx<'a> = Ctx<'a, Shared>;
type HttpStep = Step<Delivery, Infallible>;

pub struct ClientConn {
    /// The Host field: as given in the URL, with the port unless it is 80.
    host: Box<str>,
    /// One entry per request awaiting its response: whether it was a HEAD.
    waiting: VecDeque<bool>,
    state: RespState,
    chunked: Chunked,
    active_at: Instant,
    /// The response being delivered says the server closes after it.
    closes_after: bool,
    /// The manager shuts down: no more requests; close once every response is in.
    closing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespState {
    Head,
    Length { head_len: usize, len: usize },
    Chunked,
    UntilClose { head_len: usize },
}

impl ClientConn {
    /// A client for the server at `host` (`name[:port]`, as the Host field says it).
    pub fn new(host: Box<str>) -> ClientConn {
        ClientConn { host, waiting: VecDeque::new(), state: RespState::Head, chunked: Chunked::default(), active_at: Instant::now(), closes_after: false, closing: false }
    }

    /// Sends one request: `method` (a token), `target` (origin-form, e.g. "/a?b"),
    /// extra `headers` (lines ending in CRLF) and a body (Content-Length is added
    /// when there is one, or for POST, PUT and PATCH, or when `headers` has one:
    /// then it must be the body's length). A `Host` in `headers` replaces tern's;
    /// `Transfer-Encoding` is refused (`Invalid`: tern frames the body). `Full` past
    /// 64 requests awaiting responses; `Closed` once the connection or the manager
    /// is closing. Queued before the connection is established.
    pub fn request(&mut self, cx: &mut Cx<'_>, method: &[u8], target: &[u8], headers: &[u8], body: Body<'_>) -> Result<()> {
        let token = |b: &u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(b);
        let target_ok = target.first() == Some(&b'/') || target == b"*" || target.starts_with(b"http://");
        if method.is_empty() || !method.iter().all(token) || !target_ok || !target.iter().all(u8::is_ascii_graphic) {
            return Err(Error::Invalid);
        }
        let len = body.len();
        let f = fields::scan(headers).ok_or(Error::Invalid)?;
        let length_ok = match f.content_length {
            None => true,
            Some(declared) => declared == Some(len as u64),
        };
        if f.transfer_encoding || !length_ok {
            return Err(Error::Invalid);
        }
        if !(cx.open || cx.connecting) || self.closing {
            return Err(Error::Closed);
        }
        if self.waiting.len() >= MAX_IN_FLIGHT {
            return Err(Error::Full);
        }
        let (q, pool) = (&mut *cx.sendq, &mut *cx.pool);
        for part in [method, b" ", target, b" HTTP/1.1\r\n"] {
            q.push_copy(part, pool);
        }
        if !f.host {
            for part in [b"Host: ", self.host.as_bytes(), b"\r\n"] {
                q.push_copy(part, pool);
            }
        }
        if f.content_length.is_some() {
            fields::kept(headers, true, false, |piece| q.push_copy(piece, pool));
        } else {
            q.push_copy(headers, pool);
        }
        if len > 0 || matches!(method, b"POST" | b"PUT" | b"PATCH") || f.content_length.is_some() {
            let mut num = [0u8; 20];
            q.push_copy(b"Content-Length: ", pool);
            q.push_copy(decimal(len as u64, &mut num), pool);
            q.push_copy(b"\r\n", pool);
        }
        q.push_copy(b"\r\n", pool);
        body.queue(q, pool);
        if self.waiting.is_empty() {
            self.active_at = Instant::now();
        }
        self.waiting.push_back(method == b"HEAD");
        cx.flush();
        Ok(())
    }

    /// One reading step: where a response is read. An error is the code and
    /// message the connection fails with.
    fn step(&mut self, cx: &mut Cx<'_>) -> std::result::Result<HttpStep, (Error, &'static str)> {
        if cx.recv.is_empty() {
            return Ok(Step::Wait);
        }
        self.active_at = Instant::now();
        let max_body = cx.opts.max_body_bytes;
        let deliver = |head_len, body_len, chunked| Ok(Step::Deliver(Delivery::Msg { head_len, body_len, chunked, parsed: false }));
        match self.state {
            RespState::Head => {
                let Some(&is_head) = self.waiting.front() else { return Err((Error::Protocol, "response without a request")) };
                let lenient = cx.opts.http_client_lenient_lf;
                let (status, framing) = match cx.shared.head().parse_response(cx.recv.data(), cx.opts.max_header_bytes, is_head, lenient) {
                    Ok(None) => return Ok(Step::Wait),
                    Ok(Some(v)) => v,
                    Err(r) => return Err((Error::Protocol, r.why)),
                };
                let head_len = cx.shared.head().len;
                if (100..200).contains(&status) && status != 101 {
                    cx.recv.consume(head_len);
                    return Ok(Step::Again);
                }
                match framing {
                    Framing::None => deliver(head_len, 0, false),
                    Framing::Length(n) if n > max_body as u64 => Err(TOO_LARGE),
                    Framing::Length(n) => {
                        self.state = RespState::Length { head_len, len: n as usize };
                        self.step(cx)
                    }
                    Framing::Chunked => {
                        self.chunked.start(cx.recv, head_len);
                        self.state = RespState::Chunked;
                        self.step(cx)
                    }
                    Framing::UntilClose => {
                        self.state = RespState::UntilClose { head_len };
                        self.step(cx)
                    }
                }
            }
            RespState::Length { head_len, len } if cx.recv.len() >= head_len + len => deliver(head_len, len, false),
            RespState::Length { .. } => Ok(Step::Wait),
            RespState::Chunked => match self.chunked.decode(cx.recv, max_body) {
                Ok(true) => deliver(0, 0, true),
                Ok(false) => Ok(Step::Wait),
                Err(super::chunked::ChunkError::TooLarge) => Err(TOO_LARGE),
                Err(super::chunked::ChunkError::Malformed) => Err((Error::Protocol, "malformed chunked response body")),
            },
            RespState::UntilClose { head_len } if cx.recv.len() - head_len > max_body => Err(TOO_LARGE),
            RespState::UntilClose { .. } => Ok(Step::Wait),
        }
    }
}

impl Protocol for ClientConn {
    type Shared = Shared;
    type Remote = ();
    type Posted = Infallible;
    type Delivery = Delivery;
    type Lent = Lent;
    type Event<'a> = HttpEvent<'a>;
    type Upgrade = Infallible;

    fn remote_state(_: &Shared) {}

    fn on_input(&mut self, cx: &mut Cx<'_>) -> HttpStep {
        self.step(cx).unwrap_or_else(|(code, why)| {
            cx.fail_with(code, why);
            Step::Wait
        })
    }

    /// EOF from the server: it ends a body delimited by the close; otherwise any
    /// request still waiting fails the connection.
    fn on_eof(&mut self, cx: &mut Cx<'_>) -> HttpStep {
        let step = match self.state {
            RespState::UntilClose { .. } if cx.truncated => {
                cx.fail("response truncated: the server closed TLS without close_notify, so the body it delimits by the close may be cut short");
                return Step::Wait;
            }
            RespState::UntilClose { head_len } => Step::Deliver(Delivery::Msg { head_len, body_len: cx.recv.len() - head_len, chunked: false, parsed: false }),
            _ => Step::Wait,
        };
        // The response delivered now no longer waits.
        let delivering = usize::from(matches!(step, Step::Deliver(_)));
        if self.waiting.len() > delivering {
            cx.fail_with(Error::Closed, "server closed before the response was complete");
        } else {
            cx.close();
        }
        step
    }

    /// Silence while a response is awaited fails the connection; an idle kept-alive
    /// connection is closed.
    fn on_timer(&mut self, cx: &mut Cx<'_>) -> HttpStep {
        if Instant::now() >= self.active_at + Duration::from_millis(cx.opts.idle_timeout_ms) {
            if self.waiting.is_empty() {
                cx.close();
            } else {
                cx.fail_with(Error::TimedOut, "response timed out");
            }
        }
        Step::Wait
    }

    fn on_posted(&mut self, _: &mut Cx<'_>, msg: Infallible) -> HttpStep {
        match msg {}
    }

    /// A graceful shutdown: no more requests; close once the responses awaited are in.
    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        self.closing = true;
        if self.waiting.is_empty() {
            cx.close();
        }
    }

    fn on_close(&mut self, _: ConnId, _: &mut Shared) {}

    fn deadline(&self, opts: &Options) -> Option<Instant> {
        Some(self.active_at + Duration::from_millis(opts.idle_timeout_ms))
    }

    /// A response is delivered whole: its head and body must fit.
    fn recv_limit(&self, opts: &Options) -> usize {
        opts.max_recv_buffer.max(opts.max_header_bytes + opts.max_body_bytes)
    }

    fn lend(&mut self, d: Delivery, recv: RecvBuf, shared: &mut Shared) -> Lent {
        let is_head = self.waiting.pop_front().unwrap_or(false);
        self.state = RespState::Head;
        self.active_at = Instant::now();
        let mut lent = Lent::new(d, recv, shared.take_head(), &mut self.chunked);
        // Parsed again: the scratch head is shared by every connection of the loop.
        let status = {
            let (head, buf) = lent.head_mut();
            head.parse_response(buf, usize::MAX, is_head, true).ok().flatten().map_or(0, |(s, _)| s)
        };
        lent.status = status;
        self.closes_after = !lent.keep_alive();
        lent
    }

    fn event(lent: &Lent) -> HttpEvent<'_> {
        lent.event()
    }

    fn give_back(&mut self, lent: Lent, cx: &mut Cx<'_>) {
        lent.give_back(cx.recv, cx.shared, Some(&mut self.chunked));
        if std::mem::take(&mut self.closes_after) || (self.closing && self.waiting.is_empty()) {
            // The server closes after this response (later requests cannot be
            // answered), or the manager shuts down and nothing more is awaited.
            cx.close();
        }
    }

    fn event_code(ev: &HttpEvent<'_>) -> i32 {
        ev.code()
    }
}
