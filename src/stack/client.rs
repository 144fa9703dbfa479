//! The manager's entry points to an HTTP client connection beyond `http_request`:
//! streaming its responses in pieces, and streaming a request body after its head
//! (what the fetch client builds on). Each finds the connection's client state and
//! hands the work to it.

use super::{AnyProto, AnyShared};
use crate::error::{Error, Result};
use crate::http::client::ClientConn;
use crate::http::h1::Body;
use crate::http::Shared as HttpShared;
use crate::proto::{ConnId, Ctx};
use crate::reactor::Reactor;

impl Reactor<AnyProto> {
    /// Runs `f` on connection `id`'s HTTP client state; `Protocol` if it speaks
    /// something else, `Closed` if it is gone.
    fn http_client<R>(&self, id: ConnId, f: impl FnOnce(&mut ClientConn, &mut Ctx<'_, HttpShared>) -> Result<R>) -> Result<R> {
        self.with_proto(id, |p, cx| match p.http_client() {
            Some(c) => f(c, &mut cx.narrow(|s: &mut AnyShared| &mut s.http)),
            None => Err(Error::Protocol),
        })?
    }

    /// Makes HTTP client connection `id` deliver its responses in pieces: HTTP_HEAD
    /// (status and fields), HTTP_BODY pieces, then HTTP_MSG with an empty body (see
    /// `ClientConn::set_streaming`).
    pub fn http_client_stream(&self, id: ConnId) -> Result<()> {
        self.http_client(id, |c, _| c.set_streaming())
    }

    /// Sends a request head whose body follows (`ClientConn::begin_request`).
    pub fn http_request_begin(&self, id: ConnId, method: &[u8], target: &[u8], headers: &[u8]) -> Result<()> {
        self.http_client(id, |c, cx| c.begin_request(cx, method, target, headers))
    }

    /// Appends to the request body being streamed (`ClientConn::write_body`).
    pub fn http_request_write(&self, id: ConnId, body: Body<'_>) -> Result<()> {
        self.http_client(id, |c, cx| c.write_body(cx, body))
    }

    /// Ends the request body being streamed (`ClientConn::end_body`).
    pub fn http_request_end(&self, id: ConnId) -> Result<()> {
        self.http_client(id, |c, cx| c.end_body(cx))
    }

    /// Whether connection `id` is an HTTP client still streaming a request body.
    pub fn http_request_sending(&self, id: ConnId) -> bool {
        self.http_client(id, |c, _| Ok(c.sending_body())).unwrap_or(false)
    }
}
