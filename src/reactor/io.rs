//! Socket readiness: accepting, reading, writing and finishing connects. Each
//! function borrows the manager's state only around the syscall and hands events to
//! handlers with no borrow held.

use super::timers::TimerAction;
use super::{Event, Manager, Ready, WAKER};
use crate::conn::recv_buf::ReadOutcome;
use crate::conn::{Conn, ConnId, Flags, Phase, Proto, Sock};
use crate::log::Level;
use crate::net::socket;
use crate::tern_log;
use mio::{Interest, Token};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Connections accepted per listener event before others get a turn.
const ACCEPT_BATCH: usize = 64;
/// Reads per connection per turn, for fairness between busy connections.
const READ_BATCH: usize = 8;

impl Manager {
    pub(super) fn on_ready(&self, r: Ready) {
        if r.token == WAKER {
            return;
        }
        let id = r.token.0 as ConnId;
        let (listener, phase) = match self.with_conn(id, |c| (c.is_listener(), c.phase)) {
            Ok(v) => v,
            Err(_) => return,
        };
        if listener {
            self.accept_ready(id);
            return;
        }
        if phase == Phase::Connecting {
            if !(r.writable || r.error) {
                return;
            }
            self.connect_ready(id);
        }
        if r.hup {
            let _ = self.with_conn_mut(id, |c| c.flags.set(Flags::PEER_HUP));
        }
        if r.readable || r.error {
            self.read_ready(id);
        }
        if r.writable {
            self.flush_conn(id);
        }
    }

    pub(super) fn accept_ready(&self, lid: ConnId) {
        for _ in 0..ACCEPT_BATCH {
            let accepted = {
                let inner = self.inner.borrow();
                let Some(Sock::Listener(l)) = inner.conns.get(&lid).map(|c| &c.sock) else { return };
                l.accept()
            };
            match accepted {
                Ok((stream, addr)) => {
                    if let Some(id) = self.adopt(lid, stream, addr) {
                        self.emit(id, &Event::Accept);
                    }
                }
                Err(e) if socket::would_block(&e) => return,
                Err(e) if is_out_of_resources(&e) => {
                    // The pending connection stays in the backlog; with edge-triggered
                    // polling no new event would come, so look again shortly.
                    tern_log!(Level::Error, "accept: {e}; retrying in 100 ms");
                    let mut inner = self.inner.borrow_mut();
                    inner.timers.add(Instant::now() + Duration::from_millis(100), TimerAction::AcceptRetry(lid));
                    return;
                }
                Err(e) => tern_log!(Level::Debug, "accept: {e}"),
            }
        }
        self.inner.borrow_mut().schedule(lid, Flags::READ_MORE);
    }

    /// Registers an accepted stream as a connection, or refuses it past MAX_CONNS.
    fn adopt(&self, lid: ConnId, mut stream: mio::net::TcpStream, addr: SocketAddr) -> Option<ConnId> {
        let mut inner = self.inner.borrow_mut();
        if inner.accepted >= inner.opts.max_conns {
            tern_log!(Level::Warn, "refusing connection from {addr}: {} connections open (MAX_CONNS)", inner.accepted);
            return None;
        }
        let (handler, user, http) = {
            let l = inner.conns.get(&lid)?;
            (l.handler.clone(), l.user, matches!(l.proto, Proto::HttpListener))
        };
        let id = inner.alloc_id();
        let mut flags_nodelay = false;
        if let Err(e) = inner.poll.registry().register(&mut stream, Token(id as usize), Interest::READABLE | Interest::WRITABLE) {
            tern_log!(Level::Error, "register accepted socket: {e}");
            return None;
        }
        // A raw TCP connection gets TCP_NODELAY now; an HTTP one only once it is kept
        // alive (a one-request connection writes its response in one go and closes).
        if !http && stream.set_nodelay(true).is_ok() {
            flags_nodelay = true;
        }
        let mut conn = Conn::new(id, Sock::Stream(stream), Phase::Open, handler, user);
        conn.flags.set(Flags::ACCEPTED);
        if flags_nodelay {
            conn.flags.set(Flags::NODELAY);
        }
        if http {
            conn.proto = Proto::Http(Box::default());
        }
        inner.conns.insert(id, conn);
        inner.accepted += 1;
        Some(id)
    }

    pub(super) fn read_ready(&self, id: ConnId) {
        for _ in 0..READ_BATCH {
            let outcome = {
                let mut guard = self.inner.borrow_mut();
                let inner = &mut *guard;
                let Some(c) = inner.conns.get_mut(&id) else { return };
                // An HTTP request is delivered whole: its head and body must fit.
                let max = match c.proto {
                    Proto::Raw | Proto::HttpListener => inner.opts.max_recv_buffer,
                    Proto::Http(_) | Proto::HttpClient(_) => inner.opts.max_recv_buffer.max(inner.opts.max_header_bytes + inner.opts.max_body_bytes),
                };
                c.flags.clear(Flags::READ_MORE);
                let stop = Flags::CLOSE_DELIVERED | Flags::CLOSE_NOW | Flags::READ_PAUSED | Flags::LENT | Flags::PEER_EOF;
                if c.flags.has(stop) || !matches!(c.phase, Phase::Open | Phase::Lingering) {
                    return;
                }
                let Sock::Stream(s) = &c.sock else { return };
                let r = c.recv.read_from(s, &mut inner.pool, max);
                if c.phase == Phase::Lingering {
                    // Our side is done: input only tells us when the peer is too.
                    c.recv.clear(&mut inner.pool);
                }
                if matches!(r, Ok(ReadOutcome::Full)) {
                    c.flags.set(Flags::READ_PAUSED);
                }
                let kind = match c.proto {
                    Proto::Http(_) => Kind::Server,
                    Proto::HttpClient(_) => Kind::Client,
                    _ => Kind::Raw,
                };
                (r, c.phase, c.flags.has(Flags::PEER_HUP), kind)
            };
            match outcome {
                (Ok(ReadOutcome::Data { filled, .. }), phase, hup, kind) => {
                    if phase == Phase::Open {
                        match kind {
                            Kind::Server => self.http_on_data(id),
                            Kind::Client => self.http_client_on_data(id),
                            Kind::Raw => self.deliver_read(id),
                        }
                    }
                    if !filled && !hup {
                        // A short read took everything the kernel had; the next
                        // arrival raises a new edge.
                        return;
                    }
                }
                (Ok(ReadOutcome::Eof), ..) => return self.peer_eof(id),
                (Ok(ReadOutcome::Full), ..) => return,
                (Err(e), ..) if socket::would_block(&e) => return,
                (Err(e), ..) => return self.fail(id, format!("recv: {e}")),
            }
        }
        self.inner.borrow_mut().schedule(id, Flags::READ_MORE);
    }

    /// Writes what the socket takes; WRITE and DRAIN follow, and a draining close
    /// moves on once the queue is empty. A flush that stopped at its file budget with
    /// the socket still writable is put back on the work list: with edge-triggered
    /// polling no new readiness event would come for it.
    pub(super) fn flush_conn(&self, id: ConnId) {
        let (written, error, drained, phase) = {
            let mut guard = self.inner.borrow_mut();
            let inner = &mut *guard;
            let Some(c) = inner.conns.get_mut(&id) else { return };
            c.flags.clear(Flags::DIRTY);
            if c.flags.has(Flags::CLOSE_DELIVERED | Flags::CLOSE_NOW) || !matches!(c.phase, Phase::Open | Phase::Draining) {
                return;
            }
            let Sock::Stream(s) = &c.sock else { return };
            let f = c.sendq.flush(s, &mut inner.pool);
            let out = (f.written, f.error, c.sendq.is_empty(), c.phase);
            if c.phase == Phase::Draining && !c.sendq.is_empty() && c.timer == 0 {
                let due = Instant::now() + Duration::from_millis(inner.opts.close_timeout_ms);
                c.timer = inner.timers.add(due, TimerAction::CloseDeadline(id));
            }
            if f.more {
                inner.schedule(id, Flags::DIRTY);
            }
            out
        };
        if let Some(e) = error {
            return self.fail(id, format!("send: {e}"));
        }
        if written > 0 {
            self.emit(id, &Event::Write(written));
        }
        if drained && written > 0 {
            // The queue just became empty (it was not before this write).
            self.emit(id, &Event::Drain);
        }
        if phase == Phase::Draining && drained {
            self.start_linger(id);
        }
    }

    /// The handshake of an outgoing connection finished, one way or the other.
    pub(super) fn connect_ready(&self, id: ConnId) {
        let result = {
            let inner = self.inner.borrow();
            let Some(Sock::Stream(s)) = inner.conns.get(&id).map(|c| &c.sock) else { return };
            match s.take_error() {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => match s.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => Err(e),
                },
            }
        };
        match result {
            Ok(()) => {
                {
                    let mut inner = self.inner.borrow_mut();
                    let timer = match inner.conns.get_mut(&id) {
                        Some(c) => {
                            c.phase = Phase::Open;
                            if let Some(s) = c.stream() {
                                let _ = s.set_nodelay(true);
                            }
                            std::mem::take(&mut c.timer)
                        }
                        None => return,
                    };
                    inner.timers.cancel(timer);
                    inner.schedule(id, Flags::DIRTY);
                }
                self.emit(id, &Event::Connect);
            }
            Err(e) => {
                self.drop_socket(id);
                self.try_next_addr(id, Some(e));
            }
        }
    }

    /// Starts a non-blocking connect to the next candidate address; fails the
    /// connection when none is left.
    pub(super) fn try_next_addr(&self, id: ConnId, mut last: Option<io::Error>) {
        loop {
            let next = self.with_conn_mut(id, |c| c.addrs.pop());
            let addr = match next {
                Ok(Some(a)) => a,
                Ok(None) => {
                    let e = last.map_or_else(|| "no address to connect to".to_string(), |e| format!("connect: {e}"));
                    return self.fail(id, e);
                }
                Err(_) => return,
            };
            match mio::net::TcpStream::connect(addr) {
                Ok(mut s) => {
                    let mut inner = self.inner.borrow_mut();
                    let reg = inner.poll.registry().register(&mut s, Token(id as usize), Interest::READABLE | Interest::WRITABLE);
                    match reg {
                        Ok(()) => {
                            if let Some(c) = inner.conns.get_mut(&id) {
                                c.sock = Sock::Stream(s);
                            }
                            return;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(e) => last = Some(e),
            }
        }
    }

    /// Deregisters and closes the socket, keeping the connection record.
    pub(super) fn drop_socket(&self, id: ConnId) {
        let mut inner = self.inner.borrow_mut();
        let sock = match inner.conns.get_mut(&id) {
            Some(c) => std::mem::replace(&mut c.sock, Sock::None),
            None => return,
        };
        let registry = inner.poll.registry();
        match sock {
            // Closing the socket's only descriptor takes it out of the epoll set: an
            // explicit EPOLL_CTL_DEL would be one more syscall per connection. Its
            // events still queued in this batch name an id never used again.
            Sock::Stream(s) => drop(s),
            Sock::Listener(mut l) => {
                let _ = registry.deregister(&mut l);
            }
            Sock::None => {}
        }
    }
}

/// Who reads a connection's bytes.
#[derive(Clone, Copy)]
enum Kind {
    Raw,
    Server,
    Client,
}

fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}
