//! The protocol stack: the one place that knows which protocols exist.
//!
//! `AnyProto` lists them; it implements the protocol interface by handing each call
//! to the protocol a connection speaks, with one `match` per call, and the reactor
//! is instantiated with it (`crate::Manager`). Below this module, nothing names a
//! protocol: the reactor and the transport see only the interface, and each protocol
//! sees only its own state. Above it sit the entry points that need to know which
//! protocol a connection speaks (`api`: `http_listen`, `http_reply`, ...) and the
//! C ABI.

mod api;
mod tls;
mod ws;

use crate::buf::recv_buf::RecvBuf;
use crate::http::client::ClientConn;
use crate::http::defer::{Answer, DeferRegistry};
use crate::http::h1::{Delivery as HttpDelivery, HttpEvent, Lent as HttpLent};
use crate::http::msg::HttpMsg;
use crate::http::server::ServerConn;
use crate::options::Options;
use crate::proto::{ConnId, Ctx, Protocol, Step};
use crate::raw::Raw;
use crate::ws::connection::{Delivery as WsDelivery, Lent as WsLent, Posted as WsPosted};
use crate::ws::{WsConn, WsEvent, WsMessage};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// The protocol a connection speaks, and its state.
pub enum AnyProto {
    /// Bytes in, bytes out: READ events.
    Raw(Raw),
    /// A listener: what its accepted connections speak.
    Listener(Accepts),
    /// The server side of HTTP/1.1.
    HttpServer(ServerConn),
    /// The client side of HTTP/1.1.
    HttpClient(Box<ClientConn>),
    /// WebSocket, either end (a server connection was HTTP until its upgrade).
    Ws(Box<WsConn>),
}

/// What a listener's accepted connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    Raw,
    Http,
}

/// Every protocol's per-manager state.
#[derive(Default)]
pub struct AnyShared {
    /// The raw protocol shares nothing.
    pub raw: (),
    pub http: crate::http::Shared,
    pub ws: crate::ws::Shared,
    /// Not a protocol's: the TLS configurations of what the manager opens.
    pub tls: tls::TlsDefaults,
}

/// What remotes keep of the protocols' state.
pub struct AnyRemote {
    /// Deferred HTTP requests that may still be answered.
    pub defer: Arc<DeferRegistry>,
}

/// A protocol message posted by a remote.
#[derive(Clone)]
pub enum AnyPosted {
    /// A step of the answer to a deferred HTTP request.
    Http(Answer),
    /// A WebSocket message for one connection, or a publish to a topic.
    Ws(WsPosted),
}

pub enum AnyDelivery {
    Http(HttpDelivery),
    Ws(WsDelivery),
}

pub enum AnyLent {
    Http(HttpLent),
    Ws(WsLent),
}

/// What a protocol shows a handler (`Event::Proto`).
pub enum ProtoEvent<'a> {
    /// A complete HTTP request (server) or response (client).
    HttpMsg(HttpMsg<'a>),
    /// A request head whose body has not been read yet (with `Opt::HttpHeadEvents`).
    HttpHead(HttpMsg<'a>),
    /// A piece of a request body the handler chose to stream.
    HttpBody(&'a [u8]),
    /// A connection speaks WebSocket from now on: the upgrade request (server) or the
    /// 101 answer (client).
    WsOpen(HttpMsg<'a>),
    /// A whole WebSocket text or binary message.
    WsMsg(WsMessage<'a>),
    /// A WebSocket ping, pong or close from the peer (already answered).
    WsCtl(WsMessage<'a>),
}

impl<'a> From<WsEvent<'a>> for ProtoEvent<'a> {
    fn from(e: WsEvent<'a>) -> ProtoEvent<'a> {
        match e {
            WsEvent::Open(m) => ProtoEvent::WsOpen(m),
            WsEvent::Msg(m) => ProtoEvent::WsMsg(m),
            WsEvent::Ctl(m) => ProtoEvent::WsCtl(m),
        }
    }
}

impl<'a> From<HttpEvent<'a>> for ProtoEvent<'a> {
    fn from(e: HttpEvent<'a>) -> ProtoEvent<'a> {
        match e {
            HttpEvent::Msg(m) => ProtoEvent::HttpMsg(m),
            HttpEvent::Head(m) => ProtoEvent::HttpHead(m),
            HttpEvent::Body(b) => ProtoEvent::HttpBody(b),
        }
    }
}

type AnyStep = Step<AnyDelivery, AnyProto>;

fn never<T>(x: Infallible) -> T {
    match x {}
}

fn raw_step(s: Step<Infallible, Infallible>) -> AnyStep {
    s.map(never, never)
}

fn http_step(s: Step<HttpDelivery, Infallible>) -> AnyStep {
    s.map(AnyDelivery::Http, never)
}

fn ws_step(s: Step<WsDelivery, Infallible>) -> AnyStep {
    s.map(AnyDelivery::Ws, never)
}

impl AnyProto {
    /// The HTTP server state, if the connection is an HTTP server connection.
    pub fn http_server(&mut self) -> Option<&mut ServerConn> {
        match self {
            AnyProto::HttpServer(s) => Some(s),
            _ => None,
        }
    }

    /// The HTTP client state, if the connection is an HTTP client connection.
    pub fn http_client(&mut self) -> Option<&mut ClientConn> {
        match self {
            AnyProto::HttpClient(c) => Some(c),
            _ => None,
        }
    }

    /// The WebSocket state, if the connection speaks WebSocket.
    pub fn ws(&mut self) -> Option<&mut WsConn> {
        match self {
            AnyProto::Ws(w) => Some(w),
            _ => None,
        }
    }
}

impl Protocol for AnyProto {
    type Shared = AnyShared;
    type Remote = AnyRemote;
    type Posted = AnyPosted;
    type Delivery = AnyDelivery;
    type Lent = AnyLent;
    type Event<'a> = ProtoEvent<'a>;
    type Upgrade = AnyProto;

    fn remote_state(shared: &AnyShared) -> AnyRemote {
        AnyRemote { defer: ServerConn::remote_state(&shared.http) }
    }

    fn on_input(&mut self, cx: &mut Ctx<'_, AnyShared>) -> AnyStep {
        match self {
            AnyProto::Raw(p) => raw_step(p.on_input(&mut cx.narrow(|s| &mut s.raw))),
            AnyProto::Listener(_) => Step::Wait,
            AnyProto::HttpServer(p) => http_step(p.on_input(&mut cx.narrow(|s| &mut s.http))),
            AnyProto::HttpClient(p) => http_step(p.on_input(&mut cx.narrow(|s| &mut s.http))),
            AnyProto::Ws(p) => ws_step(p.on_input(&mut cx.narrow(|s| &mut s.ws))),
        }
    }

    fn on_connected(&mut self, cx: &mut Ctx<'_, AnyShared>) -> AnyStep {
        match self {
            AnyProto::Raw(p) => raw_step(p.on_connected(&mut cx.narrow(|s| &mut s.raw))),
            AnyProto::Listener(_) => Step::Wait,
            AnyProto::HttpServer(p) => http_step(p.on_connected(&mut cx.narrow(|s| &mut s.http))),
            AnyProto::HttpClient(p) => http_step(p.on_connected(&mut cx.narrow(|s| &mut s.http))),
            AnyProto::Ws(p) => ws_step(p.on_connected(&mut cx.narrow(|s| &mut s.ws))),
        }
    }

    fn on_eof(&mut self, cx: &mut Ctx<'_, AnyShared>) -> AnyStep {
        match self {
            AnyProto::Raw(p) => raw_step(p.on_eof(&mut cx.narrow(|s| &mut s.raw))),
            AnyProto::Listener(_) => Step::Wait,
            AnyProto::HttpServer(p) => http_step(p.on_eof(&mut cx.narrow(|s| &mut s.http))),
            AnyProto::HttpClient(p) => http_step(p.on_eof(&mut cx.narrow(|s| &mut s.http))),
            AnyProto::Ws(p) => ws_step(p.on_eof(&mut cx.narrow(|s| &mut s.ws))),
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_, AnyShared>) -> AnyStep {
        match self {
            AnyProto::Raw(p) => raw_step(p.on_timer(&mut cx.narrow(|s| &mut s.raw))),
            AnyProto::Listener(_) => Step::Wait,
            AnyProto::HttpServer(p) => http_step(p.on_timer(&mut cx.narrow(|s| &mut s.http))),
            AnyProto::HttpClient(p) => http_step(p.on_timer(&mut cx.narrow(|s| &mut s.http))),
            AnyProto::Ws(p) => ws_step(p.on_timer(&mut cx.narrow(|s| &mut s.ws))),
        }
    }

    /// A posted message for a connection that no longer speaks its protocol is
    /// dropped here (its buffer released; a deferred answer's token forgotten).
    fn on_posted(&mut self, cx: &mut Ctx<'_, AnyShared>, msg: AnyPosted) -> AnyStep {
        match (self, msg) {
            (AnyProto::HttpServer(p), AnyPosted::Http(a)) => http_step(p.on_posted(&mut cx.narrow(|s| &mut s.http), a)),
            (_, AnyPosted::Http(a)) => {
                cx.shared.http.defer.remove(a.token);
                Step::Wait
            }
            (AnyProto::Ws(p), AnyPosted::Ws(m)) => ws_step(p.on_posted(&mut cx.narrow(|s| &mut s.ws), m)),
            (_, AnyPosted::Ws(_)) => Step::Wait,
        }
    }

    fn recipients(shared: &AnyShared, msg: &AnyPosted, out: &mut Vec<ConnId>) {
        if let AnyPosted::Ws(m) = msg {
            WsConn::recipients(&shared.ws, m, out);
        }
    }

    fn on_close(&mut self, id: ConnId, shared: &mut AnyShared) {
        match self {
            AnyProto::Raw(p) => p.on_close(id, &mut shared.raw),
            AnyProto::Listener(_) => {}
            AnyProto::HttpServer(p) => p.on_close(id, &mut shared.http),
            AnyProto::HttpClient(p) => p.on_close(id, &mut shared.http),
            AnyProto::Ws(p) => p.on_close(id, &mut shared.ws),
        }
    }

    fn on_shutdown(&mut self, cx: &mut Ctx<'_, AnyShared>) {
        match self {
            AnyProto::Raw(p) => p.on_shutdown(&mut cx.narrow(|s| &mut s.raw)),
            // The reactor closes listeners itself.
            AnyProto::Listener(_) => {}
            AnyProto::HttpServer(p) => p.on_shutdown(&mut cx.narrow(|s| &mut s.http)),
            AnyProto::HttpClient(p) => p.on_shutdown(&mut cx.narrow(|s| &mut s.http)),
            AnyProto::Ws(p) => p.on_shutdown(&mut cx.narrow(|s| &mut s.ws)),
        }
    }

    fn on_shutdown_deadline(shared: &mut AnyShared) {
        ServerConn::on_shutdown_deadline(&mut shared.http);
    }

    fn deadline(&self, opts: &Options) -> Option<Instant> {
        match self {
            AnyProto::Raw(p) => p.deadline(opts),
            AnyProto::Listener(_) => None,
            AnyProto::HttpServer(p) => p.deadline(opts),
            AnyProto::HttpClient(p) => p.deadline(opts),
            AnyProto::Ws(p) => p.deadline(opts),
        }
    }

    fn recv_limit(&self, opts: &Options) -> usize {
        match self {
            AnyProto::Raw(p) => p.recv_limit(opts),
            AnyProto::Listener(_) => opts.max_recv_buffer,
            AnyProto::HttpServer(p) => p.recv_limit(opts),
            AnyProto::HttpClient(p) => p.recv_limit(opts),
            AnyProto::Ws(p) => p.recv_limit(opts),
        }
    }

    fn lend(&mut self, d: AnyDelivery, recv: RecvBuf, shared: &mut AnyShared) -> AnyLent {
        match (self, d) {
            (AnyProto::HttpServer(p), AnyDelivery::Http(d)) => AnyLent::Http(p.lend(d, recv, &mut shared.http)),
            (AnyProto::HttpClient(p), AnyDelivery::Http(d)) => AnyLent::Http(p.lend(d, recv, &mut shared.http)),
            (AnyProto::Ws(p), AnyDelivery::Ws(d)) => AnyLent::Ws(p.lend(d, recv, &mut shared.ws)),
            _ => unreachable!("a delivery is lent by the protocol that asked for it"),
        }
    }

    fn event(lent: &AnyLent) -> ProtoEvent<'_> {
        match lent {
            AnyLent::Http(l) => l.event().into(),
            AnyLent::Ws(l) => WsConn::event(l).into(),
        }
    }

    fn give_back(&mut self, lent: AnyLent, cx: &mut Ctx<'_, AnyShared>) {
        match (self, lent) {
            (AnyProto::HttpServer(p), AnyLent::Http(l)) => p.give_back(l, &mut cx.narrow(|s| &mut s.http)),
            (AnyProto::HttpClient(p), AnyLent::Http(l)) => p.give_back(l, &mut cx.narrow(|s| &mut s.http)),
            (AnyProto::Ws(p), AnyLent::Ws(l)) => p.give_back(l, &mut cx.narrow(|s| &mut s.ws)),
            _ => unreachable!("a switch waits until the lent buffers came back"),
        }
    }

    fn event_code(ev: &ProtoEvent<'_>) -> i32 {
        match ev {
            ProtoEvent::HttpMsg(_) => 8,
            ProtoEvent::HttpHead(_) => 14,
            ProtoEvent::HttpBody(_) => 15,
            ProtoEvent::WsOpen(_) => 9,
            ProtoEvent::WsMsg(_) => 10,
            ProtoEvent::WsCtl(_) => 11,
        }
    }

    fn accepts(&self) -> Option<AnyProto> {
        match self {
            AnyProto::Listener(Accepts::Raw) => Some(AnyProto::Raw(Raw)),
            AnyProto::Listener(Accepts::Http) => Some(AnyProto::HttpServer(ServerConn::new())),
            _ => None,
        }
    }

    fn raw_output(&self) -> bool {
        match self {
            AnyProto::Raw(p) => p.raw_output(),
            AnyProto::Listener(_) => false,
            AnyProto::HttpServer(p) => p.raw_output(),
            AnyProto::HttpClient(p) => p.raw_output(),
            AnyProto::Ws(p) => p.raw_output(),
        }
    }

    fn nodelay_at_accept(&self) -> bool {
        match self {
            AnyProto::Raw(p) => p.nodelay_at_accept(),
            AnyProto::Listener(_) => false,
            AnyProto::HttpServer(p) => p.nodelay_at_accept(),
            AnyProto::HttpClient(p) => p.nodelay_at_accept(),
            AnyProto::Ws(p) => p.nodelay_at_accept(),
        }
    }
}

#[cfg(test)]
mod tests {
    /// An idle connection must stay small: the record is most of what an idle
    /// connection costs (buffers are pooled, request state is pooled).
    #[test]
    fn idle_connection_record_is_small() {
        let size = std::mem::size_of::<crate::reactor::ConnRecordOf<super::AnyProto>>();
        assert!(size <= 232, "a connection record is {size} bytes");
        let proto = std::mem::size_of::<super::AnyProto>();
        assert!(proto <= 48, "the protocol state kept inline is {proto} bytes");
    }
}
