//! The work list: connections with something to do after the handler that asked for
//! it has returned (a flush, more input to parse, a close). Each connection is on it
//! at most once, however many things it has to do.

use super::conn::{Conn, Flags, Phase};
use super::{Inner, Reactor};
use crate::proto::{ConnId, Stack};

impl<P: Stack> Reactor<P> {
    pub(super) fn run_work(&self) {
        // A few rounds: work done may create more (a DRAIN handler sends again), but a
        // handler that always does must not stall the loop.
        for _ in 0..4 {
            let mut batch = {
                let mut inner = self.inner.borrow_mut();
                if inner.work.is_empty() {
                    return;
                }
                let spare = std::mem::take(&mut inner.work_spare);
                std::mem::replace(&mut inner.work, spare)
            };
            for id in batch.drain(..) {
                self.work_one(id);
            }
            self.inner.borrow_mut().work_spare = batch;
        }
    }

    fn work_one(&self, id: ConnId) {
        let (flags, phase, listener) = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            c.flags.clear(Flags::IN_WORK);
            (c.flags, c.phase, c.is_listener())
        };
        if flags.has(Flags::CLOSE_DELIVERED) {
            return;
        }
        if flags.has(Flags::CLOSE_NOW) {
            self.finalize(id);
            return;
        }
        if !flags.has(Flags::OPENED) {
            self.ensure_open(id);
        }
        if listener {
            if flags.has(Flags::READ_MORE) {
                let _ = self.with_conn_mut(id, |c| c.flags.clear(Flags::READ_MORE));
                self.accept_ready(id);
            }
            return;
        }
        if flags.has(Flags::DIRTY) || phase == Phase::Draining {
            self.flush_conn(id);
        }
        if flags.has(Flags::READ_MORE) {
            self.read_ready(id);
        }
        if flags.has(Flags::INPUT) {
            let _ = self.with_conn_mut(id, |c| c.flags.clear(Flags::INPUT));
            self.drive_input(id);
        }
    }
}

impl<P: Stack> Inner<P> {
    /// Sets `flag` on the connection and puts it on the work list (once).
    pub(super) fn schedule(&mut self, id: ConnId, flag: u16) {
        if let Some(c) = self.conns.get_mut(&id) {
            schedule_conn(&mut self.work, c, id, flag);
        }
    }
}

/// `Inner::schedule` for a caller that holds the connection already.
pub(super) fn schedule_conn<P: Stack>(work: &mut Vec<ConnId>, c: &mut Conn<P>, id: ConnId, flag: u16) {
    c.flags.set(flag);
    if !c.flags.has(Flags::IN_WORK) {
        c.flags.set(Flags::IN_WORK);
        work.push(id);
    }
}
