//! Recycled I/O buffers and send-queue storage. Connections borrow a buffer when
//! bytes arrive or are queued and give it back when it is empty, so an idle connection
//! holds none and a busy server allocates nothing per request once the pool is warm.

use super::send_queue::Chunks;

/// Size of a pooled buffer: one read's worth, and the unit copies are packed into.
pub(crate) const CHUNK: usize = 16 * 1024;

/// Idle buffers kept at most; past this, returned buffers are freed (bounded memory
/// after a burst).
const MAX_IDLE: usize = 256;

/// Chunk lists longer than this are not kept (a burst must not pin its size).
const MAX_CHUNKS_KEPT: usize = 64;

#[derive(Default)]
pub struct BufPool {
    idle: Vec<Vec<u8>>,
    chunks: Vec<Chunks>,
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

    /// An empty chunk list for a send queue (warm if one was given back).
    pub(crate) fn get_chunks(&mut self) -> Chunks {
        self.chunks.pop().unwrap_or_default()
    }

    /// Takes back an empty chunk list.
    pub(crate) fn put_chunks(&mut self, c: Chunks) {
        debug_assert!(c.is_empty());
        if c.capacity() <= MAX_CHUNKS_KEPT && self.chunks.len() < MAX_IDLE {
            self.chunks.push(c);
        }
    }

    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    #[cfg(test)]
    pub fn idle_chunks(&self) -> usize {
        self.chunks.len()
    }
}
