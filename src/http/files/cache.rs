//! A small per-manager cache of resolved static files: what a request path maps to
//! (after the path checks, canonicalization and the `.gz` choice), the open file, and
//! its validators. A hit costs no system call, which is most of the price of a small
//! file. An entry is trusted for `FRESH` after it was resolved, then resolved again, so
//! a changed, replaced or removed file is seen within that time; stale entries are
//! swept at most once per `FRESH`, so the descriptors the cache holds are few and
//! short-lived. Only successful lookups are kept (errors are cheap to redo and must
//! never outlive a fix).

use super::Found;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a resolved file is served without looking at the file system again.
pub const FRESH: Duration = Duration::from_secs(1);

/// Entries at most (each holds one open descriptor).
const MAX_ENTRIES: usize = 256;

#[derive(Default)]
pub struct FileCache {
    map: HashMap<Vec<u8>, (Instant, Rc<Found>)>,
    /// Reused to build lookup keys without allocating.
    key: Vec<u8>,
    swept: Option<Instant>,
}

impl FileCache {
    /// The key of a lookup: the root (empty for `serve_file`), the path asked for,
    /// and whether the client takes gzip (it changes which file is served).
    fn make_key(&mut self, root: &[u8], path: &[u8], gzip: bool) {
        self.key.clear();
        self.key.extend_from_slice(root);
        self.key.push(0);
        self.key.extend_from_slice(path);
        self.key.push(u8::from(gzip));
    }

    /// A fresh entry for this lookup, if there is one.
    pub fn get(&mut self, root: &[u8], path: &[u8], gzip: bool, now: Instant) -> Option<Rc<Found>> {
        self.sweep(now);
        self.make_key(root, path, gzip);
        match self.map.get(&self.key) {
            Some((at, found)) if now.duration_since(*at) < FRESH => Some(found.clone()),
            _ => None,
        }
    }

    pub fn put(&mut self, root: &[u8], path: &[u8], gzip: bool, found: Rc<Found>, now: Instant) {
        if self.map.len() >= MAX_ENTRIES {
            // Bounded the simple way: a burst of distinct paths starts the cache over.
            self.map.clear();
        }
        self.make_key(root, path, gzip);
        self.map.insert(self.key.clone(), (now, found));
    }

    /// Drops stale entries (closing their files), at most once per FRESH.
    fn sweep(&mut self, now: Instant) {
        if self.swept.is_some_and(|t| now.duration_since(t) < FRESH) {
            return;
        }
        self.swept = Some(now);
        self.map.retain(|_, (at, _)| now.duration_since(*at) < FRESH);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
