//! The transport: between a connection's socket and its protocol. Reading fills the
//! receive buffer with plaintext; flushing hands the send queue to the kernel and
//! advances the queue over what the kernel took (which is where queued buffers are
//! released). Protocols never see which transport carries them.
//!
//! Plain TCP is the only variant today; TLS becomes a second one without touching
//! any protocol.

mod plain;

use plain::Plain;

use crate::buf::pool::BufPool;
use crate::buf::recv_buf::{ReadOutcome, RecvBuf};
use crate::buf::send_queue::SendQueue;
use mio::net::TcpStream;
use std::io;
use std::net::SocketAddr;

/// Result of writing as much as the transport takes.
pub struct Flushed {
    pub written: usize,
    /// A real error (not "would block"): the connection is done for.
    pub error: Option<io::Error>,
    /// The transport stopped at its per-flush budget with the socket still writable:
    /// call `flush` again soon (no readiness edge will come for it).
    pub more: bool,
}

/// A connected stream and how bytes cross it.
pub enum Transport {
    Plain(Plain),
}

impl Transport {
    pub fn plain(stream: TcpStream) -> Transport {
        Transport::Plain(Plain::new(stream))
    }

    /// One read into `recv` (at most `max` unconsumed bytes held).
    pub fn read(&mut self, recv: &mut RecvBuf, pool: &mut BufPool, max: usize) -> io::Result<ReadOutcome> {
        match self {
            Transport::Plain(p) => p.read(recv, pool, max),
        }
    }

    /// Writes what the kernel takes of `q`, advancing it.
    pub fn flush(&mut self, q: &mut SendQueue, pool: &mut BufPool) -> Flushed {
        match self {
            Transport::Plain(p) => p.flush(q, pool),
        }
    }

    /// Our side sends nothing more (the FIN goes after what was flushed).
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.tcp().shutdown(std::net::Shutdown::Write)
    }

    pub fn set_nodelay(&self) -> io::Result<()> {
        self.tcp().set_nodelay(true)
    }

    /// The TCP stream underneath (addresses, registration, connect errors).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(p) => &p.stream,
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(p) => &mut p.stream,
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.tcp().local_addr().ok()
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.tcp().peer_addr().ok()
    }
}
