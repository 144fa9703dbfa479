//! Driving a connection's protocol: lending it a `Ctx`, carrying out the effects it
//! asked for, arming its deadline, and stepping it until it waits (delivering what it
//! asks to deliver, switching protocol when it asks to).

use super::conn::{Conn, Flags, Phase};
use super::deliver::settle_recv;
use super::timers::Timers;
use super::work::schedule_conn;
use super::{Inner, Reactor};
use crate::options::Options;
use std::time::Instant;
use crate::error::{Error, Result};
use crate::proto::{ConnId, Ctx, Effects, Protocol, Stack, Step};

type StepOf<P> = Step<<P as Protocol>::Delivery, P>;

/// Who calls into a protocol: the reactor driving it (giving back a delivery's
/// buffers, or not), or its own API from above.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Reactor,
    GiveBack,
    Above,
}

impl<P: Stack> Reactor<P> {
    /// Runs `f` on connection `id`'s protocol with a context lent for the call; then
    /// carries out the effects it asked for and arms its deadline. `Closed` if the
    /// connection is gone. This is how everything above the reactor (the protocols'
    /// own API: an HTTP answer, a WebSocket send) reaches a connection's state.
    pub fn with_proto<R>(&self, id: ConnId, f: impl FnOnce(&mut P, &mut Ctx<'_, P::Shared>) -> R) -> Result<R> {
        self.inner.borrow_mut().run_proto(id, Caller::Above, f)
    }

    /// One step the reactor drives.
    fn step(&self, id: ConnId, f: impl FnOnce(&mut P, &mut Ctx<'_, P::Shared>) -> StepOf<P>) -> Result<StepOf<P>> {
        self.inner.borrow_mut().run_proto(id, Caller::Reactor, f)
    }

    /// Runs `first` on the protocol, then keeps stepping it with `on_input` while it
    /// has something to deliver or to do. Raw bytes (READ) end the run: they are
    /// offered again only with the next input, whatever the handler left unconsumed.
    pub(super) fn drive(&self, id: ConnId, first: impl FnOnce(&mut P, &mut Ctx<'_, P::Shared>) -> StepOf<P>) {
        let mut step = self.step(id, first);
        while let Ok(s) = step {
            step = match s {
                Step::Wait => return,
                Step::Again => self.step(id, on_input),
                Step::Read => return self.deliver_read(id),
                Step::Deliver(d) => match self.deliver(id, d) {
                    Some(lent) => self.give_back(id, lent),
                    None => return,
                },
                Step::Upgrade(p) => {
                    let _ = self.switch_protocol(id, p);
                    self.step(id, on_input)
                }
            };
        }
    }

    /// Hands `msg` to every connection `Protocol::recipients` names, each with its own
    /// clone, in one borrow: no handler runs. Loop thread (remotes post it as
    /// `Msg::Fanout`).
    /// Returns how many connections it was for.
    pub fn fanout(&self, msg: P::Posted) -> usize {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let mut ids = std::mem::take(&mut inner.fanout_ids);
        P::recipients(&inner.shared, &msg, &mut ids);
        let n = ids.len();
        for id in ids.drain(..) {
            let m = msg.clone();
            let _ = inner.run_proto(id, Caller::Above, |p, cx| p.on_posted(cx, m));
        }
        inner.fanout_ids = ids;
        n
    }

    /// New input (or an earlier ask to look again).
    pub(super) fn drive_input(&self, id: ConnId) {
        self.drive(id, on_input);
    }

    /// Gives a delivery's buffers back to the protocol and takes its next step in the
    /// same call (one lend of the context instead of two), unless a switch of
    /// protocol waited for the buffers: then the new protocol takes the next step.
    fn give_back(&self, id: ConnId, lent: P::Lent) -> Result<StepOf<P>> {
        let mut inner = self.inner.borrow_mut();
        inner.returned(id);
        if !inner.switch_pending(id) {
            return inner.run_proto(id, Caller::GiveBack, |p, cx| {
                p.give_back(lent, cx);
                on_input(p, cx)
            });
        }
        inner.run_proto(id, Caller::GiveBack, |p, cx| p.give_back(lent, cx))?;
        inner.apply_switch(id);
        inner.run_proto(id, Caller::Reactor, on_input)
    }

    /// Makes connection `id` speak `next` from now on, keeping its id, handler,
    /// transport, received bytes and send queue. If its buffers are lent to a handler
    /// right now, the switch happens when they come back. The old protocol gets
    /// `on_close` to give back what it registered.
    pub fn switch_protocol(&self, id: ConnId, next: P) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        let c = inner.conns.get(&id).ok_or(Error::Closed)?;
        if c.flags.has(Flags::LENT) {
            inner.switches.push((id, next));
        } else {
            inner.switch_now(id, next);
        }
        Ok(())
    }
}

impl<P: Stack> Inner<P> {
    /// Lends connection `id`'s protocol a context for `f`, then carries out the
    /// effects it asked for and arms its deadline (after a call from above, only if
    /// the call moved it).
    fn run_proto<R>(&mut self, id: ConnId, caller: Caller, f: impl FnOnce(&mut P, &mut Ctx<'_, P::Shared>) -> R) -> Result<R> {
        let mut fx = Effects::default();
        let Inner { conns, pool, opts, shared, work, timers, .. } = self;
        let c = conns.get_mut(&id).ok_or(Error::Closed)?;
        let r = {
            let open = c.is_live();
            let connecting = c.phase == Phase::Connecting && !c.flags.has(Flags::CLOSE_NOW);
            let Conn { recv, sendq, proto, .. } = &mut *c;
            let mut cx = Ctx::new(id, recv, sendq, pool, opts, shared, open, connecting, &mut fx);
            f(proto, &mut cx)
        };
        // The common effects are carried out on the connection at hand; closing and
        // failing, which are rare, go through the manager.
        if caller == Caller::GiveBack {
            settle_recv(c, pool);
        }
        if let Some(e) = fx.take_error() {
            c.close_error.get_or_insert(e);
        }
        let fail = fx.take_fail();
        if fail.is_none() {
            apply(c, work, id, &fx);
            if caller != Caller::Above || fx.deadline_moved() {
                arm_deadline(c, timers, opts, id);
            }
        }
        match fail {
            Some(why) => self.fail_locked(id, *why),
            None if fx.close() => self.close_locked(id),
            None => {}
        }
        self.compact_timers();
        Ok(r)
    }

    fn switch_now(&mut self, id: ConnId, next: P) {
        let Inner { conns, shared, .. } = self;
        let Some(c) = conns.get_mut(&id) else { return };
        let mut old = std::mem::replace(&mut c.proto, next);
        old.on_close(id, shared);
        // The new protocol looks at the bytes already received, and sets its own
        // deadline (the old one's no longer applies).
        self.set_conn_timer(id, None);
        let Inner { conns, timers, opts, work, .. } = self;
        if let Some(c) = conns.get_mut(&id) {
            arm_deadline(c, timers, opts, id);
            schedule_conn(work, c, id, Flags::INPUT);
        }
    }

    /// A delivery's buffers are coming back: the connection reads again (its receive
    /// buffer is settled once the protocol has put it back).
    fn returned(&mut self, id: ConnId) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.flags.clear(Flags::LENT);
        }
    }

    fn switch_pending(&self, id: ConnId) -> bool {
        !self.switches.is_empty() && self.switches.iter().any(|(c, _)| *c == id)
    }

    /// Carries out a switch that waited for the connection's buffers to come back.
    pub(super) fn apply_switch(&mut self, id: ConnId) {
        if self.switches.is_empty() {
            return;
        }
        if let Some(i) = self.switches.iter().position(|(c, _)| *c == id) {
            let (_, next) = self.switches.swap_remove(i);
            self.switch_now(id, next);
        }
    }
}

/// Carries out what a protocol asked for during one call (but closing and failing).
fn apply<P: Stack>(c: &mut Conn<P>, work: &mut Vec<ConnId>, id: ConnId, fx: &Effects) {
    if fx.no_linger() {
        c.flags.set(Flags::NO_LINGER);
    }
    if fx.nodelay() && !c.flags.has(Flags::NODELAY) {
        if let Some(t) = c.transport() {
            let _ = t.set_nodelay();
        }
        c.flags.set(Flags::NODELAY);
    }
    if fx.flush() {
        schedule_conn(work, c, id, Flags::DIRTY);
    }
    if fx.input() {
        schedule_conn(work, c, id, Flags::INPUT);
    }
}

/// While the connection is open, its timer follows the protocol's deadline: armed
/// only when the deadline comes sooner than the timer would fire (a timer due sooner
/// fires early, finds nothing due and is armed again), so steady traffic that keeps
/// pushing a deadline back costs no heap work. A deadline already past fires at the
/// next turn of the timers, never within the turn running now: a protocol whose
/// deadline stays in the past cannot spin it.
fn arm_deadline<P: Stack>(c: &mut Conn<P>, timers: &mut Timers<P>, opts: &Options, id: ConnId) {
    if !c.is_live() || c.is_listener() {
        return;
    }
    // A transport handshake under way bounds the wait too (its timeout).
    let handshake = c.transport().and_then(|t| t.handshake_deadline());
    let due = match (c.proto.deadline(opts), handshake) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(at) = due {
        if c.timer_at.is_none_or(|t| t > at) {
            let newly = c.timer_at.is_none();
            let at = at.max(Instant::now());
            c.timer_at = Some(at);
            timers.arm_conn(id, at, newly);
        }
    }
}

/// The next step on input, if the connection still reads.
fn on_input<P: Stack>(p: &mut P, cx: &mut Ctx<'_, P::Shared>) -> StepOf<P> {
    if cx.open {
        p.on_input(cx)
    } else {
        Step::Wait
    }
}
