//! The manager's entry points that pick or reach a protocol: listening and
//! connecting with a scheme (`tcp://`, `http://`), and the HTTP calls of handlers
//! (answering, deferring, streaming, static files) and of remotes (deferred answers).
//! Each finds the connection's protocol state through the reactor and hands the work
//! to the protocol.

use super::{tls, Accepts, AnyPosted, AnyProto, AnyShared};
use crate::bytes::Bytes;
use crate::error::{Error, Result};
use crate::http::client::ClientConn;
use crate::http::defer::{Answer, Posted, Size, Stage, Token};
use crate::http::fields::{self, Fields};
use crate::http::response::check_answer;
use crate::http::h1::Body;
use crate::http::msg::HttpMsg;
use crate::http::server::{Answering, ServerConn};
use crate::http::{files, Shared as HttpShared};
use crate::net::url::{Target, Url};
use crate::proto::{ConnId, Ctx};
use crate::raw::Raw;
use crate::reactor::{Handler, Msg, Reactor, Remote};
use std::path::Path;
use std::rc::Rc;

impl Reactor<AnyProto> {
    /// Listens on `tcp://ADDR:PORT` (an IP literal or "localhost"; a path or a query
    /// is `Invalid`), or over TLS on `tls://ADDR:PORT`. OPEN is delivered at the next
    /// poll; accepted connections
    /// inherit `handler` and `user` and get READ events.
    pub fn listen(&self, url: &str, handler: Rc<dyn Handler<AnyProto>>, user: usize) -> Result<ConnId> {
        self.listen_scheme(url, "tcp", 0, Accepts::Raw, handler, user)
    }

    /// Listens on `http://ADDR:PORT` (or `https://`, over TLS; `ws://` and `wss://`
    /// mean the same): accepted connections speak HTTP/1.1 and their handler gets
    /// HTTP events instead of READ.
    pub fn http_listen(&self, url: &str, handler: Rc<dyn Handler<AnyProto>>, user: usize) -> Result<ConnId> {
        self.listen_scheme(url, "http", 80, Accepts::Http, handler, user)
    }

    fn listen_scheme(&self, url: &str, scheme: &str, default_port: u16, accepts: Accepts, handler: Rc<dyn Handler<AnyProto>>, user: usize) -> Result<ConnId> {
        let u = Url::parse(url, default_port)?;
        let (plain, _) = tls::plain_scheme(u.scheme);
        if (plain != scheme && !(scheme == "http" && plain == "ws")) || (scheme == "tcp" && !u.bare()) {
            return Err(Error::Invalid);
        }
        let u = Url::parse(url, tls::default_port(u.scheme, default_port))?;
        let Target::Addr(a) = u.target() else { return Err(Error::Invalid) };
        let sec = self.listen_security(&u)?;
        self.listen_secured(a, AnyProto::Listener(accepts), sec, handler, user)
    }

    /// Connects to `tcp://HOST:PORT` (or `tls://HOST:PORT`: CONNECT once the TLS
    /// handshake is done; a path or a query means nothing to TCP: `Invalid`). Names
    /// are resolved on a helper thread; the attempt is bounded by CONNECT_TIMEOUT_MS.
    /// Events: OPEN, then CONNECT, or ERROR and CLOSE. Data sent before CONNECT is
    /// queued.
    pub fn connect(&self, url: &str, handler: Rc<dyn Handler<AnyProto>>, user: usize) -> Result<ConnId> {
        let u = Url::parse(url, 0)?;
        if tls::plain_scheme(u.scheme).0 != "tcp" || !u.bare() {
            return Err(Error::Invalid);
        }
        let sec = self.connect_security(&u)?;
        self.connect_secured(u.target(), AnyProto::Raw(Raw), sec, handler, user)
    }

    /// Connects to `http://HOST[:PORT]` (or `https://HOST[:PORT]`, port 443 by
    /// default, the server's certificate checked for HOST); then `http_request` sends
    /// requests and each response arrives as an HTTP message (with its status). OPEN
    /// and CONNECT (or ERROR) come as for `connect`; requests made before CONNECT are
    /// queued.
    pub fn http_connect(&self, url: &str, handler: Rc<dyn Handler<AnyProto>>, user: usize) -> Result<ConnId> {
        let scheme = Url::parse(url, 80)?.scheme;
        if tls::plain_scheme(scheme).0 != "http" {
            return Err(Error::Invalid);
        }
        let port = tls::default_port(scheme, 80);
        let u = Url::parse(url, port)?;
        let host: Box<str> = if u.port == port { u.host.into() } else { format!("{}:{}", u.host, u.port).into() };
        let client = ClientConn::new(host);
        let sec = self.connect_security(&u)?;
        self.connect_secured(u.target(), AnyProto::HttpClient(Box::new(client)), sec, handler, user)
    }

    /// Sends one request on an HTTP client connection (see `ClientConn::request`).
    /// `Protocol` if `id` is not one.
    pub fn http_request(&self, id: ConnId, method: &[u8], target: &[u8], headers: &[u8], body: Body<'_>) -> Result<()> {
        self.with_proto(id, |p, cx| match p.http_client() {
            Some(c) => c.request(&mut http(cx), method, target, headers, body),
            None => Err(Error::Protocol),
        })?
    }

    /// Runs `f` on connection `id`'s HTTP server state; `Protocol` if it speaks
    /// something else.
    fn http_server<R>(&self, id: ConnId, f: impl FnOnce(&mut ServerConn, &mut Ctx<'_, HttpShared>) -> Result<R>) -> Result<R> {
        self.with_proto(id, |p, cx| match p.http_server() {
            Some(s) => f(s, &mut http(cx)),
            None => Err(Error::Protocol),
        })?
    }

    /// Answers the request: `tern_http_reply`.
    pub fn http_reply(&self, id: ConnId, status: u16, headers: &[u8], body: Body<'_>) -> Result<()> {
        self.http_server(id, |s, cx| s.respond(cx, Answering::Inline, status, headers, Some(body)))
    }

    /// Starts a streamed response (chunked unless `headers` has Content-Length).
    pub fn http_begin(&self, id: ConnId, status: u16, headers: &[u8]) -> Result<()> {
        self.http_server(id, |s, cx| s.respond(cx, Answering::Inline, status, headers, None))
    }

    pub fn http_write(&self, id: ConnId, body: Body<'_>) -> Result<()> {
        self.http_server(id, |s, cx| s.stream(cx, Answering::Inline, Some(body)))
    }

    pub fn http_end(&self, id: ConnId) -> Result<()> {
        self.http_server(id, |s, cx| s.stream(cx, Answering::Inline, None))
    }

    /// Defers request `seq` (from its `HttpMsg`) to be answered through a remote.
    pub fn http_defer(&self, id: ConnId, seq: u64) -> Result<Token> {
        self.http_server(id, |s, cx| s.defer(cx, seq))
    }

    /// Inside HTTP_HEAD: take this request's body in pieces (`ServerConn::stream_body`).
    pub fn http_stream_body(&self, id: ConnId) -> Result<()> {
        self.http_server(id, |s, _| s.stream_body())
    }

    /// Answers the request with the file at `path` (see `files::serve_file`).
    pub fn http_serve_file(&self, id: ConnId, msg: &HttpMsg<'_>, path: &Path) -> Result<()> {
        let reply = self.with_shared(|_, shared| files::serve_file(msg, path, &mut shared.http.files));
        reply.send(|status, headers, body| self.http_reply(id, status, headers, body))
    }

    /// Answers the request with the file its path names under `root` (see
    /// `files::serve_dir`).
    pub fn http_serve_dir(&self, id: ConnId, msg: &HttpMsg<'_>, root: &Path) -> Result<()> {
        self.http_serve_prefix(id, msg, b"", root)
    }

    /// Answers the request with the file its path names under `root` once `prefix`
    /// is taken off it, or 404 if the path is not under `prefix` (see
    /// `files::serve_dir`). `Invalid` for a prefix that is not a path.
    pub fn http_serve_prefix(&self, id: ConnId, msg: &HttpMsg<'_>, prefix: &[u8], root: &Path) -> Result<()> {
        let prefix = files::Prefix::new(prefix).ok_or(Error::Invalid)?;
        let reply = self.with_shared(|opts, shared| files::serve_dir(msg, prefix, root, opts, &mut shared.http.files));
        reply.send(|status, headers, body| self.http_reply(id, status, headers, body))
    }

    /// Answers the request on HTTP server connection `id` with `status` and
    /// `headers` (no body, no framing: typically 101 Switching Protocols) and makes
    /// the connection speak raw bytes from then on: READ events with whatever the
    /// client sent after the request. The connection keeps its id, handler, the bytes
    /// already received and what is queued. Only the oldest unanswered request may be
    /// answered this way, and none may be waiting before it (`Protocol`).
    pub fn http_switch_raw(&self, id: ConnId, status: u16, headers: &[u8]) -> Result<()> {
        self.http_server(id, |s, cx| s.answer_last(cx, status, headers))?;
        self.switch_protocol(id, AnyProto::Raw(Raw))
    }
}

/// A manager's context narrowed to HTTP's shared state.
fn http<'b>(cx: &'b mut Ctx<'_, AnyShared>) -> Ctx<'b, HttpShared> {
    cx.narrow(|s| &mut s.http)
}

impl Remote<AnyProto> {
    /// Posts one step of the answer to a deferred request, checked here, on the
    /// calling thread, as far as it can be, so that the result says what will
    /// happen: `Invalid` for what tern cannot frame (`response::check_answer`) and
    /// for a write past the length the head promised; `Closed` once the request
    /// timed out or its connection is gone; `Protocol` for a second answer or a step
    /// out of order, and for an end short of the promised length (posted: the loop
    /// fails the connection, since that answer can never be completed). On any error
    /// but that last one nothing is posted, and `body` is released here.
    pub fn http_respond(&self, token: Token, stage: Stage, status: u16, headers: &[u8], body: Option<Bytes>) -> Result<()> {
        let fields = match stage {
            Stage::Whole | Stage::Begin => {
                let f = fields::scan(headers).ok_or(Error::Invalid)?;
                let len = (stage == Stage::Whole).then(|| body.as_ref().map_or(0, |b| b.len() as u64));
                check_answer(status, &f, len)?;
                f
            }
            Stage::Write | Stage::End => Fields::default(),
        };
        let size = match stage {
            Stage::Begin if status == 204 || status == 304 => Size::Promised(Some(0)),
            Stage::Begin => Size::Promised(fields.content_length.flatten()),
            Stage::Write => Size::Bytes(body.as_ref().map_or(0, |b| b.len() as u64)),
            Stage::Whole | Stage::End => Size::None,
        };
        let answer = Answer { token, stage, status, headers: headers.into(), fields, body };
        let mut refused = None;
        let posted = self.proto().defer.step(token, stage, size, || {
            self.try_post(Msg::Proto(token.0, AnyPosted::Http(answer))).map_err(|(msg, e)| {
                refused = Some(msg);
                e
            })
        });
        // Released outside the registry's lock: a free callback may respond again.
        drop(refused);
        match posted? {
            Posted { short: true } => Err(Error::Protocol),
            Posted { short: false } => Ok(()),
        }
    }
}
