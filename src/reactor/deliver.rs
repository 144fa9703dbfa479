//! Delivering events: the one place a handler runs (`run_handler`), and the one way
//! a connection's buffers are lent to it and taken back (`lend_and_run`), used for
//! raw bytes (READ) and for every protocol's deliveries alike.
//!
//! While a handler holds a connection's receive buffer, the connection does not read
//! (`Flags::LENT`); the handler may still send, close, answer or defer, since nothing
//! of the reactor is borrowed during the call.

use super::conn::{Conn, Flags, Phase};
use crate::buf::pool::BufPool;
use super::event::Event;
use super::{Inner, Reactor};
use crate::buf::recv_buf::RecvBuf;
use crate::proto::{ConnId, Stack};

impl<P: Stack> Reactor<P> {
    /// Delivers `ev` unless the connection is gone or already closed. OPEN goes first
    /// if it has not been delivered yet.
    pub(super) fn emit(&self, id: ConnId, ev: &Event<'_, P>) {
        let closed = self.inner.borrow().conns.get(&id).is_none_or(|c| c.flags.has(Flags::CLOSE_DELIVERED));
        if !closed {
            self.run_handler(id, ev);
        }
    }

    /// Runs connection `id`'s handler for `ev`, after OPEN if the connection has not
    /// had it. Every handler call of the reactor goes through here.
    pub(super) fn run_handler(&self, id: ConnId, ev: &Event<'_, P>) {
        let (handler, need_open) = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            let need_open = !c.flags.has(Flags::OPENED);
            c.flags.set(Flags::OPENED);
            (c.handler.clone(), need_open)
        };
        if need_open {
            self.count_callback();
            handler.event(self, id, &Event::Open);
        }
        self.count_callback();
        handler.event(self, id, ev);
    }

    /// OPEN, if it was not delivered yet.
    pub(super) fn ensure_open(&self, id: ConnId) {
        let handler = self.with_conn_mut(id, |c| {
            let first = !c.flags.has(Flags::OPENED);
            c.flags.set(Flags::OPENED);
            first.then(|| c.handler.clone())
        });
        if let Ok(Some(h)) = handler {
            self.count_callback();
            h.event(self, id, &Event::Open);
        }
    }

    /// READ: every unconsumed byte, lent to the handler; what it consumed meanwhile
    /// (`consume`) is dropped when the buffer comes back.
    pub(super) fn deliver_read(&self, id: ConnId) {
        let lent = self.lend_and_run(
            id,
            |inner, recv| {
                inner.read_left = recv.len();
                Some(recv)
            },
            read_event::<P>,
        );
        let Some(mut recv) = lent else { return };
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let left = std::mem::take(&mut inner.read_left);
        recv.consume(recv.len() - left);
        match inner.conns.get_mut(&id) {
            Some(c) => {
                c.flags.clear(Flags::LENT);
                c.recv = recv;
                settle_recv(c, &mut inner.pool);
            }
            None => recv.clear(&mut inner.pool),
        }
        inner.apply_switch(id);
    }

    /// One of the protocol's deliveries: lent by the protocol and shown as its event.
    /// Returns what was lent, for the caller to give back to the protocol.
    pub(super) fn deliver(&self, id: ConnId, d: P::Delivery) -> Option<P::Lent> {
        self.lend_and_run(
            id,
            |inner, recv| {
                let Inner { conns, shared, .. } = inner;
                Some(conns.get_mut(&id)?.proto.lend(d, recv, shared))
            },
            proto_event::<P>,
        )
    }

    /// Takes the receive buffer out of the connection, makes what the handler is lent
    /// from it (`lend`), and runs the handler with `event` of that. The caller gets
    /// the lent value back, puts the buffer back into the connection and clears
    /// `Flags::LENT`; until then the connection's receive buffer is an empty stand-in
    /// and nothing reads it.
    fn lend_and_run<L>(&self, id: ConnId, lend: impl FnOnce(&mut Inner<P>, RecvBuf) -> Option<L>, event: for<'l> fn(&'l L) -> Event<'l, P>) -> Option<L> {
        let lent = {
            let mut guard = self.inner.borrow_mut();
            let inner = &mut *guard;
            let c = inner.conns.get_mut(&id)?;
            if c.flags.has(Flags::CLOSE_DELIVERED) {
                return None;
            }
            c.flags.set(Flags::LENT);
            let recv = std::mem::take(&mut c.recv);
            lend(inner, recv)?
        };
        self.run_handler(id, &event(&lent));
        Some(lent)
    }
}

/// A receive buffer back in its connection: its memory goes to the pool if it is
/// empty, and what it holds is dropped if the connection is closing.
pub(super) fn settle_recv<P: Stack>(c: &mut Conn<P>, pool: &mut BufPool) {
    if c.phase == Phase::Closed || c.flags.has(Flags::CLOSE_NOW) {
        c.recv.clear(pool);
    } else {
        c.recv.release_if_empty(pool);
    }
}

fn read_event<P: Stack>(recv: &RecvBuf) -> Event<'_, P> {
    Event::Read(recv.data())
}

fn proto_event<P: Stack>(lent: &P::Lent) -> Event<'_, P> {
    Event::Proto(P::event(lent))
}
