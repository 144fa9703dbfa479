//! The fetch state machine: fetches in flight, which connection each one uses, and
//! the handler of the pooled connections. Every path ends in `finish`, which takes
//! the fetch out of the table before its callback runs: Done runs exactly once.
//! Callbacks run with no borrow of the state held, so they may start, cancel or
//! write to fetches.

use super::location::Dest;
use super::pool::{Bounds, Grant, Pool};
use super::{FetchCb, FetchEvent, FetchOpts, FetchStats};
use crate::bytes::Bytes;
use crate::error::{Error, Result};
use crate::http::h1::Body;
use crate::http::msg::HttpMsg;
use crate::http::parse::Head;
use crate::proto::ConnId;
use crate::reactor::Layer;
use crate::{AnyProto, DynHandler, Event, Manager, ProtoEvent};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh fetch id, unique in the process (so that another thread can know the id
/// of a fetch it starts through a remote before the loop runs it).
pub fn next_fetch_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The fetch client's state on one manager (a reactor layer).
#[derive(Default)]
pub struct Client {
    st: RefCell<State>,
}

#[derive(Default)]
struct State {
    fetches: HashMap<u64, Fetch>,
    /// The fetch each busy pooled connection serves.
    by_conn: HashMap<ConnId, u64>,
    /// The error a pooled connection reported, for its CLOSE.
    errors: HashMap<ConnId, (Error, String)>,
    pool: Pool,
}

struct Fetch {
    method: String,
    dest: Dest,
    headers: Vec<u8>,
    body: Option<Bytes>,
    opts: FetchOpts,
    cb: FetchCb,
    conn: Option<ConnId>,
    /// The connection came from the pool (it may have died while idle).
    reused: bool,
    /// Retried once on a fresh connection already.
    retried: bool,
    /// Only a fresh connection will do (the retry).
    fresh: bool,
    got_head: bool,
    redirects: u32,
    /// The redirect being followed once this response's body is skipped.
    redirect: Option<Dest>,
    /// A whole response being collected: its head and body.
    head: Option<(Vec<u8>, Head, u16)>,
    collected: Vec<u8>,
    phase_timer: Option<u64>,
    /// The phase timer is the response timeout, counted from `active_at` (the request
    /// going out, the head, the last piece): touched per piece, checked when it fires.
    response_armed: bool,
    active_at: Instant,
    total_timer: Option<u64>,
    /// A streamed request body: pieces written before a connection was had.
    pending_body: Vec<Bytes>,
    body_ended: bool,
    paused: bool,
}

/// The client of manager `m`.
fn client(m: &Manager) -> Rc<Client> {
    m.layer(Client::default)
}

impl Layer<AnyProto> for Client {
    /// Every connection is closed by now; what still waits ends with `Closed`.
    fn on_free(&self, m: &Manager) {
        let left: Vec<u64> = {
            let mut st = self.st.borrow_mut();
            st.pool.drain_waiting();
            st.fetches.keys().copied().collect()
        };
        for id in left {
            self.finish(m, id, Err((Error::Closed, "manager freed")));
        }
    }
}

/// The handler of every pooled connection.
struct PoolHandler;

impl crate::Handler<AnyProto> for PoolHandler {
    fn event(&self, m: &Manager, id: ConnId, ev: &Event<'_>) {
        client(m).on_event(m, id, ev);
    }
}

fn idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE")
}

fn bounds(m: &Manager) -> Bounds {
    m.with_shared(|o, _| Bounds {
        conns_per_host: o.fetch_max_conns_per_host,
        idle_per_host: o.fetch_max_idle_per_host,
        idle_total: o.fetch_max_idle,
        queued_per_host: o.fetch_max_queued_per_host,
    })
}

impl Client {
    /// Starts fetch `id`. On an error nothing was started and no callback will run.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(&self, m: &Manager, id: u64, method: &str, url: &str, headers: &[u8], body: Option<Bytes>, opts: FetchOpts, cb: FetchCb) -> Result<()> {
        let dest = Dest::parse(url)?;
        crate::http::request::check(method.as_bytes(), dest.target.as_bytes(), headers)?;
        if opts.stream_body && body.is_some() {
            return Err(Error::Invalid);
        }
        let fetch = Fetch {
            method: method.to_string(),
            dest,
            headers: headers.to_vec(),
            body,
            opts,
            cb,
            conn: None,
            reused: false,
            retried: false,
            fresh: false,
            got_head: false,
            redirects: 0,
            redirect: None,
            head: None,
            collected: Vec::new(),
            phase_timer: None,
            response_armed: false,
            active_at: Instant::now(),
            total_timer: None,
            pending_body: Vec::new(),
            body_ended: false,
            paused: false,
        };
        self.st.borrow_mut().fetches.insert(id, fetch);
        if let Err(e) = self.dispatch(m, id) {
            self.forget(m, id);
            return Err(e);
        }
        if let Some(total) = opts.total_timeout {
            let t = timer(m, total, id, "fetch timed out");
            if let Some(f) = self.st.borrow_mut().fetches.get_mut(&id) {
                f.total_timer = t;
            }
        }
        Ok(())
    }

    /// Finds fetch `id` a connection: idle, new, or a place in the queue.
    fn dispatch(&self, m: &Manager, id: u64) -> Result<()> {
        let b = bounds(m);
        loop {
            let (origin, grant) = {
                let mut st = self.st.borrow_mut();
                let st = &mut *st;
                let f = st.fetches.get(&id).ok_or(Error::Closed)?;
                let origin = f.dest.origin.clone();
                let grant = st.pool.acquire(&origin, id, f.fresh, b);
                (origin, grant)
            };
            match grant {
                Grant::Idle(conn, idle_timer) => {
                    let _ = m.timer_cancel(idle_timer);
                    if m.phase(conn) != Some(crate::reactor::Phase::Open) {
                        // Closing already (the server's EOF came): its CLOSE will
                        // forget it; look again.
                        continue;
                    }
                    if self.assign(m, id, conn, true).is_err() {
                        // A pooled connection that cannot take a request is dead.
                        self.unassign(m, id, conn);
                        continue;
                    }
                    return Ok(());
                }
                Grant::Open => {
                    let handler: DynHandler = Rc::new(PoolHandler);
                    let conn = m.http_connect(&origin, handler, 0)?;
                    self.st.borrow_mut().pool.opened(&origin, conn);
                    let connect = self.st.borrow().fetches.get(&id).and_then(|f| f.opts.connect_timeout);
                    let t = connect.and_then(|d| timer(m, d, id, "connect timed out"));
                    self.set_phase_timer(m, id, t);
                    let sent = m.http_client_stream(conn).and_then(|_| self.assign(m, id, conn, false));
                    if let Err(e) = sent {
                        self.unassign(m, id, conn);
                        return Err(e);
                    }
                    return Ok(());
                }
                Grant::Queued => return Ok(()),
                Grant::Full => return Err(Error::Full),
            }
        }
    }

    /// Takes fetch `id` off connection `conn`, which is closed (its request may be
    /// half written).
    fn unassign(&self, m: &Manager, id: u64, conn: ConnId) {
        {
            let mut st = self.st.borrow_mut();
            st.by_conn.remove(&conn);
            if let Some(f) = st.fetches.get_mut(&id) {
                f.conn = None;
            }
        }
        let _ = m.close_now(conn);
    }

    /// Sends fetch `id`'s request on connection `conn`.
    fn assign(&self, m: &Manager, id: u64, conn: ConnId, reused: bool) -> Result<()> {
        let (method, target, headers, body, stream_body, pending, ended, paused, response) = {
            let mut st = self.st.borrow_mut();
            let st = &mut *st;
            let f = st.fetches.get_mut(&id).ok_or(Error::Closed)?;
            st.by_conn.insert(conn, id);
            f.conn = Some(conn);
            f.reused = reused;
            f.got_head = false;
            let pending = std::mem::take(&mut f.pending_body);
            (f.method.clone(), f.dest.target.clone(), f.headers.clone(), f.body.clone(), f.opts.stream_body, pending, f.body_ended, f.paused, f.opts.response_timeout)
        };
        if paused {
            let _ = m.hold_input(conn, true);
        }
        let (method, target) = (method.as_bytes(), target.as_bytes());
        if stream_body {
            m.http_request_begin(conn, method, target, &headers)?;
            for piece in pending {
                m.http_request_write(conn, Body::Shared(piece))?;
            }
            if ended {
                m.http_request_end(conn)?;
            }
        } else {
            let body = match body {
                Some(b) => Body::Shared(b),
                None => Body::Copy(&[]),
            };
            m.http_request(conn, method, target, &headers, body)?;
        }
        if reused && response.is_some() {
            // The request goes out now; a new connection starts this at CONNECT.
            self.arm_response(m, id);
        }
        Ok(())
    }

    fn set_phase_timer(&self, m: &Manager, id: u64, t: Option<u64>) {
        let old = match self.st.borrow_mut().fetches.get_mut(&id) {
            Some(f) => {
                f.response_armed = false;
                std::mem::replace(&mut f.phase_timer, t)
            }
            None => t,
        };
        if let Some(old) = old {
            let _ = m.timer_cancel(old);
        }
    }

    /// The callback of fetch `id`, if it is still in flight.
    fn cb(&self, id: u64) -> Option<FetchCb> {
        self.st.borrow().fetches.get(&id).map(|f| f.cb.clone())
    }

    /// Takes fetch `id` out of every table; its connection, if it had one, is closed
    /// at once (it is in the middle of a request). Returns its callback.
    fn forget(&self, m: &Manager, id: u64) -> Option<FetchCb> {
        let f = {
            let mut st = self.st.borrow_mut();
            let f = st.fetches.remove(&id)?;
            match f.conn {
                Some(conn) => {
                    st.by_conn.remove(&conn);
                }
                None => {
                    st.pool.unqueue(&f.dest.origin, id);
                }
            }
            f
        };
        for t in [f.phase_timer, f.total_timer].into_iter().flatten() {
            let _ = m.timer_cancel(t);
        }
        if let Some(conn) = f.conn {
            let _ = m.close_now(conn);
        }
        Some(f.cb)
    }

    /// Ends fetch `id` with `result` (once: a second end finds nothing).
    fn finish(&self, m: &Manager, id: u64, result: std::result::Result<&HttpMsg<'_>, (Error, &str)>) {
        if let Some(cb) = self.forget(m, id) {
            cb(m, id, FetchEvent::Done(result));
        }
    }

    /// Cancels fetch `id`: its Done (`Canceled`) runs at the next turn of the loop.
    pub(super) fn cancel(&self, m: &Manager, id: u64) -> Result<()> {
        let cb = self.forget(m, id).ok_or(Error::Closed)?;
        m.soon(Box::new(move |m| cb(m, id, FetchEvent::Done(Err((Error::Canceled, "cancelled"))))));
        Ok(())
    }

    /// Appends to fetch `id`'s streamed request body.
    pub(super) fn write(&self, m: &Manager, id: u64, piece: Bytes) -> Result<()> {
        let (conn, rearm) = {
            let mut st = self.st.borrow_mut();
            let f = st.fetches.get_mut(&id).ok_or(Error::Closed)?;
            if !f.opts.stream_body || f.body_ended {
                return Err(Error::Protocol);
            }
            match f.conn {
                Some(c) => (c, f.opts.response_timeout.is_some() && m.phase(c) == Some(crate::reactor::Phase::Open)),
                None => {
                    f.pending_body.push(piece);
                    return Ok(());
                }
            }
        };
        m.http_request_write(conn, Body::Shared(piece))?;
        if rearm {
            // The server owes nothing while the request is still coming.
            self.rearm_response(m, id);
        }
        Ok(())
    }

    /// Ends fetch `id`'s streamed request body.
    pub(super) fn end(&self, m: &Manager, id: u64) -> Result<()> {
        let conn = {
            let mut st = self.st.borrow_mut();
            let f = st.fetches.get_mut(&id).ok_or(Error::Closed)?;
            if !f.opts.stream_body || f.body_ended {
                return Err(Error::Protocol);
            }
            f.body_ended = true;
            f.conn
        };
        match conn {
            Some(c) => m.http_request_end(c),
            None => Ok(()),
        }
    }

    /// Holds or releases the input of fetch `id`'s connection (a streamed response
    /// whose reader is slower than the server).
    pub(super) fn pause(&self, m: &Manager, id: u64, held: bool) -> Result<()> {
        let conn = {
            let mut st = self.st.borrow_mut();
            let f = st.fetches.get_mut(&id).ok_or(Error::Closed)?;
            f.paused = held;
            f.conn
        };
        match conn {
            Some(c) => m.hold_input(c, held),
            None => Ok(()),
        }
    }

    /// Request body bytes of fetch `id` not yet written to the kernel.
    pub(super) fn queued(&self, m: &Manager, id: u64) -> Result<usize> {
        let st = self.st.borrow();
        let f = st.fetches.get(&id).ok_or(Error::Closed)?;
        let pending: usize = f.pending_body.iter().map(Bytes::len).sum();
        Ok(pending + f.conn.and_then(|c| m.queued(c).ok()).unwrap_or(0))
    }

    pub(super) fn stats(&self) -> FetchStats {
        let st = self.st.borrow();
        let (conns, idle) = st.pool.counts();
        FetchStats { pending: st.fetches.len(), conns, idle }
    }

    /// The fetch connection `conn` serves.
    fn fetch_of(&self, conn: ConnId) -> Option<u64> {
        self.st.borrow().by_conn.get(&conn).copied()
    }

    fn on_event(&self, m: &Manager, conn: ConnId, ev: &Event<'_>) {
        match ev {
            Event::Connect => {
                let Some(id) = self.fetch_of(conn) else { return };
                let response = self.st.borrow().fetches.get(&id).is_some_and(|f| f.opts.response_timeout.is_some());
                if response {
                    self.arm_response(m, id);
                } else {
                    self.set_phase_timer(m, id, None);
                }
            }
            Event::Error(msg) => {
                let code = m.conn_error(conn).map_or(Error::Closed, |(e, _)| e);
                self.st.borrow_mut().errors.insert(conn, (code, msg.to_string()));
            }
            Event::Proto(ProtoEvent::HttpHead(msg)) => self.on_head(m, conn, msg),
            Event::Proto(ProtoEvent::HttpBody(piece)) => self.on_body(m, conn, piece),
            Event::Proto(ProtoEvent::HttpMsg(msg)) => self.on_end(m, conn, msg),
            Event::Drain => {
                let Some(id) = self.fetch_of(conn) else { return };
                let streaming = self.st.borrow().fetches.get(&id).is_some_and(|f| f.opts.stream_body);
                if let (true, Some(cb)) = (streaming, self.cb(id)) {
                    cb(m, id, FetchEvent::Drain);
                }
            }
            Event::Close => self.on_close(m, conn),
            _ => {}
        }
    }

    fn on_head(&self, m: &Manager, conn: ConnId, msg: &HttpMsg<'_>) {
        let Some(id) = self.fetch_of(conn) else { return };
        let status = msg.status();
        let (stream, too_many) = {
            let mut st = self.st.borrow_mut();
            let Some(f) = st.fetches.get_mut(&id) else { return };
            f.got_head = true;
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308) && f.opts.follow > 0 && !f.opts.stream_body;
            let location = msg.header(b"location").and_then(|l| std::str::from_utf8(l).ok());
            let mut too_many = false;
            if let (true, Some(loc)) = (redirect, location) {
                if f.redirects >= f.opts.follow {
                    too_many = true;
                } else {
                    f.redirect = f.dest.follow(loc).ok();
                }
            }
            if f.redirect.is_none() && !f.opts.stream {
                f.head = Some((msg.head_bytes().to_vec(), msg.head.clone(), status));
            }
            (f.opts.stream && f.redirect.is_none(), too_many)
        };
        if too_many {
            return self.finish(m, id, Err((Error::Redirects, "too many redirects")));
        }
        self.rearm_response(m, id);
        if stream {
            if let Some(cb) = self.cb(id) {
                cb(m, id, FetchEvent::Head(msg));
            }
        }
    }

    /// Starts the response timeout of fetch `id` from now.
    fn arm_response(&self, m: &Manager, id: u64) {
        let Some(after) = self.st.borrow().fetches.get(&id).and_then(|f| f.opts.response_timeout) else { return };
        let t = m.timer_add(after, false, false, Box::new(move |m| client(m).response_due(m, id))).ok();
        self.set_phase_timer(m, id, t);
        if let Some(f) = self.st.borrow_mut().fetches.get_mut(&id) {
            f.response_armed = t.is_some();
            f.active_at = Instant::now();
        }
    }

    /// The response timeout runs again from now (the head or a piece came): only the
    /// time of activity is noted; the timer, when it fires, looks at it.
    fn rearm_response(&self, m: &Manager, id: u64) {
        let armed = match self.st.borrow_mut().fetches.get_mut(&id) {
            Some(f) if f.response_armed => {
                f.active_at = Instant::now();
                true
            }
            Some(_) => false,
            None => return,
        };
        if !armed {
            self.arm_response(m, id);
        }
    }

    /// The response timer of fetch `id` fired: timed out, unless there was activity
    /// since it was set (then it waits for the rest).
    fn response_due(&self, m: &Manager, id: u64) {
        let left = {
            let st = self.st.borrow();
            let Some(f) = st.fetches.get(&id) else { return };
            let Some(after) = f.opts.response_timeout else { return };
            (f.active_at + after).saturating_duration_since(Instant::now())
        };
        if left.is_zero() {
            return self.finish(m, id, Err((Error::TimedOut, "response timed out")));
        }
        let t = m.timer_add(left, false, false, Box::new(move |m| client(m).response_due(m, id))).ok();
        if let Some(f) = self.st.borrow_mut().fetches.get_mut(&id) {
            f.phase_timer = t;
        }
    }

    fn on_body(&self, m: &Manager, conn: ConnId, piece: &[u8]) {
        let Some(id) = self.fetch_of(conn) else { return };
        let (stream, too_large) = {
            let mut st = self.st.borrow_mut();
            let Some(f) = st.fetches.get_mut(&id) else { return };
            if f.redirect.is_some() {
                return;
            }
            if f.opts.stream {
                (true, false)
            } else {
                f.collected.extend_from_slice(piece);
                let max = f.opts.max_size.unwrap_or_else(|| m.with_shared(|o, _| o.max_body_bytes));
                (false, f.collected.len() > max)
            }
        };
        if too_large {
            return self.finish(m, id, Err((Error::Full, "response body larger than the fetch's max size")));
        }
        if self.st.borrow().fetches.get(&id).is_some_and(|f| f.opts.response_timeout.is_some()) {
            self.rearm_response(m, id);
        }
        if stream {
            if let Some(cb) = self.cb(id) {
                cb(m, id, FetchEvent::Body(piece));
            }
        }
    }

    fn on_end(&self, m: &Manager, conn: ConnId, msg: &HttpMsg<'_>) {
        let Some(id) = self.fetch_of(conn) else { return };
        // The connection is done with this fetch; whether it can be reused is known
        // once the protocol has seen the end (it may close after it).
        let redirect = {
            let mut st = self.st.borrow_mut();
            st.by_conn.remove(&conn);
            let Some(f) = st.fetches.get_mut(&id) else { return };
            f.conn = None;
            f.redirect.take()
        };
        let c = client(m);
        m.soon(Box::new(move |m| c.release(m, conn)));
        if let Some(next) = redirect {
            return self.redirect(m, id, next, msg.status());
        }
        let head = self.st.borrow_mut().fetches.get_mut(&id).and_then(|f| f.head.take().map(|h| (h, std::mem::take(&mut f.collected))));
        match head {
            Some(((buf, head, status), body)) => {
                let whole = HttpMsg { buf: &buf, head: &head, body: &body, seq: 0, status };
                self.finish(m, id, Ok(&whole));
            }
            None => self.finish(m, id, Ok(msg)),
        }
    }

    /// Fetch `id` follows a redirect to `next` (303, and 301/302 after a POST, become
    /// a GET without a body).
    fn redirect(&self, m: &Manager, id: u64, next: Dest, status: u16) {
        {
            let mut st = self.st.borrow_mut();
            let Some(f) = st.fetches.get_mut(&id) else { return };
            f.redirects += 1;
            if status == 303 || (matches!(status, 301 | 302) && f.method == "POST") {
                f.method = "GET".into();
                f.body = None;
            }
            if next.origin != f.dest.origin {
                // Host was the old origin's; tern writes the new one.
                f.headers = strip_host(&f.headers);
            }
            f.dest = next;
            f.head = None;
            f.collected.clear();
            f.retried = false;
            f.fresh = false;
        }
        self.set_phase_timer(m, id, None);
        if let Err(e) = self.dispatch(m, id) {
            self.finish(m, id, Err((e, "redirect could not be followed")));
        }
    }

    /// Connection `conn` finished a response: to the next fetch waiting for its
    /// origin, to the idle pool, or closed.
    fn release(&self, m: &Manager, conn: ConnId) {
        if !m.contains(conn) || self.fetch_of(conn).is_some() {
            return;
        }
        let open = m.phase(conn) == Some(crate::reactor::Phase::Open) && !m.http_request_sending(conn);
        let _ = m.hold_input(conn, false);
        if !open {
            return;
        }
        let idle = m.with_shared(|o, _| o.fetch_idle_timeout_ms);
        let granted = self.st.borrow_mut().pool.release(conn, bounds(m), || {
            m.timer_add(Duration::from_millis(idle), false, false, Box::new(move |m| client(m).idle_expired(m, conn))).ok()
        });
        match granted {
            Ok(Some(next)) => {
                if self.assign(m, next, conn, true).is_err() {
                    self.unassign(m, next, conn);
                    if let Err(e) = self.dispatch(m, next) {
                        self.finish(m, next, Err((e, "request could not be sent")));
                    }
                }
            }
            Ok(None) => {}
            Err(()) => {
                let _ = m.close(conn);
            }
        }
    }

    fn idle_expired(&self, m: &Manager, conn: ConnId) {
        if self.st.borrow().pool.is_idle(conn) {
            let _ = m.close(conn);
        }
    }

    /// A pooled connection is gone: its fetch, if it had one, is retried or ends;
    /// a fetch waiting for its origin may now open a connection.
    fn on_close(&self, m: &Manager, conn: ConnId) {
        let (err, idle_timer, next, fetch) = {
            let mut st = self.st.borrow_mut();
            let err = st.errors.remove(&conn);
            let (timer, next) = st.pool.closed(conn);
            let fetch = st.by_conn.remove(&conn);
            (err, timer, next, fetch)
        };
        if let Some(t) = idle_timer {
            let _ = m.timer_cancel(t);
        }
        if let Some(id) = fetch {
            self.lost(m, id, err);
        }
        if let Some(w) = next {
            if let Err(e) = self.dispatch(m, w) {
                self.finish(m, w, Err((e, "no connection could be opened")));
            }
        }
    }

    /// Fetch `id` lost its connection before its response was complete.
    fn lost(&self, m: &Manager, id: u64, err: Option<(Error, String)>) {
        let retry = {
            let mut st = self.st.borrow_mut();
            let Some(f) = st.fetches.get_mut(&id) else { return };
            f.conn = None;
            let retry = f.reused && !f.got_head && !f.retried && idempotent(&f.method) && !f.opts.stream_body;
            if retry {
                f.retried = true;
                f.fresh = true;
            }
            retry
        };
        if retry {
            self.set_phase_timer(m, id, None);
            if self.dispatch(m, id).is_ok() {
                return;
            }
        }
        let (code, why) = err.unwrap_or((Error::Closed, "connection closed before the response was complete".into()));
        self.finish(m, id, Err((code, &why)));
    }

    /// A timer of fetch `id` fired.
    fn expired(&self, m: &Manager, id: u64, why: &'static str) {
        self.finish(m, id, Err((Error::TimedOut, why)));
    }
}

/// A one-shot timer that ends fetch `id` with `TimedOut` and `why`.
fn timer(m: &Manager, after: Duration, id: u64, why: &'static str) -> Option<u64> {
    m.timer_add(after, false, false, Box::new(move |m| client(m).expired(m, id, why))).ok()
}

/// `headers` without its Host line(s).
fn strip_host(headers: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(headers.len());
    for line in headers.split_inclusive(|b| *b == b'\n') {
        let name = line.split(|b| *b == b':').next().unwrap_or(b"");
        if !name.eq_ignore_ascii_case(b"host") {
            out.extend_from_slice(line);
        }
    }
    out
}

impl crate::reactor::Reactor<AnyProto> {
    /// Starts fetch `id` (from `next_fetch_id`): `method` `url` (http:// or
    /// https://) with extra `headers` (lines ending in CRLF) and `body`; `cb` runs
    /// exactly once with Done (and before it Head/Body/Drain as `opts` ask). On an
    /// error nothing started and `cb` never runs: `Invalid` (URL, method, headers),
    /// `Full` (the origin's wait queue), `Closed` (shutting down or freed).
    #[allow(clippy::too_many_arguments)]
    pub fn fetch(&self, id: u64, method: &str, url: &str, headers: &[u8], body: Option<Bytes>, opts: FetchOpts, cb: FetchCb) -> Result<()> {
        client(self).start(self, id, method, url, headers, body, opts, cb)
    }

    /// Cancels a fetch; its Done (`Canceled`) runs at the next turn of the loop.
    /// `Closed` if it is unknown or done.
    pub fn fetch_cancel(&self, id: u64) -> Result<()> {
        client(self).cancel(self, id)
    }

    pub fn fetch_write(&self, id: u64, piece: Bytes) -> Result<()> {
        client(self).write(self, id, piece)
    }

    pub fn fetch_end(&self, id: u64) -> Result<()> {
        client(self).end(self, id)
    }

    pub fn fetch_pause(&self, id: u64, held: bool) -> Result<()> {
        client(self).pause(self, id, held)
    }

    pub fn fetch_queued(&self, id: u64) -> Result<usize> {
        client(self).queued(self, id)
    }

    pub fn fetch_stats(&self) -> FetchStats {
        client(self).stats()
    }
}
