//! Timers in a binary heap: add, cancel and the next deadline cost O(log n), so
//! thousands of connection timeouts add no per-poll work. Cancelled entries stay in
//! the heap until they surface (or a compaction), which keeps cancel O(1).

use super::ids::IdMap;
use super::Manager;
use crate::conn::ConnId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A user timer's callback.
pub type TimerFn = Box<dyn FnMut(&Manager)>;

pub struct UserTimer {
    pub period: Option<Duration>,
    pub callback: TimerFn,
}

/// What happens when a timer fires.
pub enum TimerAction {
    User(UserTimer),
    /// An outgoing connection did not connect in time.
    ConnectTimeout(ConnId),
    /// A graceful close did not finish in time.
    CloseDeadline(ConnId),
    /// Retry accepting after running out of descriptors.
    AcceptRetry(ConnId),
    /// The connection's protocol layer has a deadline.
    Proto(ConnId),
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    live: IdMap<(Instant, TimerAction)>,
    next_id: u64,
    /// The user timer whose callback is running, and whether it cancelled itself.
    running: Option<u64>,
    running_cancelled: bool,
}

impl Timers {
    pub fn add(&mut self, at: Instant, action: TimerAction) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.insert(id, at, action);
        id
    }

    fn insert(&mut self, id: u64, at: Instant, action: TimerAction) {
        self.heap.push(Reverse((at, id)));
        self.live.insert(id, (at, action));
        self.maybe_compact();
    }

    /// Rebuilds the heap once cancelled entries outnumber live ones, so garbage stays
    /// proportional to the timers alive (amortised O(1) per cancel).
    fn maybe_compact(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live.len() {
            self.heap = self.live.iter().map(|(id, (at, _))| Reverse((*at, *id))).collect();
        }
    }

    /// Cancels a pending timer, or the running one from inside its own callback.
    pub fn cancel(&mut self, id: u64) -> bool {
        if self.live.remove(&id).is_some() {
            self.maybe_compact();
            return true;
        }
        if self.running == Some(id) && !self.running_cancelled {
            self.running_cancelled = true;
            return true;
        }
        false
    }

    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.heap.peek() {
            match self.live.get(id) {
                Some((live_at, _)) if live_at == at => return Some(*at),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// The next timer due at `now`, removed from the set.
    pub fn pop_due(&mut self, now: Instant) -> Option<(u64, Instant, TimerAction)> {
        let at = self.next_deadline()?;
        if at > now {
            return None;
        }
        let Reverse((at, id)) = self.heap.pop().expect("next_deadline saw an entry");
        let (_, action) = self.live.remove(&id).expect("next_deadline checked it is live");
        Some((id, at, action))
    }

    pub fn start_running(&mut self, id: u64) {
        self.running = Some(id);
        self.running_cancelled = false;
    }

    /// Ends a user callback; puts a repeating timer back unless it was cancelled.
    pub fn finish_running(&mut self, id: u64, due: Instant, timer: UserTimer, now: Instant) {
        let cancelled = self.running_cancelled;
        self.running = None;
        self.running_cancelled = false;
        if let (Some(period), false) = (timer.period, cancelled) {
            let mut next = due + period;
            if next <= now {
                next = now + period;
            }
            self.insert(id, next, TimerAction::User(timer));
        }
    }

    /// Timers pending (for leak checks).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.live.len()
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_order_cancel_and_compaction() {
        let mut t = Timers::default();
        let now = Instant::now();
        let ids: Vec<u64> = (0..200).map(|i| t.add(now + Duration::from_millis(200 - i), TimerAction::CloseDeadline(i))).collect();
        for id in &ids[..150] {
            assert!(t.cancel(*id));
        }
        assert!(!t.cancel(ids[0]));
        assert_eq!(t.len(), 50);
        assert!(t.heap.len() <= 2 * 50 + 64);
        let mut last = now;
        let mut n = 0;
        while let Some((_, at, _)) = t.pop_due(now + Duration::from_secs(1)) {
            assert!(at >= last);
            last = at;
            n += 1;
        }
        assert_eq!(n, 50);
        assert!(t.next_deadline().is_none());
    }
}
