//! The HTTP/1.1 server side of a connection.
//!
//! Every request gets a *slot* when its head is read, in arrival order; its response
//! is written into the slot. Only the front slot writes to the connection's send
//! queue; later slots buffer until every earlier response is complete, so a deferred
//! request keeps its place among pipelined ones. A request that asks to close (or an
//! error) stops parsing, and the connection closes only once the response to the last
//! request it will answer is complete and flushed: `Connection: close` means "close
//! after the response", never "drain now".
//!
//! What a connection keeps between requests is a few words (`ServerConn`); the
//! request state (slots, parse state, chunked buffers: an `Exchange`) comes from a
//! per-manager pool when a request starts and goes back when the connection is idle,
//! so an idle keep-alive connection holds nothing that belongs to a request and a
//! busy one allocates nothing per request.

use super::chunked::ChunkError;
use super::defer::{Answer, DeferRegistry, Stage, Token};
use super::fields::{self, Fields};
use super::h1::{Body, Chunked, Delivery, HttpEvent, Lent};
use super::parse::{Framing, Head, Reject};
use super::response::{self, ConnField};
use super::shared::Shared;
use crate::buf::recv_buf::RecvBuf;
use crate::buf::send_queue::SendQueue;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::proto::{ConnId, Ctx, Protocol, Step};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests read ahead of their responses; past it parsing waits (bounded memory
/// per connection however deep the client pipelines).
const MAX_PIPELINE: usize = 16;

/// Idle request states a manager keeps for reuse.
const MAX_POOLED: usize = 256;

type Cx<'a> = Ctx<'a, Shared>;
type HttpStep = Step<Delivery, Infallible>;

/// Per-connection server state.
pub struct ServerConn {
    /// Requests in flight; `None` while the connection is idle.
    ex: Option<Box<Exchange>>,
    st: ConnState,
}

/// What a connection keeps between requests.
struct ConnState {
    next_seq: u64,
    /// Last time bytes arrived or the connection became idle.
    active_at: Instant,
    /// A request that ends the connection was read (or an error): parse no more.
    closing: bool,
    peer_eof: bool,
}

/// Idle `Exchange`s, shared by a manager's server connections. Boxed: a connection
/// holds its exchange by pointer (a few words while idle), and the box moves between
/// the pool and the connections whole.
#[derive(Default)]
#[allow(clippy::vec_box)]
pub struct ExchangePool(Vec<Box<Exchange>>);

/// The state of the requests in flight on one connection.
#[derive(Default)]
pub struct Exchange {
    state: ReqState,
    slots: VecDeque<Slot>,
    /// When the first byte of the head being read arrived (slowloris bound).
    head_started: Option<Instant>,
    /// A chunked body is decoded here while its head waits.
    chunked: Chunked,
    /// HTTP_HEAD was delivered for the head at the front of the buffer.
    announced: bool,
    /// Inside the HTTP_HEAD handler (the only time streaming can be chosen).
    in_head_event: bool,
    /// The handler chose to take this request's body in pieces.
    stream: bool,
    /// A streamed chunked body has reached its end (the final MSG is next).
    stream_done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ReqState {
    #[default]
    Head,
    Length {
        head_len: usize,
        len: usize,
    },
    Chunked,
    /// Streaming a Content-Length body: bytes still to come.
    StreamLength {
        left: u64,
    },
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
    /// Body bytes a streamed answer's head promised and that are still to come
    /// (`None`: no promise to keep: chunked, until close, HEAD).
    left: Option<u64>,
    since: Instant,
    /// Output waiting for earlier responses (empty for the front slot).
    out: SendQueue,
}

impl Slot {
    /// Waiting on the handler or a worker; the defer clock runs (a deferred stream's
    /// from its last piece).
    fn awaits_answer(&self) -> bool {
        matches!(self.state, SlotState::Pending | SlotState::Deferred | SlotState::Streaming { deferred: true })
    }

    fn is_deferred(&self) -> bool {
        matches!(self.state, SlotState::Deferred | SlotState::Streaming { deferred: true })
    }
}

/// The head tern's own answers (errors, timeouts) carry.
const TEXT_PLAIN: (&[u8], Fields) = (b"Content-Type: text/plain\r\n", Fields { content_length: None, transfer_encoding: false, connection: false, close: false, host: false });

/// Which request a response call is for.
#[derive(Clone, Copy)]
pub enum Answering {
    /// The oldest request the handler has not answered or deferred (inline calls).
    Inline,
    /// A deferred request, by its sequence number.
    Token(u64),
}

/// What one parsing step found.
enum Parsed {
    Step(HttpStep),
    Reject(Reject),
}

impl Default for ServerConn {
    fn default() -> ServerConn {
        ServerConn::new()
    }
}

impl ServerConn {
    pub fn new() -> ServerConn {
        ServerConn { ex: None, st: ConnState { next_seq: 1, active_at: Instant::now(), closing: false, peer_eof: false } }
    }

    /// The request state, from the pool if the connection was idle.
    fn exchange(&mut self, pool: &mut ExchangePool) -> &mut Exchange {
        self.ex.get_or_insert_with(|| pool.0.pop().unwrap_or_default())
    }

    /// An idle connection gives its request state back to the pool.
    fn park(&mut self, pool: &mut ExchangePool) {
        if let Some(mut ex) = self.ex.take() {
            ex.reset();
            if pool.0.len() < MAX_POOLED {
                pool.0.push(ex);
            }
        }
    }

    // ---- answering ---------------------------------------------------------------

    /// Answers a request whole (`body` given) or starts a streamed answer (`None`):
    /// `tern_http_reply`, `tern_http_begin`, and their deferred forms. tern frames
    /// the answer (see `response::check_answer`: `Invalid` for what it cannot frame,
    /// nothing written): `Content-Length` from the body, or the one the caller's
    /// headers promise for a streamed answer (kept by `stream`), else chunked (until
    /// close for HTTP/1.0); none for 204, 304 and a streamed answer to HEAD (a whole
    /// one says the length of the body it does not send). The caller's
    /// `Content-Length` and `Connection` lines give way to tern's; `Connection:
    /// close` closes after this answer.
    pub fn respond(&mut self, cx: &mut Cx<'_>, which: Answering, status: u16, headers: &[u8], body: Option<Body<'_>>) -> Result<()> {
        let fields = fields::scan(headers).ok_or(Error::Invalid)?;
        self.respond_scanned(cx, which, status, (headers, fields), body)
    }

    /// `respond` with the header block already scanned (a deferred answer's was,
    /// on the thread that posted it).
    #[inline(always)]
    pub fn respond_scanned(&mut self, cx: &mut Cx<'_>, which: Answering, status: u16, (headers, fields): (&[u8], Fields), body: Option<Body<'_>>) -> Result<()> {
        response::check_answer(status, &fields, body.as_ref().map(|b| b.len() as u64))?;
        let idx = answer_slot(self.ex.as_deref_mut(), cx.open, which, false)?;
        let ex = self.ex.as_mut().expect("answer_slot found a slot");
        let len = body.as_ref().map(Body::len);
        write_response(ex, &mut self.st, cx, idx, status, (headers, fields), len);
        if let Some(body) = body {
            write_body(ex, cx, idx, body);
            finish(ex, cx, idx);
        }
        after_write(ex, &mut self.st, cx);
        Ok(())
    }

    /// `write` (with a body) or `end` (without) on a streamed answer. The length its
    /// head promised is kept: a write past it is `Invalid` (nothing written); an end
    /// short of it is `Protocol`, and the connection fails (that answer can never be
    /// completed, and a client must not wait for the rest).
    pub fn stream(&mut self, cx: &mut Cx<'_>, which: Answering, body: Option<Body<'_>>) -> Result<()> {
        let idx = answer_slot(self.ex.as_deref_mut(), cx.open, which, true)?;
        let ex = self.ex.as_mut().expect("answer_slot found a slot");
        let slot = &mut ex.slots[idx];
        match body {
            Some(b) => {
                if let Some(left) = slot.left {
                    let n = b.len() as u64;
                    if n > left {
                        return Err(Error::Invalid);
                    }
                    slot.left = Some(left - n);
                }
                write_body(ex, cx, idx, b);
            }
            None => {
                if let Some(left) = slot.left.filter(|&l| l > 0) {
                    cx.fail_with(Error::Protocol, format!("response to request {} ended {left} bytes short of its Content-Length", slot.seq));
                    return Err(Error::Protocol);
                }
                finish(ex, cx, idx);
            }
        }
        after_write(ex, &mut self.st, cx);
        Ok(())
    }

    /// Answers the oldest request with a head alone (`status` and `headers`, no body
    /// and no framing field) as the last thing this protocol writes on the connection,
    /// which is about to speak another protocol (a 101 Switching Protocols). The
    /// request must be the only one read (`Protocol` otherwise: later ones would be
    /// lost, earlier ones still wait for their answers).
    pub fn answer_last(&mut self, cx: &mut Cx<'_>, status: u16, headers: &[u8]) -> Result<()> {
        if !(100..=999).contains(&status) || fields::scan(headers).is_none() {
            return Err(Error::Invalid);
        }
        let idx = answer_slot(self.ex.as_deref_mut(), cx.open, Answering::Inline, false)?;
        let ex = self.ex.as_mut().expect("answer_slot found a slot");
        if idx != 0 || ex.slots.len() != 1 || ex.state != ReqState::Head {
            return Err(Error::Protocol);
        }
        self.st.closing = true;
        response::write_head(cx.sendq, cx.pool, status, headers, Framing::None, ConnField::Omit, cx.shared.date.get());
        ex.slots.clear();
        cx.flush();
        Ok(())
    }

    /// Defers request `seq` (from its `HttpMsg`) to be answered through a remote.
    pub fn defer(&mut self, cx: &mut Cx<'_>, seq: u64) -> Result<Token> {
        let ex = self.ex.as_mut().ok_or(Error::Protocol)?;
        let slot = ex.slots.iter_mut().find(|s| s.seq == seq).ok_or(Error::Protocol)?;
        if slot.state != SlotState::Pending {
            return Err(Error::Protocol);
        }
        slot.state = SlotState::Deferred;
        cx.shared.defer.insert((cx.id, seq), slot.is_head);
        Ok((cx.id, seq))
    }

    /// Inside HTTP_HEAD: take this request's body as HTTP_BODY pieces instead of
    /// buffering it (MAX_STREAM_BODY_BYTES bounds it instead of MAX_BODY_BYTES). The
    /// request itself then comes as HTTP_MSG with an empty body, to be answered.
    pub fn stream_body(&mut self) -> Result<()> {
        match self.ex.as_mut() {
            Some(ex) if ex.in_head_event => {
                ex.stream = true;
                Ok(())
            }
            _ => Err(Error::Protocol),
        }
    }

    /// Answers a bad request with `r.status` and closes after it (and after every
    /// response due before it).
    fn reject(&mut self, cx: &mut Cx<'_>, r: Reject) {
        crate::tern_log!(crate::log::Level::Info, "connection {}: {} {}", cx.id, r.status, r.why);
        let now = Instant::now();
        let ServerConn { ex, st } = self;
        let ex = ex.get_or_insert_with(|| cx.shared.exchanges.0.pop().unwrap_or_default());
        st.closing = true;
        ex.head_started = None;
        let reading_body = ex.state != ReqState::Head;
        ex.state = ReqState::Head;
        // A body that went wrong belongs to the last slot; a bad head gets its own.
        let idx = match (reading_body, ex.slots.len()) {
            (true, n) if n > 0 => n - 1,
            _ => {
                let seq = st.next_seq;
                st.next_seq += 1;
                ex.slots.push_back(Slot {
                    seq,
                    state: SlotState::Pending,
                    // A client that sent HEAD reads no body, whatever is wrong after it.
                    is_head: cx.recv.data().starts_with(b"HEAD "),
                    minor: 1,
                    close_after: true,
                    client_done: false,
                    chunked: false,
                    left: None,
                    since: now,
                    out: SendQueue::default(),
                });
                ex.slots.len() - 1
            }
        };
        ex.slots[idx].close_after = true;
        // Refused mid-request: the client may still be sending, so the close must
        // linger rather than reset what it is reading.
        ex.slots[idx].client_done = false;
        let body = r.why.as_bytes();
        write_response(ex, st, cx, idx, r.status, TEXT_PLAIN, Some(body.len() + 1));
        write_body(ex, cx, idx, Body::Copy(body));
        write_body(ex, cx, idx, Body::Copy(b"\n"));
        finish(ex, cx, idx);
        // Whatever else the client sent is not going to be read.
        cx.recv.clear(cx.pool);
        after_write(ex, st, cx);
    }

    /// DEFER_TIMEOUT_MS passed: 503, then close, and the token stops working.
    fn unanswered(&mut self, cx: &mut Cx<'_>, seq: u64, deferred: bool) {
        let id = cx.id;
        if deferred {
            let reg = &cx.shared.defer;
            if reg.answered((id, seq)) {
                // The answer is on its way through the channel: let it land.
                return;
            }
            reg.remove((id, seq));
            // The connection closes after the 503: late responds get `Closed`.
            reg.remove_conn(id);
        }
        crate::tern_log!(crate::log::Level::Warn, "connection {id}: request {seq} not answered in time: 503");
        let ServerConn { ex, st } = self;
        let Some(ex) = ex.as_mut() else { return };
        let Some(idx) = ex.slots.iter().position(|s| s.seq == seq) else { return };
        st.closing = true;
        ex.slots[idx].close_after = true;
        ex.slots[idx].state = SlotState::Pending;
        let body = b"request not answered in time\n";
        write_response(ex, st, cx, idx, 503, TEXT_PLAIN, Some(body.len()));
        write_body(ex, cx, idx, Body::Copy(body));
        finish(ex, cx, idx);
        after_write(ex, st, cx);
    }

    /// A deferred stream's worker went quiet: its head is out, so no 503 can follow;
    /// the connection fails (the client sees a truncated chunked body, not a complete
    /// one) and the token stops working.
    fn stalled(&mut self, cx: &mut Cx<'_>, seq: u64) {
        let reg = &cx.shared.defer;
        if reg.answered((cx.id, seq)) {
            return;
        }
        reg.remove((cx.id, seq));
        reg.remove_conn(cx.id);
        cx.fail_with(Error::TimedOut, format!("deferred response to request {seq} stalled"));
    }

    fn timer_action(&self, opts: &Options, sendq_empty: bool, now: Instant) -> TimerFired {
        let ms = Duration::from_millis;
        let idle = ms(opts.idle_timeout_ms);
        let Some(ex) = self.ex.as_ref() else {
            return if sendq_empty && now >= self.st.active_at + idle { TimerFired::Idle } else { TimerFired::Nothing };
        };
        if ex.head_started.is_some_and(|t| now >= t + ms(opts.header_timeout_ms)) {
            TimerFired::HeadTimeout
        } else if let Some(s) = ex.slots.iter().find(|s| s.awaits_answer() && now >= s.since + ms(opts.defer_timeout_ms)) {
            match s.state {
                SlotState::Streaming { .. } => TimerFired::Stalled(s.seq),
                st => TimerFired::Unanswered(s.seq, st == SlotState::Deferred),
            }
        } else if ex.state != ReqState::Head && now >= self.st.active_at + idle {
            TimerFired::HeadTimeout
        } else if ex.slots.is_empty() && ex.head_started.is_none() && sendq_empty && now >= self.st.active_at + idle {
            TimerFired::Idle
        } else {
            TimerFired::Nothing
        }
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

impl Protocol for ServerConn {
    type Shared = Shared;
    type Remote = Arc<DeferRegistry>;
    type Posted = Answer;
    type Delivery = Delivery;
    type Lent = Lent;
    type Event<'a> = HttpEvent<'a>;
    type Upgrade = Infallible;

    fn remote_state(shared: &Shared) -> Arc<DeferRegistry> {
        shared.defer.clone()
    }

    /// New bytes (or a freed pipeline place): one parsing step.
    fn on_input(&mut self, cx: &mut Cx<'_>) -> HttpStep {
        let idle = self.ex.as_ref().is_none_or(|ex| ex.is_idle());
        if idle && cx.recv.is_empty() {
            self.park(&mut cx.shared.exchanges);
            return Step::Wait;
        }
        self.exchange(&mut cx.shared.exchanges);
        let ServerConn { ex, st } = self;
        let ex = ex.as_mut().expect("taken above");
        match ex.step(st, cx) {
            Parsed::Step(s) => s,
            Parsed::Reject(r) => {
                self.reject(cx, r);
                Step::Wait
            }
        }
    }

    /// The peer sent EOF. What is already answered is still written; but a request
    /// still waiting for its answer means the client left: the connection closes at
    /// once, and a late respond gets `Closed` (as nginx treats a client abort). A TCP
    /// half-close cannot be told apart from a full close without writing, and waiting
    /// could hold the connection for the whole defer timeout.
    fn on_eof(&mut self, cx: &mut Cx<'_>) -> HttpStep {
        self.st.peer_eof = true;
        self.st.closing = true;
        let slots = self.ex.as_ref().map(|ex| &ex.slots);
        let waiting = slots.is_some_and(|s| s.iter().any(|s| s.state == SlotState::Reading || s.awaits_answer()));
        if waiting {
            cx.fail_with(Error::Closed, "client closed before its request was answered");
        } else if slots.is_none_or(VecDeque::is_empty) {
            cx.close();
        }
        Step::Wait
    }

    /// Slow heads get 408, unanswered requests 503, idle keep-alive connections are
    /// closed.
    fn on_timer(&mut self, cx: &mut Cx<'_>) -> HttpStep {
        match self.timer_action(cx.opts, cx.sendq.is_empty(), Instant::now()) {
            TimerFired::HeadTimeout => self.reject(cx, Reject { status: 408, why: "request not received in time" }),
            TimerFired::Unanswered(seq, deferred) => self.unanswered(cx, seq, deferred),
            TimerFired::Stalled(seq) => self.stalled(cx, seq),
            TimerFired::Idle => cx.close(),
            TimerFired::Nothing => {}
        }
        Step::Wait
    }

    /// A remote's answer to a deferred request arrived on the loop.
    fn on_posted(&mut self, cx: &mut Cx<'_>, a: Answer) -> HttpStep {
        let which = Answering::Token(a.token.1);
        let head = (&a.headers[..], a.fields);
        let r = match a.stage {
            Stage::Whole => self.respond_scanned(cx, which, a.status, head, Some(a.body.map_or(Body::Copy(&[]), Body::Shared))),
            Stage::Begin => self.respond_scanned(cx, which, a.status, head, None),
            Stage::Write => self.stream(cx, which, a.body.map(Body::Shared)),
            Stage::End => self.stream(cx, which, None),
        };
        if r.is_err() || matches!(a.stage, Stage::Whole | Stage::End) {
            cx.shared.defer.remove(a.token);
        }
        Step::Again
    }

    /// A graceful shutdown: no more requests are read; the connection closes after
    /// the answer to the last one read (it says `Connection: close` unless its head
    /// is out already), or now if none is in flight (what is queued still goes).
    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        self.st.closing = true;
        match self.ex.as_mut().and_then(|ex| ex.slots.back_mut()) {
            Some(last) => last.close_after = true,
            None => cx.close(),
        }
    }

    /// Deferred answers posted before now land; later responds get `Closed`.
    fn on_shutdown_deadline(shared: &mut Shared) {
        shared.defer.freeze();
    }

    /// Deferred requests die with the connection (their tokens answer `Closed`), and
    /// the request state goes back to the pool.
    fn on_close(&mut self, id: ConnId, shared: &mut Shared) {
        if let Some(ex) = self.ex.as_ref() {
            for s in ex.slots.iter().filter(|s| s.is_deferred()) {
                shared.defer.remove((id, s.seq));
            }
        }
        shared.defer.remove_conn(id);
        self.park(&mut shared.exchanges);
    }

    fn deadline(&self, opts: &Options) -> Option<Instant> {
        let ms = Duration::from_millis;
        let idle = self.st.active_at + ms(opts.idle_timeout_ms);
        let Some(ex) = self.ex.as_ref() else { return Some(idle) };
        // The idle clock runs between requests and while a body is read.
        let mut due = (ex.state != ReqState::Head || ex.slots.is_empty()).then_some(idle);
        let mut consider = |t: Instant| due = Some(due.map_or(t, |d| d.min(t)));
        if let Some(t) = ex.head_started {
            consider(t + ms(opts.header_timeout_ms));
        }
        // A deferred stream's clock restarts with every piece, so any slot may be
        // the one due first.
        let mut since: Option<Instant> = None;
        for s in ex.slots.iter().filter(|s| s.awaits_answer()) {
            since = Some(since.map_or(s.since, |t| t.min(s.since)));
        }
        if let Some(t) = since {
            consider(t + ms(opts.defer_timeout_ms));
        }
        due
    }

    /// A request is delivered whole: its head and body must fit.
    fn recv_limit(&self, opts: &Options) -> usize {
        opts.max_recv_buffer.max(opts.max_header_bytes + opts.max_body_bytes)
    }

    fn lend(&mut self, d: Delivery, recv: RecvBuf, shared: &mut Shared) -> Lent {
        let ServerConn { ex, st } = self;
        let ex = ex.get_or_insert_with(|| shared.exchanges.0.pop().unwrap_or_default());
        let mut seq = 0;
        match d {
            Delivery::Msg { .. } => {
                seq = ex.slots.back().map_or(0, |s| s.seq);
                if let Some(s) = ex.slots.back_mut().filter(|s| s.state == SlotState::Reading) {
                    // The defer clock starts when the handler has the whole request.
                    s.state = SlotState::Pending;
                    s.since = Instant::now();
                }
                ex.state = ReqState::Head;
                ex.stream_done = false;
            }
            Delivery::Head { .. } => {
                ex.in_head_event = true;
                seq = st.next_seq;
            }
            Delivery::Piece { .. } => {}
        }
        let mut lent = Lent::new(d, recv, shared.take_head(), &mut ex.chunked);
        lent.seq = seq;
        if let Delivery::Msg { parsed: false, .. } = d {
            // The scratch head was used for other connections since: parse again.
            let (head, buf) = lent.head_mut();
            let ok = head.parse_with(buf, usize::MAX, true);
            debug_assert!(matches!(ok, Ok(true)), "a head that parsed once parses again");
        }
        lent
    }

    fn event(lent: &Lent) -> HttpEvent<'_> {
        lent.event()
    }

    fn give_back(&mut self, lent: Lent, cx: &mut Cx<'_>) {
        let d = lent.delivery;
        let ex = self.ex.as_deref_mut();
        let chunked = ex.map(|ex| {
            match (d, &mut ex.state) {
                (Delivery::Head { .. }, _) => ex.in_head_event = false,
                (Delivery::Piece { len: Some(len) }, ReqState::StreamLength { left }) => *left -= len as u64,
                _ => {}
            }
            &mut ex.chunked
        });
        lent.give_back(cx.recv, cx.shared, chunked);
    }

    fn event_code(ev: &HttpEvent<'_>) -> i32 {
        ev.code()
    }

    /// A connection answering one request writes its response in one go and closes;
    /// TCP_NODELAY comes only once it is kept alive.
    fn nodelay_at_accept(&self) -> bool {
        false
    }
}

impl Exchange {
    fn is_idle(&self) -> bool {
        self.state == ReqState::Head && self.slots.is_empty() && self.head_started.is_none() && !self.in_head_event
    }

    /// Ready for another connection: empty, its buffers' memory kept.
    fn reset(&mut self) {
        self.state = ReqState::Head;
        // Almost always empty by now: no call to clear it.
        if !self.slots.is_empty() {
            self.slots.clear();
        }
        self.head_started = None;
        self.chunked.start_body();
        self.announced = false;
        self.in_head_event = false;
        self.stream = false;
        self.stream_done = false;
    }

    fn open_slot(&mut self, st: &mut ConnState, head: &Head, now: Instant) -> usize {
        let seq = st.next_seq;
        st.next_seq += 1;
        let close_after = !head.keep_alive;
        st.closing |= close_after;
        self.slots.push_back(Slot {
            seq,
            state: SlotState::Pending,
            is_head: head.is_head,
            minor: head.minor,
            close_after,
            client_done: close_after,
            chunked: false,
            left: None,
            since: now,
            out: SendQueue::default(),
        });
        self.slots.len() - 1
    }

    /// One parsing step: where a request is read.
    fn step(&mut self, st: &mut ConnState, cx: &mut Cx<'_>) -> Parsed {
        let now = Instant::now();
        let deliver = |head_len, body_len, chunked, parsed| Parsed::Step(Step::Deliver(Delivery::Msg { head_len, body_len, chunked, parsed }));
        match self.state {
            ReqState::Head => {
                if st.closing || self.slots.len() >= MAX_PIPELINE || cx.recv.is_empty() {
                    return Parsed::Step(Step::Wait);
                }
                self.head_started.get_or_insert(now);
                let head = cx.shared.head();
                match head.parse_with(cx.recv.data(), cx.opts.max_header_bytes, cx.opts.http_lenient_lf) {
                    Ok(false) => Parsed::Step(Step::Wait),
                    Err(r) => Parsed::Reject(r),
                    Ok(true) => self.head_parsed(st, cx, now),
                }
            }
            ReqState::Length { head_len, len } => {
                st.active_at = now;
                if cx.recv.len() >= head_len + len {
                    deliver(head_len, len, false, false)
                } else {
                    Parsed::Step(Step::Wait)
                }
            }
            ReqState::Chunked => {
                st.active_at = now;
                self.decode_chunked(cx, cx.opts.max_body_bytes)
            }
            ReqState::StreamLength { left: 0 } => deliver(0, 0, true, false),
            ReqState::StreamLength { left } => {
                st.active_at = now;
                match usize::try_from(left).map_or(cx.recv.len(), |l| l.min(cx.recv.len())) {
                    0 => Parsed::Step(Step::Wait),
                    len => Parsed::Step(Step::Deliver(Delivery::Piece { len: Some(len) })),
                }
            }
            ReqState::StreamChunked => {
                st.active_at = now;
                if self.chunked.has_body() {
                    return Parsed::Step(Step::Deliver(Delivery::Piece { len: None }));
                }
                if self.stream_done {
                    return deliver(0, 0, true, false);
                }
                if cx.recv.is_empty() {
                    return Parsed::Step(Step::Wait);
                }
                match self.decode_chunked(cx, usize::try_from(cx.opts.max_stream_body).unwrap_or(usize::MAX)) {
                    Parsed::Step(Step::Deliver(_)) => {
                        self.stream_done = true;
                        Parsed::Step(Step::Again)
                    }
                    Parsed::Step(Step::Wait) => Parsed::Step(Step::Again),
                    other => other,
                }
            }
        }
    }

    /// A whole head is in the scratch `Head`: announce it, start streaming its body,
    /// or give it a slot and read its body.
    fn head_parsed(&mut self, st: &mut ConnState, cx: &mut Cx<'_>, now: Instant) -> Parsed {
        let head = cx.shared.head();
        let has_body = matches!(head.framing, Framing::Length(n) if n > 0) || head.framing == Framing::Chunked;
        if has_body && cx.opts.http_head_events && !self.announced {
            self.announced = true;
            return Parsed::Step(Step::Deliver(Delivery::Head { head_len: head.len }));
        }
        self.announced = false;
        if std::mem::take(&mut self.stream) {
            return self.start_stream(st, cx, now);
        }
        if matches!(head.framing, Framing::Length(n) if n > cx.opts.max_body_bytes as u64) {
            // Refused before it gets a place in the pipeline: the rejection is the
            // answer to this request.
            return Parsed::Reject(Reject { status: 413, why: "request body too large" });
        }
        self.head_started = None;
        st.active_at = now;
        let idx = self.open_slot(st, head, now);
        let (head_len, framing, expect) = (head.len, head.framing, head.expect_continue);
        match framing {
            Framing::Length(n) => {
                let len = n as usize;
                if expect && cx.recv.len() < head_len + len {
                    self.write_continue(cx, idx);
                }
                self.slots[idx].state = SlotState::Reading;
                self.state = ReqState::Length { head_len, len };
                if cx.recv.len() >= head_len + len {
                    Parsed::Step(Step::Deliver(Delivery::Msg { head_len, body_len: len, chunked: false, parsed: true }))
                } else {
                    Parsed::Step(Step::Wait)
                }
            }
            Framing::Chunked => {
                if expect {
                    self.write_continue(cx, idx);
                }
                self.slots[idx].state = SlotState::Reading;
                self.chunked.start(cx.recv, head_len);
                self.state = ReqState::Chunked;
                self.decode_chunked(cx, cx.opts.max_body_bytes)
            }
            Framing::None | Framing::UntilClose => Parsed::Step(Step::Deliver(Delivery::Msg { head_len, body_len: 0, chunked: false, parsed: true })),
        }
    }

    /// The handler chose streaming in HTTP_HEAD: the request gets its slot, its head
    /// moves aside (for the final HTTP_MSG) and the body is passed on in pieces.
    fn start_stream(&mut self, st: &mut ConnState, cx: &mut Cx<'_>, now: Instant) -> Parsed {
        let head = cx.shared.head();
        self.head_started = None;
        st.active_at = now;
        let idx = self.open_slot(st, head, now);
        let (head_len, framing, expect) = (head.len, head.framing, head.expect_continue);
        self.slots[idx].state = SlotState::Reading;
        self.chunked.start(cx.recv, head_len);
        self.stream_done = false;
        match framing {
            Framing::Length(n) => {
                self.state = ReqState::StreamLength { left: n };
                if n > cx.opts.max_stream_body {
                    return Parsed::Reject(Reject { status: 413, why: "request body too large" });
                }
            }
            _ => self.state = ReqState::StreamChunked,
        }
        if expect {
            self.write_continue(cx, idx);
        }
        Parsed::Step(Step::Again)
    }

    fn decode_chunked(&mut self, cx: &mut Cx<'_>, max_body: usize) -> Parsed {
        match self.chunked.decode(cx.recv, max_body) {
            Ok(true) => Parsed::Step(Step::Deliver(Delivery::Msg { head_len: 0, body_len: 0, chunked: true, parsed: false })),
            Ok(false) => Parsed::Step(Step::Wait),
            Err(ChunkError::TooLarge) => Parsed::Reject(Reject { status: 413, why: "request body too large" }),
            Err(ChunkError::Malformed) => Parsed::Reject(Reject { status: 400, why: "malformed chunked body" }),
        }
    }

    /// "100 Continue", in order with earlier responses.
    fn write_continue(&mut self, cx: &mut Cx<'_>, idx: usize) {
        let q = if idx == 0 { &mut *cx.sendq } else { &mut self.slots[idx].out };
        q.push_copy(b"HTTP/1.1 100 Continue\r\n\r\n", cx.pool);
    }
}

/// The slot a response call is for: the oldest unanswered request (inline) or the
/// deferred one named by a token; `streaming` for write/end of a begun response.
/// `Closed` when the connection or the token's request is gone.
fn answer_slot(ex: Option<&mut Exchange>, open: bool, which: Answering, streaming: bool) -> Result<usize> {
    let gone = if matches!(which, Answering::Token(_)) { Error::Closed } else { Error::Protocol };
    if !open {
        return Err(Error::Closed);
    }
    let ex = ex.ok_or(gone)?;
    if ex.in_head_event && matches!(which, Answering::Inline) {
        // HTTP_HEAD is not the request: its answer belongs in HTTP_MSG.
        return Err(Error::Protocol);
    }
    let wanted = |deferred: bool| if streaming { SlotState::Streaming { deferred } } else if deferred { SlotState::Deferred } else { SlotState::Pending };
    let idx = ex
        .slots
        .iter()
        .position(|s| match which {
            Answering::Inline => s.state == wanted(false),
            Answering::Token(seq) => s.seq == seq && s.state == wanted(true),
        })
        .ok_or(gone)?;
    if matches!(which, Answering::Token(_)) {
        // A deferred answer's clock restarts with every step a worker takes.
        ex.slots[idx].since = Instant::now();
    }
    Ok(idx)
}

/// The queue slot `idx` writes into: the connection's for the front slot, its own
/// side queue for the others.
fn slot_queue<'q>(sendq: &'q mut SendQueue, ex: &'q mut Exchange, idx: usize) -> &'q mut SendQueue {
    if idx == 0 {
        sendq
    } else {
        &mut ex.slots[idx].out
    }
}

/// Writes the status line and fields for slot `idx` (checked by
/// `response::check_answer`); `len` is the whole body's length, or None for a
/// streamed body.
fn write_response(ex: &mut Exchange, st: &mut ConnState, cx: &mut Cx<'_>, idx: usize, status: u16, (extra, fields): (&[u8], Fields), len: Option<usize>) {
    let slot = &mut ex.slots[idx];
    slot.close_after |= fields.close || st.peer_eof;
    let framing = if response::bodiless(status) {
        Framing::None
    } else if let Some(n) = len {
        // A whole body (a HEAD's is counted, not sent).
        Framing::Length(n as u64)
    } else if slot.is_head {
        // A streamed answer to HEAD: no body, so nothing to frame.
        Framing::None
    } else if let Some(n) = fields.content_length.flatten() {
        Framing::Length(n)
    } else if slot.minor >= 1 {
        Framing::Chunked
    } else {
        // An HTTP/1.0 client knows the end of a stream only by the close.
        slot.close_after = true;
        Framing::UntilClose
    };
    if slot.close_after {
        st.closing = true;
    }
    let conn = match (slot.close_after, slot.minor) {
        (true, _) => ConnField::Close,
        (false, 0) => ConnField::KeepAlive,
        (false, _) => ConnField::Omit,
    };
    slot.chunked = framing == Framing::Chunked;
    if len.is_none() {
        // What a streamed body must bring: what its head says, nothing for a status
        // without a body; no promise for chunked, until-close and HEAD.
        slot.left = match framing {
            Framing::Length(n) => Some(n),
            Framing::None if !slot.is_head => Some(0),
            _ => None,
        };
    }
    if !slot.close_after {
        // Kept alive: later (or streamed) small responses must not wait on Nagle.
        cx.nodelay();
    }
    let deferred = slot.state == SlotState::Deferred;
    slot.state = SlotState::Streaming { deferred };
    let q = slot_queue(cx.sendq, ex, idx);
    response::write_answer_head(q, cx.pool, status, extra, &fields, framing, conn, cx.shared.date.get());
}

/// Appends body bytes to slot `idx` (framed as a chunk if it is chunked; dropped
/// for HEAD requests).
fn write_body(ex: &mut Exchange, cx: &mut Cx<'_>, idx: usize, body: Body<'_>) {
    let slot = &ex.slots[idx];
    if slot.is_head || body.is_empty() {
        return;
    }
    let chunked = slot.chunked;
    let q = slot_queue(cx.sendq, ex, idx);
    let mut line = [0u8; 20];
    if chunked {
        q.push_copy(response::chunk_size_line(body.len(), &mut line), cx.pool);
    }
    body.queue(q, cx.pool);
    if chunked {
        q.push_copy(b"\r\n", cx.pool);
    }
}

/// Ends slot `idx`'s response.
fn finish(ex: &mut Exchange, cx: &mut Cx<'_>, idx: usize) {
    let slot = &ex.slots[idx];
    if slot.chunked && !slot.is_head {
        slot_queue(cx.sendq, ex, idx).push_copy(response::LAST_CHUNK, cx.pool);
    }
    ex.slots[idx].state = SlotState::Done;
}

/// After output was added: retire finished slots, flush, close if the last
/// response is out, resume parsing if the pipeline has room.
fn after_write(ex: &mut Exchange, st: &mut ConnState, cx: &mut Cx<'_>) {
    let (mut close, mut client_done) = (false, st.peer_eof);
    while ex.slots.front().is_some_and(|s| s.state == SlotState::Done) {
        let done = ex.slots.pop_front().expect("checked front");
        close |= done.close_after;
        client_done |= done.client_done;
        if let Some(next) = ex.slots.front_mut() {
            cx.sendq.append(&mut next.out, cx.pool);
        }
    }
    if ex.slots.is_empty() {
        st.active_at = Instant::now();
        close |= st.peer_eof || (st.closing && ex.state == ReqState::Head && ex.head_started.is_none() && cx.recv.is_empty());
    }
    let room = !st.closing && ex.slots.len() < MAX_PIPELINE && !cx.recv.is_empty();
    if close && client_done {
        cx.no_linger();
    }
    cx.flush();
    if room {
        cx.input_again();
    }
    if cx.sendq.memory_queued() > cx.opts.max_send_queue {
        let (queued, max) = (cx.sendq.memory_queued(), cx.opts.max_send_queue);
        cx.fail_with(Error::Full, format!("send queue limit exceeded ({queued} bytes queued with this response, limit {max})"));
    } else if close {
        cx.close();
    }
}
