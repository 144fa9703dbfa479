//! Recycled I/O buffers. Connections borrow a buffer when bytes arrive or are queued
//! and give it back when it is empty, so an idle connection holds none and a busy
//! server allocates nothing per request once the pool is warm.

/// Size of a pooled buffer: one read's worth, and the unit copies are packed into.
pub(crate) const CHUNK: usize = 16 * 1024;

/// Idle buffers kept at most; past this, returned buffers are freed (bounded memory
/// after a burst).
const MAX_IDLE: usize = 256;

#[derive(Default)]
pub struct BufPool {
    idle: Vec<Vec<u8>>,
}

impl BufPool {
    /// An empty buffer with capacity `CHUNK`.
    pub fn get(&mut self) -> Vec<u8> {
        self.idle.pop().unwrap_or_else(|| Vec::with_capacity(CHUNK))
    }

    /// Returns a buffer. Only standard-size buffers are kept: a grown one would pin
    /// its size forever.
    pub fn put(&mut self, mut v: Vec<u8>) {
        if v.capacity() == CHUNK && self.idle.len() < MAX_IDLE {
            v.clear();
            self.idle.push(v);
        }
    }

    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle.len()
    }
}
