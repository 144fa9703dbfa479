//! The transport: between a connection's socket and its protocol. Reading fills the
//! receive buffer with plaintext; flushing hands the send queue to the kernel and
//! advances the queue over what the kernel took (which is where queued buffers are
//! released). Protocols never see which transport carries them.
//!
//! Two variants: plain TCP, and TLS (`tls`), whose handshake is the transport's
//! business: the reactor only asks whether it is still going (`handshaking`, with a
//! deadline) and reports "connected" once it is done.

mod plain;
pub mod tls;

use plain::Plain;
use tls::Tls;

use crate::buf::pool::BufPool;
use crate::buf::recv_buf::{ReadOutcome, RecvBuf};
use crate::buf::send_queue::SendQueue;
use mio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    Tls(Box<Tls>),
}

/// How a new stream is wrapped: in the clear, or in TLS as the server or as the
/// client of the named host. Kept by listeners and by outgoing connections until
/// their socket exists.
#[derive(Clone, Default)]
pub enum Security {
    #[default]
    Plain,
    TlsServer(Arc<rustls::ServerConfig>),
    TlsClient(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>),
}

impl Transport {
    pub fn plain(stream: TcpStream) -> Transport {
        Transport::Plain(Plain::new(stream))
    }

    /// `stream` wrapped as `sec` says; a TLS handshake must end within `handshake`.
    pub fn new(stream: TcpStream, sec: &Security, handshake: Duration) -> io::Result<Transport> {
        Ok(match sec {
            Security::Plain => Transport::plain(stream),
            Security::TlsServer(cfg) => Transport::Tls(Box::new(Tls::server(stream, cfg.clone(), handshake)?)),
            Security::TlsClient(cfg, name) => Transport::Tls(Box::new(Tls::client(stream, cfg.clone(), name.clone(), handshake)?)),
        })
    }

    /// One read into `recv` (at most `max` unconsumed bytes held). Over TLS a read
    /// may bring only handshake progress: `Data { n: 0 }`.
    pub fn read(&mut self, recv: &mut RecvBuf, pool: &mut BufPool, max: usize) -> io::Result<ReadOutcome> {
        match self {
            Transport::Plain(p) => p.read(recv, pool, max),
            Transport::Tls(t) => t.read(recv, pool, max),
        }
    }

    /// Writes what the kernel takes of `q`, advancing it.
    pub fn flush(&mut self, q: &mut SendQueue, pool: &mut BufPool) -> Flushed {
        match self {
            Transport::Plain(p) => p.flush(q, pool),
            Transport::Tls(t) => t.flush(q, pool),
        }
    }

    /// A handshake is under way: the connection is not "connected" yet.
    pub fn handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.handshaking(),
        }
    }

    /// When the handshake under way times out.
    pub fn handshake_deadline(&self) -> Option<Instant> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(t) => t.handshake_deadline(),
        }
    }

    /// The transport has bytes of its own to write (handshake records, alerts),
    /// whatever the send queue holds: flush even if it is empty.
    pub fn wants_flush(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.wants_flush(),
        }
    }

    /// The peer's end was not announced (TLS without close_notify): data it sent
    /// may be cut short. Plain TCP cannot tell, so never.
    pub fn truncated(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.truncated(),
        }
    }

    /// Everything was written and the connection ends gracefully: TLS says so to
    /// the peer (close_notify) before the TCP close.
    pub fn close_notify(&mut self) {
        if let Transport::Tls(t) = self {
            t.close_notify();
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
            Transport::Tls(t) => &t.stream,
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(p) => &mut p.stream,
            Transport::Tls(t) => &mut t.stream,
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.tcp().local_addr().ok()
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.tcp().peer_addr().ok()
    }
}
