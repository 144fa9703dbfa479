//! The per-connection send queue. Copied bytes are packed into pooled chunks;
//! `Bytes` are queued by reference and go to the kernel as they are (`writev`-style
//! `sendmsg`), and each reference is dropped, which may run its free callback, only
//! once its last byte is written or the queue is discarded. A file segment is an open
//! file and a range of it, written with `sendfile`: its bytes never pass through
//! memory, so they count in `queued` but not in `memory_queued`.

use super::pool::{BufPool, CHUNK};
use crate::bytes::Bytes;
use crate::net::socket::{self, SigpipeBlock, MAX_IOV};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// File bytes one `flush` sends at most, so a large download on a fast socket yields
/// the loop to other connections (the reactor calls `flush` again next turn).
pub(crate) const FILE_BUDGET: usize = 1 << 20;

/// A range of an open file, shared so that one open file can serve many responses.
pub struct FileSeg {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: usize,
}

enum Chunk {
    Copied(Vec<u8>),
    Shared(Bytes),
    File(FileSeg),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Copied(v) => v.len(),
            Chunk::Shared(b) => b.len(),
            Chunk::File(f) => f.len,
        }
    }

    /// The bytes of a memory chunk; None for a file segment.
    fn memory(&self) -> Option<&[u8]> {
        match self {
            Chunk::Copied(v) => Some(v),
            Chunk::Shared(b) => Some(b.as_slice()),
            Chunk::File(_) => None,
        }
    }
}

/// Result of writing as much as the socket takes.
pub struct Flushed {
    pub written: usize,
    /// A real error (not "would block"): the connection is done for.
    pub error: Option<io::Error>,
    /// The file budget ran out with the socket still writable: call `flush` again
    /// soon (no readiness edge will come for it).
    pub more: bool,
}

#[derive(Default)]
pub struct SendQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head_off: usize,
    queued: usize,
    /// The part of `queued` that is file segments.
    file_queued: usize,
    /// TCP_CORK is on: set while file segments are queued so the response head and
    /// the file's pages leave in full-sized segments, off once the last file byte is
    /// out so the tail is not held back.
    corked: bool,
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

    /// Queues a copy of `data`, filling the last copied chunk before taking another.
    pub fn push_copy(&mut self, mut data: &[u8], pool: &mut BufPool) {
        self.queued += data.len();
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
    pub fn push_bytes(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        self.queued += b.len();
        self.chunks.push_back(Chunk::Shared(b));
    }

    /// Queues a file range; its bytes are read by the kernel when they are sent.
    pub fn push_file(&mut self, f: FileSeg) {
        if f.len == 0 {
            return;
        }
        self.queued += f.len;
        self.file_queued += f.len;
        self.chunks.push_back(Chunk::File(f));
    }

    /// Writes until the queue is empty, the socket is full or the file budget is
    /// spent. SIGPIPE stays blocked on this thread from the first file segment to the
    /// end of the call (see `SigpipeBlock`).
    pub fn flush(&mut self, sock: &impl AsRawFd, pool: &mut BufPool) -> Flushed {
        if self.file_queued > 0 && !self.corked {
            self.corked = socket::set_cork(sock, true).is_ok();
        }
        let flushed = self.flush_loop(sock, pool);
        if self.corked && self.file_queued == 0 {
            // Uncorking pushes out whatever partial segment the cork was holding.
            let _ = socket::set_cork(sock, false);
            self.corked = false;
        }
        flushed
    }

    fn flush_loop(&mut self, sock: &impl AsRawFd, pool: &mut BufPool) -> Flushed {
        let mut written = 0;
        let mut budget = FILE_BUDGET;
        let mut guard: Option<SigpipeBlock> = None;
        while let Some(front) = self.chunks.front() {
            let r = match front {
                Chunk::File(_) if budget == 0 => return Flushed { written, error: None, more: true },
                Chunk::File(f) => {
                    let g = guard.get_or_insert_with(SigpipeBlock::new);
                    let r = self.send_file(sock, f, budget, g);
                    budget -= r.as_ref().map_or(0, |&(n, _)| n);
                    r
                }
                _ => self.send_memory(sock),
            };
            match r {
                Ok((n, offered)) => {
                    written += n;
                    self.advance(n, pool);
                    if n < offered {
                        break;
                    }
                }
                Err(e) if socket::would_block(&e) => break,
                Err(e) => return Flushed { written, error: Some(e), more: false },
            }
        }
        Flushed { written, error: None, more: false }
    }

    /// One `sendfile` of the front file segment, at most `budget` bytes. Returns
    /// bytes written and bytes offered (the same: see below).
    fn send_file(&self, sock: &impl AsRawFd, f: &FileSeg, budget: usize, guard: &SigpipeBlock) -> io::Result<(usize, usize)> {
        let want = (f.len - self.head_off).min(budget);
        match socket::send_file(sock, &*f.file, f.offset + self.head_off as u64, want, guard)? {
            // End of file before the end of the segment: the file shrank under a
            // response whose length is already promised.
            0 => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent")),
            // A short count is either a full socket or the end of the file; only the
            // next call can tell (EAGAIN or 0), so it is not taken as "full" here.
            n => Ok((n, n)),
        }
    }

    /// One vectored send of the memory chunks at the front (up to the first file
    /// segment). Returns bytes written and bytes offered.
    fn send_memory(&self, sock: &impl AsRawFd) -> io::Result<(usize, usize)> {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let mut n = 0;
        let mut offered = 0;
        for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
            let Some(b) = c.memory() else { break };
            let b = if i == 0 { &b[self.head_off..] } else { b };
            iov[n] = IoSlice::new(b);
            offered += b.len();
            n += 1;
        }
        socket::send_vectored(sock, &iov[..n]).map(|w| (w, offered))
    }

    /// Drops `n` written bytes from the front; finished chunks go back to the pool or
    /// release their reference right here.
    fn advance(&mut self, mut n: usize, pool: &mut BufPool) {
        self.queued -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else { return };
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
    }

    fn pop_front(&mut self, pool: &mut BufPool) {
        match self.chunks.pop_front() {
            Some(Chunk::Copied(v)) => pool.put(v),
            Some(Chunk::Shared(b)) => drop(b),
            Some(Chunk::File(f)) => drop(f),
            None => {}
        }
    }

    /// Moves everything queued in `other` to the end of this queue, in order.
    pub fn append(&mut self, other: &mut SendQueue) {
        debug_assert_eq!(other.head_off, 0, "a side queue is never partly written");
        self.queued += other.queued;
        self.file_queued += other.file_queued;
        self.chunks.append(&mut other.chunks);
        other.queued = 0;
        other.file_queued = 0;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn partial_writes_keep_order_and_release_after_written() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let shared = Bytes::from_vec(big.clone());
        q.push_copy(b"head:", &mut pool);
        q.push_bytes(shared.clone());
        q.push_copy(b":tail", &mut pool);
        let total = q.queued();
        let reader = read_all(b);
        let sent = flush_until_empty(&mut q, &a, &mut pool, |q, _| {
            // Still queued: our reference plus the queue's.
            assert!(shared.ref_count() >= 2 || q.queued() < 6);
        });
        assert_eq!(sent, total);
        // Written: the queue let go of its reference.
        assert_eq!(shared.ref_count(), 1);
        drop(a);
        let got = reader.join().unwrap();
        assert_eq!(&got[..5], b"head:");
        assert_eq!(&got[5..5 + big.len()], &big[..]);
        assert_eq!(&got[5 + big.len()..], b":tail");
    }

    /// Everything `b` receives until the other end closes, on another thread.
    pub(super) fn read_all(mut b: UnixStream) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            got
        })
    }

    /// Flushes until the queue is empty, calling `between` after each flush that
    /// left something queued. Returns the bytes written.
    pub(super) fn flush_until_empty(q: &mut SendQueue, a: &UnixStream, pool: &mut BufPool, mut between: impl FnMut(&SendQueue, &Flushed)) -> usize {
        let mut sent = 0;
        while !q.is_empty() {
            let f = q.flush(a, pool);
            assert!(f.error.is_none());
            sent += f.written;
            if !q.is_empty() {
                between(q, &f);
                if !f.more {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        sent
    }
}

#[cfg(test)]
mod file_tests {
    use super::tests::{flush_until_empty, read_all};
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// A file of `len` patterned bytes, removed from the directory at once (the open
    /// file stays readable).
    fn temp_file(len: usize, salt: u8) -> (Arc<File>, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8 ^ salt).collect();
        let path = std::env::temp_dir().join(format!("tern-sq-{}-{salt}", std::process::id()));
        File::create(&path).unwrap().write_all(&data).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        (Arc::new(f), data)
    }

    fn seg(file: &Arc<File>, offset: u64, len: usize) -> FileSeg {
        FileSeg { file: file.clone(), offset, len }
    }

    #[test]
    fn files_interleaved_with_memory_keep_order_through_partial_writes() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let (f1, d1) = temp_file(3 * FILE_BUDGET + 17, 1);
        let (f2, d2) = temp_file(5000, 2);
        let shared = Bytes::from_vec(vec![7u8; 100_000]);
        q.push_copy(b"head:", &mut pool);
        q.push_file(seg(&f1, 0, d1.len()));
        q.push_bytes(shared.clone());
        q.push_file(seg(&f2, 1000, 3000));
        q.push_copy(b":mid:", &mut pool);
        q.push_file(seg(&f1, 10, 5));
        q.push_copy(b":tail", &mut pool);
        let total = q.queued();
        assert_eq!(q.memory_queued(), 5 + 100_000 + 5 + 5, "file bytes are not memory");
        let reader = read_all(b);
        let sent = flush_until_empty(&mut q, &a, &mut pool, |_, f| assert!(f.written <= FILE_BUDGET + 200_000, "one flush is bounded"));
        assert_eq!((sent, q.queued(), q.memory_queued()), (total, 0, 0));
        assert_eq!(Arc::strong_count(&f1), 1, "the queue let go of the file");
        drop(a);
        let mut want = b"head:".to_vec();
        want.extend_from_slice(&d1);
        want.extend_from_slice(&[7u8; 100_000]);
        want.extend_from_slice(&d2[1000..4000]);
        want.extend_from_slice(b":mid:");
        want.extend_from_slice(&d1[10..15]);
        want.extend_from_slice(b":tail");
        assert!(reader.join().unwrap() == want, "bytes arrive in queue order");
    }

    #[test]
    fn a_file_shorter_than_its_segment_is_an_error() {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let (f, _) = temp_file(10, 3);
        q.push_file(seg(&f, 0, 20));
        let r = q.flush(&a, &mut pool);
        assert_eq!(r.written, 10);
        assert_eq!(r.error.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
    }

    #[test]
    fn clear_and_append_keep_the_counts() {
        let mut pool = BufPool::default();
        let (f, _) = temp_file(100, 4);
        let mut side = SendQueue::default();
        side.push_copy(b"abc", &mut pool);
        side.push_file(seg(&f, 0, 100));
        let mut q = SendQueue::default();
        q.push_copy(b"x", &mut pool);
        q.append(&mut side);
        assert_eq!((q.queued(), q.memory_queued(), side.queued()), (104, 4, 0));
        assert_eq!(q.contiguous_for_tests(), b"xabc");
        q.clear(&mut pool);
        assert_eq!((q.queued(), q.memory_queued()), (0, 0));
        assert_eq!(Arc::strong_count(&f), 1);
    }
}
