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
//! A connection may instead stream its responses (`set_streaming`): each comes as
//! HTTP_HEAD (status and fields), then HTTP_BODY pieces as they arrive (at most one
//! receive buffer each, MAX_STREAM_BODY_BYTES in all), then HTTP_MSG with an empty
//! body for its end; memory stays one receive buffer whatever the body's size.
//!
//! tern frames the requests (`super::request`): `Content-Length` is its own (a
//! caller's must match the body; `Transfer-Encoding` is refused), and a caller's
//! `Host` replaces tern's. A request body may also be streamed after its head
//! (`begin_request`, `write_body`, `end_body`): with the length the caller declared,
//! or chunked.

use super::chunked::ChunkError;
use super::h1::{Body, Chunked, Delivery, HttpEvent, Lent};
use super::parse::Framing;
use super::request::{self, Outgoing};
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
type Read = std::result::Result<HttpStep, (Error, &'static str)>;

pub struct ClientConn {
    /// The Host field: as given in the URL, with the port unless it is 80.
    host: Box<str>,
    /// One entry per request awaiting its response: whether it was a HEAD.
    waiting: VecDeque<bool>,
    state: RespState,
    chunked: Chunked,
    active_at: Instant,
    /// The status of the response being streamed.
    status: u16,
    /// The response being delivered says the server closes after it.
    closes_after: bool,
    /// The manager shuts down: no more requests; close once every response is in.
    closing: bool,
    /// Responses come in pieces (HTTP_HEAD, HTTP_BODY..., HTTP_MSG).
    stream: bool,
    /// The server sent EOF (a streamed body delimited by the close ends with it).
    peer_eof: bool,
    /// A request body being streamed after its head, and what it still owes.
    sending: Option<Outgoing>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespState {
    Head,
    Length { head_len: usize, len: usize },
    Chunked,
    UntilClose { head_len: usize },
    /// Streaming: HTTP_HEAD was delivered; the body starts behind the head.
    Announced { head_len: usize, framing: Framing },
    /// Streaming a body of known length: bytes still to come.
    StreamLength { left: u64 },
    /// Streaming a chunked body; `done` once its last chunk was decoded.
    StreamChunked { done: bool },
    StreamUntilClose,
    /// Streaming: the body is complete, the end (HTTP_MSG) is next.
    StreamEnd,
}

impl ClientConn {
    /// A client for the server at `host` (`name[:port]`, as the Host field says it).
    pub fn new(host: Box<str>) -> ClientConn {
        ClientConn {
            host,
            waiting: VecDeque::new(),
            state: RespState::Head,
            chunked: Chunked::default(),
            active_at: Instant::now(),
            status: 0,
            closes_after: false,
            closing: false,
            stream: false,
            peer_eof: false,
            sending: None,
        }
    }

    /// Streams the responses from now on (HTTP_HEAD, HTTP_BODY pieces, HTTP_MSG).
    /// `Protocol` once a response has begun to arrive.
    pub fn set_streaming(&mut self) -> Result<()> {
        if self.state != RespState::Head {
            return Err(Error::Protocol);
        }
        self.stream = true;
        Ok(())
    }

    /// Whether a request can be written now: `Closed` once the connection or the
    /// manager is closing, `Protocol` while a request body is still being streamed
    /// (a request behind it would be read as part of it), `Full` past 64 requests
    /// awaiting responses.
    fn may_write(&self, cx: &Cx<'_>) -> Result<()> {
        if !(cx.open || cx.connecting) || self.closing {
            return Err(Error::Closed);
        }
        if self.sending.is_some() {
            return Err(Error::Protocol);
        }
        if self.waiting.len() >= MAX_IN_FLIGHT {
            return Err(Error::Full);
        }
        Ok(())
    }

    /// Sends one request: `method` (a token), `target` (origin-form, e.g. "/a?b"),
    /// extra `headers` (lines ending in CRLF) and a body (Content-Length is added
    /// when there is one, or for POST, PUT and PATCH, or when `headers` has one:
    /// then it must be the body's length). A `Host` in `headers` replaces tern's;
    /// `Transfer-Encoding` is refused (`Invalid`: tern frames the body). Errors as
    /// `may_write`. Queued before the connection is established.
    pub fn request(&mut self, cx: &mut Cx<'_>, method: &[u8], target: &[u8], headers: &[u8], body: Body<'_>) -> Result<()> {
        let f = request::check(method, target, headers)?;
        let framing = request::whole_framing(method, &f, body.len())?;
        self.may_write(cx)?;
        request::write_head(cx.sendq, cx.pool, (method, target), self.host.as_bytes(), (headers, &f), framing);
        body.queue(cx.sendq, cx.pool);
        self.sent(cx, method);
        Ok(())
    }

    /// Sends a request head whose body follows in pieces (`write_body`, then
    /// `end_body`): framed by the `Content-Length` in `headers` (exactly that many
    /// bytes must follow) or else chunked. Checks and errors as `request`.
    pub fn begin_request(&mut self, cx: &mut Cx<'_>, method: &[u8], target: &[u8], headers: &[u8]) -> Result<()> {
        let f = request::check(method, target, headers)?;
        let framing = request::streamed_framing(&f)?;
        self.may_write(cx)?;
        request::write_head(cx.sendq, cx.pool, (method, target), self.host.as_bytes(), (headers, &f), framing);
        self.sending = Outgoing::after_head(framing);
        self.sent(cx, method);
        Ok(())
    }

    /// Appends a piece to the request body being streamed. `Invalid` (nothing
    /// written) past its declared length; `Protocol` when no body is being
    /// streamed; `Closed` once the connection is closing.
    pub fn write_body(&mut self, cx: &mut Cx<'_>, body: Body<'_>) -> Result<()> {
        let out = self.sending.as_mut().ok_or(Error::Protocol)?;
        if !(cx.open || cx.connecting) {
            return Err(Error::Closed);
        }
        out.piece(cx.sendq, cx.pool, body.len(), |q, pool| body.queue(q, pool))?;
        // Sending is progress: the server owes nothing while the request is not done.
        self.active_at = Instant::now();
        cx.flush();
        Ok(())
    }

    /// Ends the request body being streamed. Short of its declared length, the
    /// request can never be completed: `Protocol`, and the connection fails.
    pub fn end_body(&mut self, cx: &mut Cx<'_>) -> Result<()> {
        let out = self.sending.take().ok_or(Error::Protocol)?;
        if !(cx.open || cx.connecting) {
            return Err(Error::Closed);
        }
        let left = out.left();
        if out.end(cx.sendq, cx.pool).is_err() {
            cx.fail_with(Error::Protocol, format!("request body ended {} bytes short of its Content-Length", left.unwrap_or(0)));
            return Err(Error::Protocol);
        }
        self.active_at = Instant::now();
        cx.flush();
        Ok(())
    }

    /// Whether a request body is still being streamed.
    pub fn sending_body(&self) -> bool {
        self.sending.is_some()
    }

    /// A request's head is queued: it awaits its response.
    fn sent(&mut self, cx: &mut Cx<'_>, method: &[u8]) {
        if self.waiting.is_empty() {
            self.active_at = Instant::now();
        }
        self.waiting.push_back(method == b"HEAD");
        cx.flush();
    }

    /// One reading step: where a response is read. An error is the code and
    /// message the connection fails with.
    fn step(&mut self, cx: &mut Cx<'_>) -> Read {
        if !cx.recv.is_empty() {
            self.active_at = Instant::now();
        }
        let max_body = cx.opts.max_body_bytes;
        let deliver = |head_len, body_len, chunked| Ok(Step::Deliver(Delivery::Msg { head_len, body_len, chunked, parsed: false }));
        match self.state {
            RespState::Head if cx.recv.is_empty() => Ok(Step::Wait),
            RespState::Head => self.head(cx),
            RespState::Length { head_len, len } if cx.recv.len() >= head_len + len => deliver(head_len, len, false),
            RespState::Length { .. } => Ok(Step::Wait),
            RespState::Chunked => match self.chunked.decode(cx.recv, max_body) {
                Ok(true) => deliver(0, 0, true),
                Ok(false) => Ok(Step::Wait),
                Err(ChunkError::TooLarge) => Err(TOO_LARGE),
                Err(ChunkError::Malformed) => Err((Error::Protocol, "malformed chunked response body")),
            },
            RespState::UntilClose { head_len } if cx.recv.len() - head_len > max_body => Err(TOO_LARGE),
            RespState::UntilClose { .. } => Ok(Step::Wait),
            _ => self.stream_step(cx),
        }
    }

    /// A response head at the front of the receive buffer.
    fn head(&mut self, cx: &mut Cx<'_>) -> Read {
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
        if self.stream {
            self.status = status;
            self.state = RespState::Announced { head_len, framing };
            return Ok(Step::Deliver(Delivery::Head { head_len }));
        }
        match framing {
            Framing::None => Ok(Step::Deliver(Delivery::Msg { head_len, body_len: 0, chunked: false, parsed: false })),
            Framing::Length(n) if n > cx.opts.max_body_bytes as u64 => Err(TOO_LARGE),
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

    /// One step of a streamed response after its head: a piece, or the end.
    fn stream_step(&mut self, cx: &mut Cx<'_>) -> Read {
        let end = Ok(Step::Deliver(Delivery::Msg { head_len: 0, body_len: 0, chunked: true, parsed: false }));
        let max = usize::try_from(cx.opts.max_stream_body).unwrap_or(usize::MAX);
        match self.state {
            RespState::Announced { head_len, framing } => {
                // The head moves aside (it comes back with the end); the body follows.
                self.chunked.start(cx.recv, head_len);
                self.state = match framing {
                    Framing::None | Framing::Length(0) => RespState::StreamEnd,
                    Framing::Length(n) if n > cx.opts.max_stream_body => return Err(TOO_LARGE),
                    Framing::Length(n) => RespState::StreamLength { left: n },
                    Framing::Chunked => RespState::StreamChunked { done: false },
                    Framing::UntilClose => RespState::StreamUntilClose,
                };
                Ok(Step::Again)
            }
            RespState::StreamLength { left: 0 } | RespState::StreamEnd => {
                self.state = RespState::StreamEnd;
                end
            }
            RespState::StreamLength { left } => match usize::try_from(left).map_or(cx.recv.len(), |l| l.min(cx.recv.len())) {
                0 => Ok(Step::Wait),
                len => Ok(Step::Deliver(Delivery::Piece { len: Some(len) })),
            },
            RespState::StreamChunked { .. } if self.chunked.has_body() => Ok(Step::Deliver(Delivery::Piece { len: None })),
            RespState::StreamChunked { done: true } => {
                self.state = RespState::StreamEnd;
                end
            }
            RespState::StreamChunked { done: false } if cx.recv.is_empty() => Ok(Step::Wait),
            RespState::StreamChunked { done: false } => match self.chunked.decode(cx.recv, max) {
                Ok(true) => {
                    self.state = RespState::StreamChunked { done: true };
                    Ok(Step::Again)
                }
                Ok(false) if self.chunked.has_body() => Ok(Step::Again),
                Ok(false) => Ok(Step::Wait),
                Err(ChunkError::TooLarge) => Err(TOO_LARGE),
                Err(ChunkError::Malformed) => Err((Error::Protocol, "malformed chunked response body")),
            },
            RespState::StreamUntilClose if !cx.recv.is_empty() => Ok(Step::Deliver(Delivery::Piece { len: Some(cx.recv.len()) })),
            RespState::StreamUntilClose if self.peer_eof => {
                self.state = RespState::StreamEnd;
                end
            }
            RespState::StreamUntilClose => Ok(Step::Wait),
            RespState::Head | RespState::Length { .. } | RespState::Chunked | RespState::UntilClose { .. } => Ok(Step::Wait),
        }
    }

    /// After a response's end: the server closes after it (later requests cannot be
    /// answered), or it already sent EOF, or the manager shuts down and nothing more
    /// is awaited.
    fn after_end(&mut self, cx: &mut Cx<'_>) {
        if self.peer_eof && !self.waiting.is_empty() {
            cx.fail_with(Error::Closed, "server closed before the response was complete");
        } else if std::mem::take(&mut self.closes_after) || self.peer_eof || (self.closing && self.waiting.is_empty() && self.sending.is_none()) {
            cx.close();
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
        self.peer_eof = true;
        if self.state == RespState::StreamUntilClose {
            // The rest is delivered, then the end; `after_end` closes.
            return self.on_input(cx);
        }
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
        if self.waiting.is_empty() && self.sending.is_none() {
            cx.close();
        }
    }

    fn on_close(&mut self, _: ConnId, _: &mut Shared) {}

    fn deadline(&self, opts: &Options) -> Option<Instant> {
        Some(self.active_at + Duration::from_millis(opts.idle_timeout_ms))
    }

    /// A response is delivered whole: its head and body must fit. Streamed, only
    /// the head must.
    fn recv_limit(&self, opts: &Options) -> usize {
        if self.stream {
            opts.max_recv_buffer.max(opts.max_header_bytes)
        } else {
            opts.max_recv_buffer.max(opts.max_header_bytes + opts.max_body_bytes)
        }
    }

    fn lend(&mut self, d: Delivery, recv: RecvBuf, shared: &mut Shared) -> Lent {
        if !matches!(d, Delivery::Msg { .. }) {
            // A head just parsed (the scratch holds it) or a piece: nothing is done yet.
            let mut lent = Lent::new(d, recv, shared.take_head(), &mut self.chunked);
            lent.status = self.status;
            return lent;
        }
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
        let d = lent.delivery;
        lent.give_back(cx.recv, cx.shared, Some(&mut self.chunked));
        match (d, &mut self.state) {
            (Delivery::Piece { len: Some(n) }, RespState::StreamLength { left }) => *left -= n as u64,
            (Delivery::Msg { .. }, _) => self.after_end(cx),
            _ => {}
        }
    }

    fn event_code(ev: &HttpEvent<'_>) -> i32 {
        ev.code()
    }
}
