//! Work asked of the loop for its next turn: a callback that must not run inside the
//! call that caused it (a cancelled request's completion must not run inside the
//! cancel call, whose caller may be in the middle of changing its own state). `poll`
//! runs what is queued before it returns (and does not sleep while anything is);
//! freeing the manager runs it too, so nothing queued is ever dropped unrun.

use super::Reactor;
use crate::proto::Stack;

/// A function the loop runs at its next turn.
pub type SoonFn<P> = Box<dyn FnOnce(&Reactor<P>)>;

impl<P: Stack> Reactor<P> {
    /// Runs `f` on the loop thread at the next turn of the loop (inside `poll`, or
    /// inside the manager's free), never inside this call.
    pub fn soon(&self, f: SoonFn<P>) {
        self.soon.borrow_mut().push(f);
    }

    /// Whether work waits for the next turn (then `poll` must not sleep).
    pub(super) fn soon_pending(&self) -> bool {
        !self.soon.borrow().is_empty()
    }

    /// Runs what was queued, and what that queues, a few rounds at most per turn so
    /// that work which always queues more cannot stall the loop.
    pub(super) fn run_soon(&self) {
        for _ in 0..4 {
            let batch = std::mem::take(&mut *self.soon.borrow_mut());
            if batch.is_empty() {
                return;
            }
            for f in batch {
                self.count_callback();
                f(self);
            }
        }
    }
}
