//! What a connection's handler is told, and the trait it implements.

use super::Manager;
use crate::conn::ConnId;
use crate::http::msg::HttpMsg;

/// One event for one connection. Borrowed data is valid for the call only.
#[derive(Debug)]
pub enum Event<'a> {
    /// Something failed; CLOSE follows.
    Error(&'a str),
    /// First event of every connection.
    Open,
    /// An outgoing connection is established.
    Connect,
    /// A connection was accepted (it inherits the listener's handler).
    Accept,
    /// Every received byte not yet consumed.
    Read(&'a [u8]),
    /// This many bytes went to the kernel.
    Write(usize),
    /// Last event of every connection.
    Close,
    /// A remote's wakeup, with its bytes (empty when none).
    Wakeup(&'a [u8]),
    /// The send queue became empty.
    Drain,
    /// A complete HTTP request (server) or response (client).
    HttpMsg(&'a HttpMsg<'a>),
    /// A request head whose body has not been read yet (with `Opt::HttpHeadEvents`).
    HttpHead(&'a HttpMsg<'a>),
    /// A piece of a request body the handler chose to stream.
    HttpBody(&'a [u8]),
}

impl Event<'_> {
    /// The stable number of the event (`TERN_EV_*`).
    pub fn code(&self) -> i32 {
        match self {
            Event::Error(_) => 1,
            Event::Open => 2,
            Event::Connect => 3,
            Event::Accept => 4,
            Event::Read(_) => 5,
            Event::Write(_) => 6,
            Event::Close => 7,
            Event::Wakeup(_) => 12,
            Event::Drain => 13,
            Event::HttpMsg(_) => 8,
            Event::HttpHead(_) => 14,
            Event::HttpBody(_) => 15,
        }
    }
}

/// Receives a connection's events on the loop thread. It gets the manager back, so it
/// may send, close, connect or look up other connections; those calls never re-enter
/// a handler: their effects (writes, closes, events) happen after it returns.
pub trait Handler {
    fn event(&self, mgr: &Manager, id: ConnId, ev: &Event<'_>);
}

impl<F: Fn(&Manager, ConnId, &Event<'_>)> Handler for F {
    fn event(&self, mgr: &Manager, id: ConnId, ev: &Event<'_>) {
        self(mgr, id, ev)
    }
}
