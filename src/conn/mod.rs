//! One connection's state: its socket, buffers, flags and handler. The reactor owns
//! every `Conn`; nothing outside it holds a reference across a callback.

pub mod pool;
pub mod recv_buf;
pub mod send_queue;

use crate::reactor::Handler;
use mio::net::{TcpListener, TcpStream};
use pool::BufPool;
use recv_buf::RecvBuf;
use send_queue::SendQueue;
use std::net::SocketAddr;
use std::rc::Rc;

/// Unique within a manager, never reused; 0 means none.
pub type ConnId = u64;

/// The socket behind a connection.
pub enum Sock {
    /// Waiting for a name lookup: no socket yet.
    None,
    Listener(TcpListener),
    Stream(TcpStream),
}

/// Where a connection is in its life. Transitions only move down this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Outgoing, waiting for the resolver or the TCP handshake.
    Connecting,
    Open,
    /// `close` was called: flush what is queued, then shut down and close.
    Draining,
    /// Flushed and shut down for writing; waiting for the peer's EOF (bounded by a timer)
    /// so that closing never resets a response the peer has not read yet.
    Lingering,
    /// Done: the socket is closed and CLOSE is being (or was) delivered.
    Closed,
}

pub struct Conn {
    pub id: ConnId,
    pub sock: Sock,
    pub phase: Phase,
    pub handler: Rc<dyn Handler>,
    /// Two opaque words for the embedder (the C layer keeps its user pointer and its
    /// handle here).
    pub user: usize,
    pub attachment: usize,
    pub recv: RecvBuf,
    pub sendq: SendQueue,
    pub flags: Flags,
    /// While the receive buffer is lent to the handler: bytes it may still consume.
    pub lent_left: usize,
    /// Why the connection is being closed, delivered as ERROR before CLOSE.
    pub close_error: Option<Box<str>>,
    /// Addresses still to try for an outgoing connection.
    pub addrs: Vec<SocketAddr>,
    /// A timer owned by this connection (connect timeout, linger), 0 if none.
    pub timer: u64,
    pub proto: Proto,
}

/// The protocol spoken on a connection, and its state.
pub enum Proto {
    /// Bytes in, bytes out: READ events.
    Raw,
    /// A listener whose accepted connections speak HTTP.
    HttpListener,
    /// The server side of HTTP/1.1.
    Http(Box<crate::http::server::ServerConn>),
    /// The client side of HTTP/1.1.
    HttpClient(Box<crate::http::client::ClientConn>),
}

/// Per-connection booleans, kept in one word.
#[derive(Debug, Default, Clone, Copy)]
pub struct Flags(u16);

impl Flags {
    /// OPEN was delivered.
    pub(crate) const OPENED: u16 = 1;
    /// CLOSE was (or is being) delivered: no other event may follow.
    pub(crate) const CLOSE_DELIVERED: u16 = 1 << 1;
    /// The id is in the manager's work list.
    pub(crate) const IN_WORK: u16 = 1 << 2;
    /// The receive buffer is lent to the handler right now.
    pub(crate) const LENT: u16 = 1 << 3;
    /// Reading paused: the receive buffer is full.
    pub(crate) const READ_PAUSED: u16 = 1 << 4;
    /// The kernel may hold more input than the last read took.
    pub(crate) const READ_MORE: u16 = 1 << 5;
    /// Close without flushing at the next chance.
    pub(crate) const CLOSE_NOW: u16 = 1 << 6;
    /// Accepted from a listener (counts against MAX_CONNS).
    pub(crate) const ACCEPTED: u16 = 1 << 7;
    /// Send queue waits to be flushed.
    pub(crate) const DIRTY: u16 = 1 << 8;
    /// The peer sent EOF.
    pub(crate) const PEER_EOF: u16 = 1 << 9;
    /// The protocol layer has buffered input it could not process before.
    pub(crate) const PARSE_MORE: u16 = 1 << 10;
    /// The poller reported the peer's FIN (or an error): a short read does not mean the
    /// kernel is empty, because the EOF behind the data raises no further edge.
    pub(crate) const PEER_HUP: u16 = 1 << 11;
    /// The protocol knows the peer sends nothing more (HTTP after a request with
    /// `Connection: close`, read whole): a graceful close skips the half-close wait.
    pub(crate) const NO_LINGER: u16 = 1 << 12;
    /// TCP_NODELAY is set on the socket.
    pub(crate) const NODELAY: u16 = 1 << 13;

    pub fn has(self, f: u16) -> bool {
        self.0 & f != 0
    }
    pub fn set(&mut self, f: u16) {
        self.0 |= f;
    }
    pub fn clear(&mut self, f: u16) {
        self.0 &= !f;
    }
}

impl Conn {
    pub fn new(id: ConnId, sock: Sock, phase: Phase, handler: Rc<dyn Handler>, user: usize) -> Conn {
        Conn {
            id,
            sock,
            phase,
            handler,
            user,
            attachment: 0,
            recv: RecvBuf::default(),
            sendq: SendQueue::default(),
            flags: Flags::default(),
            lent_left: 0,
            close_error: None,
            addrs: Vec::new(),
            timer: 0,
            proto: Proto::Raw,
        }
    }

    /// Takes the receive buffer to lend it to a handler; reading pauses meanwhile.
    pub(crate) fn lend_recv(&mut self) -> RecvBuf {
        self.flags.set(Flags::LENT);
        std::mem::take(&mut self.recv)
    }

    /// Gives a lent receive buffer back with its first `consumed` bytes dropped (the
    /// buffer goes back to the pool if that empties it).
    pub(crate) fn return_recv(&mut self, mut recv: RecvBuf, consumed: usize, pool: &mut BufPool) {
        self.flags.clear(Flags::LENT);
        self.lent_left = 0;
        recv.consume(consumed);
        self.recv = recv;
        self.recv.release_if_empty(pool);
    }

    pub fn stream(&self) -> Option<&TcpStream> {
        match &self.sock {
            Sock::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_listener(&self) -> bool {
        matches!(self.sock, Sock::Listener(_))
    }

    /// Whether the embedder may still queue data or events on it.
    pub fn accepts_output(&self) -> bool {
        self.phase <= Phase::Open && !self.flags.has(Flags::CLOSE_NOW) && !self.is_listener()
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.sock {
            Sock::Listener(l) => l.local_addr().ok(),
            Sock::Stream(s) => s.local_addr().ok(),
            Sock::None => None,
        }
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream().and_then(|s| s.peer_addr().ok())
    }
}

#[cfg(test)]
mod tests {
    /// An idle connection must stay small: 10,000 of them under 1 KiB each, all
    /// overheads included (this struct is the bulk; buffers are pooled, not held).
    #[test]
    fn idle_connection_record_is_small() {
        let size = std::mem::size_of::<super::Conn>();
        assert!(size <= 264, "Conn is {size} bytes");
    }
}
