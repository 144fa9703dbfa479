//! The per-connection receive buffer: every byte received and not yet consumed, read
//! by the transport straight into pooled memory (plaintext, whatever the transport).

use super::pool::{BufPool, CHUNK};
use std::io;
use std::mem::MaybeUninit;

/// Something that writes received bytes into uninitialised memory: a socket, or a
/// decrypting transport.
///
/// # Safety
/// `read_uninit` returning `Ok(n)` promises that the first `n` bytes of `buf` were
/// initialised by it (and `n <= buf.len()`).
pub unsafe trait ReadInto {
    fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize>;
}

/// The room a read gets once reads keep filling their buffer (a bulk transfer being
/// streamed through): fewer, larger reads, while an idle connection still owns no
/// memory and an ordinary one a pooled CHUNK.
const BULK: usize = 128 * 1024;

/// Bytes `start..buf.len()` are unconsumed. An empty buffer owns no memory.
#[derive(Default)]
pub struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    /// The last read filled all the room it had: the next buffer may be larger.
    bulk: bool,
}

/// What one read did.
pub enum ReadOutcome {
    /// `n` bytes arrived; `filled` says the read used all the room it had, so more
    /// may be waiting in the kernel.
    Data { n: usize, filled: bool },
    Eof,
    /// The buffer holds `max` unconsumed bytes: reading pauses until some are consumed.
    Full,
}

impl RecvBuf {
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The unconsumed bytes, to change in place (unmasking WebSocket payloads).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the first `n` unconsumed bytes (all of them if `n` is larger).
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Gives the memory back to the pool once nothing is left in it (a bulk buffer is
    /// kept while its transfer goes on: the kernel had more for it at the last read).
    pub fn release_if_empty(&mut self, pool: &mut BufPool) {
        if self.bulk && self.buf.capacity() == BULK {
            return;
        }
        if self.is_empty() && self.buf.capacity() > 0 {
            pool.put(std::mem::take(&mut self.buf));
            self.start = 0;
        }
    }

    /// Discards everything and gives the memory back.
    pub fn clear(&mut self, pool: &mut BufPool) {
        self.buf.clear();
        self.start = 0;
        self.bulk = false;
        self.release_if_empty(pool);
    }

    /// One read from `src` into the free room, growing the buffer (up to `max`
    /// unconsumed bytes) when the handler is holding on to what it has.
    pub fn read_from(&mut self, src: &mut impl ReadInto, pool: &mut BufPool, max: usize) -> io::Result<ReadOutcome> {
        self.make_room(pool, max);
        let len = self.buf.len();
        let room = self.buf.capacity() - len;
        if room == 0 {
            return Ok(ReadOutcome::Full);
        }
        let n = match src.read_uninit(self.buf.spare_capacity_mut()) {
            Ok(n) => n,
            Err(e) => {
                // Nothing more waiting (or a failure): the transfer, if any, paused.
                self.bulk = false;
                return Err(e);
            }
        };
        if n == 0 {
            return Ok(ReadOutcome::Eof);
        }
        assert!(n <= room, "a reader claimed more bytes than it was given room for");
        // SAFETY: `ReadInto` guarantees the first `n <= room` spare bytes are initialised.
        unsafe { self.buf.set_len(len + n) };
        self.bulk = n == room;
        Ok(ReadOutcome::Data { n, filled: n == room })
    }

    fn make_room(&mut self, pool: &mut BufPool, max: usize) {
        if self.buf.capacity() == 0 {
            self.buf = if self.bulk && max >= BULK { Vec::with_capacity(BULK) } else { pool.get() };
            self.start = 0;
            return;
        }
        if self.buf.len() < self.buf.capacity() {
            return;
        }
        if self.start > 0 {
            // Slide the unconsumed tail to the front rather than grow.
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
            return;
        }
        let unconsumed = self.buf.len();
        if unconsumed < max {
            self.buf.reserve_exact(unconsumed.max(CHUNK).min(max - unconsumed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    struct Reader<'a>(&'a UnixStream);

    // SAFETY: the bytes are zeroed first, so all of them are initialised.
    unsafe impl ReadInto for Reader<'_> {
        fn read_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
            let buf: &mut [u8] = {
                for b in buf.iter_mut() {
                    b.write(0);
                }
                // SAFETY: every element was just initialised.
                unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) }
            };
            let mut s = self.0;
            s.read(buf)
        }
    }

    #[test]
    fn grows_until_max_then_reports_full_and_recycles() {
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut pool = BufPool::default();
        let mut rb = RecvBuf::default();
        a.write_all(&vec![7u8; CHUNK * 2 + 10]).unwrap();
        let max = CHUNK * 2;
        let mut total = 0;
        loop {
            match rb.read_from(&mut Reader(&b), &mut pool, max).unwrap() {
                ReadOutcome::Data { n, .. } => total += n,
                ReadOutcome::Full => break,
                ReadOutcome::Eof => panic!("unexpected eof"),
            }
        }
        assert_eq!(total, max);
        assert_eq!(rb.len(), max);
        rb.consume(CHUNK * 2);
        assert!(rb.is_empty());
        rb.release_if_empty(&mut pool);
        // A grown buffer is not kept: the pool only holds standard chunks.
        assert_eq!(pool.idle(), 0);
        match rb.read_from(&mut Reader(&b), &mut pool, max).unwrap() {
            ReadOutcome::Data { n, filled } => assert_eq!((n, filled), (10, false)),
            _ => panic!("expected data"),
        }
        rb.consume(10);
        rb.release_if_empty(&mut pool);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn a_bulk_transfer_reads_larger_pieces_and_an_idle_buffer_is_freed() {
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut pool = BufPool::default();
        let mut rb = RecvBuf::default();
        a.write_all(&vec![1u8; CHUNK + BULK]).unwrap();
        let max = 1 << 20;
        // The first read fills its pooled chunk; consumed at once, as a stream is.
        assert!(matches!(rb.read_from(&mut Reader(&b), &mut pool, max).unwrap(), ReadOutcome::Data { n: CHUNK, filled: true }));
        rb.consume(CHUNK);
        rb.release_if_empty(&mut pool);
        assert_eq!(pool.idle(), 1, "the pooled chunk went back");
        // The kernel had more: the next read gets BULK room.
        assert!(matches!(rb.read_from(&mut Reader(&b), &mut pool, max).unwrap(), ReadOutcome::Data { n: BULK, filled: true }));
        rb.consume(BULK);
        rb.release_if_empty(&mut pool);
        assert_eq!(rb.buf.capacity(), BULK, "kept while the transfer goes on");
        // Nothing more waiting: the transfer paused and the memory is given up.
        assert!(rb.read_from(&mut Reader(&b), &mut pool, max).is_err());
        rb.release_if_empty(&mut pool);
        assert_eq!(rb.buf.capacity(), 0);
        // A connection allowed less than BULK never gets it.
        a.write_all(&vec![1u8; 3 * CHUNK]).unwrap();
        for _ in 0..2 {
            let _ = rb.read_from(&mut Reader(&b), &mut pool, CHUNK).unwrap();
            rb.consume(CHUNK);
            rb.release_if_empty(&mut pool);
        }
        assert_eq!(rb.buf.capacity(), 0);
    }
}
