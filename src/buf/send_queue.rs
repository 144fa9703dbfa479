//! The per-connection send queue. Copied bytes are packed into pooled chunks;
//! `Bytes` are queued by reference and handed to the transport as they are (a
//! `writev`-style `sendmsg` for plain TCP), and each reference is dropped, which may
//! run its free callback, only in [`SendQueue::advance`]: once the transport reports
//! that the kernel took its last byte, or when the queue is discarded. A file segment
//! is an open file and a range of it, written with `sendfile`: its bytes never pass
//! through memory, so they count in `queued` but not in `memory_queued`.

use super::pool::{BufPool, CHUNK};
use crate::bytes::Bytes;
use std::collections::VecDeque;
use std::fs::File;
use std::io::IoSlice;
use std::sync::Arc;

/// A range of an open file, shared so that one open file can serve many responses.
pub struct FileSeg {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: usize,
}

pub(crate) enum Chunk {
    Copied(Vec<u8>),
    /// A few copied bytes kept in the chunk itself (a frame header or a chunk-size
    /// line in front of a shared buffer): no pooled buffer taken for them.
    Inline { len: u8, buf: [u8; INLINE] },
    Shared(Bytes),
    File(FileSeg),
}

/// Copies this short go into the chunk list itself when no copied chunk can take them.
const INLINE: usize = 22;

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Copied(v) => v.len(),
            Chunk::Inline { len, .. } => usize::from(*len),
            Chunk::Shared(b) => b.len(),
            Chunk::File(f) => f.len,
        }
    }

    /// The bytes of a memory chunk; None for a file segment.
    fn memory(&self) -> Option<&[u8]> {
        match self {
            Chunk::Copied(v) => Some(v),
            Chunk::Inline { len, buf } => Some(&buf[..usize::from(*len)]),
            Chunk::Shared(b) => Some(b.as_slice()),
            Chunk::File(_) => None,
        }
    }
}

/// A queue's storage. It is recycled through the pool: an idle connection's queue
/// holds none, and a busy one takes a warm one instead of allocating.
pub(crate) type Chunks = VecDeque<Chunk>;

#[derive(Default)]
pub struct SendQueue {
    chunks: Chunks,
    /// Bytes of the front chunk already written.
    head_off: usize,
    queued: usize,
    /// The part of `queued` that is file segments.
    file_queued: usize,
}

impl SendQueue {
    /// Bytes waiting to be written, file segments included.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Bytes held in memory (what TERN_OPT_MAX_SEND_QUEUE bounds).
    pub fn memory_queued(&self) -> usize {
        self.queued - self.file_queued
    }

    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// The chunk list to push onto: a pooled one if this queue has none.
    fn storage(&mut self, pool: &mut BufPool) -> &mut Chunks {
        if self.chunks.capacity() == 0 {
            self.chunks = pool.get_chunks();
        }
        &mut self.chunks
    }

    /// An empty queue gives its storage back to the pool.
    fn release_storage(&mut self, pool: &mut BufPool) {
        if self.chunks.is_empty() && self.chunks.capacity() > 0 {
            pool.put_chunks(std::mem::take(&mut self.chunks));
        }
    }

    /// Queues a copy of `data`, filling the last copied chunk before taking another
    /// (a few bytes behind a shared buffer or a file go inline instead).
    pub fn push_copy(&mut self, mut data: &[u8], pool: &mut BufPool) {
        self.queued += data.len();
        self.storage(pool);
        if data.len() <= INLINE && matches!(self.chunks.back(), Some(Chunk::Shared(_) | Chunk::File(_))) {
            let mut buf = [0u8; INLINE];
            buf[..data.len()].copy_from_slice(data);
            self.chunks.push_back(Chunk::Inline { len: data.len() as u8, buf });
            return;
        }
        while !data.is_empty() {
            if let Some(Chunk::Copied(v)) = self.chunks.back_mut() {
                let room = v.capacity() - v.len();
                if room > 0 {
                    let n = room.min(data.len());
                    v.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    continue;
                }
            }
            let v = if data.len() > CHUNK { Vec::with_capacity(data.len()) } else { pool.get() };
            self.chunks.push_back(Chunk::Copied(v));
        }
    }

    /// Queues a reference; the bytes are never copied.
    pub fn push_bytes(&mut self, b: Bytes, pool: &mut BufPool) {
        if b.is_empty() {
            return;
        }
        self.queued += b.len();
        self.storage(pool).push_back(Chunk::Shared(b));
    }

    /// Queues a file range; its bytes are read by the kernel when they are sent.
    pub fn push_file(&mut self, f: FileSeg, pool: &mut BufPool) {
        if f.len == 0 {
            return;
        }
        self.queued += f.len;
        self.file_queued += f.len;
        self.storage(pool).push_back(Chunk::File(f));
    }

    /// Whether file segments are queued (the transport corks around them).
    pub fn has_files(&self) -> bool {
        self.file_queued > 0
    }

    /// The front chunk when it is a file segment, with how many of its bytes were
    /// already written.
    pub fn front_file(&self) -> Option<(&FileSeg, usize)> {
        match self.chunks.front() {
            Some(Chunk::File(f)) => Some((f, self.head_off)),
            _ => None,
        }
    }

    /// Fills `iov` with the memory chunks at the front, up to the first file segment;
    /// returns how many slices it filled and the bytes they hold. Nothing is consumed:
    /// the transport calls [`advance`](Self::advance) with what the kernel took.
    pub fn memory_slices<'a>(&'a self, iov: &mut [IoSlice<'a>]) -> (usize, usize) {
        let mut n = 0;
        let mut offered = 0;
        for (i, c) in self.chunks.iter().take(iov.len()).enumerate() {
            let Some(b) = c.memory() else { break };
            let b = if i == 0 { &b[self.head_off..] } else { b };
            iov[n] = IoSlice::new(b);
            offered += b.len();
            n += 1;
        }
        (n, offered)
    }

    /// Drops `n` bytes the kernel took from the front; finished chunks go back to the
    /// pool or release their reference right here. This is the only place a queued
    /// buffer is released while the connection lives.
    pub fn advance(&mut self, mut n: usize, pool: &mut BufPool) {
        self.queued -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else { break };
            let front_left = front.len() - self.head_off;
            let step = n.min(front_left);
            if matches!(front, Chunk::File(_)) {
                self.file_queued -= step;
            }
            if n < front_left {
                self.head_off += n;
                return;
            }
            n -= front_left;
            self.head_off = 0;
            self.pop_front(pool);
        }
        self.release_storage(pool);
    }

    fn pop_front(&mut self, pool: &mut BufPool) {
        match self.chunks.pop_front() {
            Some(Chunk::Copied(v)) => pool.put(v),
            Some(Chunk::Inline { .. }) => {}
            Some(Chunk::Shared(b)) => drop(b),
            Some(Chunk::File(f)) => drop(f),
            None => {}
        }
    }

    /// Moves everything queued in `other` to the end of this queue, in order.
    pub fn append(&mut self, other: &mut SendQueue, pool: &mut BufPool) {
        debug_assert_eq!(other.head_off, 0, "a side queue is never partly written");
        if other.chunks.is_empty() {
            return;
        }
        self.queued += other.queued;
        self.file_queued += other.file_queued;
        self.storage(pool).append(&mut other.chunks);
        other.queued = 0;
        other.file_queued = 0;
        other.release_storage(pool);
    }

    /// The memory bytes queued, in order (file segments are skipped).
    #[cfg(test)]
    pub fn contiguous_for_tests(&self) -> Vec<u8> {
        self.chunks.iter().filter_map(Chunk::memory).flatten().copied().skip(self.head_off).collect()
    }

    /// Discards everything queued, releasing every reference (and closing files no
    /// other response holds).
    pub fn clear(&mut self, pool: &mut BufPool) {
        while !self.chunks.is_empty() {
            self.pop_front(pool);
        }
        self.head_off = 0;
        self.queued = 0;
        self.file_queued = 0;
        self.release_storage(pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of `len` patterned bytes, removed from the directory at once (the open
    /// file stays readable).
    pub(crate) fn temp_file(len: usize, salt: u8) -> (Arc<File>, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8 ^ salt).collect();
        let path = std::env::temp_dir().join(format!("tern-sq-{}-{salt}", std::process::id()));
        File::create(&path).unwrap().write_all(&data).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        (Arc::new(f), data)
    }

    #[test]
    fn advance_releases_shared_bytes_only_past_their_last_byte() {
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let shared = Bytes::from_vec(vec![7u8; 100]);
        q.push_copy(b"head:", &mut pool);
        q.push_bytes(shared.clone(), &mut pool);
        q.push_copy(b":tail", &mut pool);
        let mut iov = [IoSlice::new(&[]); 8];
        assert_eq!(q.memory_slices(&mut iov), (3, 110));
        q.advance(5 + 99, &mut pool);
        assert_eq!(shared.ref_count(), 2, "one byte of it is still queued");
        q.advance(1, &mut pool);
        assert_eq!(shared.ref_count(), 1, "its last byte was taken: released");
        assert_eq!(q.contiguous_for_tests(), b":tail");
        q.advance(5, &mut pool);
        assert_eq!(q.chunks.capacity(), 0, "an empty queue holds no storage");
        assert_eq!(pool.idle_chunks(), 1, "it went back to the pool");
    }

    #[test]
    fn headers_between_shared_buffers_take_no_pooled_chunk() {
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let payload = Bytes::from_vec(vec![5u8; 64]);
        q.push_copy(&[0x82, 64], &mut pool);
        q.push_bytes(payload.clone(), &mut pool);
        for _ in 0..1000 {
            q.push_copy(&[0x82, 64], &mut pool);
            q.push_bytes(payload.clone(), &mut pool);
        }
        assert_eq!(q.queued(), 1001 * 66);
        let pooled = q.chunks.iter().filter(|c| matches!(c, Chunk::Copied(_))).count();
        assert_eq!(pooled, 1, "only the first header took a pooled chunk");
        let mut iov = [IoSlice::new(&[]); 4];
        q.memory_slices(&mut iov);
        assert_eq!((&*iov[0], &iov[1][..2], &*iov[2]), (&[0x82u8, 64][..], &[5u8, 5][..], &[0x82u8, 64][..]));
    }

    #[test]
    fn clear_and_append_keep_the_counts() {
        let mut pool = BufPool::default();
        let (f, _) = temp_file(100, 4);
        let mut side = SendQueue::default();
        side.push_copy(b"abc", &mut pool);
        side.push_file(FileSeg { file: f.clone(), offset: 0, len: 100 }, &mut pool);
        let mut q = SendQueue::default();
        q.push_copy(b"x", &mut pool);
        q.append(&mut side, &mut pool);
        assert_eq!((q.queued(), q.memory_queued(), side.queued()), (104, 4, 0));
        assert_eq!(q.contiguous_for_tests(), b"xabc");
        q.clear(&mut pool);
        assert_eq!((q.queued(), q.memory_queued()), (0, 0));
        assert_eq!(Arc::strong_count(&f), 1);
    }
}
