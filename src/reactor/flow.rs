//! Input flow control: holding a connection's input. While held, the reactor reads
//! nothing from the socket and steps the protocol on no input, so nothing is
//! delivered and the peer's sending stops at TCP's window: how a proxy keeps a fast
//! sender from outrunning a slow receiver in bounded memory. Output, timers and
//! closes go on as usual. Released, the connection reads again and looks at what it
//! already holds.

use super::conn::Flags;
use super::Reactor;
use crate::error::{Error, Result};
use crate::proto::{ConnId, Stack};

impl<P: Stack> Reactor<P> {
    /// Holds (`held`) or releases connection `id`'s input. A connection on hold
    /// notices its peer's EOF or reset only once released (a write still fails at
    /// once). `Closed` if the connection is gone.
    pub fn hold_input(&self, id: ConnId, held: bool) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        let c = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        if held {
            c.flags.set(Flags::HELD);
        } else if c.flags.has(Flags::HELD) {
            c.flags.clear(Flags::HELD);
            // The receive buffer may hold what was read before, and the protocol a
            // step it left for later; an edge that passed while held left READ_MORE
            // set (`read_ready`), so the kernel's input is read only if some came.
            inner.schedule(id, Flags::INPUT);
        }
        Ok(())
    }

    /// Whether connection `id`'s input is held (false once it is gone).
    pub fn input_held(&self, id: ConnId) -> bool {
        self.with_conn(id, |c| c.flags.has(Flags::HELD)).unwrap_or(false)
    }
}
