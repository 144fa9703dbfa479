//! The embedder's raw output and input on a connection: queueing bytes (copied,
//! shared or from a file) within MAX_SEND_QUEUE, and consuming received bytes. Raw
//! output goes only to connections whose protocol leaves the byte stream to the
//! embedder (`Protocol::raw_output`): bytes slipped between an HTTP response's
//! framing would corrupt it, so there they are refused (`Protocol`).

use super::conn::Flags;
use super::Reactor;
use crate::buf::pool::BufPool;
use crate::buf::send_queue::{FileSeg, SendQueue};
use crate::bytes::Bytes;
use crate::error::{Error, Failure, Result};
use crate::proto::{ConnId, Stack};
use std::sync::Arc;

impl<P: Stack> Reactor<P> {
    /// Queues a copy of `data`.
    pub fn send(&self, id: ConnId, data: &[u8]) -> Result<()> {
        self.enqueue(id, data.len(), |q, pool| q.push_copy(data, pool))
    }

    /// Queues `b` by reference; it is released once written or discarded.
    pub fn send_bytes(&self, id: ConnId, b: Bytes) -> Result<()> {
        let len = b.len();
        let mut slot = Some(b);
        let r = self.enqueue(id, len, |q, pool| q.push_bytes(slot.take().expect("called once"), pool));
        drop(slot);
        r
    }

    /// Queues `len` bytes of `file` from `offset`, written with `sendfile` (never
    /// read into memory, so not counted against MAX_SEND_QUEUE). The file stays open
    /// until they are written or the connection ends.
    pub fn send_file(&self, id: ConnId, file: Arc<std::fs::File>, offset: u64, len: usize) -> Result<()> {
        let seg = FileSeg { file, offset, len };
        self.enqueue(id, 0, |q, pool| q.push_file(seg, pool))
    }

    /// Checks the memory limit against `len` more bytes, then runs `push`.
    fn enqueue(&self, id: ConnId, len: usize, push: impl FnOnce(&mut SendQueue, &mut BufPool)) -> Result<()> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let max = inner.opts.max_send_queue;
        let conn = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        if conn.is_listener() || !conn.proto.raw_output() {
            return Err(Error::Protocol);
        }
        if !conn.accepts_output() {
            return Err(Error::Closed);
        }
        let would_be = conn.sendq.memory_queued().saturating_add(len);
        if would_be > max {
            // Counted with the buffer that crossed the limit: the number says why.
            let msg = format!("send queue limit exceeded ({would_be} bytes queued with this buffer, limit {max})");
            crate::tern_log!(crate::log::Level::Warn, "connection {id}: {msg}");
            inner.fail_locked(id, Failure::new(Error::Full, msg));
            return Err(Error::Full);
        }
        push(&mut conn.sendq, &mut inner.pool);
        if !conn.sendq.is_empty() {
            inner.schedule(id, Flags::DIRTY);
        }
        Ok(())
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self, id: ConnId) -> Result<usize> {
        self.with_conn(id, |c| c.sendq.queued())
    }

    /// Drops the first `n` received bytes. More than was received is a caller bug
    /// (`Invalid`): consuming none of it is safer than silently dropping bytes that
    /// arrive later.
    pub fn consume(&self, id: ConnId, n: usize) -> Result<()> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let conn = inner.conns.get_mut(&id).ok_or(Error::Closed)?;
        if conn.flags.has(Flags::LENT) {
            // The buffer is with a READ handler; `read_left` counts what it may still
            // drop (nothing, while another protocol's event has it).
            inner.read_left = inner.read_left.checked_sub(n).ok_or(Error::Invalid)?;
            return Ok(());
        }
        if n > conn.recv.len() {
            return Err(Error::Invalid);
        }
        conn.recv.consume(n);
        conn.recv.release_if_empty(&mut inner.pool);
        if conn.flags.has(Flags::READ_PAUSED) {
            conn.flags.clear(Flags::READ_PAUSED);
            inner.schedule(id, Flags::READ_MORE);
        }
        Ok(())
    }
}
