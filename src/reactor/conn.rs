//! One connection's record: its socket and transport, phase, flags, handler, buffers
//! and protocol state. The reactor owns every `Conn`; nothing outside it holds a
//! reference across a callback.

use super::event::Handler;
use crate::buf::recv_buf::RecvBuf;
use crate::buf::send_queue::SendQueue;
use crate::error::Failure;
use crate::proto::Protocol;
use crate::transport::Transport;
use mio::net::TcpListener;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

/// The socket behind a connection.
pub enum Sock {
    /// Waiting for a name lookup or between connect attempts: no socket.
    None,
    Listener(TcpListener),
    Stream(Transport),
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

pub struct Conn<P: Protocol> {
    pub sock: Sock,
    pub phase: Phase,
    pub flags: Flags,
    pub handler: Rc<dyn Handler<P>>,
    /// Two opaque words for the embedder (the C layer keeps its user pointer and its
    /// handle here).
    pub user: usize,
    pub attachment: usize,
    pub recv: RecvBuf,
    pub sendq: SendQueue,
    /// When the connection's one timer is due. What it stands for follows from the
    /// phase: the connect timeout, the protocol's deadline (or a listener's accept
    /// retry), the close deadline, the end of the linger.
    pub timer_at: Option<Instant>,
    /// Why the connection is being closed, delivered as ERROR before CLOSE.
    pub close_error: Option<Box<Failure>>,
    pub proto: P,
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
    /// The protocol asked to look at its input again.
    pub(crate) const INPUT: u16 = 1 << 10;
    /// The poller reported the peer's FIN (or an error): a short read does not mean the
    /// kernel is empty, because the EOF behind the data raises no further edge.
    pub(crate) const PEER_HUP: u16 = 1 << 11;
    /// The protocol knows the peer sends nothing more (HTTP after a request with
    /// `Connection: close`, read whole): a graceful close skips the half-close wait.
    pub(crate) const NO_LINGER: u16 = 1 << 12;
    /// TCP_NODELAY is set on the socket.
    pub(crate) const NODELAY: u16 = 1 << 13;
    /// Outgoing and TCP-connected, but the transport's handshake (TLS) is still
    /// going: CONNECT and `on_connected` wait for it.
    pub(crate) const AWAIT_HANDSHAKE: u16 = 1 << 14;

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

impl<P: Protocol> Conn<P> {
    pub fn new(sock: Sock, phase: Phase, proto: P, handler: Rc<dyn Handler<P>>, user: usize) -> Conn<P> {
        Conn {
            sock,
            phase,
            flags: Flags::default(),
            handler,
            user,
            attachment: 0,
            recv: RecvBuf::default(),
            sendq: SendQueue::default(),
            timer_at: None,
            close_error: None,
            proto,
        }
    }

    pub fn transport(&mut self) -> Option<&mut Transport> {
        match &mut self.sock {
            Sock::Stream(t) => Some(t),
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

    /// Whether the protocol may still read and write: open, not closing.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Open && !self.flags.has(Flags::CLOSE_NOW | Flags::CLOSE_DELIVERED)
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.sock {
            Sock::Listener(l) => l.local_addr().ok(),
            Sock::Stream(t) => t.local_addr(),
            Sock::None => None,
        }
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.sock {
            Sock::Stream(t) => t.peer_addr(),
            _ => None,
        }
    }
}
