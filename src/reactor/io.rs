//! Socket readiness: accepting, reading, writing and finishing connects. Each
//! function borrows the manager's state only around the transport call and hands
//! events to handlers with no borrow held.

use super::conn::{Conn, Flags, Phase, Sock};
use super::event::Event;
use super::{Reactor, Ready, WAKER};
use crate::buf::recv_buf::ReadOutcome;
use crate::error::Failure;
use crate::log::Level;
use crate::net::socket;
use crate::proto::{ConnId, Stack};
use crate::tern_log;
use crate::transport::Transport;
use mio::{Interest, Token};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Connections accepted per listener event before others get a turn.
const ACCEPT_BATCH: usize = 64;
/// Reads per connection per turn, for fairness between busy connections.
const READ_BATCH: usize = 8;

impl<P: Stack> Reactor<P> {
    pub(super) fn on_ready(&self, r: Ready) {
        if r.token == WAKER {
            return;
        }
        let id = r.token.0 as ConnId;
        let Ok((listener, phase)) = self.with_conn(id, |c| (c.is_listener(), c.phase)) else { return };
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
                    self.inner.borrow_mut().set_conn_timer(lid, Some(Instant::now() + Duration::from_millis(100)));
                    return;
                }
                Err(e) => tern_log!(Level::Debug, "accept: {e}"),
            }
        }
        self.inner.borrow_mut().schedule(lid, Flags::READ_MORE);
    }

    /// Registers an accepted stream as a connection speaking what the listener's
    /// protocol says, or refuses it past MAX_CONNS.
    fn adopt(&self, lid: ConnId, mut stream: mio::net::TcpStream, addr: SocketAddr) -> Option<ConnId> {
        let mut inner = self.inner.borrow_mut();
        if inner.accepted >= inner.opts.max_conns {
            tern_log!(Level::Warn, "refusing connection from {addr}: {} connections open (MAX_CONNS)", inner.accepted);
            return None;
        }
        let (handler, user, proto) = {
            let l = inner.conns.get(&lid)?;
            (l.handler.clone(), l.user, l.proto.accepts()?)
        };
        let id = inner.alloc_id();
        if let Err(e) = inner.poll.registry().register(&mut stream, Token(id as usize), Interest::READABLE | Interest::WRITABLE) {
            tern_log!(Level::Error, "register accepted socket: {e}");
            return None;
        }
        let nodelay = proto.nodelay_at_accept() && stream.set_nodelay(true).is_ok();
        let handshake = Duration::from_millis(inner.opts.tls_handshake_timeout_ms);
        let transport = match inner.security.get(&lid) {
            None => Transport::plain(stream),
            Some(sec) => match Transport::new(stream, sec, handshake) {
                Ok(t) => t,
                Err(e) => {
                    tern_log!(Level::Error, "TLS for connection from {addr}: {e}");
                    return None;
                }
            },
        };
        let deadline = transport.handshake_deadline();
        let mut conn = Conn::new(Sock::Stream(transport), Phase::Open, proto, handler, user);
        conn.flags.set(Flags::ACCEPTED);
        if nodelay {
            conn.flags.set(Flags::NODELAY);
        }
        inner.conns.insert(id, conn);
        inner.accepted += 1;
        if deadline.is_some() {
            // A peer that never finishes its handshake is closed at this deadline.
            inner.set_conn_timer(id, deadline);
        }
        Some(id)
    }

    pub(super) fn read_ready(&self, id: ConnId) {
        for _ in 0..READ_BATCH {
            let outcome = {
                let mut guard = self.inner.borrow_mut();
                let inner = &mut *guard;
                let Some(c) = inner.conns.get_mut(&id) else { return };
                let max = c.proto.recv_limit(&inner.opts);
                c.flags.clear(Flags::READ_MORE);
                let stop = Flags::CLOSE_DELIVERED | Flags::CLOSE_NOW | Flags::READ_PAUSED | Flags::LENT | Flags::PEER_EOF;
                let Sock::Stream(t) = &mut c.sock else { return };
                // A connection closed during its TLS handshake still reads until the
                // handshake is done: what it queued can only go out after it.
                let handshaking = c.phase == Phase::Draining && t.handshaking();
                if c.flags.has(stop) || !(matches!(c.phase, Phase::Open | Phase::Lingering) || handshaking) {
                    return;
                }
                let r = t.read(&mut c.recv, &mut inner.pool, max);
                // A TLS read may leave records to answer (handshake, alerts) and may
                // finish the handshake an outgoing connection waits for.
                let flush = t.wants_flush();
                let connected = c.flags.has(Flags::AWAIT_HANDSHAKE) && !t.handshaking();
                if connected {
                    c.flags.clear(Flags::AWAIT_HANDSHAKE);
                }
                if c.phase == Phase::Lingering {
                    // Our side is done: input only tells us when the peer is too.
                    c.recv.clear(&mut inner.pool);
                }
                if matches!(r, Ok(ReadOutcome::Full)) {
                    c.flags.set(Flags::READ_PAUSED);
                }
                let out = (r, c.phase, c.flags.has(Flags::PEER_HUP));
                if flush || connected {
                    inner.schedule(id, Flags::DIRTY);
                }
                if connected {
                    drop(guard);
                    self.handshake_done(id);
                }
                out
            };
            match outcome {
                (Ok(ReadOutcome::Data { n, filled }), phase, hup) => {
                    if phase == Phase::Open && n > 0 {
                        self.drive_input(id);
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
                (Err(e), ..) => return self.fail(id, Failure::io("recv", &e)),
            }
        }
        self.inner.borrow_mut().schedule(id, Flags::READ_MORE);
    }

    /// Writes what the transport takes; WRITE and DRAIN follow, and a draining close
    /// moves on once the queue is empty. A flush that stopped at its budget with the
    /// socket still writable is put back on the work list: with edge-triggered
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
            let Sock::Stream(t) = &mut c.sock else { return };
            let f = t.flush(&mut c.sendq, &mut inner.pool);
            let out = (f.written, f.error, c.sendq.is_empty(), c.phase);
            let deadline_due = c.phase == Phase::Draining && !c.sendq.is_empty() && c.timer_at.is_none();
            if deadline_due {
                let due = Instant::now() + Duration::from_millis(inner.opts.close_timeout_ms);
                inner.set_conn_timer(id, Some(due));
            }
            if f.more {
                inner.schedule(id, Flags::DIRTY);
            }
            out
        };
        if let Some(e) = error {
            return self.fail(id, Failure::io("send", &e));
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
            let Some(Sock::Stream(t)) = inner.conns.get(&id).map(|c| &c.sock) else { return };
            let s = t.tcp();
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
                let handshake = {
                    let mut guard = self.inner.borrow_mut();
                    let inner = &mut *guard;
                    let Some(c) = inner.conns.get_mut(&id) else { return };
                    c.phase = Phase::Open;
                    let mut handshake = None;
                    if let Some(t) = c.transport() {
                        let _ = t.set_nodelay();
                        handshake = t.handshake_deadline();
                    }
                    c.flags.set(Flags::NODELAY);
                    if handshake.is_some() {
                        c.flags.set(Flags::AWAIT_HANDSHAKE);
                    }
                    inner.connecting.remove(&id);
                    inner.security.remove(&id);
                    // While a handshake goes on, the timer is its deadline.
                    inner.set_conn_timer(id, handshake);
                    inner.schedule(id, Flags::DIRTY);
                    handshake
                };
                if handshake.is_none() {
                    self.emit(id, &Event::Connect);
                    self.drive(id, |p, cx| p.on_connected(cx));
                }
            }
            Err(e) => {
                self.drop_socket(id);
                self.try_next_addr(id, Some(e));
            }
        }
    }
}

impl<P: Stack> Reactor<P> {
    /// An outgoing connection's transport handshake is done: it is connected now.
    fn handshake_done(&self, id: ConnId) {
        self.emit(id, &Event::Connect);
        self.drive(id, |p, cx| p.on_connected(cx));
    }
}

fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

