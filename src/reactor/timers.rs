//! Timers in one binary heap: add, cancel and the next deadline cost O(log n), so
//! thousands of connection timeouts add no per-poll work.
//!
//! Two kinds share the heap. User timers (`tern_timer_add`) live in a map by id.
//! Each connection has at most one timer, whose due time is kept in the connection
//! itself (`Conn::timer_at`): arming pushes a heap entry, and an entry is live only
//! while the connection still waits for exactly that instant, so cancelling or moving
//! a connection's timer is a plain store, with no map to update. Dead entries stay in
//! the heap until they surface or a compaction drops them.

use super::conn::Phase;
use super::ids::IdMap;
use super::{Inner, Reactor};
use crate::error::{Error, Failure, Result};
use crate::proto::{ConnId, Stack, Step};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A user timer's callback.
pub type TimerFn<P> = Box<dyn FnMut(&Reactor<P>)>;

pub struct UserTimer<P: Stack> {
    pub period: Option<Duration>,
    pub callback: TimerFn<P>,
}

/// Heap keys with this bit set are connection ids; others are user timer ids.
const CONN: u64 = 1 << 63;

/// A timer that is due.
pub enum Due<P: Stack> {
    User(u64, Instant, UserTimer<P>),
    /// Connection `id`'s timer.
    Conn(ConnId),
}

pub struct Timers<P: Stack> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    user: IdMap<(Instant, UserTimer<P>)>,
    next_id: u64,
    /// Connections with a timer armed (for the count tests check).
    conns_armed: usize,
    /// The user timer whose callback is running, and whether it cancelled itself.
    running: Option<u64>,
    running_cancelled: bool,
}

impl<P: Stack> Default for Timers<P> {
    fn default() -> Timers<P> {
        Timers { heap: BinaryHeap::new(), user: IdMap::default(), next_id: 0, conns_armed: 0, running: None, running_cancelled: false }
    }
}

impl<P: Stack> Timers<P> {
    pub fn add_user(&mut self, at: Instant, t: UserTimer<P>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.insert_user(id, at, t);
        id
    }

    fn insert_user(&mut self, id: u64, at: Instant, t: UserTimer<P>) {
        self.heap.push(Reverse((at, id)));
        self.user.insert(id, (at, t));
    }

    /// Cancels a pending user timer, or the running one from inside its own callback.
    pub fn cancel_user(&mut self, id: u64) -> bool {
        if self.user.remove(&id).is_some() {
            return true;
        }
        if self.running == Some(id) && !self.running_cancelled {
            self.running_cancelled = true;
            return true;
        }
        false
    }

    /// Records that connection `id` now waits for `at` (its `timer_at`, set by the
    /// caller). `newly` says it had no timer before.
    pub fn arm_conn(&mut self, id: ConnId, at: Instant, newly: bool) {
        self.heap.push(Reverse((at, id | CONN)));
        self.conns_armed += usize::from(newly);
    }

    /// A connection's timer was cleared (its `timer_at` set to None by the caller).
    pub fn disarm_conn(&mut self) {
        self.conns_armed -= 1;
    }

    /// Whether dead entries outnumber live ones (then `compact`).
    pub fn needs_compaction(&self) -> bool {
        self.heap.len() > 64 && self.heap.len() > 2 * (self.user.len() + self.conns_armed)
    }

    /// Drops dead entries once they outnumber live ones, so garbage stays
    /// proportional to the timers alive (amortised O(1) per arm). `conn_live` says
    /// whether a connection still waits for that instant.
    pub fn compact(&mut self, conn_live: impl Fn(ConnId, Instant) -> bool) {
        if self.needs_compaction() {
            let user = &self.user;
            self.heap.retain(|Reverse((at, key))| entry_live(user, &conn_live, *at, *key));
        }
    }

    pub fn next_deadline(&mut self, conn_live: impl Fn(ConnId, Instant) -> bool) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if entry_live(&self.user, &conn_live, *at, *key) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    /// The next timer due at `now`, taken out (a connection's: its entry only; the
    /// caller clears the connection's `timer_at`).
    pub fn pop_due(&mut self, now: Instant, conn_live: impl Fn(ConnId, Instant) -> bool) -> Option<Due<P>> {
        let at = self.next_deadline(&conn_live)?;
        if at > now {
            return None;
        }
        let Reverse((at, key)) = self.heap.pop().expect("next_deadline saw an entry");
        if key & CONN != 0 {
            return Some(Due::Conn(key & !CONN));
        }
        let (_, t) = self.user.remove(&key).expect("next_deadline checked it is live");
        Some(Due::User(key, at, t))
    }

    pub fn start_running(&mut self, id: u64) {
        self.running = Some(id);
        self.running_cancelled = false;
    }

    /// Ends a user callback; puts a repeating timer back unless it was cancelled.
    pub fn finish_running(&mut self, id: u64, due: Instant, timer: UserTimer<P>, now: Instant) {
        let cancelled = self.running_cancelled;
        self.running = None;
        self.running_cancelled = false;
        if let (Some(period), false) = (timer.period, cancelled) {
            let mut next = due + period;
            if next <= now {
                next = now + period;
            }
            self.insert_user(id, next, timer);
        }
    }

    /// Timers pending, user and connection ones (for leak checks).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.user.len() + self.conns_armed
    }
}

impl<P: Stack> Reactor<P> {
    /// Runs `callback` after `delay` (at the next poll with `run_now`), every `delay`
    /// if `repeat`. Returns the timer id (never 0).
    pub fn timer_add(&self, delay: Duration, repeat: bool, run_now: bool, callback: TimerFn<P>) -> Result<u64> {
        self.check_alive()?;
        let now = Instant::now();
        let at = if run_now { now } else { now + delay };
        let period = repeat.then_some(delay);
        let mut inner = self.inner.borrow_mut();
        let id = inner.timers.add_user(at, UserTimer { period, callback });
        inner.compact_timers();
        Ok(id)
    }

    /// Cancels a timer; `Closed` if it is unknown or already done.
    pub fn timer_cancel(&self, id: u64) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        if inner.timers.cancel_user(id) {
            inner.compact_timers();
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    pub(super) fn run_timers(&self) {
        let now = Instant::now();
        loop {
            let due = self.inner.borrow_mut().pop_due_timer(now);
            match due {
                None => return,
                Some(Due::User(tid, at, mut t)) => {
                    self.inner.borrow_mut().timers.start_running(tid);
                    self.count_callback();
                    (t.callback)(self);
                    self.inner.borrow_mut().timers.finish_running(tid, at, t, now);
                }
                Some(Due::Conn(id)) => self.on_conn_timer(id),
            }
        }
    }

    /// A connection's timer fired (its `timer_at` is already cleared): what it meant
    /// follows from the phase the connection is in.
    fn on_conn_timer(&self, id: ConnId) {
        let Ok((phase, listener, handshake_over)) = self.with_conn_mut(id, |c| (c.phase, c.is_listener(), handshake_expired(c))) else { return };
        match phase {
            Phase::Connecting => self.fail(id, Failure::new(Error::TimedOut, "connect timed out")),
            Phase::Open if handshake_over => self.fail(id, Failure::new(Error::TimedOut, "TLS handshake timed out")),
            Phase::Open if listener => self.accept_ready(id),
            Phase::Open => self.drive(id, |p, cx| if cx.open { p.on_timer(cx) } else { Step::Wait }),
            Phase::Draining => self.fail(id, Failure::new(Error::TimedOut, "close timed out with data unsent")),
            Phase::Lingering => {
                let _ = self.close_now(id);
            }
            Phase::Closed => {}
        }
    }
}

/// Whether the connection's transport handshake is still going past its deadline.
fn handshake_expired<P: Stack>(c: &mut super::conn::Conn<P>) -> bool {
    let due = c.transport().and_then(|t| t.handshake_deadline());
    due.is_some_and(|at| at <= Instant::now())
}

impl<P: Stack> Inner<P> {
    /// Sets (or clears) connection `id`'s one timer.
    pub(super) fn set_conn_timer(&mut self, id: ConnId, at: Option<Instant>) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        let had = c.timer_at.is_some();
        c.timer_at = at;
        match at {
            Some(at) => self.timers.arm_conn(id, at, !had),
            None if had => self.timers.disarm_conn(),
            None => {}
        }
        self.compact_timers();
    }

    pub(super) fn compact_timers(&mut self) {
        if !self.timers.needs_compaction() {
            return;
        }
        let Inner { timers, conns, .. } = self;
        timers.compact(|id, at| conns.get(&id).is_some_and(|c| c.timer_at == Some(at)));
    }

    pub(super) fn next_timer(&mut self) -> Option<Instant> {
        let Inner { timers, conns, .. } = self;
        timers.next_deadline(|id, at| conns.get(&id).is_some_and(|c| c.timer_at == Some(at)))
    }

    /// The next timer due at `now`; a connection's is cleared from the connection.
    fn pop_due_timer(&mut self, now: Instant) -> Option<Due<P>> {
        let due = {
            let Inner { timers, conns, .. } = self;
            timers.pop_due(now, |id, at| conns.get(&id).is_some_and(|c| c.timer_at == Some(at)))?
        };
        if let Due::Conn(id) = due {
            self.set_conn_timer(id, None);
        }
        Some(due)
    }
}

fn entry_live<P: Stack>(user: &IdMap<(Instant, UserTimer<P>)>, conn_live: &impl Fn(ConnId, Instant) -> bool, at: Instant, key: u64) -> bool {
    if key & CONN != 0 {
        conn_live(key & !CONN, at)
    } else {
        user.get(&key).is_some_and(|(live_at, _)| *live_at == at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_proto::TestProto;
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn noop() -> UserTimer<TestProto> {
        UserTimer { period: None, callback: Box::new(|_| {}) }
    }

    #[test]
    fn user_timers_due_in_order_cancel_and_compaction() {
        let mut t: Timers<TestProto> = Timers::default();
        let now = Instant::now();
        let ids: Vec<u64> = (0..200).map(|i| t.add_user(now + Duration::from_millis(200 - i), noop())).collect();
        for id in &ids[..150] {
            assert!(t.cancel_user(*id));
        }
        assert!(!t.cancel_user(ids[0]));
        assert_eq!(t.len(), 50);
        t.compact(|_, _| false);
        assert!(t.heap.len() <= 2 * 50 + 64);
        let mut last = now;
        let mut n = 0;
        while let Some(d) = t.pop_due(now + Duration::from_secs(1), |_, _| false) {
            let Due::User(_, at, _) = d else { panic!("no connection timer was armed") };
            assert!(at >= last);
            last = at;
            n += 1;
        }
        assert_eq!(n, 50);
        assert!(t.next_deadline(|_, _| false).is_none());
    }

    #[test]
    fn a_connection_timer_is_live_only_for_the_instant_it_waits_for() {
        let mut t: Timers<TestProto> = Timers::default();
        let now = Instant::now();
        let waits: RefCell<HashMap<ConnId, Instant>> = RefCell::default();
        let arm = |t: &mut Timers<TestProto>, id, at| {
            let newly = waits.borrow_mut().insert(id, at).is_none();
            t.arm_conn(id, at, newly);
        };
        arm(&mut t, 7, now + Duration::from_millis(50));
        // Moved earlier, then later: only the last instant counts.
        arm(&mut t, 7, now + Duration::from_millis(10));
        arm(&mut t, 7, now + Duration::from_millis(30));
        arm(&mut t, 9, now + Duration::from_millis(20));
        assert_eq!(t.len(), 2);
        let live = |id: ConnId, at: Instant| waits.borrow().get(&id) == Some(&at);
        let mut fired = Vec::new();
        while let Some(Due::Conn(id)) = t.pop_due(now + Duration::from_secs(1), live) {
            let at = waits.borrow_mut().remove(&id).expect("it was armed");
            fired.push((id, at - now));
        }
        assert_eq!(fired, vec![(9, Duration::from_millis(20)), (7, Duration::from_millis(30))]);
    }
}
