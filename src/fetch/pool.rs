//! The keep-alive pool: per origin (`scheme://host:port`, so TLS and plain
//! connections never mix), how many connections are open (connecting, busy or
//! idle), which are idle, and which fetches wait for a connection. Pure
//! bookkeeping: the client (`super::client`) opens and closes the connections.

use crate::proto::ConnId;
use std::collections::{HashMap, VecDeque};

/// Bounds, from the manager's options (`Opt::Fetch*`).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub conns_per_host: usize,
    pub idle_per_host: usize,
    pub idle_total: usize,
    pub queued_per_host: usize,
}

/// One origin's connections and waiting fetches.
#[derive(Default)]
struct Host {
    /// Open connections: connecting, busy or idle.
    conns: usize,
    /// Idle keep-alive connections, the most recently used last, with their idle
    /// timer.
    idle: Vec<(ConnId, u64)>,
    /// Fetches waiting for a connection, oldest first.
    waiting: VecDeque<u64>,
}

/// What a fetch gets when it asks for a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Grant {
    /// An idle connection (its idle timer to cancel).
    Idle(ConnId, u64),
    /// Room for a new connection: open one (then `opened`).
    Open,
    /// It waits in the origin's queue.
    Queued,
    /// The queue is full.
    Full,
}

#[derive(Default)]
pub struct Pool {
    hosts: HashMap<String, Host>,
    /// The origin of every open pooled connection.
    origin_of: HashMap<ConnId, String>,
    idle_total: usize,
}

impl Pool {
    /// A connection for fetch `fetch` to `origin`: an idle one unless `fresh`, else
    /// room for a new one, else a place in the queue.
    pub fn acquire(&mut self, origin: &str, fetch: u64, fresh: bool, b: Bounds) -> Grant {
        let h = self.hosts.entry(origin.to_string()).or_default();
        if !fresh {
            if let Some((id, timer)) = h.idle.pop() {
                self.idle_total -= 1;
                return Grant::Idle(id, timer);
            }
        }
        if h.conns < b.conns_per_host {
            return Grant::Open;
        }
        if h.waiting.len() >= b.queued_per_host {
            return Grant::Full;
        }
        h.waiting.push_back(fetch);
        Grant::Queued
    }

    /// A new connection to `origin` is open (connecting).
    pub fn opened(&mut self, origin: &str, id: ConnId) {
        self.hosts.entry(origin.to_string()).or_default().conns += 1;
        self.origin_of.insert(id, origin.to_string());
    }

    /// Connection `id` finished a response and can be reused: the next fetch waiting
    /// for its origin, if any, takes it (returned); else it goes idle with `timer`
    /// (from `make_timer`) if the bounds allow, else `Err(())`: close it.
    pub fn release(&mut self, id: ConnId, b: Bounds, make_timer: impl FnOnce() -> Option<u64>) -> Result<Option<u64>, ()> {
        let Some(origin) = self.origin_of.get(&id) else { return Err(()) };
        let h = self.hosts.get_mut(origin).ok_or(())?;
        if let Some(next) = h.waiting.pop_front() {
            return Ok(Some(next));
        }
        if h.idle.len() >= b.idle_per_host || self.idle_total >= b.idle_total {
            return Err(());
        }
        let timer = make_timer().ok_or(())?;
        h.idle.push((id, timer));
        self.idle_total += 1;
        Ok(None)
    }

    /// Connection `id` is gone: forgotten (its idle timer, if it was idle, returned),
    /// and the next fetch waiting for its origin, if any, may now open one.
    pub fn closed(&mut self, id: ConnId) -> (Option<u64>, Option<u64>) {
        let Some(origin) = self.origin_of.remove(&id) else { return (None, None) };
        let Some(h) = self.hosts.get_mut(&origin) else { return (None, None) };
        h.conns -= 1;
        let mut timer = None;
        if let Some(i) = h.idle.iter().position(|(c, _)| *c == id) {
            timer = Some(h.idle.remove(i).1);
            self.idle_total -= 1;
        }
        let next = h.waiting.pop_front();
        if h.conns == 0 && h.waiting.is_empty() {
            self.hosts.remove(&origin);
        }
        (timer, next)
    }

    /// Whether `id` is an idle pooled connection.
    pub fn is_idle(&self, id: ConnId) -> bool {
        self.origin_of.get(&id).and_then(|o| self.hosts.get(o)).is_some_and(|h| h.idle.iter().any(|(c, _)| *c == id))
    }

    /// Takes fetch `fetch` out of `origin`'s queue (cancelled); whether it was there.
    pub fn unqueue(&mut self, origin: &str, fetch: u64) -> bool {
        let Some(h) = self.hosts.get_mut(origin) else { return false };
        let before = h.waiting.len();
        h.waiting.retain(|f| *f != fetch);
        before != h.waiting.len()
    }

    /// Every fetch still waiting, taken out of the queues (the manager is freed).
    pub fn drain_waiting(&mut self) -> Vec<u64> {
        self.hosts.values_mut().flat_map(|h| h.waiting.drain(..)).collect()
    }

    /// Open pooled connections, and how many of them are idle.
    pub fn counts(&self) -> (usize, usize) {
        (self.origin_of.len(), self.idle_total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds { conns_per_host: 2, idle_per_host: 1, idle_total: 1, queued_per_host: 1 };

    #[test]
    fn connections_are_bounded_per_origin_and_then_requests_queue() {
        let mut p = Pool::default();
        assert_eq!(p.acquire("http://a:1", 1, false, B), Grant::Open);
        p.opened("http://a:1", 10);
        assert_eq!(p.acquire("http://a:1", 2, false, B), Grant::Open);
        p.opened("http://a:1", 11);
        assert_eq!(p.acquire("http://a:1", 3, false, B), Grant::Queued);
        assert_eq!(p.acquire("http://a:1", 4, false, B), Grant::Full, "the queue is bounded");
        assert_eq!(p.acquire("https://a:1", 5, false, B), Grant::Open, "TLS is another origin");
        assert_eq!(p.release(10, B, || Some(7)), Ok(Some(3)), "a released connection goes to the waiter");
        assert_eq!(p.release(10, B, || Some(7)), Ok(None), "then idle");
        assert!(p.is_idle(10));
        assert_eq!(p.release(11, B, || Some(8)), Err(()), "idle bound per host");
        assert_eq!(p.acquire("http://a:1", 6, false, B), Grant::Idle(10, 7));
        assert_eq!(p.counts(), (2, 0));
    }

    #[test]
    fn a_closed_connection_frees_its_place_for_a_waiter() {
        let mut p = Pool::default();
        let b = Bounds { conns_per_host: 1, ..B };
        assert_eq!(p.acquire("o", 1, false, b), Grant::Open);
        p.opened("o", 10);
        assert_eq!(p.acquire("o", 2, false, b), Grant::Queued);
        assert_eq!(p.closed(10), (None, Some(2)));
        assert_eq!(p.counts(), (0, 0));
        assert_eq!(p.acquire("o", 3, true, b), Grant::Open);
        p.opened("o", 11);
        assert_eq!(p.release(11, b, || Some(5)), Ok(None));
        assert_eq!(p.acquire("o", 4, true, b), Grant::Queued, "fresh skips idle connections");
        assert!(p.unqueue("o", 4));
        assert_eq!(p.closed(11), (Some(5), None));
        assert!(p.drain_waiting().is_empty());
    }
}
