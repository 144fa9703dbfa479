//! `Remote`: how other threads reach a manager. Messages go through one bounded
//! channel (order is kept per remote and connection) and wake the loop through
//! mio's `Waker`, at most once per drain rather than once per message. A protocol's
//! own messages travel as `Msg::Proto` without this module knowing what they are.

use super::event::Event;
use super::Reactor;
use crate::bytes::Bytes;
use crate::error::{Error, Result};
use crate::proto::{ConnId, Stack};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use mio::Waker;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A function to run on the loop thread.
pub type Call<P> = Box<dyn FnOnce(&Reactor<P>) + Send>;

/// What a remote can ask of the loop.
pub enum Msg<P: Stack> {
    Send(ConnId, Bytes),
    Wakeup(ConnId, Option<Bytes>),
    Close(ConnId),
    Call(Call<P>),
    /// For the protocol of connection `ConnId` (a deferred HTTP answer, ...).
    Proto(ConnId, P::Posted),
    /// For every connection `Protocol::recipients` names (a publish to a topic).
    Fanout(P::Posted),
}

struct Shared<P: Stack> {
    tx: Sender<Msg<P>>,
    /// Set when the manager is freed. Posting holds the read side, so once the loop
    /// holds the write side and sets it, no message can slip in behind the final drain.
    closed: RwLock<bool>,
    /// A wake is already on its way; further posts need not make the syscall.
    wake_pending: AtomicBool,
    waker: Arc<Waker>,
    proto: P::Remote,
}

/// A handle other threads use to post to one manager. Cheap to clone; outlives the
/// manager safely (posts then fail with `Closed`).
pub struct Remote<P: Stack> {
    shared: Arc<Shared<P>>,
}

impl<P: Stack> Clone for Remote<P> {
    fn clone(&self) -> Remote<P> {
        Remote { shared: self.shared.clone() }
    }
}

impl<P: Stack> Remote<P> {
    /// Queues `msg` for the loop. On failure the message (and any buffer in it) is
    /// dropped, after the internal lock is released, since a buffer's free callback
    /// may itself post.
    pub fn post(&self, msg: Msg<P>) -> Result<()> {
        self.try_post(msg).map_err(|(msg, err)| {
            drop(msg);
            err
        })
    }

    /// `post`, giving a refused message back instead of dropping it: for a caller
    /// that holds a lock its buffer's free callback could want.
    pub fn try_post(&self, msg: Msg<P>) -> std::result::Result<(), (Msg<P>, Error)> {
        {
            let closed = self.shared.closed.read();
            if *closed {
                return Err((msg, Error::Closed));
            }
            match self.shared.tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(m)) => return Err((m, Error::Full)),
                Err(TrySendError::Disconnected(m)) => return Err((m, Error::Closed)),
            }
        }
        if !self.shared.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = self.shared.waker.wake();
        }
        Ok(())
    }

    pub fn send(&self, id: ConnId, b: Bytes) -> Result<()> {
        self.post(Msg::Send(id, b))
    }

    pub fn wakeup(&self, id: ConnId, b: Option<Bytes>) -> Result<()> {
        self.post(Msg::Wakeup(id, b))
    }

    pub fn close(&self, id: ConnId) -> Result<()> {
        self.post(Msg::Close(id))
    }

    pub fn call(&self, f: impl FnOnce(&Reactor<P>) + Send + 'static) -> Result<()> {
        self.post(Msg::Call(Box::new(f)))
    }

    /// Whether the manager is gone (every post fails with `Closed`).
    pub fn is_closed(&self) -> bool {
        *self.shared.closed.read()
    }

    /// What the protocols keep for other threads (a registry of deferred requests, ...).
    pub fn proto(&self) -> &P::Remote {
        &self.shared.proto
    }
}

/// The loop's end of the channel.
pub struct Hub<P: Stack> {
    shared: Arc<Shared<P>>,
    rx: Receiver<Msg<P>>,
}

impl<P: Stack> Hub<P> {
    pub fn new(capacity: usize, waker: Arc<Waker>, proto: P::Remote) -> Hub<P> {
        let (tx, rx) = bounded(capacity);
        let shared = Arc::new(Shared { tx, closed: RwLock::new(false), wake_pending: AtomicBool::new(false), waker, proto });
        Hub { shared, rx }
    }

    pub fn remote(&self) -> Remote<P> {
        Remote { shared: self.shared.clone() }
    }

    /// Called before draining: posts from now on wake the loop again.
    pub fn arm(&self) {
        self.shared.wake_pending.store(false, Ordering::Release);
    }

    pub fn try_recv(&self) -> Option<Msg<P>> {
        self.rx.try_recv().ok()
    }

    pub fn has_pending(&self) -> bool {
        !self.rx.is_empty()
    }

    /// Refuses every later post.
    pub fn close(&self) {
        *self.shared.closed.write() = true;
    }
}

impl<P: Stack> Reactor<P> {
    /// A handle for other threads.
    pub fn remote(&self) -> Result<Remote<P>> {
        self.check_alive()?;
        let hub = self.hub.get_or_init(|| {
            let inner = self.inner.borrow();
            Hub::new(inner.opts.max_posted, inner.waker.clone(), P::remote_state(&inner.shared))
        });
        Ok(hub.remote())
    }

    pub(super) fn drain_remote(&self) {
        let Some(hub) = self.hub.get() else { return };
        hub.arm();
        // Bounded so a flood from workers cannot starve the sockets.
        let budget = self.inner.borrow().opts.max_posted;
        for _ in 0..budget {
            let Some(msg) = hub.try_recv() else { return };
            self.handle_msg(msg);
        }
    }

    /// Carries out one posted message. A message for a connection that is gone is
    /// dropped here, releasing its buffer.
    pub(super) fn handle_msg(&self, msg: Msg<P>) {
        match msg {
            Msg::Send(id, b) => {
                if self.send_bytes(id, b) == Err(Error::Protocol) {
                    crate::tern_log!(crate::log::Level::Warn, "connection {id}: raw bytes from a remote refused: its protocol frames its own output");
                }
            }
            Msg::Close(id) => {
                let _ = self.close(id);
            }
            Msg::Wakeup(id, b) => {
                let data = b.as_ref().map_or(&[][..], Bytes::as_slice);
                self.emit(id, &Event::Wakeup(data));
            }
            Msg::Call(f) => {
                self.count_callback();
                f(self);
            }
            Msg::Proto(id, m) => self.drive(id, |p, cx| p.on_posted(cx, m)),
            Msg::Fanout(m) => {
                self.fanout(m);
            }
        }
    }
}
