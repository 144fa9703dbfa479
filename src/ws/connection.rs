//! One WebSocket connection, either end, as a protocol of the protocol interface.
//!
//! A server connection starts when an HTTP request is upgraded (the HTTP layer has
//! answered 101 by then): its first delivery is WS_OPEN with the upgrade request. A
//! client connection starts with its own handshake: the upgrade request is queued at
//! once (sent when the TCP connection is up) and the answer is checked here; WS_OPEN
//! carries the 101 answer. Then frames: the codec (`codec`) decodes what arrives and
//! builds what is sent; pings are answered at once; a close from the peer is echoed
//! with its code; a protocol error is answered with its close code. The closing
//! handshake is bounded by WS_CLOSE_TIMEOUT_MS, and the server closes TCP first.

use super::close::parse_close;
use super::codec::{Decoder, Encoder, Item, MessageKind, Payload};
use super::deflate::{self, DeflateConfig};
use super::frame::{encode_header, HeaderBuf, OpCode, Role};
use super::handshake;
use super::shared::Shared;
use super::topics::{TopicId, MAX_TOPICS_PER_CONN};
use crate::buf::recv_buf::RecvBuf;
use crate::bytes::Bytes;
use crate::error::{Error, Result};
use crate::http::h1::Body;
use crate::http::msg::HttpMsg;
use crate::http::parse::Head;
use crate::options::Options;
use crate::proto::{ConnId, Ctx, Protocol, Step};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Cx<'a> = Ctx<'a, Shared>;
type WsStep = Step<Delivery, Infallible>;

/// Copied payloads up to this size go into the send queue's pooled chunks; larger
/// new bytes (compressed, masked) are queued as they are.
const COPY_LIMIT: usize = 4096;

/// One WebSocket connection's state.
pub struct WsConn {
    role: Role,
    state: State,
    dec: Decoder,
    enc: Encoder,
    /// What WS_OPEN shows, until it is delivered (server), or the handshake in
    /// progress (client).
    opening: Option<Box<Opening>>,
    /// The topics this connection belongs to.
    topics: Vec<TopicId>,
    /// The handshake's or the closing handshake's deadline.
    deadline: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Server: WS_OPEN is next. Client: the upgrade request is out, the answer due.
    Opening,
    Open,
    /// Our close frame is queued; the peer's is due.
    CloseSent,
    /// Both close frames are out (or the connection failed): TCP closes next.
    Closed,
}

enum Opening {
    /// The upgrade request's head, copied before the HTTP layer let go of it.
    Server { head: Box<[u8]> },
    /// The key we sent and what we offered.
    Client { key: [u8; 24], protocols: Vec<Box<str>>, deflate: Option<DeflateConfig> },
}

/// What a WebSocket connection delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// WS_OPEN: the upgrade request (server, from its copy) or the 101 answer (client,
    /// the first `head_len` bytes of the receive buffer).
    Open { head_len: usize },
    /// WS_MSG or WS_CTL: `op`'s payload at `at` in the receive buffer, or (`None`) in
    /// the buffer the decoder assembled it in. `consumed` bytes of the receive buffer
    /// are used up once the handler is done.
    Frame { op: u8, at: Option<(usize, usize)>, consumed: usize },
}

/// What a WebSocket handler is lent.
pub struct Lent {
    delivery: Delivery,
    recv: RecvBuf,
    /// An assembled message, or the server's copy of the upgrade request's head.
    bytes: Vec<u8>,
    head: Head,
}

/// A WebSocket message or control frame as a handler sees it.
#[derive(Debug, Clone, Copy)]
pub struct WsMessage<'a> {
    /// `TERN_WS_*`: 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    pub op: u8,
    /// The payload (a close frame's: the 2-byte code and the reason, as received).
    pub data: &'a [u8],
}

/// What a WebSocket connection shows its handler.
pub enum WsEvent<'a> {
    /// The connection speaks WebSocket from now on (the upgrade request, or the 101).
    Open(HttpMsg<'a>),
    /// A whole text or binary message.
    Msg(WsMessage<'a>),
    /// A ping, pong or close from the peer (already answered).
    Ctl(WsMessage<'a>),
}

/// A message a remote posts to WebSocket connections.
#[derive(Clone)]
pub enum Posted {
    /// One message (or control frame) for one connection.
    Send(u8, Bytes),
    /// A publish to a topic: the same frame for every subscriber.
    Publish(Arc<Publish>),
}

/// A message published to a topic. A server's frame is the same bytes for every
/// subscriber (unmasked, uncompressed): its header is made once and its payload is
/// one shared buffer, queued by reference on every connection.
pub struct Publish {
    pub topic: Box<str>,
    pub op: u8,
    pub payload: Bytes,
    header: HeaderBuf,
}

impl Publish {
    /// A publish of `payload` as opcode `op` (text must be UTF-8: `Invalid`
    /// otherwise) to `topic`.
    pub fn new(topic: &str, op: u8, payload: Bytes) -> Result<Publish> {
        let kind = data_kind(op).ok_or(Error::Invalid)?;
        if kind == MessageKind::Text && std::str::from_utf8(payload.as_slice()).is_err() {
            return Err(Error::Invalid);
        }
        if topic.is_empty() {
            return Err(Error::Invalid);
        }
        let header = encode_header(kind.opcode(), true, false, payload.len() as u64, None);
        Ok(Publish { topic: topic.into(), op, payload, header })
    }
}

fn data_kind(op: u8) -> Option<MessageKind> {
    match op {
        1 => Some(MessageKind::Text),
        2 => Some(MessageKind::Binary),
        _ => None,
    }
}

/// The server's permessage-deflate settings from TERN_OPT_WS_DEFLATE (0: off, 1:
/// no context takeover, 2: with context takeover).
pub fn server_deflate(opts: &Options) -> Option<DeflateConfig> {
    match opts.ws_deflate {
        0 => None,
        1 => Some(DeflateConfig::low_memory()),
        _ => Some(DeflateConfig::default()),
    }
}

impl WsConn {
    /// The server end of a connection whose upgrade request (`head`, copied) was
    /// answered with 101, with the extension parameters agreed then.
    pub fn server(head: Box<[u8]>, deflate: Option<(deflate::DeflateParams, DeflateConfig)>, opts: &Options) -> WsConn {
        let (dec, enc) = match &deflate {
            Some((p, cfg)) => super::codec(Role::Server, opts.max_ws_message, Some(p), cfg),
            None => super::codec(Role::Server, opts.max_ws_message, None, &DeflateConfig::default()),
        };
        WsConn { role: Role::Server, state: State::Opening, dec, enc, opening: Some(Box::new(Opening::Server { head })), topics: Vec::new(), deadline: None }
    }

    /// The client end of a connection to `host` (as the Host field says it), asking
    /// for `path`: the state, and the upgrade request to queue (it is sent once the
    /// TCP connection is up). The answer is due within WS_HANDSHAKE_TIMEOUT_MS.
    pub fn client(opts: &Options, host: &str, path: &str, protocols: &[&str]) -> Result<(WsConn, Vec<u8>)> {
        let key = handshake::client_key().map_err(|_| Error::Io)?;
        let deflate = (opts.ws_client_deflate != 0).then(DeflateConfig::low_memory);
        let offer = deflate.as_ref().map(deflate::client_offer);
        let extra = handshake::request_headers(&key, protocols, offer.as_deref());
        let request = [b"GET ", path.as_bytes(), b" HTTP/1.1\r\nHost: ", host.as_bytes(), b"\r\n", extra.as_bytes(), b"\r\n"].concat();
        let deadline = Instant::now() + Duration::from_millis(opts.ws_handshake_timeout_ms);
        let opening = Opening::Client { key, protocols: protocols.iter().map(|p| (*p).into()).collect(), deflate };
        let (dec, enc) = super::codec(Role::Client, opts.max_ws_message, None, &DeflateConfig::default());
        let conn = WsConn { role: Role::Client, state: State::Opening, dec, enc, opening: Some(Box::new(opening)), topics: Vec::new(), deadline: Some(deadline) };
        Ok((conn, request))
    }

    // ---- sending -------------------------------------------------------------------

    /// Queues one message or control frame: `tern_ws_send`. Text must be UTF-8,
    /// control payloads at most 125 bytes, a close payload a valid code and reason
    /// (`Invalid`). `Protocol` before WS_OPEN, `Closed` once a close was sent or
    /// received. Past MAX_SEND_QUEUE the connection fails (`Full`).
    pub fn send(&mut self, cx: &mut Cx<'_>, op: u8, body: Body<'_>) -> Result<()> {
        self.writable(cx)?;
        let data = match &body {
            Body::Copy(d) => *d,
            Body::Shared(b) => b.as_slice(),
            Body::File(_) => return Err(Error::Invalid),
        };
        match op {
            8 => {
                let (code, reason) = match data.len() {
                    0 => (None, ""),
                    1 => return Err(Error::Invalid),
                    _ => {
                        let cf = parse_close(data).map_err(|_| Error::Invalid)?;
                        (cf.code(), cf.reason())
                    }
                };
                return self.close(cx, code, reason);
            }
            9 | 10 => {
                let frame = if op == 9 { self.enc.ping(data) } else { self.enc.pong(data) };
                cx.sendq.push_copy(&frame.ok_or(Error::Invalid)?, cx.pool);
            }
            _ => {
                let kind = data_kind(op).ok_or(Error::Invalid)?;
                if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
                    return Err(Error::Invalid);
                }
                let frame = self.enc.message(kind, data);
                cx.sendq.push_copy(&frame.header, cx.pool);
                match frame.payload {
                    // The caller's own bytes: a shared buffer goes out as it is.
                    Payload::Borrowed(_) => body.queue(cx.sendq, cx.pool),
                    Payload::Owned(v) if v.len() <= COPY_LIMIT => cx.sendq.push_copy(&v, cx.pool),
                    Payload::Owned(v) => cx.sendq.push_bytes(Bytes::from_vec(v), cx.pool),
                }
            }
        }
        self.queued(cx)
    }

    /// Queues a published message: its header and its shared payload.
    fn publish(&mut self, cx: &mut Cx<'_>, p: &Publish) -> Result<()> {
        self.writable(cx)?;
        if self.role == Role::Client {
            // A client masks every frame: this one is its own copy.
            return self.send(cx, p.op, Body::Shared(p.payload.clone()));
        }
        cx.sendq.push_copy(&p.header, cx.pool);
        cx.sendq.push_bytes(p.payload.clone(), cx.pool);
        self.queued(cx)
    }

    fn writable(&self, cx: &Cx<'_>) -> Result<()> {
        match self.state {
            _ if !cx.open => Err(Error::Closed),
            State::Opening => Err(Error::Protocol),
            State::Open => Ok(()),
            State::CloseSent | State::Closed => Err(Error::Closed),
        }
    }

    /// After queueing: flush, or fail a connection whose peer does not keep up.
    fn queued(&self, cx: &mut Cx<'_>) -> Result<()> {
        if cx.sendq.memory_queued() > cx.opts.max_send_queue {
            cx.fail_with(Error::Full, format!("send queue limit exceeded ({} bytes queued, limit {})", cx.sendq.memory_queued(), cx.opts.max_send_queue));
            return Err(Error::Full);
        }
        cx.flush();
        Ok(())
    }

    /// Starts the closing handshake: `tern_ws_close`. The close frame is queued and
    /// the peer's is awaited for at most WS_CLOSE_TIMEOUT_MS. `Invalid` for a code
    /// that may not be sent; closing twice is fine.
    pub fn close(&mut self, cx: &mut Cx<'_>, code: Option<u16>, reason: &str) -> Result<()> {
        match self.state {
            State::CloseSent | State::Closed => return Ok(()),
            State::Opening if self.role == Role::Client => {
                // Nothing was agreed yet: there is no WebSocket to close.
                cx.close();
                return Ok(());
            }
            _ => {}
        }
        let frame = self.enc.close(code, reason).ok_or(Error::Invalid)?;
        cx.sendq.push_copy(&frame, cx.pool);
        cx.flush();
        self.state = State::CloseSent;
        self.deadline = Some(Instant::now() + Duration::from_millis(cx.opts.ws_close_timeout_ms));
        cx.deadline_moved();
        Ok(())
    }

    // ---- topics --------------------------------------------------------------------

    /// Joins `topic` (`Full` past 64 topics).
    pub fn subscribe(&mut self, cx: &mut Cx<'_>, topic: &str) -> Result<()> {
        if topic.is_empty() {
            return Err(Error::Invalid);
        }
        if cx.shared.topics.find(topic).is_some_and(|t| self.topics.contains(&t)) {
            return Ok(());
        }
        if self.topics.len() >= MAX_TOPICS_PER_CONN {
            return Err(Error::Full);
        }
        let tid = cx.shared.topics.subscribe(topic, cx.id);
        self.topics.push(tid);
        Ok(())
    }

    /// Leaves `topic` (`NotFound` if it had not joined it).
    pub fn unsubscribe(&mut self, cx: &mut Cx<'_>, topic: &str) -> Result<()> {
        let tid = cx.shared.topics.find(topic).ok_or(Error::NotFound)?;
        let i = self.topics.iter().position(|t| *t == tid).ok_or(Error::NotFound)?;
        self.topics.swap_remove(i);
        cx.shared.topics.unsubscribe(tid, cx.id);
        Ok(())
    }

    // ---- receiving -----------------------------------------------------------------

    /// The client's handshake: is the answer in, and is it an acceptance?
    fn handshake(&mut self, cx: &mut Cx<'_>) -> WsStep {
        let head = &mut cx.shared.head;
        let lenient = cx.opts.http_client_lenient_lf;
        let (status, head_len) = match head.parse_response(cx.recv.data(), cx.opts.max_header_bytes, false, lenient) {
            Ok(None) => return Step::Wait,
            Ok(Some((status, _))) => (status, head.len),
            Err(r) => {
                cx.fail(format!("WebSocket handshake: {}", r.why));
                return Step::Wait;
            }
        };
        let Some(Opening::Client { key, protocols, deflate }) = self.opening.as_deref() else { return Step::Wait };
        let buf = cx.recv.data();
        // Every value of a field (a handshake looks up a few: collected, once each).
        let values = |name: &str| -> Vec<&[u8]> { head.headers.iter().filter(|(n, _)| n.of(buf).eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.of(buf)).collect() };
        let offered: Vec<&str> = protocols.iter().map(|p| &**p).collect();
        let agreed = handshake::client_check(status, key, values, &offered).and_then(|_| match deflate {
            Some(cfg) => deflate::accept_response(values("Sec-WebSocket-Extensions"), cfg).map(|p| p.map(|p| (p, *cfg))),
            None if !values("Sec-WebSocket-Extensions").is_empty() => Err(handshake::HandshakeError::BadResponse("an extension was not offered")),
            None => Ok(None),
        });
        match agreed {
            Ok(params) => {
                if let Some((p, cfg)) = &params {
                    (self.dec, self.enc) = super::codec(Role::Client, cx.opts.max_ws_message, Some(p), cfg);
                }
                self.opening = None;
                self.deadline = None;
                self.state = State::Open;
                Step::Deliver(Delivery::Open { head_len })
            }
            Err(e) => {
                cx.fail(format!("WebSocket handshake refused: {}", handshake_why(e)));
                Step::Wait
            }
        }
    }

    /// One item from the decoder.
    fn frames(&mut self, cx: &mut Cx<'_>) -> WsStep {
        let start = cx.recv.data().as_ptr() as usize;
        let len = cx.recv.len();
        let decoded = self.dec.decode(cx.recv.data_mut());
        let (consumed, item) = match decoded {
            Ok(d) => (d.consumed, d.item),
            Err(e) => return self.protocol_error(cx, e),
        };
        let at = |data: &[u8]| {
            let p = data.as_ptr() as usize;
            (p >= start && p + data.len() <= start + len).then(|| (p - start, data.len()))
        };
        let mut ponged = false;
        let (op, at, close) = match item {
            None => (0, None, None),
            Some(Item::Message { kind, data }) => (kind.opcode() as u8, at(data), None),
            Some(Item::Ping(data)) => {
                let pong = (self.state == State::Open).then(|| self.enc.pong(data)).flatten();
                if let Some(pong) = pong {
                    cx.sendq.push_copy(&pong, cx.pool);
                    ponged = true;
                }
                (OpCode::Ping as u8, at(data), None)
            }
            Some(Item::Pong(data)) => (OpCode::Pong as u8, at(data), None),
            Some(Item::Close(cf)) => (OpCode::Close as u8, at(cf.raw()), Some(cf.code())),
        };
        if op == 0 {
            cx.recv.consume(consumed);
            return Step::Wait;
        }
        if ponged {
            cx.flush();
        }
        if let Some(code) = close {
            self.peer_closed(cx, code);
        }
        Step::Deliver(Delivery::Frame { op, at, consumed })
    }

    /// The peer's close frame: echo its code (unless ours went first); then the
    /// server closes TCP, the client waits (bounded) for the server to.
    fn peer_closed(&mut self, cx: &mut Cx<'_>, peer_code: Option<u16>) {
        if self.state == State::Open {
            let echo = peer_code.filter(|c| super::close::is_valid_code(*c));
            if let Some(frame) = self.enc.close(echo, "") {
                cx.sendq.push_copy(&frame, cx.pool);
                cx.flush();
            }
        }
        self.state = State::Closed;
        match self.role {
            Role::Server => cx.close(),
            Role::Client => self.deadline = Some(Instant::now() + Duration::from_millis(cx.opts.ws_close_timeout_ms)),
        }
    }

    /// Bad input: the close code it deserves, then the connection ends (after the
    /// close frame is written), with ERROR saying why.
    fn protocol_error(&mut self, cx: &mut Cx<'_>, e: super::Error) -> WsStep {
        crate::tern_log!(crate::log::Level::Info, "connection {}: WebSocket {}: closing with {}", cx.id, e.detail(), e.close_code());
        if self.state == State::Open {
            if let Some(frame) = self.enc.close(Some(e.close_code()), "") {
                cx.sendq.push_copy(&frame, cx.pool);
            }
        }
        self.state = State::Closed;
        cx.recv.clear(cx.pool);
        cx.close_with_error(Error::Protocol, format!("WebSocket {} (closed with {})", e.detail(), e.close_code()));
        Step::Wait
    }
}

fn handshake_why(e: handshake::HandshakeError) -> &'static str {
    match e {
        handshake::HandshakeError::BadRequest(w) | handshake::HandshakeError::BadResponse(w) => w,
        handshake::HandshakeError::UnsupportedVersion => "unsupported version",
        handshake::HandshakeError::Random => "no random key",
    }
}

impl Protocol for WsConn {
    type Shared = Shared;
    type Remote = ();
    type Posted = Posted;
    type Delivery = Delivery;
    type Lent = Lent;
    type Event<'a> = WsEvent<'a>;
    type Upgrade = Infallible;

    fn remote_state(_: &Shared) {}

    fn on_input(&mut self, cx: &mut Cx<'_>) -> WsStep {
        match (self.state, self.role) {
            (State::Opening, Role::Server) => {
                // A kept-alive conversation: small frames must not wait on Nagle.
                cx.nodelay();
                self.state = State::Open;
                Step::Deliver(Delivery::Open { head_len: 0 })
            }
            (State::Opening, Role::Client) => self.handshake(cx),
            (State::Open | State::CloseSent, _) => self.frames(cx),
            (State::Closed, _) => {
                cx.recv.clear(cx.pool);
                Step::Wait
            }
        }
    }

    /// The peer's TCP close: after the closing handshake it is the normal end; before
    /// it, an abnormal closure (1006), reported as ERROR.
    fn on_eof(&mut self, cx: &mut Cx<'_>) -> WsStep {
        match self.state {
            State::Closed => cx.close(),
            State::Opening if self.role == Role::Client => cx.fail_with(Error::Closed, "server closed before answering the WebSocket handshake"),
            _ => cx.close_with_error(Error::Closed, "peer closed the connection without a WebSocket close frame (1006)"),
        }
        Step::Wait
    }

    fn on_timer(&mut self, cx: &mut Cx<'_>) -> WsStep {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.deadline = None;
            match self.state {
                State::Opening => cx.fail_with(Error::TimedOut, "WebSocket handshake timed out"),
                State::CloseSent => cx.close_with_error(Error::TimedOut, "WebSocket close handshake timed out"),
                // Only a shutdown gives an open connection a deadline.
                State::Open => {
                    let _ = self.close(cx, Some(1001), "shutting down");
                }
                State::Closed => cx.close(),
            }
        }
        Step::Wait
    }

    fn on_posted(&mut self, cx: &mut Cx<'_>, msg: Posted) -> WsStep {
        let r = match msg {
            Posted::Send(op, b) => self.send(cx, op, Body::Shared(b)),
            Posted::Publish(p) => self.publish(cx, &p),
        };
        if let Err(e) = r {
            crate::tern_log!(crate::log::Level::Debug, "connection {}: posted WebSocket message dropped: {e}", cx.id);
        }
        Step::Wait
    }

    fn recipients(shared: &Shared, msg: &Posted, out: &mut Vec<ConnId>) {
        if let Posted::Publish(p) = msg {
            shared.topics.subscribers(&p.topic, out);
        }
    }

    /// The connection leaves its topics.
    fn on_close(&mut self, id: ConnId, shared: &mut Shared) {
        for tid in self.topics.drain(..) {
            shared.topics.unsubscribe(tid, id);
        }
        self.dec.release();
    }

    /// A graceful shutdown: an open WebSocket starts its closing handshake with 1001
    /// (going away); one still opening has nothing to say goodbye with. The close
    /// frame goes from `on_timer`, due at once: the loop handles what other threads
    /// posted before it runs timers, so messages posted before the shutdown still go
    /// out ahead of the close frame.
    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        match self.state {
            State::Open => {
                self.deadline = Some(Instant::now());
                cx.deadline_moved();
            }
            State::Opening => cx.close(),
            State::CloseSent | State::Closed => {}
        }
    }

    fn deadline(&self, _: &Options) -> Option<Instant> {
        self.deadline
    }

    /// Frames of any size stream through the decoder: the receive buffer holds
    /// only what arrived, and the handshake answer must fit.
    fn recv_limit(&self, opts: &Options) -> usize {
        opts.max_recv_buffer.max(opts.max_header_bytes)
    }

    fn lend(&mut self, d: Delivery, recv: RecvBuf, shared: &mut Shared) -> Lent {
        let mut head = std::mem::take(&mut shared.head);
        let bytes = match d {
            Delivery::Open { .. } => match self.opening.take().map(|o| *o) {
                Some(Opening::Server { head: h }) => {
                    let ok = head.parse(&h, usize::MAX);
                    debug_assert!(matches!(ok, Ok(true)), "the upgrade request parsed before");
                    h.into_vec()
                }
                _ => {
                    let n = match d {
                        Delivery::Open { head_len } => head_len,
                        _ => 0,
                    };
                    // The head passed `handshake`'s checks already: parse it leniently
                    // so that an option allowing bare LFs then still applies here.
                    let _ = head.parse_response(&recv.data()[..n], usize::MAX, false, true);
                    Vec::new()
                }
            },
            Delivery::Frame { at: None, .. } => self.dec.take_message(),
            Delivery::Frame { .. } => Vec::new(),
        };
        Lent { delivery: d, recv, bytes, head }
    }

    fn event(lent: &Lent) -> WsEvent<'_> {
        match lent.delivery {
            Delivery::Open { head_len } => {
                let buf = if lent.bytes.is_empty() { &lent.recv.data()[..head_len] } else { &lent.bytes[..] };
                WsEvent::Open(HttpMsg { buf, head: &lent.head, body: &[], seq: 0, status: lent.head_status(head_len) })
            }
            Delivery::Frame { op, at, .. } => {
                let data = match at {
                    Some((off, len)) => &lent.recv.data()[off..off + len],
                    None => &lent.bytes,
                };
                let m = WsMessage { op, data };
                if op == OpCode::Text as u8 || op == OpCode::Binary as u8 {
                    WsEvent::Msg(m)
                } else {
                    WsEvent::Ctl(m)
                }
            }
        }
    }

    fn give_back(&mut self, lent: Lent, cx: &mut Cx<'_>) {
        *cx.recv = lent.recv;
        cx.shared.head = lent.head;
        match lent.delivery {
            Delivery::Open { head_len } => cx.recv.consume(head_len),
            Delivery::Frame { consumed, .. } => cx.recv.consume(consumed),
        }
    }

    fn event_code(ev: &WsEvent<'_>) -> i32 {
        match ev {
            WsEvent::Open(_) => 9,
            WsEvent::Msg(_) => 10,
            WsEvent::Ctl(_) => 11,
        }
    }
}

impl Lent {
    /// The 101's status on the client; 0 for the server's upgrade request.
    fn head_status(&self, head_len: usize) -> u16 {
        if self.bytes.is_empty() && head_len > 0 {
            101
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle WebSocket connection keeps its state in one box of this size (the
    /// target is under 1 KiB per idle connection, everything included).
    #[test]
    fn connection_state_is_small() {
        let size = std::mem::size_of::<WsConn>();
        assert!(size <= 200, "WsConn is {size} bytes");
    }

    #[test]
    fn publishes_refuse_bad_text_and_control_opcodes() {
        assert!(Publish::new("t", 1, Bytes::copy_from(b"ok")).is_ok());
        assert_eq!(Publish::new("t", 1, Bytes::copy_from(&[0xff, 0xfe])).err(), Some(Error::Invalid));
        assert_eq!(Publish::new("t", 9, Bytes::copy_from(b"p")).err(), Some(Error::Invalid));
        assert_eq!(Publish::new("", 2, Bytes::copy_from(b"p")).err(), Some(Error::Invalid));
        let p = Publish::new("t", 2, Bytes::copy_from(&[7; 300])).unwrap();
        assert_eq!(&p.header[..], &[0x82, 126, 1, 44], "one header for every subscriber: FIN binary, 16-bit length 300");
    }
}
