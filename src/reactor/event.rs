//! What a connection's handler is told, and the trait it implements.

use super::Reactor;
use crate::proto::{ConnId, Stack};

/// One event for one connection. Borrowed data is valid for the call only. The
/// reactor's own events are listed here; a protocol's come as `Proto`.
pub enum Event<'a, P: Stack> {
    /// Something failed; CLOSE follows.
    Error(&'a str),
    /// First event of every connection.
    Open,
    /// An outgoing connection is established.
    Connect,
    /// A connection was accepted (it inherits the listener's handler).
    Accept,
    /// Every received byte not yet consumed (connections whose protocol passes raw
    /// bytes on).
    Read(&'a [u8]),
    /// This many bytes went to the kernel.
    Write(usize),
    /// Last event of every connection.
    Close,
    /// A remote's wakeup, with its bytes (empty when none).
    Wakeup(&'a [u8]),
    /// The send queue became empty.
    Drain,
    /// What the connection's protocol delivers (an HTTP request, ...).
    Proto(P::Event<'a>),
}

impl<P: Stack> Event<'_, P> {
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
            Event::Proto(e) => P::event_code(e),
        }
    }
}

impl<P: Stack> std::fmt::Debug for Event<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Error(msg) => write!(f, "Error({msg:?})"),
            Event::Read(d) => write!(f, "Read({} bytes)", d.len()),
            Event::Write(n) => write!(f, "Write({n})"),
            Event::Wakeup(d) => write!(f, "Wakeup({} bytes)", d.len()),
            other => write!(f, "Event({})", other.code()),
        }
    }
}

/// Receives a connection's events on the loop thread. It gets the manager back, so it
/// may send, close, connect or look up other connections; those calls never re-enter
/// a handler: their effects (writes, closes, events) happen after it returns.
pub trait Handler<P: Stack> {
    fn event(&self, mgr: &Reactor<P>, id: ConnId, ev: &Event<'_, P>);
}

impl<P: Stack, F: Fn(&Reactor<P>, ConnId, &Event<'_, P>)> Handler<P> for F {
    fn event(&self, mgr: &Reactor<P>, id: ConnId, ev: &Event<'_, P>) {
        self(mgr, id, ev)
    }
}
