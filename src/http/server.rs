//! The HTTP/1.1 server side of a connection.
//!
//! Every request gets a *slot* when its head is read, in arrival order; its response
//! is written into the slot. Only the front slot writes to the socket's queue; later
//! slots buffer until every earlier response is complete, so a deferred request
//! keeps its place among pipelined ones. A request that asks to close (or an error)
//! stops parsing, and the connection closes only once the response to the last
//! request it will answer is complete and flushed: `Connection: close` means "close
//! after the response", never "drain now".

use super::chunked::{ChunkError, ChunkedDecoder};
use super::defer::{Step as DeferStep, Token};
use super::msg::HttpMsg;
use super::parse::{Framing as ReqFraming, Head, Reject};
use super::response::{self, ConnField, Framing};
use crate::bytes::Bytes;
use crate::conn::pool::BufPool;
use crate::conn::send_queue::{FileSeg, SendQueue};
use crate::conn::{Conn, ConnId, Flags, Phase, Proto};
use crate::error::{Error, Result};
use crate::reactor::{Event, Inner, Manager, TimerAction};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Requests read ahead of their responses; past it parsing waits (bounded memory
/// per connection however deep the client pipelines).
const MAX_PIPELINE: usize = 16;

/// Per-connection server state.
pub struct ServerConn {
    state: ReqState,
    slots: VecDeque<Slot>,
    next_seq: u64,
    /// A request that ends the connection was read: parse no more.
    closing: bool,
    peer_eof: bool,
    /// When the first byte of the head being read arrived (slowloris bound).
    head_started: Option<Instant>,
    /// Last time bytes arrived or the connection became idle.
    active_at: Instant,
    /// A chunked body is decoded into `body` while its head waits in `head_buf`.
    head_buf: Vec<u8>,
    body: Vec<u8>,
    decoder: ChunkedDecoder,
    /// The connection's armed timer: its id and when it is due.
    timer: Option<(u64, Instant)>,
    /// HTTP_HEAD was delivered for the head at the front of the buffer.
    announced: bool,
    /// Inside the HTTP_HEAD handler (the only time streaming can be chosen).
    in_head_event: bool,
    /// The handler chose to take this request's body in pieces.
    stream: bool,
    /// A streamed chunked body has reached its end (the final MSG is next).
    stream_done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqState {
    Head,
    Length { head_len: usize, len: usize },
    Chunked,
    /// Streaming a Content-Length body: bytes still to come.
    StreamLength { left: u64 },
    /// Streaming a chunked body.
    StreamChunked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// The head is read, the body is still arriving: no defer clock yet.
    Reading,
    /// Read; the handler has neither answered nor deferred yet.
    Pending,
    /// Handed to another thread with a token.
    Deferred,
    /// Head written, body being streamed.
    Streaming { deferred: bool },
    /// Complete; waits only for earlier slots.
    Done,
}

struct Slot {
    seq: u64,
    state: SlotState,
    is_head: bool,
    minor: u8,
    close_after: bool,
    /// The request itself ended the conversation (`Connection: close`, or HTTP/1.0
    /// without keep-alive) and was read whole: the client sends nothing after it.
    client_done: bool,
    chunked: bool,
    since: Instant,
    /// Output waiting for earlier responses (empty for the front slot).
    out: SendQueue,
}

impl Default for ServerConn {
    fn default() -> ServerConn {
        ServerConn::new()
    }
}

impl Slot {
    /// Waiting on the handler or a worker; the defer clock runs (a deferred stream's
    /// from its last piece).
    fn awaits_answer(&self) -> bool {
        matches!(self.state, SlotState::Pending | SlotState::Deferred | SlotState::Streaming { deferred: true })
    }
}

impl ServerConn {
    pub fn new() -> ServerConn {
        ServerConn {
            state: ReqState::Head,
            slots: VecDeque::new(),
            next_seq: 1,
            closing: false,
            peer_eof: false,
            head_started: None,
            active_at: Instant::now(),
            head_buf: Vec::new(),
            body: Vec::new(),
            decoder: ChunkedDecoder::new(),
            timer: None,
            announced: false,
            in_head_event: false,
            stream: false,
            stream_done: false,
        }
    }

    /// The connection's timer, taken at close so it does not outlive the connection.
    pub fn take_timer(&mut self) -> Option<u64> {
        self.timer.take().map(|(id, _)| id)
    }

    /// Tokens of requests still waiting on another thread (released at close).
    pub fn deferred_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, SlotState::Deferred | SlotState::Streaming { deferred: true }))
            .map(|s| s.seq)
    }

    fn open_slot(&mut self, head: &Head, now: Instant) -> usize {
        let seq = self.next_seq;
        self.next_seq += 1;
        let close_after = !head.keep_alive;
        self.closing |= close_after;
        if self.slots.capacity() == 0 {
            // Most connections never pipeline: room for one slot, not VecDeque's four.
            self.slots.reserve_exact(1);
        }
        self.slots.push_back(Slot {
            seq,
            state: SlotState::Pending,
            is_head: head.is_head,
            minor: head.minor,
            close_after,
            client_done: close_after,
            chunked: false,
            since: now,
            out: SendQueue::default(),
        });
        self.slots.len() - 1
    }
}

/// What parsing found.
enum Step {
    /// Nothing more to do until bytes arrive (or a response completes).
    Wait,
    /// A complete request: deliver it. `parsed` says the scratch head already holds it.
    /// `chunked`: the head is in `head_buf` and the body in `body` (not in `recv`).
    Deliver { head_len: usize, body_len: usize, chunked: bool, parsed: bool },
    /// A head whose body is coming: tell the handler (HTTP_HEAD) before reading it.
    Head { head_len: usize },
    /// The first `len` bytes of `recv` are a piece of a streamed body.
    Piece { len: usize },
    /// `body` holds a decoded piece of a streamed chunked body.
    DecodedPiece,
    /// State changed; step again.
    Again,
    Reject(Reject),
}

/// A response body handed to tern.
pub enum Body<'a> {
    Copy(&'a [u8]),
    Shared(Bytes),
    /// A range of an open file, sent with `sendfile` (never read into memory).
    File(FileSeg),
}

impl Body<'_> {
    fn len(&self) -> usize {
        match self {
            Body::Copy(d) => d.len(),
            Body::Shared(b) => b.len(),
            Body::File(f) => f.len,
        }
    }
}

/// Which slot a response call is for.
#[derive(Clone, Copy)]
enum Target {
    /// The oldest request the handler has not answered or deferred (inline calls).
    Inline,
    /// A deferred request, by its sequence number.
    Token(u64),
}

impl Manager {
    /// New bytes (or a freed pipeline place): parse and deliver every complete request.
    pub(crate) fn http_on_data(&self, id: ConnId) {
        let mut head = std::mem::take(&mut self.inner.borrow_mut().http_head);
        loop {
            let step = {
                let mut inner = self.inner.borrow_mut();
                let r = http_step(&mut inner, id, &mut head);
                http_arm(&mut inner, id);
                r
            };
            match step {
                Step::Wait => break,
                Step::Reject(r) => {
                    self.http_reject(id, r);
                    break;
                }
                Step::Deliver { head_len, body_len, chunked, parsed } => {
                    self.http_deliver(id, &mut head, head_len, body_len, chunked, parsed)
                }
                Step::Head { head_len } => self.http_announce(id, &head, head_len),
                Step::Piece { len } => self.http_piece(id, Some(len)),
                Step::DecodedPiece => self.http_piece(id, None),
                Step::Again => {}
            }
        }
        self.inner.borrow_mut().http_head = head;
    }

    /// Lends the request's bytes to the handler as an `HttpMsg`, then consumes them.
    fn http_deliver(&self, id: ConnId, head: &mut Head, head_len: usize, body_len: usize, chunked: bool, parsed: bool) {
        let lent = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            let Proto::Http(h) = &mut c.proto else { return };
            let seq = h.slots.back().map_or(0, |s| s.seq);
            if let Some(s) = h.slots.back_mut().filter(|s| s.state == SlotState::Reading) {
                // The defer clock starts when the handler has the whole request.
                s.state = SlotState::Pending;
                s.since = Instant::now();
            }
            h.state = ReqState::Head;
            h.stream_done = false;
            let bufs = chunked.then(|| (std::mem::take(&mut h.head_buf), std::mem::take(&mut h.body)));
            (c.lend_recv(), bufs, seq)
        };
        let (recv, bufs, seq) = lent;
        {
            let (buf, body): (&[u8], &[u8]) = match &bufs {
                Some((hb, b)) => (hb, b),
                None => (recv.data(), &recv.data()[head_len..head_len + body_len]),
            };
            if !parsed {
                let ok = head.parse(buf, usize::MAX);
                debug_assert!(matches!(ok, Ok(true)), "a head that parsed once parses again");
            }
            let msg = HttpMsg { buf, head, body, seq, status: 0 };
            self.call_raw(id, &Event::HttpMsg(&msg));
        }
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(c) = inner.conns.get_mut(&id) else { return };
        c.return_recv(recv, if chunked { 0 } else { head_len + body_len }, &mut inner.pool);
        if let (Proto::Http(h), Some((mut hb, mut b))) = (&mut c.proto, bufs) {
            hb.clear();
            b.clear();
            h.head_buf = hb;
            h.body = b;
        }
    }

    /// HTTP_HEAD: the head of a request with a body, before the body is read. The
    /// handler may call `http_stream_body`; either way the head is parsed again next
    /// step (it stays at the front of the buffer) and goes on as chosen.
    fn http_announce(&self, id: ConnId, head: &Head, head_len: usize) {
        let (recv, seq) = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            let Proto::Http(h) = &mut c.proto else { return };
            h.in_head_event = true;
            let seq = h.next_seq;
            (c.lend_recv(), seq)
        };
        {
            let buf = &recv.data()[..head_len];
            let msg = HttpMsg { buf, head, body: &[], seq, status: 0 };
            self.call_raw(id, &Event::HttpHead(&msg));
        }
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(c) = inner.conns.get_mut(&id) else { return };
        c.return_recv(recv, 0, &mut inner.pool);
        if let Proto::Http(h) = &mut c.proto {
            h.in_head_event = false;
        }
    }

    /// HTTP_BODY: one piece of a streamed body, from `recv` (`Some(len)`) or from the
    /// chunked decoder's output (`None`); consumed once the handler returns.
    fn http_piece(&self, id: ConnId, raw: Option<usize>) {
        let (recv, body) = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            let Proto::Http(h) = &mut c.proto else { return };
            let body = std::mem::take(&mut h.body);
            (c.lend_recv(), body)
        };
        let piece = match raw {
            Some(len) => &recv.data()[..len],
            None => &body[..],
        };
        self.call_raw(id, &Event::HttpBody(piece));
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let (mut recv, mut body) = (recv, body);
        let Some(c) = inner.conns.get_mut(&id) else {
            recv.clear(&mut inner.pool);
            return;
        };
        c.return_recv(recv, raw.unwrap_or(0), &mut inner.pool);
        if let Proto::Http(h) = &mut c.proto {
            if let (Some(len), ReqState::StreamLength { left }) = (raw, &mut h.state) {
                *left -= len as u64;
            }
            body.clear();
            h.body = body;
        }
    }

    /// Inside HTTP_HEAD: take this request's body as HTTP_BODY pieces instead of
    /// buffering it (MAX_STREAM_BODY_BYTES bounds it instead of MAX_BODY_BYTES). The
    /// request itself then comes as HTTP_MSG with an empty body, to be answered.
    pub fn http_stream_body(&self, id: ConnId) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        let c = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        match &mut c.proto {
            Proto::Http(h) if h.in_head_event => {
                h.stream = true;
                Ok(())
            }
            _ => Err(Error::Protocol),
        }
    }

    /// Answers a bad request with `r.status` and closes after it (and after every
    /// response due before it).
    fn http_reject(&self, id: ConnId, r: Reject) {
        crate::tern_log!(crate::log::Level::Info, "connection {id}: {} {}", r.status, r.why);
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(c) = inner.conns.get_mut(&id) else { return };
        let Proto::Http(h) = &mut c.proto else { return };
        h.closing = true;
        h.head_started = None;
        let reading_body = h.state != ReqState::Head;
        h.state = ReqState::Head;
        let now = Instant::now();
        // A body that went wrong belongs to the last slot; a bad head gets its own.
        let idx = match (reading_body, h.slots.len()) {
            (true, n) if n > 0 => n - 1,
            _ => {
                let seq = h.next_seq;
                h.next_seq += 1;
                h.slots.push_back(Slot {
                    seq,
                    state: SlotState::Pending,
                    is_head: false,
                    minor: 1,
                    close_after: true,
                    client_done: false,
                    chunked: false,
                    since: now,
                    out: SendQueue::default(),
                });
                h.slots.len() - 1
            }
        };
        h.slots[idx].close_after = true;
        // Refused mid-request: the client may still be sending, so the close must
        // linger rather than reset what it is reading.
        h.slots[idx].client_done = false;
        let body = r.why.as_bytes();
        let _ = write_response(c, &mut inner.pool, &mut inner.date, idx, r.status, b"Content-Type: text/plain\r\n", Some(body.len() + 1));
        let _ = write_body(c, &mut inner.pool, idx, Body::Copy(body));
        let _ = write_body(c, &mut inner.pool, idx, Body::Copy(b"\n"));
        finish(c, &mut inner.pool, idx);
        // Whatever else the client sent is not going to be read.
        c.recv.clear(&mut inner.pool);
        self.http_after_write(inner, id);
    }

    /// Answers the request: `tern_http_reply`.
    pub fn http_reply(&self, id: ConnId, status: u16, headers: &[u8], body: Body<'_>) -> Result<()> {
        self.http_respond_at(id, Target::Inline, status, headers, Some(body))
    }

    /// Starts a streamed response (chunked unless `headers` has Content-Length).
    pub fn http_begin(&self, id: ConnId, status: u16, headers: &[u8]) -> Result<()> {
        self.http_respond_at(id, Target::Inline, status, headers, None)
    }

    pub fn http_write(&self, id: ConnId, body: Body<'_>) -> Result<()> {
        self.http_stream_at(id, Target::Inline, Some(body))
    }

    pub fn http_end(&self, id: ConnId) -> Result<()> {
        self.http_stream_at(id, Target::Inline, None)
    }

    /// Defers request `seq` (from its `HttpMsg`) to be answered through a remote.
    pub fn http_defer(&self, id: ConnId, seq: u64) -> Result<Token> {
        {
            let mut inner = self.inner.borrow_mut();
            let c = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
            let Proto::Http(h) = &mut c.proto else { return Err(Error::Protocol) };
            let slot = h.slots.iter_mut().find(|s| s.seq == seq).ok_or(Error::Protocol)?;
            if slot.state != SlotState::Pending {
                return Err(Error::Protocol);
            }
            slot.state = SlotState::Deferred;
        }
        self.defer_registry().insert((id, seq));
        Ok((id, seq))
    }

    /// A remote's answer to a deferred request arrived on the loop.
    pub(crate) fn http_on_respond(&self, token: Token, step: DeferStep, status: u16, headers: &[u8], body: Option<Bytes>) {
        let (id, seq) = token;
        let target = Target::Token(seq);
        let r = match step {
            DeferStep::Whole => self.http_respond_at(id, target, status, headers, Some(body.map_or(Body::Copy(&[]), Body::Shared))),
            DeferStep::Begin => self.http_respond_at(id, target, status, headers, None),
            DeferStep::Write => self.http_stream_at(id, target, body.map(Body::Shared)),
            DeferStep::End => self.http_stream_at(id, target, None),
        };
        if r.is_err() || matches!(step, DeferStep::Whole | DeferStep::End) {
            self.defer_registry().remove(token);
        }
    }

    fn http_respond_at(&self, id: ConnId, target: Target, status: u16, headers: &[u8], body: Option<Body<'_>>) -> Result<()> {
        if !(100..=999).contains(&status) || !response::valid_extra_headers(headers) {
            return Err(Error::Invalid);
        }
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let c = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        let idx = answer_slot(c, target, false)?;
        let len = body.as_ref().map(Body::len);
        write_response(c, &mut inner.pool, &mut inner.date, idx, status, headers, len)?;
        if let Some(body) = body {
            write_body(c, &mut inner.pool, idx, body)?;
            finish(c, &mut inner.pool, idx);
        }
        self.http_after_write(inner, id);
        Ok(())
    }

    /// `write` (with a body) or `end` (without) on a streamed response.
    fn http_stream_at(&self, id: ConnId, target: Target, body: Option<Body<'_>>) -> Result<()> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let c = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        let idx = answer_slot(c, target, true)?;
        match body {
            Some(b) => write_body(c, &mut inner.pool, idx, b)?,
            None => finish(c, &mut inner.pool, idx),
        }
        self.http_after_write(inner, id);
        Ok(())
    }

    /// After output was added: retire finished slots, flush, close if the last
    /// response is out, resume parsing if the pipeline has room.
    fn http_after_write(&self, inner: &mut Inner, id: ConnId) {
        let max_queue = inner.opts.max_send_queue;
        let Some(c) = inner.conns.get_mut(&id) else { return };
        let Proto::Http(h) = &mut c.proto else { return };
        let (mut close, mut client_done) = (false, h.peer_eof);
        while h.slots.front().is_some_and(|s| s.state == SlotState::Done) {
            let done = h.slots.pop_front().expect("checked front");
            close |= done.close_after;
            client_done |= done.client_done;
            if let Some(next) = h.slots.front_mut() {
                c.sendq.append(&mut next.out);
            }
        }
        if h.slots.is_empty() {
            h.active_at = Instant::now();
            close |= h.peer_eof || (h.closing && h.state == ReqState::Head && h.head_started.is_none() && c.recv.is_empty());
        }
        let room = !h.closing && h.slots.len() < MAX_PIPELINE && !c.recv.is_empty();
        let over = c.sendq.memory_queued() > max_queue;
        if close && client_done {
            c.flags.set(Flags::NO_LINGER);
        }
        inner.schedule(id, Flags::DIRTY);
        if room {
            inner.schedule(id, Flags::PARSE_MORE);
        }
        if over {
            inner.fail_locked(id, "send queue limit exceeded by an HTTP response".to_string());
        } else if close {
            inner.close_locked(id);
        }
        http_arm(inner, id);
    }

    /// The peer sent EOF. Requests read in full are still parsed and what is
    /// already answered is still written; but a request still waiting for its answer
    /// means the client left: the connection closes at once, and a late respond gets
    /// `Closed` (as nginx treats a client abort). A TCP half-close cannot be told apart
    /// from a full close without writing, and waiting could hold the connection for
    /// the whole defer timeout.
    pub(crate) fn http_on_eof(&self, id: ConnId) {
        self.http_on_data(id);
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(c) = inner.conns.get_mut(&id) else { return };
        let Proto::Http(h) = &mut c.proto else { return };
        h.peer_eof = true;
        h.closing = true;
        let waiting = h
            .slots
            .iter()
            .any(|s| matches!(s.state, SlotState::Reading | SlotState::Pending | SlotState::Deferred | SlotState::Streaming { deferred: true }));
        if waiting {
            inner.fail_locked(id, "client closed before its request was answered".to_string());
        } else if h.slots.is_empty() {
            inner.close_locked(id);
        }
    }

    /// The connection's timer: slow heads get 408, unanswered requests 503, idle
    /// keep-alive connections are closed.
    pub(crate) fn http_on_timer(&self, id: ConnId, tid: u64) {
        let now = Instant::now();
        let action = {
            let mut guard = self.inner.borrow_mut();
            let inner = &mut *guard;
            let opts = &inner.opts;
            let Some(c) = inner.conns.get_mut(&id) else { return };
            let Proto::Http(h) = &mut c.proto else { return };
            if h.timer.map(|t| t.0) != Some(tid) {
                return;
            }
            h.timer = None;
            let header_ms = Duration::from_millis(opts.header_timeout_ms);
            let idle = Duration::from_millis(opts.idle_timeout_ms);
            let defer = Duration::from_millis(opts.defer_timeout_ms);
            if h.head_started.is_some_and(|t| now >= t + header_ms) {
                TimerFired::HeadTimeout
            } else if let Some(s) = h.slots.iter().find(|s| s.awaits_answer() && now >= s.since + defer) {
                match s.state {
                    SlotState::Streaming { .. } => TimerFired::Stalled(s.seq),
                    st => TimerFired::Unanswered(s.seq, st == SlotState::Deferred),
                }
            } else if h.state != ReqState::Head && now >= h.active_at + idle {
                TimerFired::HeadTimeout
            } else if h.slots.is_empty() && h.head_started.is_none() && c.sendq.is_empty() && now >= h.active_at + idle {
                TimerFired::Idle
            } else {
                TimerFired::Nothing
            }
        };
        match action {
            TimerFired::HeadTimeout => self.http_reject(id, Reject { status: 408, why: "request not received in time" }),
            TimerFired::Unanswered(seq, deferred) => self.http_unanswered(id, seq, deferred),
            TimerFired::Stalled(seq) => self.http_stalled(id, seq),
            TimerFired::Idle => {
                let _ = self.close(id);
            }
            TimerFired::Nothing => {}
        }
        http_arm(&mut self.inner.borrow_mut(), id);
    }

    /// A deferred stream's worker went quiet: its head is out, so no 503 can follow;
    /// the connection fails (the client sees a truncated chunked body, not a complete
    /// one) and the token stops working.
    fn http_stalled(&self, id: ConnId, seq: u64) {
        let reg = self.defer_registry();
        if reg.answered((id, seq)) {
            return;
        }
        reg.remove((id, seq));
        reg.remove_conn(id);
        let mut guard = self.inner.borrow_mut();
        guard.fail_locked(id, format!("deferred response to request {seq} stalled"));
    }

    /// DEFER_TIMEOUT_MS passed: 503, then close, and the token stops working.
    fn http_unanswered(&self, id: ConnId, seq: u64, deferred: bool) {
        if deferred {
            let reg = self.defer_registry();
            if reg.answered((id, seq)) {
                // The answer is on its way through the channel: let it land.
                return;
            }
            reg.remove((id, seq));
            // The connection closes after the 503: late responds get `Closed`.
            reg.remove_conn(id);
        }
        crate::tern_log!(crate::log::Level::Warn, "connection {id}: request {seq} not answered in time: 503");
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(c) = inner.conns.get_mut(&id) else { return };
        let Proto::Http(h) = &mut c.proto else { return };
        let Some(idx) = h.slots.iter().position(|s| s.seq == seq) else { return };
        h.closing = true;
        h.slots[idx].close_after = true;
        h.slots[idx].state = SlotState::Pending;
        let body = b"request not answered in time\n";
        let _ = write_response(c, &mut inner.pool, &mut inner.date, idx, 503, b"Content-Type: text/plain\r\n", Some(body.len()));
        let _ = write_body(c, &mut inner.pool, idx, Body::Copy(body));
        finish(c, &mut inner.pool, idx);
        self.http_after_write(inner, id);
    }
}

enum TimerFired {
    HeadTimeout,
    Unanswered(u64, bool),
    /// A deferred streamed answer got nothing new for DEFER_TIMEOUT_MS.
    Stalled(u64),
    Idle,
    Nothing,
}

/// The slot a response call is for: the oldest unanswered request (inline) or the
/// deferred one named by a token; `streaming` for write/end of a begun response.
/// `Closed` when the connection or the token's request is gone.
fn answer_slot(c: &mut Conn, target: Target, streaming: bool) -> Result<usize> {
    if c.phase > Phase::Open || c.flags.has(Flags::CLOSE_NOW) {
        return Err(Error::Closed);
    }
    let Proto::Http(h) = &mut c.proto else { return Err(Error::Protocol) };
    if h.in_head_event && matches!(target, Target::Inline) {
        // HTTP_HEAD is not the request: its answer belongs in HTTP_MSG.
        return Err(Error::Protocol);
    }
    let wanted = |deferred: bool| if streaming { SlotState::Streaming { deferred } } else if deferred { SlotState::Deferred } else { SlotState::Pending };
    let idx = h
        .slots
        .iter()
        .position(|s| match target {
            Target::Inline => s.state == wanted(false),
            Target::Token(seq) => s.seq == seq && s.state == wanted(true),
        })
        .ok_or(if matches!(target, Target::Token(_)) { Error::Closed } else { Error::Protocol })?;
    // A deferred answer's clock restarts with every step a worker takes.
    h.slots[idx].since = Instant::now();
    Ok(idx)
}

/// One parsing step under the borrow.
fn http_step(inner: &mut Inner, id: ConnId, head: &mut Head) -> Step {
    let Inner { conns, opts, pool, .. } = inner;
    let Some(c) = conns.get_mut(&id) else { return Step::Wait };
    if c.phase != Phase::Open || c.flags.has(Flags::CLOSE_NOW) {
        return Step::Wait;
    }
    let Proto::Http(h) = &mut c.proto else { return Step::Wait };
    let now = Instant::now();
    match h.state {
        ReqState::Head => {
            if h.closing || h.slots.len() >= MAX_PIPELINE {
                return Step::Wait;
            }
            let data = c.recv.data();
            if data.is_empty() {
                return Step::Wait;
            }
            h.head_started.get_or_insert(now);
            match head.parse(data, opts.max_header_bytes) {
                Ok(false) => Step::Wait,
                Err(r) => Step::Reject(r),
                Ok(true) => {
                    let has_body = matches!(head.framing, ReqFraming::Length(n) if n > 0) || head.framing == ReqFraming::Chunked;
                    if has_body && opts.http_head_events && !h.announced {
                        h.announced = true;
                        return Step::Head { head_len: head.len };
                    }
                    h.announced = false;
                    if std::mem::take(&mut h.stream) {
                        return start_stream(c, head, opts, pool, now);
                    }
                    if matches!(head.framing, ReqFraming::Length(n) if n > opts.max_body_bytes as u64) {
                        // Refused before it gets a place in the pipeline: the rejection
                        // is the answer to this request.
                        return Step::Reject(Reject { status: 413, why: "request body too large" });
                    }
                    h.head_started = None;
                    h.active_at = now;
                    let idx = h.open_slot(head, now);
                    let head_len = head.len;
                    match head.framing {
                        ReqFraming::None => Step::Deliver { head_len, body_len: 0, chunked: false, parsed: true },
                        ReqFraming::Length(n) => {
                            let len = n as usize;
                            if head.expect_continue && data.len() < head_len + len {
                                write_continue(c, pool, idx);
                            }
                            let Proto::Http(h) = &mut c.proto else { unreachable!("checked above") };
                            h.slots[idx].state = SlotState::Reading;
                            h.state = ReqState::Length { head_len, len };
                            if c.recv.len() >= head_len + len {
                                Step::Deliver { head_len, body_len: len, chunked: false, parsed: true }
                            } else {
                                Step::Wait
                            }
                        }
                        ReqFraming::Chunked => {
                            if head.expect_continue {
                                write_continue(c, pool, idx);
                            }
                            let Proto::Http(h) = &mut c.proto else { unreachable!("checked above") };
                            h.slots[idx].state = SlotState::Reading;
                            h.head_buf.clear();
                            h.head_buf.extend_from_slice(&c.recv.data()[..head_len]);
                            c.recv.consume(head_len);
                            h.decoder.reset();
                            h.body.clear();
                            h.state = ReqState::Chunked;
                            decode_chunked(c, opts.max_body_bytes)
                        }
                    }
                }
            }
        }
        ReqState::Length { head_len, len } => {
            h.active_at = now;
            if c.recv.len() >= head_len + len {
                Step::Deliver { head_len, body_len: len, chunked: false, parsed: false }
            } else {
                Step::Wait
            }
        }
        ReqState::Chunked => {
            h.active_at = now;
            decode_chunked(c, opts.max_body_bytes)
        }
        ReqState::StreamLength { left: 0 } => Step::Deliver { head_len: 0, body_len: 0, chunked: true, parsed: false },
        ReqState::StreamLength { left } => {
            h.active_at = now;
            match usize::try_from(left).map_or(c.recv.len(), |l| l.min(c.recv.len())) {
                0 => Step::Wait,
                len => Step::Piece { len },
            }
        }
        ReqState::StreamChunked => {
            h.active_at = now;
            if !h.body.is_empty() {
                return Step::DecodedPiece;
            }
            if h.stream_done {
                return Step::Deliver { head_len: 0, body_len: 0, chunked: true, parsed: false };
            }
            if c.recv.is_empty() {
                return Step::Wait;
            }
            match decode_chunked(c, usize::try_from(opts.max_stream_body).unwrap_or(usize::MAX)) {
                Step::Deliver { .. } => {
                    let Proto::Http(h) = &mut c.proto else { return Step::Wait };
                    h.stream_done = true;
                    Step::Again
                }
                Step::Wait => Step::Again,
                other => other,
            }
        }
    }
}

/// The handler chose streaming in HTTP_HEAD: the request gets its slot, its head
/// moves to `head_buf` (for the final HTTP_MSG) and the body is passed on in pieces.
fn start_stream(c: &mut Conn, head: &Head, opts: &crate::options::Options, pool: &mut BufPool, now: Instant) -> Step {
    let Proto::Http(h) = &mut c.proto else { return Step::Wait };
    h.head_started = None;
    h.active_at = now;
    let idx = h.open_slot(head, now);
    h.slots[idx].state = SlotState::Reading;
    h.head_buf.clear();
    h.head_buf.extend_from_slice(&c.recv.data()[..head.len]);
    c.recv.consume(head.len);
    h.body.clear();
    h.stream_done = false;
    match head.framing {
        ReqFraming::Length(n) => {
            h.state = ReqState::StreamLength { left: n };
            if n > opts.max_stream_body {
                return Step::Reject(Reject { status: 413, why: "request body too large" });
            }
        }
        _ => {
            h.decoder.reset();
            h.state = ReqState::StreamChunked;
        }
    }
    if head.expect_continue {
        write_continue(c, pool, idx);
    }
    Step::Again
}

fn decode_chunked(c: &mut Conn, max_body: usize) -> Step {
    let Proto::Http(h) = &mut c.proto else { return Step::Wait };
    let body = &mut h.body;
    let r = h.decoder.decode(c.recv.data(), max_body, &mut |piece: &[u8]| body.extend_from_slice(piece));
    match r {
        Ok((used, done)) => {
            c.recv.consume(used);
            if done {
                Step::Deliver { head_len: 0, body_len: 0, chunked: true, parsed: false }
            } else {
                Step::Wait
            }
        }
        Err(ChunkError::TooLarge) => Step::Reject(Reject { status: 413, why: "request body too large" }),
        Err(ChunkError::Malformed) => Step::Reject(Reject { status: 400, why: "malformed chunked body" }),
    }
}

/// "100 Continue", in order with earlier responses.
fn write_continue(c: &mut Conn, pool: &mut BufPool, idx: usize) {
    let Proto::Http(h) = &mut c.proto else { return };
    let q = if idx == 0 { &mut c.sendq } else { &mut h.slots[idx].out };
    q.push_copy(b"HTTP/1.1 100 Continue\r\n\r\n", pool);
}

/// Writes the status line and fields for slot `idx`; `len` is the whole body's
/// length, or None for a streamed body.
fn write_response(c: &mut Conn, pool: &mut BufPool, date: &mut super::date::DateCache, idx: usize, status: u16, extra: &[u8], len: Option<usize>) -> Result<()> {
    let Conn { sendq, proto, sock, flags, .. } = c;
    let Proto::Http(h) = proto else { return Err(Error::Protocol) };
    let slot = &mut h.slots[idx];
    slot.close_after |= response::asks_close(extra) || h.peer_eof;
    let framing = if response::bodiless(status) {
        Framing::None
    } else if response::has_field(extra, b"content-length") {
        Framing::CallerLength
    } else if let Some(n) = len {
        Framing::Length(n)
    } else if slot.minor >= 1 {
        Framing::Chunked
    } else {
        // An HTTP/1.0 client knows the end of a stream only by the close.
        slot.close_after = true;
        Framing::None
    };
    if slot.close_after {
        h.closing = true;
    }
    let conn = match (slot.close_after, slot.minor) {
        (true, _) => ConnField::Close,
        (false, 0) => ConnField::KeepAlive,
        (false, _) => ConnField::Omit,
    };
    slot.chunked = framing == Framing::Chunked;
    if !slot.close_after && !flags.has(Flags::NODELAY) {
        // Kept alive: later (or streamed) small responses must not wait on Nagle.
        if let crate::conn::Sock::Stream(s) = sock {
            let _ = s.set_nodelay(true);
        }
        flags.set(Flags::NODELAY);
    }
    let deferred = slot.state == SlotState::Deferred;
    slot.state = SlotState::Streaming { deferred };
    let q = if idx == 0 { sendq } else { &mut slot.out };
    response::write_head(q, pool, status, extra, framing, conn, date.get());
    Ok(())
}

/// Appends body bytes to slot `idx` (framed as a chunk if it is chunked; dropped
/// for HEAD requests).
fn write_body(c: &mut Conn, pool: &mut BufPool, idx: usize, body: Body<'_>) -> Result<()> {
    let Conn { sendq, proto, .. } = c;
    let Proto::Http(h) = proto else { return Err(Error::Protocol) };
    let slot = &mut h.slots[idx];
    if slot.is_head || body.len() == 0 {
        return Ok(());
    }
    let chunked = slot.chunked;
    let q = if idx == 0 { sendq } else { &mut slot.out };
    let mut line = [0u8; 20];
    if chunked {
        q.push_copy(response::chunk_size_line(body.len(), &mut line), pool);
    }
    match body {
        Body::Copy(d) => q.push_copy(d, pool),
        Body::Shared(b) => q.push_bytes(b),
        Body::File(f) => q.push_file(f),
    }
    if chunked {
        q.push_copy(b"\r\n", pool);
    }
    Ok(())
}

/// Ends slot `idx`'s response.
fn finish(c: &mut Conn, pool: &mut BufPool, idx: usize) {
    let Conn { sendq, proto, .. } = c;
    let Proto::Http(h) = proto else { return };
    let slot = &mut h.slots[idx];
    if slot.chunked && !slot.is_head {
        let q = if idx == 0 { sendq } else { &mut slot.out };
        q.push_copy(response::LAST_CHUNK, pool);
    }
    slot.state = SlotState::Done;
}

/// Arms the connection's timer for its earliest deadline. A timer already due
/// sooner is kept (it re-arms when it fires), so steady traffic costs no heap work.
fn http_arm(inner: &mut Inner, id: ConnId) {
    let Inner { conns, opts, timers, .. } = inner;
    let Some(c) = conns.get_mut(&id) else { return };
    if c.phase >= Phase::Draining {
        return;
    }
    let Proto::Http(h) = &mut c.proto else { return };
    let ms = Duration::from_millis;
    let mut due: Option<Instant> = None;
    let mut consider = |t: Instant| due = Some(due.map_or(t, |d| d.min(t)));
    if let Some(t) = h.head_started {
        consider(t + ms(opts.header_timeout_ms));
    }
    if let Some(s) = h.slots.iter().filter(|s| s.awaits_answer()).min_by_key(|s| s.since) {
        consider(s.since + ms(opts.defer_timeout_ms));
    }
    if h.state != ReqState::Head || h.slots.is_empty() {
        consider(h.active_at + ms(opts.idle_timeout_ms));
    }
    let Some(due) = due else { return };
    if let Some((old, at)) = h.timer {
        if at <= due {
            return;
        }
        timers.cancel(old);
    }
    h.timer = Some((timers.add(due, TimerAction::Proto(id)), due));
}

