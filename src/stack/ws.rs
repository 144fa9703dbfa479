//! The manager's WebSocket entry points: the upgrade of an HTTP request, outgoing
//! connections, sending and closing, topics, and the remotes' WebSocket posts. Each
//! finds the connection's protocol state and hands the work to `ws::WsConn`.

use super::{tls, AnyPosted, AnyProto, AnyShared};
use crate::bytes::Bytes;
use crate::error::{Error, Result};
use crate::http::fields;
use crate::http::h1::Body;
use crate::http::msg::HttpMsg;
use crate::net::url::Url;
use crate::proto::{ConnId, Ctx};
use crate::reactor::{Handler, Msg, Reactor, Remote};
use crate::ws::connection::{server_deflate, Posted};
use crate::ws::{deflate, handshake, Publish, Shared as WsShared, WsConn};
use std::rc::Rc;
use std::sync::Arc;

impl Reactor<AnyProto> {
    /// Answers the WebSocket upgrade request `msg` (the request being delivered on
    /// HTTP connection `id`) with 101 and the extra `headers` (a chosen
    /// Sec-WebSocket-Protocol, say), and makes the connection speak WebSocket once the
    /// handler returns: its next event is WS_OPEN with this request. A request that
    /// is not a valid upgrade is answered here (400, or 426 with
    /// `Sec-WebSocket-Version: 13`), its connection closes after that answer, and
    /// this returns `Invalid`; so do headers that are not well-formed lines.
    /// `Protocol` unless `msg` is the oldest unanswered request and the only one read.
    pub fn ws_upgrade(&self, id: ConnId, msg: &HttpMsg<'_>, headers: &[u8]) -> Result<()> {
        let fields = fields::scan(headers).ok_or(Error::Invalid)?;
        if fields.connection || fields.content_length.is_some() || fields.transfer_encoding {
            return Err(Error::Invalid);
        }
        let values = |name: &str| -> Vec<&[u8]> { msg.header_values(name.as_bytes()).collect() };
        let checked = if msg.method() != b"GET" || msg.minor_version() < 1 {
            Err(handshake::HandshakeError::BadRequest("a WebSocket upgrade is a GET over HTTP/1.1"))
        } else {
            handshake::server_accept(values)
        };
        let accept = match checked {
            Ok(accept) => accept,
            Err(e) => return self.refuse_upgrade(id, e),
        };
        let opts = self.options();
        let deflate = server_deflate(&opts).and_then(|cfg| deflate::negotiate(values("Sec-WebSocket-Extensions"), &cfg).map(|p| (p, cfg)));
        let extension = deflate.as_ref().map(|(p, _)| p.response_header());
        let mut head = handshake::response_headers(&accept, None, extension.as_deref()).into_bytes();
        head.extend_from_slice(headers);
        self.with_proto(id, |p, cx| match p.http_server() {
            Some(s) => s.answer_last(&mut cx.narrow(|s| &mut s.http), 101, &head),
            None => Err(Error::Protocol),
        })??;
        let conn = WsConn::server(msg.head_bytes().into(), deflate, &opts);
        self.switch_protocol(id, AnyProto::Ws(Box::new(conn)))
    }

    fn refuse_upgrade(&self, id: ConnId, e: handshake::HandshakeError) -> Result<()> {
        let (status, why) = match e {
            handshake::HandshakeError::UnsupportedVersion => (426, "unsupported WebSocket version"),
            handshake::HandshakeError::BadRequest(w) | handshake::HandshakeError::BadResponse(w) => (400, w),
            handshake::HandshakeError::Random => (500, "no random numbers"),
        };
        crate::tern_log!(crate::log::Level::Info, "connection {id}: WebSocket upgrade refused: {status} {why}");
        let extra: &[u8] = if status == 426 {
            b"Content-Type: text/plain\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n"
        } else {
            b"Content-Type: text/plain\r\nConnection: close\r\n"
        };
        let body = format!("{why}\n");
        self.http_reply(id, status, extra, Body::Copy(body.as_bytes()))?;
        Err(Error::Invalid)
    }

    /// Connects to `ws://HOST[:PORT]/PATH[?QUERY]` (port 80 by default; `wss://`
    /// over TLS, port 443 by default; names resolved off the loop thread). Events: OPEN, CONNECT, then WS_OPEN with the
    /// server's 101 once the handshake checks out; a refused or invalid handshake, or
    /// none within WS_HANDSHAKE_TIMEOUT_MS, is ERROR then CLOSE.
    pub fn ws_connect(&self, url: &str, handler: Rc<dyn Handler<AnyProto>>, user: usize) -> Result<ConnId> {
        let port = tls::default_port(Url::parse(url, 80)?.scheme, 80);
        let u = Url::parse(url, port)?;
        if tls::plain_scheme(u.scheme).0 != "ws" || !u.path.starts_with('/') || u.path.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(Error::Invalid);
        }
        let host = if u.port == port { u.host.to_string() } else if u.host.contains(':') { format!("[{}]:{}", u.host, u.port) } else { format!("{}:{}", u.host, u.port) };
        let (conn, request) = WsConn::client(&self.options(), &host, u.path, &[])?;
        let sec = self.connect_security(&u)?;
        let id = self.connect_secured(u.target(), AnyProto::Ws(Box::new(conn)), sec, handler, user)?;
        self.with_proto(id, |_, cx| {
            cx.sendq.push_copy(&request, cx.pool);
            cx.flush();
        })?;
        Ok(id)
    }

    /// Runs `f` on connection `id`'s WebSocket state; `Protocol` if it speaks
    /// something else (an HTTP connection not upgraded yet, say).
    fn ws<R>(&self, id: ConnId, f: impl FnOnce(&mut WsConn, &mut Ctx<'_, WsShared>) -> Result<R>) -> Result<R> {
        self.with_proto(id, |p, cx| match p.ws() {
            Some(w) => f(w, &mut ws(cx)),
            None => Err(Error::Protocol),
        })?
    }

    /// Sends one message (op 1 text, 2 binary) or control frame (8 close, 9 ping,
    /// 10 pong): `tern_ws_send`. See `WsConn::send`.
    pub fn ws_send(&self, id: ConnId, op: u8, body: Body<'_>) -> Result<()> {
        self.ws(id, |w, cx| w.send(cx, op, body))
    }

    /// Queues `b` as one WebSocket message with opcode `op` (the loop-thread form of
    /// `Remote::ws_send`).
    pub fn ws_send_bytes(&self, id: ConnId, op: u8, b: Bytes) -> Result<()> {
        self.ws_send(id, op, Body::Shared(b))
    }

    /// Starts the closing handshake (`WsConn::close`); `code` 0 sends a close frame
    /// without a code.
    pub fn ws_close(&self, id: ConnId, code: u16, reason: &str) -> Result<()> {
        self.ws(id, |w, cx| w.close(cx, (code != 0).then_some(code), reason))
    }

    /// Joins connection `id` to `topic`.
    pub fn ws_subscribe(&self, id: ConnId, topic: &str) -> Result<()> {
        self.ws(id, |w, cx| w.subscribe(cx, topic))
    }

    /// Takes connection `id` out of `topic`.
    pub fn ws_unsubscribe(&self, id: ConnId, topic: &str) -> Result<()> {
        self.ws(id, |w, cx| w.unsubscribe(cx, topic))
    }

    /// Sends `payload` as one message to every subscriber of `topic` (loop thread),
    /// the same frame queued by reference on each. Returns how many were reached.
    pub fn ws_publish(&self, topic: &str, op: u8, payload: Bytes) -> Result<usize> {
        let p = Publish::new(topic, op, payload)?;
        Ok(self.fanout(AnyPosted::Ws(Posted::Publish(Arc::new(p)))))
    }
}

/// A manager's context narrowed to WebSocket's shared state.
fn ws<'b>(cx: &'b mut Ctx<'_, AnyShared>) -> Ctx<'b, WsShared> {
    cx.narrow(|s| &mut s.ws)
}

impl Remote<AnyProto> {
    /// Posts one WebSocket message (or control frame) for connection `id`; checked
    /// here first (an unknown op, text that is not UTF-8: `Invalid`). If the
    /// connection is gone or does not speak WebSocket when the loop gets it, the
    /// buffer is released there.
    pub fn ws_send(&self, id: ConnId, op: u8, b: Bytes) -> Result<()> {
        match op {
            1 if std::str::from_utf8(b.as_slice()).is_err() => return Err(Error::Invalid),
            1 | 2 => {}
            8..=10 if b.len() <= 125 => {}
            _ => return Err(Error::Invalid),
        }
        self.post(Msg::Proto(id, AnyPosted::Ws(Posted::Send(op, b))))
    }

    /// Posts a publish of `payload` to `topic`: on the loop, every subscriber gets it
    /// (one shared frame). Order is kept with this remote's other posts.
    pub fn ws_publish(&self, topic: &str, op: u8, payload: Bytes) -> Result<()> {
        let p = Publish::new(topic, op, payload)?;
        self.post(Msg::Fanout(AnyPosted::Ws(Posted::Publish(Arc::new(p)))))
    }
}
