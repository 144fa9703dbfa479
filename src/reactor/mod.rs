//! The reactor: one mio `Poll` per manager, driven by `Reactor::poll` on the loop
//! thread, generic over the list of protocols it runs (`crate::stack::AnyProto`) so
//! that it names none of them.
//!
//! Everything a handler can touch lives in one `RefCell<Inner>` that is never borrowed
//! while a handler runs, so handlers may call back into the manager freely (send,
//! close, connect, look up) and a misuse is a caught error, never UB. Effects requested
//! from inside handlers (writes, closes) are queued on a work list and carried out
//! after the handler returns: one write per connection per loop turn however many
//! sends the handler made.
//!
//! Where things are: `io` (socket readiness: accept, read, flush, connect), `drive`
//! (stepping a protocol and applying what it asks), `deliver` (the one place a handler
//! runs), `lifecycle` (how connections end), `open` (listening, connecting, names),
//! `queue` (the embedder's raw output and input), `work` (the work list), `timers`,
//! `remote` (other threads), `shutdown` (the graceful one), `event` (what handlers
//! see), `conn` (the record).

mod conn;
mod deliver;
mod drive;
mod event;
mod ids;
mod io;
mod lifecycle;
mod open;
mod queue;
pub mod remote;
mod shutdown;
#[cfg(test)]
mod test_proto;
mod timers;
mod work;

pub use conn::Phase;
#[cfg(test)]
pub(crate) use conn::Conn as ConnRecordOf;
pub use event::{Event, Handler};
pub use remote::{Msg, Remote};
pub use timers::TimerFn;

use crate::buf::pool::BufPool;
use crate::error::{Error, Result};
use crate::net::resolver::Resolver;
use crate::options::{Opt, Options};
use crate::proto::{ConnId, Stack};
use crate::transport::Security;
use conn::Conn;
use ids::IdMap;
use mio::{Events, Poll, Token, Waker};
use remote::Hub;
use std::cell::{Cell, OnceCell, RefCell};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::Timers;

const WAKER: Token = Token(usize::MAX);

/// Readiness of one socket, copied out of mio's events so no borrow is held while
/// handlers run.
#[derive(Clone, Copy)]
struct Ready {
    token: Token,
    readable: bool,
    writable: bool,
    error: bool,
    hup: bool,
}

pub(crate) struct Inner<P: Stack> {
    poll: Poll,
    events: Events,
    ready: Vec<Ready>,
    conns: IdMap<Conn<P>>,
    next_id: ConnId,
    opts: Options,
    pool: BufPool,
    timers: Timers<P>,
    /// The protocols' per-manager state (caches, registries, scratch).
    shared: P::Shared,
    /// Connections with something to do after the current handler returns.
    work: Vec<ConnId>,
    work_spare: Vec<ConnId>,
    waker: Arc<Waker>,
    resolver: Resolver,
    /// Addresses still to try, per outgoing connection not connected yet.
    connecting: IdMap<Vec<SocketAddr>>,
    /// How the streams of TLS listeners and of outgoing TLS connections not
    /// connected yet are wrapped (absent: plain).
    security: IdMap<Security>,
    /// Accepted connections alive (the ones MAX_CONNS bounds).
    accepted: usize,
    /// During a READ handler: bytes it may still consume.
    read_left: usize,
    /// Protocol switches asked for while the connection's buffers were lent; carried
    /// out when they come back.
    switches: Vec<(ConnId, P)>,
    /// The recipients of a fan-out, reused (no allocation per publish).
    fanout_ids: Vec<ConnId>,
    /// A graceful shutdown began; everything left is closed hard at this instant.
    shutdown_at: Option<Instant>,
}

/// An event loop and every connection on it. Single-threaded: it belongs to the
/// thread that polls it; other threads use a [`Remote`].
pub struct Reactor<P: Stack> {
    inner: RefCell<Inner<P>>,
    /// Created on the first `remote()`, with the MAX_POSTED in force then.
    hub: OnceCell<Hub<P>>,
    polling: Cell<bool>,
    freeing: Cell<bool>,
    /// A graceful shutdown began (`Inner::shutdown_at` says until when): read without
    /// a borrow on every turn of the loop.
    shutting: Cell<bool>,
    /// A graceful shutdown finished: nothing is left, `poll` refuses.
    done: Cell<bool>,
    /// The connection whose ERROR is being delivered, its code and OS error number.
    delivering: Cell<Option<(ConnId, Error, i32)>>,
    handled: Cell<usize>,
}

/// Resets the re-entrancy flag even if a handler panics.
struct PollGuard<'a>(&'a Cell<bool>);

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl<P: Stack> Reactor<P> {
    pub fn new() -> Result<Reactor<P>> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let wake = waker.clone();
        let resolver = Resolver::new(Arc::new(move || {
            let _ = wake.wake();
        }));
        Ok(Reactor {
            inner: RefCell::new(Inner {
                poll,
                events: Events::with_capacity(1024),
                ready: Vec::with_capacity(1024),
                conns: IdMap::default(),
                next_id: 0,
                opts: Options::default(),
                pool: BufPool::default(),
                timers: Timers::default(),
                shared: P::Shared::default(),
                work: Vec::new(),
                work_spare: Vec::new(),
                waker,
                resolver,
                connecting: IdMap::default(),
                security: IdMap::default(),
                accepted: 0,
                read_left: 0,
                switches: Vec::new(),
                fanout_ids: Vec::new(),
                shutdown_at: None,
            }),
            hub: OnceCell::new(),
            polling: Cell::new(false),
            freeing: Cell::new(false),
            shutting: Cell::new(false),
            done: Cell::new(false),
            delivering: Cell::new(None),
            handled: Cell::new(0),
        })
    }

    /// Sets an option. MAX_POSTED sizes the remote channel, so it can only change
    /// before the first `remote()` (`Protocol` after).
    pub fn set_option(&self, opt: Opt, value: i64) -> Result<()> {
        if opt == Opt::MaxPosted && self.hub.get().is_some() {
            return Err(Error::Protocol);
        }
        self.inner.borrow_mut().opts.set(opt, value)
    }

    /// A copy of the options in force.
    pub fn options(&self) -> Options {
        self.inner.borrow().opts.clone()
    }

    /// Runs `f` with the options and the protocols' shared state (for protocol calls
    /// that concern no one connection, e.g. a lookup in a cache).
    pub fn with_shared<R>(&self, f: impl FnOnce(&Options, &mut P::Shared) -> R) -> R {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        f(&inner.opts, &mut inner.shared)
    }

    /// Whether `poll` is running (a handler is on the stack).
    pub fn is_polling(&self) -> bool {
        self.polling.get()
    }

    /// One loop iteration: waits up to `timeout` (forever if `None`) for I/O, then runs
    /// handlers, posted messages and due timers. Returns how many callbacks ran.
    /// From inside a handler it fails with `Protocol` instead of re-entering. After a
    /// graceful shutdown (`begin_shutdown`), the turn in which the last connection
    /// is gone, and every call after it, return `Closed`.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize> {
        if self.polling.get() || self.freeing.get() {
            return Err(Error::Protocol);
        }
        if self.done.get() {
            return Err(Error::Closed);
        }
        self.polling.set(true);
        let _guard = PollGuard(&self.polling);
        self.handled.set(0);

        self.run_work();
        let timeout = self.effective_timeout(timeout);
        let mut ready = self.wait(timeout)?;
        for r in ready.drain(..) {
            self.on_ready(r);
        }
        self.inner.borrow_mut().ready = ready;
        self.run_work();
        self.drain_remote();
        self.drain_resolver();
        self.run_timers();
        self.run_work();
        if self.shutting.get() && self.shutdown_turn() {
            return Err(Error::Closed);
        }
        Ok(self.handled.get())
    }

    fn effective_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        let timeout = if self.shutting.get() { self.shutdown_timeout(timeout) } else { timeout };
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        if !inner.work.is_empty() || self.hub.get().is_some_and(Hub::has_pending) {
            return Some(Duration::ZERO);
        }
        match inner.next_timer() {
            Some(at) => {
                let until = at.saturating_duration_since(Instant::now());
                Some(timeout.map_or(until, |t| t.min(until)))
            }
            None => timeout,
        }
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<Vec<Ready>> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let mut ready = std::mem::take(&mut inner.ready);
        match inner.poll.poll(&mut inner.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                inner.ready = ready;
                return Err(e.into());
            }
        }
        for ev in inner.events.iter() {
            ready.push(Ready {
                token: ev.token(),
                readable: ev.is_readable() || ev.is_read_closed(),
                writable: ev.is_writable() || ev.is_write_closed(),
                error: ev.is_error(),
                hup: ev.is_read_closed() || ev.is_error(),
            });
        }
        Ok(ready)
    }

    /// Counts one callback run (what `poll` returns).
    fn count_callback(&self) {
        self.handled.set(self.handled.get() + 1);
    }

    // ---- what the embedder may ask about a connection --------------------------

    pub fn user(&self, id: ConnId) -> Option<usize> {
        self.with_conn(id, |c| c.user).ok()
    }

    pub fn set_user(&self, id: ConnId, user: usize) -> Result<()> {
        self.with_conn_mut(id, |c| c.user = user)
    }

    /// The embedder's second word (the C layer keeps its handle here).
    pub fn attachment(&self, id: ConnId) -> Option<usize> {
        self.with_conn(id, |c| c.attachment).ok()
    }

    pub fn set_attachment(&self, id: ConnId, a: usize) -> Result<()> {
        self.with_conn_mut(id, |c| c.attachment = a)
    }

    pub fn local_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.with_conn(id, Conn::local_addr).ok().flatten()
    }

    pub fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.with_conn(id, Conn::peer_addr).ok().flatten()
    }

    /// Whether the connection exists (until its CLOSE handler returns).
    pub fn contains(&self, id: ConnId) -> bool {
        self.inner.borrow().conns.contains_key(&id)
    }

    /// Where the connection is in its life.
    pub fn phase(&self, id: ConnId) -> Option<Phase> {
        self.with_conn(id, |c| c.phase).ok()
    }

    /// Timers pending, connections' and user ones: what tests count to prove that
    /// nothing outlives the connection it was for.
    pub fn timer_count(&self) -> usize {
        self.inner.borrow().timers.len()
    }

    /// Connections alive, listeners included.
    pub fn conn_count(&self) -> usize {
        self.inner.borrow().conns.len()
    }

    fn with_conn<R>(&self, id: ConnId, f: impl FnOnce(&Conn<P>) -> R) -> Result<R> {
        self.inner.borrow().conns.get(&id).map(f).ok_or(Error::Closed)
    }

    fn with_conn_mut<R>(&self, id: ConnId, f: impl FnOnce(&mut Conn<P>) -> R) -> Result<R> {
        self.inner.borrow_mut().conns.get_mut(&id).map(f).ok_or(Error::Closed)
    }

    fn check_alive(&self) -> Result<()> {
        if self.freeing.get() || self.done.get() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Whether new connections may be made: not once a shutdown began.
    fn check_may_open(&self) -> Result<()> {
        self.check_alive()?;
        if self.shutting.get() {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

impl<P: Stack> Inner<P> {
    fn alloc_id(&mut self) -> ConnId {
        self.next_id += 1;
        self.next_id
    }
}

impl<P: Stack> Drop for Reactor<P> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
