//! Graceful shutdown (`tern_mgr_shutdown`). Listeners close at once; every other
//! connection is asked by its protocol to end once what it is doing is done (an HTTP
//! server answers the requests it has read, a client waits for its responses, raw
//! bytes are flushed); messages posted by other threads are still handled; at the
//! deadline whatever remains is closed hard. Once nothing is left the manager is
//! done: `poll` says so (`Closed`) and remotes are refused. The hard stop
//! (`Reactor::shutdown`, `tern_mgr_free`) still works at any point.

use super::conn::{Conn, Flags, Phase};
use super::Reactor;
use crate::error::{Error, Failure, Result};
use crate::proto::{ConnId, Stack};
use std::time::{Duration, Instant};

impl<P: Stack> Reactor<P> {
    /// Begins a graceful shutdown that closes whatever is still open after
    /// `timeout`. No new listener or outgoing connection is accepted from now on.
    /// Handlers run later, in `poll`, never inside this call. A second call only
    /// brings the deadline forward. `Closed` once the manager is done or freed.
    pub fn begin_shutdown(&self, timeout: Duration) -> Result<()> {
        if self.freeing.get() || self.done.get() {
            return Err(Error::Closed);
        }
        let deadline = Instant::now() + timeout;
        self.shutting.set(true);
        let ids = {
            let mut inner = self.inner.borrow_mut();
            let first = inner.shutdown_at.is_none();
            inner.shutdown_at = Some(inner.shutdown_at.map_or(deadline, |d| d.min(deadline)));
            if !first {
                return Ok(());
            }
            let mut ids: Vec<ConnId> = inner.conns.keys().copied().collect();
            ids.sort_unstable();
            ids
        };
        for id in ids {
            if self.with_conn(id, Conn::is_listener).unwrap_or(false) {
                // Refused from now on: the socket goes now, CLOSE comes at the next turn.
                self.drop_socket(id);
                self.inner.borrow_mut().schedule(id, Flags::CLOSE_NOW);
            } else {
                let _ = self.with_proto(id, |p, cx| p.on_shutdown(cx));
            }
        }
        Ok(())
    }

    /// Whether a shutdown has begun (and the manager may not open connections).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting.get()
    }

    /// The end of a turn of the loop during a shutdown: past the deadline, whatever
    /// remains is closed hard; once nothing is left (and what was posted is
    /// handled), the manager is done. Returns whether it is.
    #[cold]
    pub(super) fn shutdown_turn(&self) -> bool {
        let Some(deadline) = self.inner.borrow().shutdown_at else { return false };
        if Instant::now() >= deadline && self.conn_count() > 0 {
            self.close_remaining();
        }
        if self.conn_count() > 0 {
            return false;
        }
        // Posted messages for connections now gone release their buffers; calls run.
        self.drain_remote();
        if self.conn_count() > 0 {
            return false;
        }
        self.done.set(true);
        if let Some(hub) = self.hub.get() {
            hub.close();
        }
        true
    }

    /// The deadline passed: what other threads posted before now still lands (and
    /// is flushed), then every connection left is closed, with ERROR unless all it
    /// was doing was waiting for the peer's FIN after its last byte.
    fn close_remaining(&self) {
        P::on_shutdown_deadline(&mut self.inner.borrow_mut().shared);
        self.drain_remote();
        self.run_work();
        let mut left: Vec<(ConnId, Phase)> = self.inner.borrow().conns.iter().map(|(id, c)| (*id, c.phase)).collect();
        left.sort_unstable_by_key(|(id, _)| *id);
        for (id, phase) in left {
            match phase {
                Phase::Lingering => {
                    let _ = self.close_now(id);
                }
                _ => self.fail(id, Failure::new(Error::TimedOut, "shutdown timed out")),
            }
        }
        self.run_work();
    }

    /// How long `poll` may wait during a shutdown: no longer than the deadline, and
    /// not at all once nothing is left to wait for.
    pub(super) fn shutdown_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        let inner = self.inner.borrow();
        let Some(deadline) = inner.shutdown_at else { return timeout };
        if inner.conns.is_empty() {
            return Some(Duration::ZERO);
        }
        let until = deadline.saturating_duration_since(Instant::now());
        Some(timeout.map_or(until, |t| t.min(until)))
    }
}
