//! Driving a connection's protocol: lending it a `Ctx`, carrying out the effects it
//! asked for, arming its deadline, and stepping it until it waits (delivering what it
//! asks to deliver, switching protocol when it asks to).

use super::conn::{Conn, Flags, Phase};
use super::{Inner, Reactor};
use crate::error::{Error, Result};
use crate::proto::{ConnId, Ctx, Effects, Protocol, Stack, Step};

type StepOf<P> = Step<<P as Protocol>::Delivery, P>;

impl<P: Stack> Reactor<P> {
    /// Runs `f` on connection `id`'s protocol with a context lent for the call; then
    /// carries out the effects it asked for and arms its deadline. `Closed` if the
    /// connection is gone. This is how everything above the reactor (the protocols'
    /// own API: an HTTP answer, a WebSocket send) reaches a connection's state.
    pub fn with_proto<R>(&self, id: ConnId, f: impl FnOnce(&mut P, &mut Ctx<'_, P::Shared>) -> R) -> Result<R> {
        self.inner.borrow_mut().with_proto(id, f)
    }

    /// Runs `first` on the protocol, then keeps stepping it with `on_input` while it
    /// has something to deliver or to do. Raw bytes (READ) end the run: they are
    /// offered again only with the next input, whatever the handler left unconsumed.
    pub(super) fn drive(&self, id: ConnId, first: impl FnOnce(&mut P, &mut Ctx<'_, P::Shared>) -> StepOf<P>) {
        let mut step = self.with_proto(id, first);
        while let Ok(s) = step {
            match s {
                Step::Wait => return,
                Step::Again => {}
                Step::Read => return self.deliver_read(id),
                Step::Deliver(d) => self.deliver(id, d),
                Step::Upgrade(p) => {
                    let _ = self.switch_protocol(id, p);
                }
            }
            step = self.with_proto(id, |p, cx| if cx.open { p.on_input(cx) } else { Step::Wait });
        }
    }

    /// New input (or an earlier ask to look again).
    pub(super) fn drive_input(&self, id: ConnId) {
        self.drive(id, |p, cx| if cx.open { p.on_input(cx) } else { Step::Wait });
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
    pub(super) fn with_proto<R>(&mut self, id: ConnId, f: impl FnOnce(&mut P, &mut Ctx<'_, P::Shared>) -> R) -> Result<R> {
        let mut fx = Effects::default();
        let r = {
            let Inner { conns, pool, opts, shared, .. } = self;
            let c = conns.get_mut(&id).ok_or(Error::Closed)?;
            let open = c.is_live();
            let connecting = c.phase == Phase::Connecting && !c.flags.has(Flags::CLOSE_NOW);
            let Conn { recv, sendq, proto, .. } = c;
            let mut cx = Ctx::new(id, recv, sendq, pool, opts, shared, open, connecting, &mut fx);
            f(proto, &mut cx)
        };
        self.apply(id, fx);
        self.arm_deadline(id);
        Ok(r)
    }

    /// Carries out what a protocol asked for during one call.
    fn apply(&mut self, id: ConnId, mut fx: Effects) {
        if let Some(why) = fx.take_fail() {
            self.fail_locked(id, why.into());
            return;
        }
        let Some(c) = self.conns.get_mut(&id) else { return };
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
            self.schedule(id, Flags::DIRTY);
        }
        if fx.input() {
            self.schedule(id, Flags::INPUT);
        }
        if fx.close() {
            self.close_locked(id);
        }
    }

    /// While the connection is open, its timer follows the protocol's deadline.
    fn arm_deadline(&mut self, id: ConnId) {
        let Some(c) = self.conns.get(&id) else { return };
        if !c.is_live() || c.is_listener() {
            return;
        }
        if let Some(at) = c.proto.deadline(&self.opts) {
            self.arm_conn_timer_by(id, at);
        }
    }

    fn switch_now(&mut self, id: ConnId, next: P) {
        let Inner { conns, shared, .. } = self;
        let Some(c) = conns.get_mut(&id) else { return };
        let mut old = std::mem::replace(&mut c.proto, next);
        old.on_close(id, shared);
        // The new protocol looks at the bytes already received, and sets its own
        // deadline (the old one's no longer applies).
        self.set_conn_timer(id, None);
        self.arm_deadline(id);
        self.schedule(id, Flags::INPUT);
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
