//! The reactor: one mio `Poll` per manager, driven by `Manager::poll` on the loop
//! thread. Everything a handler can touch lives in one `RefCell<Inner>` that is never
//! borrowed while a handler runs, so handlers may call back into the manager freely
//! (send, close, connect, look up) and a misuse is a caught error, never UB.
//!
//! Effects requested from inside handlers (writes, closes) are queued on a work list
//! and carried out after the handler returns: one `sendmsg` per connection per loop
//! turn however many sends the handler made.

mod event;
mod ids;
mod io;
mod lifecycle;
pub mod remote;
mod timers;

pub use event::{Event, Handler};
pub use remote::{Msg, Remote};
pub use timers::TimerFn;
pub(crate) use timers::TimerAction;

use crate::bytes::Bytes;
use crate::conn::pool::BufPool;
use crate::conn::{Conn, ConnId, Flags, Phase, Sock};
use crate::error::{Error, Result};
use crate::net::resolver::Resolver;
use crate::net::url::{Target, Url};
use crate::options::{Opt, Options};
use ids::IdMap;
use mio::{Events, Interest, Poll, Token, Waker};
use remote::Hub;
use std::cell::{Cell, OnceCell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::{Timers, UserTimer};
use crate::http::date::DateCache;
use crate::http::defer::DeferRegistry;
use crate::http::parse::Head;

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

pub(crate) struct Inner {
    poll: Poll,
    events: Events,
    ready: Vec<Ready>,
    pub(crate) conns: IdMap<Conn>,
    next_id: ConnId,
    pub(crate) opts: Options,
    pub(crate) pool: BufPool,
    pub(crate) timers: Timers,
    /// Scratch for the request head being delivered (one at a time on the loop).
    pub(crate) http_head: Head,
    pub(crate) date: DateCache,
    /// Resolved static files (`http_serve_dir` / `http_serve_file`).
    pub(crate) files: crate::http::file_cache::FileCache,
    /// Connections with something to do after the current handler returns.
    work: Vec<ConnId>,
    work_spare: Vec<ConnId>,
    waker: Arc<Waker>,
    resolver: Resolver,
    /// Accepted connections alive (the ones MAX_CONNS bounds).
    accepted: usize,
}

/// An event loop and every connection on it. Single-threaded: it belongs to the
/// thread that polls it; other threads use a [`Remote`].
pub struct Manager {
    pub(crate) inner: RefCell<Inner>,
    /// Deferred HTTP requests that may still be answered, shared with remotes.
    defer: Arc<DeferRegistry>,
    /// Created on the first `remote()`, with the MAX_POSTED in force then.
    hub: OnceCell<Hub>,
    polling: Cell<bool>,
    freeing: Cell<bool>,
    handled: Cell<usize>,
}

/// Resets the re-entrancy flag even if a handler panics.
struct PollGuard<'a>(&'a Cell<bool>);

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl Manager {
    pub fn new() -> Result<Manager> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let wake = waker.clone();
        let resolver = Resolver::new(Arc::new(move || {
            let _ = wake.wake();
        }));
        Ok(Manager {
            inner: RefCell::new(Inner {
                poll,
                events: Events::with_capacity(1024),
                ready: Vec::with_capacity(1024),
                conns: IdMap::default(),
                next_id: 0,
                opts: Options::default(),
                pool: BufPool::default(),
                timers: Timers::default(),
                http_head: Head::default(),
                date: DateCache::new(),
                files: Default::default(),
                work: Vec::new(),
                work_spare: Vec::new(),
                waker,
                resolver,
                accepted: 0,
            }),
            defer: Arc::default(),
            hub: OnceCell::new(),
            polling: Cell::new(false),
            freeing: Cell::new(false),
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

    /// Whether `poll` is running (a handler is on the stack).
    pub fn is_polling(&self) -> bool {
        self.polling.get()
    }

    /// One loop iteration: waits up to `timeout` (forever if `None`) for I/O, then runs
    /// handlers, posted messages and due timers. Returns how many callbacks ran.
    /// From inside a handler it fails with `Protocol` instead of re-entering.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize> {
        if self.polling.get() || self.freeing.get() {
            return Err(Error::Protocol);
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
        Ok(self.handled.get())
    }

    fn effective_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        let mut inner = self.inner.borrow_mut();
        if !inner.work.is_empty() || self.hub.get().is_some_and(Hub::has_pending) {
            return Some(Duration::ZERO);
        }
        match inner.timers.next_deadline() {
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

    // ---- connections -------------------------------------------------------

    /// Listens on `tcp://ADDR:PORT` (an IP literal or "localhost"). OPEN is delivered
    /// at the next poll; accepted connections inherit `handler` and `user`.
    pub fn listen(&self, url: &str, handler: Rc<dyn Handler>, user: usize) -> Result<ConnId> {
        let u = Url::parse(url, 0)?;
        if u.scheme != "tcp" {
            return Err(Error::Invalid);
        }
        match u.target() {
            Target::Addr(a) => self.listen_addr(a, handler, user),
            Target::Name(..) => Err(Error::Invalid),
        }
    }

    /// Listens on `http://ADDR:PORT`: accepted connections speak HTTP/1.1 and their
    /// handler gets HttpMsg events instead of Read.
    pub fn http_listen(&self, url: &str, handler: Rc<dyn Handler>, user: usize) -> Result<ConnId> {
        let u = Url::parse(url, 80)?;
        if u.scheme != "http" {
            return Err(Error::Invalid);
        }
        let Target::Addr(a) = u.target() else { return Err(Error::Invalid) };
        let id = self.listen_addr(a, handler, user)?;
        self.with_conn_mut(id, |c| c.proto = crate::conn::Proto::HttpListener)?;
        Ok(id)
    }

    pub fn listen_addr(&self, addr: SocketAddr, handler: Rc<dyn Handler>, user: usize) -> Result<ConnId> {
        self.check_alive()?;
        let mut listener = mio::net::TcpListener::bind(addr).map_err(|e| {
            crate::tern_log!(crate::log::Level::Error, "listen on {addr}: {e}");
            Error::from(e)
        })?;
        if let Err(e) = crate::net::socket::raise_backlog(&listener) {
            crate::tern_log!(crate::log::Level::Warn, "listen backlog on {addr}: {e}");
        }
        let mut inner = self.inner.borrow_mut();
        let id = inner.alloc_id();
        inner.poll.registry().register(&mut listener, Token(id as usize), Interest::READABLE)?;
        inner.conns.insert(id, Conn::new(id, Sock::Listener(listener), Phase::Open, handler, user));
        inner.schedule(id, 0);
        Ok(id)
    }

    /// Connects to `tcp://HOST:PORT`. Names are resolved on a helper thread; the
    /// attempt is bounded by CONNECT_TIMEOUT_MS. Events: OPEN, then CONNECT, or ERROR
    /// and CLOSE. Data sent before CONNECT is queued.
    pub fn connect(&self, url: &str, handler: Rc<dyn Handler>, user: usize) -> Result<ConnId> {
        let u = Url::parse(url, 0)?;
        if u.scheme != "tcp" {
            return Err(Error::Invalid);
        }
        self.connect_target(u.target(), handler, user)
    }

    pub fn connect_target(&self, target: Target, handler: Rc<dyn Handler>, user: usize) -> Result<ConnId> {
        self.check_alive()?;
        let id = {
            let mut inner = self.inner.borrow_mut();
            let id = inner.alloc_id();
            let mut conn = Conn::new(id, Sock::None, Phase::Connecting, handler, user);
            let deadline = Instant::now() + Duration::from_millis(inner.opts.connect_timeout_ms);
            conn.timer = inner.timers.add(deadline, TimerAction::ConnectTimeout(id));
            if let Target::Addr(a) = target {
                conn.addrs.push(a);
            }
            inner.conns.insert(id, conn);
            inner.schedule(id, 0);
            id
        };
        match target {
            Target::Addr(_) => self.try_next_addr(id, None),
            Target::Name(host, port) => {
                let r = self.inner.borrow_mut().resolver.resolve(id, host, port);
                if let Err(e) = r {
                    self.fail(id, format!("resolver: {e}"));
                }
            }
        }
        Ok(id)
    }

    /// Queues a copy of `data`.
    pub fn send(&self, id: ConnId, data: &[u8]) -> Result<()> {
        self.enqueue(id, data.len(), |q, pool| q.push_copy(data, pool))
    }

    /// Queues `b` by reference; it is released once written or discarded.
    pub fn send_bytes(&self, id: ConnId, b: Bytes) -> Result<()> {
        let len = b.len();
        let mut slot = Some(b);
        let r = self.enqueue(id, len, |q, _| q.push_bytes(slot.take().expect("called once")));
        drop(slot);
        r
    }

    /// Queues `len` bytes of `file` from `offset`, written with `sendfile` (never
    /// read into memory, so not counted against MAX_SEND_QUEUE). The file stays open
    /// until they are written or the connection ends.
    pub fn send_file(&self, id: ConnId, file: Arc<std::fs::File>, offset: u64, len: usize) -> Result<()> {
        let seg = crate::conn::send_queue::FileSeg { file, offset, len };
        self.enqueue(id, 0, |q, _| q.push_file(seg))
    }

    /// Checks the memory limit against `len` more bytes, then runs `push`.
    fn enqueue(&self, id: ConnId, len: usize, push: impl FnOnce(&mut crate::conn::send_queue::SendQueue, &mut BufPool)) -> Result<()> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let max = inner.opts.max_send_queue;
        let conn = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        if !conn.accepts_output() {
            return Err(if conn.is_listener() { Error::Protocol } else { Error::Closed });
        }
        if conn.sendq.memory_queued().saturating_add(len) > max {
            let msg = format!("send queue limit exceeded ({} bytes queued, limit {max})", conn.sendq.memory_queued());
            crate::tern_log!(crate::log::Level::Warn, "connection {id}: {msg}");
            drop(guard);
            self.fail(id, msg);
            return Err(Error::Full);
        }
        push(&mut conn.sendq, &mut inner.pool);
        if !conn.sendq.is_empty() {
            inner.schedule(id, Flags::DIRTY);
        }
        Ok(())
    }

    /// Queues `b` as one WebSocket message. No connection speaks WebSocket until the
    /// ws layer exists, so this refuses (releasing `b`) for every connection.
    pub fn ws_send_bytes(&self, id: ConnId, _op: u8, b: Bytes) -> Result<()> {
        drop(b);
        self.with_conn(id, |_| ())?;
        Err(Error::Protocol)
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self, id: ConnId) -> Result<usize> {
        self.with_conn(id, |c| c.sendq.queued())
    }

    /// Drops the first `n` received bytes (all if fewer are buffered).
    pub fn consume(&self, id: ConnId, n: usize) -> Result<()> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let conn = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        // More than was received is a caller bug; consuming none of it is safer than
        // silently dropping bytes that arrive later.
        if conn.flags.has(Flags::LENT) {
            // The buffer is with the handler; `lent_left` counts what it may still drop.
            conn.lent_left = conn.lent_left.checked_sub(n).ok_or(Error::Invalid)?;
            return Ok(());
        }
        if n > conn.recv.len() {
            return Err(Error::Invalid);
        }
        conn.recv.consume(n);
        conn.recv.release_if_empty(&mut inner.pool);
        if conn.flags.has(Flags::READ_PAUSED) {
            conn.flags.clear(Flags::READ_PAUSED);
            inner.schedule(id, Flags::READ_MORE);
        }
        Ok(())
    }

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

    /// Connections alive, listeners included.
    /// Timers pending, the manager's own included: what tests count to prove that
    /// nothing outlives the connection it was for.
    pub fn timer_count(&self) -> usize {
        self.inner.borrow().timers.len()
    }

    pub fn conn_count(&self) -> usize {
        self.inner.borrow().conns.len()
    }

    pub(crate) fn with_conn<R>(&self, id: ConnId, f: impl FnOnce(&Conn) -> R) -> Result<R> {
        self.inner.borrow().conns.get(&id).map(f).ok_or(Error::Closed)
    }

    pub(crate) fn with_conn_mut<R>(&self, id: ConnId, f: impl FnOnce(&mut Conn) -> R) -> Result<R> {
        self.inner.borrow_mut().conns.get_mut(&id).map(f).ok_or(Error::Closed)
    }

    fn check_alive(&self) -> Result<()> {
        if self.freeing.get() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    // ---- timers ------------------------------------------------------------

    /// Runs `callback` after `delay` (at the next poll with `run_now`), every `delay`
    /// if `repeat`. Returns the timer id (never 0).
    pub fn timer_add(&self, delay: Duration, repeat: bool, run_now: bool, callback: TimerFn) -> Result<u64> {
        self.check_alive()?;
        let now = Instant::now();
        let at = if run_now { now } else { now + delay };
        let period = repeat.then_some(delay);
        Ok(self.inner.borrow_mut().timers.add(at, TimerAction::User(UserTimer { period, callback })))
    }

    /// Cancels a timer; `Closed` if it is unknown or already done.
    pub fn timer_cancel(&self, id: u64) -> Result<()> {
        if self.inner.borrow_mut().timers.cancel(id) {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    fn run_timers(&self) {
        let now = Instant::now();
        loop {
            let due = self.inner.borrow_mut().timers.pop_due(now);
            let Some((tid, at, action)) = due else { return };
            match action {
                TimerAction::User(mut t) => {
                    self.inner.borrow_mut().timers.start_running(tid);
                    self.handled.set(self.handled.get() + 1);
                    (t.callback)(self);
                    self.inner.borrow_mut().timers.finish_running(tid, at, t, now);
                }
                TimerAction::ConnectTimeout(id) => self.on_owned_timer(id, tid, |phase| {
                    (phase == Phase::Connecting).then(|| "connect timed out".to_string())
                }),
                TimerAction::CloseDeadline(id) => self.on_owned_timer(id, tid, |phase| match phase {
                    Phase::Draining => Some("close timed out with data unsent".to_string()),
                    _ => None,
                }),
                TimerAction::AcceptRetry(id) => self.accept_ready(id),
                TimerAction::Proto(id) => {
                    if self.with_conn(id, |c| matches!(c.proto, crate::conn::Proto::HttpClient(_))).unwrap_or(false) {
                        self.http_client_on_timer(id, tid);
                    } else {
                        self.http_on_timer(id, tid);
                    }
                }
            }
        }
    }

    /// A connection's own timer fired: close it, with the error `why` gives, if the
    /// timer is still the one the connection is waiting on.
    fn on_owned_timer(&self, id: ConnId, tid: u64, why: impl FnOnce(Phase) -> Option<String>) {
        let phase = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            if c.timer != tid {
                return;
            }
            c.timer = 0;
            c.phase
        };
        match why(phase) {
            Some(msg) => self.fail(id, msg),
            None => self.close_now(id).unwrap_or(()),
        }
    }

    // ---- other threads -----------------------------------------------------

    /// A handle for other threads.
    pub fn remote(&self) -> Result<Remote> {
        self.check_alive()?;
        let hub = self.hub.get_or_init(|| {
            let inner = self.inner.borrow();
            Hub::new(inner.opts.max_posted, inner.waker.clone(), self.defer.clone())
        });
        Ok(hub.remote())
    }

    fn drain_remote(&self) {
        let Some(hub) = self.hub.get() else { return };
        hub.arm();
        // Bounded so a flood from workers cannot starve the sockets.
        let budget = self.inner.borrow().opts.max_posted;
        for _ in 0..budget {
            let Some(msg) = hub.try_recv() else { return };
            self.handle_msg(msg);
        }
    }

    fn handle_msg(&self, msg: Msg) {
        match msg {
            Msg::Send(id, b) => {
                let _ = self.send_bytes(id, b);
            }
            Msg::WsSend(id, op, b) => {
                let _ = self.ws_send_bytes(id, op, b);
            }
            Msg::Close(id) => {
                let _ = self.close(id);
            }
            Msg::Wakeup(id, b) => {
                let data = b.as_ref().map_or(&[][..], Bytes::as_slice);
                self.emit(id, &Event::Wakeup(data));
            }
            Msg::Call(f) => {
                self.handled.set(self.handled.get() + 1);
                f(self);
            }
            Msg::Http(a) => self.http_on_respond(a.token, a.step, a.status, &a.headers, a.body),
        }
    }

    fn drain_resolver(&self) {
        loop {
            let r = self.inner.borrow().resolver.try_recv();
            let Some(r) = r else { return };
            match r.result {
                Ok(addrs) if !addrs.is_empty() => {
                    let known = self.with_conn_mut(r.id, |c| {
                        if c.phase == Phase::Connecting {
                            c.addrs = addrs.into_iter().rev().collect();
                        }
                    });
                    if known.is_ok() {
                        self.try_next_addr(r.id, None);
                    }
                }
                Ok(_) => self.fail(r.id, "name resolved to no address".to_string()),
                Err(e) => self.fail(r.id, format!("resolve: {e}")),
            }
        }
    }

    // ---- delivering events ---------------------------------------------------

    /// Delivers `ev` unless the connection is gone or already closed. OPEN goes first
    /// if it has not been delivered yet.
    fn emit(&self, id: ConnId, ev: &Event<'_>) {
        let closed = self.inner.borrow().conns.get(&id).is_none_or(|c| c.flags.has(Flags::CLOSE_DELIVERED));
        if !closed {
            self.call_raw(id, ev);
        }
    }

    pub(crate) fn call_raw(&self, id: ConnId, ev: &Event<'_>) {
        let (handler, need_open) = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            let need_open = !c.flags.has(Flags::OPENED);
            c.flags.set(Flags::OPENED);
            (c.handler.clone(), need_open)
        };
        if need_open {
            self.handled.set(self.handled.get() + 1);
            handler.event(self, id, &Event::Open);
        }
        self.handled.set(self.handled.get() + 1);
        handler.event(self, id, ev);
    }

    /// READ: lends the receive buffer to the handler (so it may send, consume or close
    /// meanwhile), then takes it back and applies what it consumed.
    fn deliver_read(&self, id: ConnId) {
        let buf = {
            let mut inner = self.inner.borrow_mut();
            let Some(c) = inner.conns.get_mut(&id) else { return };
            if c.flags.has(Flags::CLOSE_DELIVERED) || c.recv.is_empty() {
                return;
            }
            c.flags.set(Flags::LENT);
            c.lent_left = c.recv.len();
            std::mem::take(&mut c.recv)
        };
        self.call_raw(id, &Event::Read(buf.data()));
        let mut buf = buf;
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        match inner.conns.get_mut(&id) {
            Some(c) => {
                c.flags.clear(Flags::LENT);
                buf.consume(buf.len() - std::mem::take(&mut c.lent_left));
                c.recv = buf;
                if c.phase == Phase::Closed || c.flags.has(Flags::CLOSE_NOW) {
                    c.recv.clear(&mut inner.pool);
                } else {
                    c.recv.release_if_empty(&mut inner.pool);
                }
            }
            None => buf.clear(&mut inner.pool),
        }
    }

    // ---- the work list -----------------------------------------------------

    fn run_work(&self) {
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
                self.with_conn_mut(id, |c| c.flags.clear(Flags::READ_MORE)).ok();
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
        if flags.has(Flags::PARSE_MORE) {
            self.with_conn_mut(id, |c| c.flags.clear(Flags::PARSE_MORE)).ok();
            self.http_on_data(id);
        }
    }

    pub(crate) fn defer_registry(&self) -> &DeferRegistry {
        &self.defer
    }

    fn ensure_open(&self, id: ConnId) {
        let mut handler = None;
        if let Ok(h) = self.with_conn_mut(id, |c| {
            let first = !c.flags.has(Flags::OPENED);
            c.flags.set(Flags::OPENED);
            first.then(|| c.handler.clone())
        }) {
            handler = h;
        }
        if let Some(h) = handler {
            self.handled.set(self.handled.get() + 1);
            h.event(self, id, &Event::Open);
        }
    }
}

impl Inner {
    fn alloc_id(&mut self) -> ConnId {
        self.next_id += 1;
        self.next_id
    }

    /// Sets `flag` on the connection and puts it on the work list (once).
    pub(crate) fn schedule(&mut self, id: ConnId, flag: u16) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.flags.set(flag);
            if !c.flags.has(Flags::IN_WORK) {
                c.flags.set(Flags::IN_WORK);
                self.work.push(id);
            }
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.shutdown();
    }
}
