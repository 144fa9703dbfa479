//! One TLS connection over a non-blocking socket.
//!
//! Reading: one `recv` of records into rustls, which decrypts them; the plaintext is
//! copied once, from rustls's buffer into the connection's receive buffer.
//!
//! Writing: the front of the send queue is handed to rustls by reference, which
//! encrypts it into its own record buffer (the one copy TLS needs), bounded to
//! `BATCH` bytes; the records go to the kernel with vectored `sendmsg(MSG_NOSIGNAL)`.
//! The queue is advanced over a batch, which is what releases its buffers (and runs
//! free callbacks), only once rustls's record buffer is empty, that is once every
//! record carrying those bytes was taken by the kernel. Until then the bytes stay
//! queued: `in_flight` counts them.

use super::encrypt;
use crate::buf::pool::BufPool;
use crate::buf::recv_buf::{ReadInto, ReadOutcome, RecvBuf};
use crate::buf::send_queue::SendQueue;
use crate::net::socket;
use crate::transport::Flushed;
use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, Connection, ServerConfig};
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Plaintext encrypted per batch at most: the records waiting for the kernel, per
/// connection, stay under this (plus record overhead).
pub(super) const BATCH: usize = 64 * 1024;

/// Plaintext one `flush` encrypts at most, so a large download yields the loop to
/// other connections (the reactor calls `flush` again next turn).
const BUDGET: usize = 1 << 20;

pub struct Tls {
    pub(in crate::transport) stream: TcpStream,
    conn: Connection,
    /// Bytes at the front of the send queue that are encrypted into records rustls
    /// still holds: advanced over (released) once those records are written.
    in_flight: usize,
    /// Decrypted bytes rustls holds for us.
    plaintext: usize,
    /// The socket reported its end.
    eof: bool,
    /// The peer's close_notify arrived: its end is a clean one.
    close_notify: bool,
    /// The handshake must be done by then.
    handshake_until: Instant,
    /// File bytes on their way to encryption: one batch, held only while file
    /// segments are queued (the bounded per-connection buffer sendfile would not need).
    file_buf: Vec<u8>,
}

impl Tls {
    /// The server side of a TLS connection accepted on `stream`.
    pub fn server(stream: TcpStream, cfg: Arc<ServerConfig>, timeout: Duration) -> io::Result<Tls> {
        let conn = rustls::ServerConnection::new(cfg).map_err(io::Error::other)?;
        Ok(Tls::new(stream, conn.into(), timeout))
    }

    /// The client side, to `name` (sent as SNI, checked against the certificate).
    pub fn client(stream: TcpStream, cfg: Arc<ClientConfig>, name: ServerName<'static>, timeout: Duration) -> io::Result<Tls> {
        let conn = rustls::ClientConnection::new(cfg, name).map_err(io::Error::other)?;
        Ok(Tls::new(stream, conn.into(), timeout))
    }

    fn new(stream: TcpStream, mut conn: Connection, timeout: Duration) -> Tls {
        // A little over a batch, so a whole batch is accepted whatever the record
        // overhead (see `flush`).
        conn.set_buffer_limit(Some(BATCH + 4096));
        Tls { stream, conn, in_flight: 0, plaintext: 0, eof: false, close_notify: false, handshake_until: Instant::now() + timeout, file_buf: Vec::new() }
    }

    pub fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// When the handshake times out, while it lasts.
    pub fn handshake_deadline(&self) -> Option<Instant> {
        self.handshaking().then_some(self.handshake_until)
    }

    /// Records of ours (handshake, alerts, tickets, data) wait for the kernel.
    pub fn wants_flush(&self) -> bool {
        self.conn.wants_write()
    }

    /// The peer's end came without close_notify: whatever it sent may be cut short.
    pub fn truncated(&self) -> bool {
        self.eof && !self.close_notify
    }

    /// One read: decrypted bytes into `recv` (at most `max` unconsumed bytes held).
    /// Handshake progress alone is `Data { n: 0 }`; records that arrived to answer
    /// wait in rustls (`wants_flush`).
    pub fn read(&mut self, recv: &mut RecvBuf, pool: &mut BufPool, max: usize) -> io::Result<ReadOutcome> {
        // Plaintext left from before is handed out first, without a look at the
        // socket: more may be waiting there, so the reactor must come back.
        let ended = self.eof || self.close_notify;
        let mut kernel_more = !ended;
        if self.plaintext == 0 && !ended {
            kernel_more = self.read_records()?;
        }
        if self.plaintext > 0 {
            return Ok(match recv.read_from(&mut Plaintext(self), pool, max)? {
                // After the peer's end (close_notify, EOF) no edge will come for it:
                // the reactor must read again to see it.
                ReadOutcome::Data { n, filled } => ReadOutcome::Data { n, filled: filled || kernel_more || self.plaintext > 0 || self.eof || self.close_notify },
                other => other,
            });
        }
        if self.eof || self.close_notify {
            return Ok(ReadOutcome::Eof);
        }
        Ok(ReadOutcome::Data { n: 0, filled: kernel_more })
    }

    /// One `recv` into rustls, then decryption. Returns whether the read filled all
    /// the room it had (more may be waiting in the kernel).
    fn read_records(&mut self) -> io::Result<bool> {
        let mut sock = SocketIo { stream: &self.stream, filled: false };
        match self.conn.read_tls(&mut sock) {
            Ok(0) => self.eof = true,
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        let filled = sock.filled;
        match self.conn.process_new_packets() {
            Ok(st) => {
                self.plaintext = st.plaintext_bytes_to_read();
                self.close_notify = st.peer_has_closed();
                Ok(filled)
            }
            Err(e) => Err(self.fatal(e)),
        }
    }

    /// A TLS error ends the connection: the alert rustls queued for the peer goes
    /// out if the socket takes it, and the error says what happened.
    fn fatal(&mut self, e: rustls::Error) -> io::Error {
        let _ = self.write_records();
        let stage = if self.handshaking() { "TLS handshake failed" } else { "TLS error" };
        io::Error::new(io::ErrorKind::InvalidData, crate::error::TlsFailure(format!("{stage}: {e}")))
    }

    /// Writes records, then encrypts more of the queue, until the queue is empty,
    /// the socket is full or the budget is spent. See the module doc for when queued
    /// bytes are released.
    pub fn flush(&mut self, q: &mut SendQueue, pool: &mut BufPool) -> Flushed {
        let f = self.flush_queue(q, pool);
        if !q.has_files() && !self.file_buf.is_empty() {
            self.file_buf = Vec::new();
        }
        f
    }

    fn flush_queue(&mut self, q: &mut SendQueue, pool: &mut BufPool) -> Flushed {
        let mut written = 0;
        let mut budget = BUDGET;
        loop {
            match self.write_records() {
                Ok(true) => {}
                Ok(false) => return Flushed { written, error: None, more: false },
                Err(e) => return Flushed { written, error: Some(e), more: false },
            }
            if self.in_flight > 0 {
                // Every record is in the kernel: the batch they carried is written.
                // (Clamped: a queue cleared meanwhile has nothing left to release.)
                let n = self.in_flight.min(q.queued());
                q.advance(n, pool);
                written += n;
                self.in_flight = 0;
            }
            if self.handshaking() || q.is_empty() {
                return Flushed { written, error: None, more: false };
            }
            if budget == 0 {
                return Flushed { written, error: None, more: true };
            }
            match encrypt::front(&mut self.conn, q, &mut self.file_buf, budget.min(BATCH)) {
                Ok(0) => return Flushed { written, error: None, more: false },
                Ok(n) => {
                    self.in_flight = n;
                    budget = budget.saturating_sub(n);
                }
                Err(e) => return Flushed { written, error: Some(e), more: false },
            }
        }
    }

    /// Hands rustls's records to the kernel until none is left (true) or the socket
    /// is full (false).
    fn write_records(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            let mut sock = SocketIo { stream: &self.stream, filled: false };
            match self.conn.write_tls(&mut sock) {
                Ok(_) => {}
                Err(e) if socket::would_block(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Our side is done: a close_notify goes out (best effort: a peer that does not
    /// read sees a truncated stream, which is what it is).
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
        let _ = self.write_records();
    }

    /// The negotiated ALPN protocol, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }
}

/// The socket as rustls reads and writes it: `recv` and vectored `sendmsg` with
/// MSG_NOSIGNAL (a vanished peer is EPIPE, never SIGPIPE).
struct SocketIo<'a> {
    stream: &'a TcpStream,
    /// The last read filled the whole buffer it was given.
    filled: bool,
}

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and `recv`
        // only writes initialised bytes into it.
        let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        let n = socket::recv(self.stream, uninit)?;
        self.filled = n == len && len > 0;
        Ok(n)
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        socket::send_vectored(self.stream, &[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        socket::send_vectored(self.stream, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// rustls's decrypted bytes as a source for the receive buffer: copied straight
/// from rustls's chunks into the buffer's free room.
struct Plaintext<'a>(&'a mut Tls);

// SAFETY: `read_uninit` reports exactly the bytes it copied into the front of `buf`.
unsafe impl ReadInto for Plaintext<'_> {
    fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        let mut n = 0;
        let mut reader = self.0.conn.reader();
        while n < buf.len() {
            let chunk = match reader.fill_buf() {
                Ok(c) if !c.is_empty() => c,
                _ => break,
            };
            let k = chunk.len().min(buf.len() - n);
            // SAFETY: `chunk` has at least `k` readable bytes, `buf[n..]` has room for
            // `k`, and rustls's buffer never overlaps the receive buffer.
            unsafe { std::ptr::copy_nonoverlapping(chunk.as_ptr(), buf[n..].as_mut_ptr().cast::<u8>(), k) };
            reader.consume(k);
            n += k;
        }
        self.0.plaintext -= n.min(self.0.plaintext);
        Ok(n)
    }
}

