//! How connections end. Every path (close, close_now, error, peer EOF, timeout,
//! manager shutdown) goes through `finalize`, which delivers ERROR (if any) and the
//! one CLOSE, releases every buffer and forgets the connection.

use super::conn::{Flags, Phase, Sock};
use super::event::Event;
use super::{Inner, Reactor};
use crate::error::{Error, Failure, Result};
use crate::proto::{ConnId, Stack};
use std::time::{Duration, Instant};

/// Longest wait for the peer's EOF after our side is flushed and shut down.
const MAX_LINGER: Duration = Duration::from_secs(2);

impl<P: Stack> Reactor<P> {
    /// Graceful close: what is queued is written first (within CLOSE_TIMEOUT_MS), then
    /// the connection is shut down and closed. Closing twice is fine.
    pub fn close(&self, id: ConnId) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        if !inner.conns.contains_key(&id) {
            return Err(Error::Closed);
        }
        inner.close_locked(id);
        Ok(())
    }

    /// Closes at the next chance, discarding (and releasing) everything queued.
    pub fn close_now(&self, id: ConnId) -> Result<()> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let c = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        c.sendq.clear(&mut inner.pool);
        inner.schedule(id, Flags::CLOSE_NOW);
        Ok(())
    }

    /// Closes with an error: ERROR(`why`) then CLOSE, queue discarded.
    pub(super) fn fail(&self, id: ConnId, why: Failure) {
        self.inner.borrow_mut().fail_locked(id, why);
    }

    /// The code and OS error number of the ERROR being delivered to connection `id`
    /// right now (inside its ERROR handler); `None` at any other time.
    pub fn conn_error(&self, id: ConnId) -> Option<(Error, i32)> {
        self.delivering.get().filter(|(c, ..)| *c == id).map(|(_, code, os)| (code, os))
    }

    /// The peer will send nothing more. What is queued still goes out; the protocol
    /// decides how the connection ends.
    pub(super) fn peer_eof(&self, id: ConnId) {
        let state = self.with_conn_mut(id, |c| {
            c.flags.set(Flags::PEER_EOF);
            (c.phase, c.transport().is_some_and(|t| t.truncated()))
        });
        match state {
            Ok((Phase::Open, truncated)) => self.drive(id, move |p, cx| {
                cx.truncated = truncated;
                p.on_eof(cx)
            }),
            Ok(_) => {
                let _ = self.close_now(id);
            }
            Err(_) => {}
        }
    }

    /// Everything is written: send our FIN and wait (briefly) for the peer's, so the
    /// close never turns into a reset that destroys data the peer has not read.
    pub(super) fn start_linger(&self, id: ConnId) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let linger = Duration::from_millis(inner.opts.close_timeout_ms).min(MAX_LINGER);
        let Some(c) = inner.conns.get_mut(&id) else { return };
        if c.phase != Phase::Draining {
            return;
        }
        c.phase = Phase::Lingering;
        // Everything was written: over TLS, the peer learns that this is the real end
        // (not a truncation) before the FIN.
        if let Some(t) = c.transport() {
            t.close_notify();
        }
        if c.flags.has(Flags::NO_LINGER) && c.recv.is_empty() {
            // The peer said it sends nothing more (or already closed): a plain close
            // sends the FIN after the response, as nginx does; the shutdown, wait and
            // final read of a lingering close are saved.
            inner.schedule(id, Flags::CLOSE_NOW);
            return;
        }
        let shut = c.transport().map(|t| t.shutdown_write());
        if c.flags.has(Flags::PEER_EOF) || !matches!(shut, Some(Ok(()))) {
            inner.schedule(id, Flags::CLOSE_NOW);
            return;
        }
        inner.set_conn_timer(id, Some(Instant::now() + linger));
        // Input may already be waiting, and its edge has passed while draining.
        inner.schedule(id, Flags::READ_MORE);
    }

    /// The one way a connection ends: socket closed, buffers released, the protocol's
    /// registrations returned, ERROR (if one is pending) and CLOSE delivered, record
    /// removed.
    pub(super) fn finalize(&self, id: ConnId) {
        let error = {
            let mut guard = self.inner.borrow_mut();
            let inner = &mut *guard;
            let Some(c) = inner.conns.get_mut(&id) else { return };
            if c.flags.has(Flags::CLOSE_DELIVERED) {
                return;
            }
            c.flags.set(Flags::CLOSE_DELIVERED);
            c.phase = Phase::Closed;
            c.sendq.clear(&mut inner.pool);
            c.recv.clear(&mut inner.pool);
            c.proto.on_close(id, &mut inner.shared);
            let accepted = c.flags.has(Flags::ACCEPTED);
            let error = c.close_error.take();
            inner.set_conn_timer(id, None);
            inner.connecting.remove(&id);
            inner.security.remove(&id);
            if accepted {
                inner.accepted -= 1;
            }
            error
        };
        self.drop_socket(id);
        if let Some(e) = error {
            self.delivering.set(Some((id, e.code, e.os)));
            self.run_handler(id, &Event::Error(&e.msg));
            self.delivering.set(None);
        }
        self.run_handler(id, &Event::Close);
        let conn = self.inner.borrow_mut().conns.remove(&id);
        // Dropped outside the borrow: the handler it holds may be the last reference
        // to state whose destructor calls back into the manager.
        drop(conn);
    }

    /// Deregisters and closes the socket, keeping the connection record.
    pub(super) fn drop_socket(&self, id: ConnId) {
        let mut inner = self.inner.borrow_mut();
        let sock = match inner.conns.get_mut(&id) {
            Some(c) => std::mem::replace(&mut c.sock, Sock::None),
            None => return,
        };
        match sock {
            // Closing the socket's only descriptor takes it out of the epoll set: an
            // explicit EPOLL_CTL_DEL would be one more syscall per connection. Its
            // events still queued in this batch name an id never used again.
            Sock::Stream(t) => drop(t),
            Sock::Listener(mut l) => {
                let _ = inner.poll.registry().deregister(&mut l);
            }
            Sock::None => {}
        }
    }

    /// Closes everything and refuses new work: every connection gets its CLOSE here,
    /// every queued and posted buffer is released, posted calls run, the resolver
    /// thread is joined. Returns false (and does nothing) from inside a handler.
    pub fn shutdown(&self) -> bool {
        if self.polling.get() {
            crate::tern_log!(crate::log::Level::Error, "manager freed from inside a callback: refused");
            return false;
        }
        if self.freeing.replace(true) {
            return true;
        }
        if let Some(hub) = self.hub.get() {
            hub.close();
        }
        loop {
            let mut ids: Vec<ConnId> = self.inner.borrow().conns.keys().copied().collect();
            if ids.is_empty() {
                break;
            }
            ids.sort_unstable();
            for id in ids {
                self.finalize(id);
            }
        }
        if let Some(hub) = self.hub.get() {
            while let Some(msg) = hub.try_recv() {
                // Sends and wakeups find no connection and release their buffers;
                // calls still run, so their user data can be freed.
                self.handle_msg(msg);
            }
        }
        // Dropped outside the borrow: a timer callback's captures, like a handler's,
        // may call back into the manager when they go.
        let leftovers = {
            let mut inner = self.inner.borrow_mut();
            inner.resolver.shutdown();
            (std::mem::take(&mut inner.timers), std::mem::take(&mut inner.switches))
        };
        drop(leftovers);
        true
    }
}

impl<P: Stack> Inner<P> {
    /// `Reactor::close` for callers that already hold the state.
    pub(super) fn close_locked(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        match c.phase {
            Phase::Open if !c.is_listener() => {
                // The deadline (CLOSE_TIMEOUT_MS) is armed by the flush, and only if
                // the queue does not empty at once: most closes never need a timer.
                c.phase = Phase::Draining;
                self.set_conn_timer(id, None);
                self.schedule(id, Flags::DIRTY);
            }
            Phase::Open | Phase::Connecting => self.schedule(id, Flags::CLOSE_NOW),
            _ => {}
        }
    }

    /// `Reactor::fail` for callers that already hold the state.
    pub(super) fn fail_locked(&mut self, id: ConnId, why: Failure) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        if c.flags.has(Flags::CLOSE_DELIVERED) {
            return;
        }
        crate::tern_log!(crate::log::Level::Debug, "connection {id}: {}", why.msg);
        c.close_error.get_or_insert_with(|| Box::new(why));
        c.sendq.clear(&mut self.pool);
        self.schedule(id, Flags::CLOSE_NOW);
    }
}

