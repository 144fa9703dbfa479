//! The per-connection send queue. Copied bytes are packed into pooled chunks;
//! `Bytes` are queued by reference and go to the kernel as they are (`writev`-style
//! `sendmsg`), and each reference is dropped, which may run its free callback, only
//! once its last byte is written or the queue is discarded.

use super::pool::{BufPool, CHUNK};
use crate::bytes::Bytes;
use crate::net::socket::{self, MAX_IOV};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

enum Chunk {
    Copied(Vec<u8>),
    Shared(Bytes),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Copied(v) => v,
            Chunk::Shared(b) => b.as_slice(),
        }
    }
}

/// Result of writing as much as the socket takes.
pub struct Flushed {
    pub written: usize,
    /// A real error (not "would block"): the connection is done for.
    pub error: Option<io::Error>,
}

#[derive(Default)]
pub struct SendQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head_off: usize,
    queued: usize,
}

impl SendQueue {
    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued
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

    /// Writes until the queue is empty or the socket is full.
    pub fn flush(&mut self, sock: &impl AsRawFd, pool: &mut BufPool) -> Flushed {
        let mut written = 0;
        while !self.chunks.is_empty() {
            let (offered, r) = {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let mut n = 0;
                let mut offered = 0;
                for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
                    let b = if i == 0 { &c.bytes()[self.head_off..] } else { c.bytes() };
                    iov[n] = IoSlice::new(b);
                    offered += b.len();
                    n += 1;
                }
                (offered, socket::send_vectored(sock, &iov[..n]))
            };
            match r {
                Ok(n) => {
                    written += n;
                    self.advance(n, pool);
                    if n < offered {
                        break;
                    }
                }
                Err(e) if socket::would_block(&e) => break,
                Err(e) => return Flushed { written, error: Some(e) },
            }
        }
        Flushed { written, error: None }
    }

    /// Drops `n` written bytes from the front; finished chunks go back to the pool or
    /// release their reference right here.
    fn advance(&mut self, mut n: usize, pool: &mut BufPool) {
        self.queued -= n;
        while n > 0 {
            let front_left = self.chunks.front().map(|c| c.bytes().len() - self.head_off).unwrap_or(0);
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
            None => {}
        }
    }

    /// Moves everything queued in `other` to the end of this queue, in order.
    pub fn append(&mut self, other: &mut SendQueue) {
        debug_assert_eq!(other.head_off, 0, "a side queue is never partly written");
        self.queued += other.queued;
        self.chunks.append(&mut other.chunks);
        other.queued = 0;
    }

    #[cfg(test)]
    pub fn contiguous_for_tests(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|c| c.bytes().iter().copied()).skip(self.head_off).collect()
    }

    /// Discards everything queued, releasing every reference.
    pub fn clear(&mut self, pool: &mut BufPool) {
        while !self.chunks.is_empty() {
            self.pop_front(pool);
        }
        self.head_off = 0;
        self.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn partial_writes_keep_order_and_release_after_written() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let shared = Bytes::from_vec(big.clone());
        q.push_copy(b"head:", &mut pool);
        q.push_bytes(shared.clone());
        q.push_copy(b":tail", &mut pool);
        let total = q.queued();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            got
        });
        let mut sent = 0;
        while !q.is_empty() {
            let f = q.flush(&a, &mut pool);
            assert!(f.error.is_none());
            sent += f.written;
            if !q.is_empty() {
                // Still queued: our reference plus the queue's.
                assert!(shared.ref_count() >= 2 || q.queued() < 6);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        assert_eq!(sent, total);
        // Written: the queue let go of its reference.
        assert_eq!(shared.ref_count(), 1);
        drop(a);
        let got = reader.join().unwrap();
        assert_eq!(&got[..5], b"head:");
        assert_eq!(&got[5..5 + big.len()], &big[..]);
        assert_eq!(&got[5 + big.len()..], b":tail");
    }
}
