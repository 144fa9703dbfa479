//! Topics: named groups of WebSocket connections that one publish reaches. The
//! registry lives in the manager (loop thread only); a connection keeps the ids of
//! its topics so it can leave them all when it ends.

use crate::proto::ConnId;
use std::collections::{HashMap, HashSet};

/// A topic's number in the registry (reused once the topic has no subscriber).
pub type TopicId = u32;

/// Topics a connection may belong to at once.
pub const MAX_TOPICS_PER_CONN: usize = 64;

#[derive(Default)]
pub struct Topics {
    by_name: HashMap<Box<str>, TopicId>,
    topics: Vec<Topic>,
    free: Vec<TopicId>,
}

#[derive(Default)]
struct Topic {
    name: Box<str>,
    subscribers: HashSet<ConnId>,
}

impl Topics {
    /// Adds `id` to `name` (created on first use); its id.
    pub fn subscribe(&mut self, name: &str, id: ConnId) -> TopicId {
        let tid = match self.by_name.get(name) {
            Some(&t) => t,
            None => self.create(name),
        };
        self.topics[tid as usize].subscribers.insert(id);
        tid
    }

    fn create(&mut self, name: &str) -> TopicId {
        let t = Topic { name: name.into(), subscribers: HashSet::new() };
        let tid = match self.free.pop() {
            Some(t2) => {
                self.topics[t2 as usize] = t;
                t2
            }
            None => {
                self.topics.push(t);
                (self.topics.len() - 1) as TopicId
            }
        };
        self.by_name.insert(name.into(), tid);
        tid
    }

    /// The id of topic `name`, if it has subscribers.
    pub fn find(&self, name: &str) -> Option<TopicId> {
        self.by_name.get(name).copied()
    }

    /// Takes `id` out of topic `tid`; a topic left empty is forgotten.
    pub fn unsubscribe(&mut self, tid: TopicId, id: ConnId) {
        let Some(t) = self.topics.get_mut(tid as usize) else { return };
        if !t.subscribers.remove(&id) || !t.subscribers.is_empty() {
            return;
        }
        let name = std::mem::take(&mut t.name);
        t.subscribers = HashSet::new();
        self.by_name.remove(&name);
        self.free.push(tid);
    }

    /// Appends the subscribers of topic `name` to `out`.
    pub fn subscribers(&self, name: &str, out: &mut Vec<ConnId>) {
        if let Some(&tid) = self.by_name.get(name) {
            out.extend(self.topics[tid as usize].subscribers.iter().copied());
        }
    }

    /// Topics with at least one subscriber.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_publish_unsubscribe_and_reuse() {
        let mut t = Topics::default();
        let a = t.subscribe("news", 1);
        assert_eq!(t.subscribe("news", 2), a);
        let b = t.subscribe("chat", 1);
        let mut out = Vec::new();
        t.subscribers("news", &mut out);
        out.sort_unstable();
        assert_eq!(out, [1, 2]);
        t.unsubscribe(a, 1);
        t.unsubscribe(a, 2);
        assert_eq!(t.find("news"), None, "an empty topic is forgotten");
        out.clear();
        t.subscribers("news", &mut out);
        assert!(out.is_empty());
        let c = t.subscribe("sport", 3);
        assert_eq!(c, a, "its number is reused");
        assert_eq!(t.len(), 2);
        t.unsubscribe(b, 1);
        t.unsubscribe(c, 3);
        assert!(t.is_empty());
    }
}
