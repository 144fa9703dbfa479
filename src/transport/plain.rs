//! Plain TCP: where bytes leave for the kernel. Memory chunks go out with one
//! vectored `sendmsg(MSG_NOSIGNAL)`, file segments with `sendfile` under a
//! `SigpipeBlock` (see net::socket), and `TCP_CORK` is held while file bytes are
//! queued so a response head and the file's pages leave in full segments.

use super::Flushed;
use crate::buf::pool::BufPool;
use crate::buf::recv_buf::{ReadInto, ReadOutcome, RecvBuf};
use crate::buf::send_queue::{FileSeg, SendQueue};
use crate::net::socket::{self, SigpipeBlock, MAX_IOV};
use mio::net::TcpStream;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;

/// File bytes one `flush` sends at most, so a large download on a fast socket yields
/// the loop to other connections (the reactor calls `flush` again next turn).
pub(crate) const FILE_BUDGET: usize = 1 << 20;

pub struct Plain {
    pub(super) stream: TcpStream,
    /// TCP_CORK is on: set while file segments are queued, off once the last file
    /// byte is out so the tail is not held back.
    corked: bool,
}

impl Plain {
    pub fn new(stream: TcpStream) -> Plain {
        Plain { stream, corked: false }
    }

    pub fn read(&mut self, recv: &mut RecvBuf, pool: &mut BufPool, max: usize) -> io::Result<ReadOutcome> {
        recv.read_from(&mut Fd(&self.stream), pool, max)
    }

    pub fn flush(&mut self, q: &mut SendQueue, pool: &mut BufPool) -> Flushed {
        flush_fd(&self.stream, &mut self.corked, q, pool)
    }
}

/// A socket as a `ReadInto`: one `recv` per read.
struct Fd<'a, S: AsRawFd>(&'a S);

// SAFETY: `socket::recv` reports exactly the bytes the kernel wrote into the buffer.
unsafe impl<S: AsRawFd> ReadInto for Fd<'_, S> {
    fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        socket::recv(self.0, buf)
    }
}

/// Writes until the queue is empty, the socket is full or the file budget is spent,
/// corking around file segments. SIGPIPE stays blocked on this thread from the first
/// file segment to the end of the call (see `SigpipeBlock`).
fn flush_fd(sock: &impl AsRawFd, corked: &mut bool, q: &mut SendQueue, pool: &mut BufPool) -> Flushed {
    if q.has_files() && !*corked {
        *corked = socket::set_cork(sock, true).is_ok();
    }
    let flushed = flush_loop(sock, q, pool);
    if *corked && !q.has_files() {
        // Uncorking pushes out whatever partial segment the cork was holding.
        let _ = socket::set_cork(sock, false);
        *corked = false;
    }
    flushed
}

fn flush_loop(sock: &impl AsRawFd, q: &mut SendQueue, pool: &mut BufPool) -> Flushed {
    let mut written = 0;
    let mut budget = FILE_BUDGET;
    let mut guard: Option<SigpipeBlock> = None;
    while !q.is_empty() {
        let r = match q.front_file() {
            Some(_) if budget == 0 => return Flushed { written, error: None, more: true },
            Some((f, done)) => {
                let g = guard.get_or_insert_with(SigpipeBlock::new);
                let r = send_file(sock, f, done, budget, g);
                budget -= r.as_ref().map_or(0, |&(n, _)| n);
                r
            }
            None => send_memory(sock, q),
        };
        match r {
            Ok((n, offered)) => {
                written += n;
                q.advance(n, pool);
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

/// One `sendfile` of the front file segment (`done` of its bytes already written), at
/// most `budget` bytes. Returns bytes written and bytes offered (the same: see below).
fn send_file(sock: &impl AsRawFd, f: &FileSeg, done: usize, budget: usize, guard: &SigpipeBlock) -> io::Result<(usize, usize)> {
    let want = (f.len - done).min(budget);
    match socket::send_file(sock, &*f.file, f.offset + done as u64, want, guard)? {
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
fn send_memory(sock: &impl AsRawFd, q: &SendQueue) -> io::Result<(usize, usize)> {
    let mut iov = [IoSlice::new(&[]); MAX_IOV];
    let (n, offered) = q.memory_slices(&mut iov);
    socket::send_vectored(sock, &iov[..n]).map(|w| (w, offered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::send_queue::FileSeg;
    use crate::bytes::Bytes;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    fn flush(q: &mut SendQueue, a: &UnixStream, pool: &mut BufPool) -> Flushed {
        let mut corked = false;
        flush_fd(a, &mut corked, q, pool)
    }

    #[test]
    fn partial_writes_keep_order_and_release_after_written() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let shared = Bytes::from_vec(big.clone());
        q.push_copy(b"head:", &mut pool);
        q.push_bytes(shared.clone(), &mut pool);
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
    fn read_all(mut b: UnixStream) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            got
        })
    }

    /// Flushes until the queue is empty, calling `between` after each flush that
    /// left something queued. Returns the bytes written.
    fn flush_until_empty(q: &mut SendQueue, a: &UnixStream, pool: &mut BufPool, mut between: impl FnMut(&SendQueue, &Flushed)) -> usize {
        let mut sent = 0;
        while !q.is_empty() {
            let f = flush(q, a, pool);
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

    /// A file of `len` patterned bytes, removed from the directory at once (the open
    /// file stays readable).
    fn temp_file(len: usize, salt: u8) -> (Arc<File>, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8 ^ salt).collect();
        let path = std::env::temp_dir().join(format!("tern-plain-{}-{salt}", std::process::id()));
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
        q.push_file(seg(&f1, 0, d1.len()), &mut pool);
        q.push_bytes(shared.clone(), &mut pool);
        q.push_file(seg(&f2, 1000, 3000), &mut pool);
        q.push_copy(b":mid:", &mut pool);
        q.push_file(seg(&f1, 10, 5), &mut pool);
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
        q.push_file(seg(&f, 0, 20), &mut pool);
        let r = flush(&mut q, &a, &mut pool);
        assert_eq!(r.written, 10);
        assert_eq!(r.error.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
    }
}
