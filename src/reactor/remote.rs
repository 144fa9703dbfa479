//! `Remote`: how other threads reach a manager. Messages go through one bounded
//! channel (order is kept per remote and connection) and wake the loop through
//! mio's `Waker`, at most once per drain rather than once per message.

use super::Manager;
use crate::bytes::Bytes;
use crate::conn::ConnId;
use crate::error::{Error, Result};
use crate::http::defer::{DeferRegistry, Step as DeferStep, Token};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use mio::Waker;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A function to run on the loop thread.
pub type Call = Box<dyn FnOnce(&Manager) + Send>;

/// What a remote can ask of the loop.
pub enum Msg {
    Send(ConnId, Bytes),
    /// One WebSocket message with this opcode.
    WsSend(ConnId, u8, Bytes),
    Wakeup(ConnId, Option<Bytes>),
    Close(ConnId),
    Call(Call),
    /// A step of the answer to a deferred HTTP request.
    Http(HttpAnswer),
}

/// What `Remote::http_respond*` posts.
pub struct HttpAnswer {
    pub token: Token,
    pub step: DeferStep,
    pub status: u16,
    pub headers: Box<[u8]>,
    pub body: Option<Bytes>,
}

struct Shared {
    tx: Sender<Msg>,
    /// Set when the manager is freed. Posting holds the read side, so once the loop
    /// holds the write side and sets it, no message can slip in behind the final drain.
    closed: RwLock<bool>,
    /// A wake is already on its way; further posts need not make the syscall.
    wake_pending: AtomicBool,
    waker: Arc<Waker>,
    defer: Arc<DeferRegistry>,
}

/// A handle other threads use to post to one manager. Cheap to clone; outlives the
/// manager safely (posts then fail with `Closed`).
#[derive(Clone)]
pub struct Remote {
    shared: Arc<Shared>,
}

impl Remote {
    /// Queues `msg` for the loop. On failure the message (and any buffer in it) is
    /// dropped, after the internal lock is released, since a buffer's free callback
    /// may itself post.
    pub fn post(&self, msg: Msg) -> Result<()> {
        let refused = {
            let closed = self.shared.closed.read();
            if *closed {
                Some((msg, Error::Closed))
            } else {
                match self.shared.tx.try_send(msg) {
                    Ok(()) => None,
                    Err(TrySendError::Full(m)) => Some((m, Error::Full)),
                    Err(TrySendError::Disconnected(m)) => Some((m, Error::Closed)),
                }
            }
        };
        if let Some((msg, err)) = refused {
            drop(msg);
            return Err(err);
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

    pub fn call(&self, f: impl FnOnce(&Manager) + Send + 'static) -> Result<()> {
        self.post(Msg::Call(Box::new(f)))
    }

    /// Posts one step of the answer to a deferred request. Checked first against the
    /// requests still waiting: `Closed` once the request timed out or its connection
    /// is gone, `Protocol` for a second answer or a step out of order. On any error
    /// `body` is released here.
    pub fn http_respond(&self, token: Token, step: DeferStep, status: u16, headers: &[u8], body: Option<Bytes>) -> Result<()> {
        if step != DeferStep::Write && (!(100..=999).contains(&status) || !crate::http::response::valid_extra_headers(headers)) {
            return Err(Error::Invalid);
        }
        let undo = self.shared.defer.advance(token, step)?;
        let answer = HttpAnswer { token, step, status, headers: headers.into(), body };
        let r = self.post(Msg::Http(answer));
        if r.is_err() {
            // Not posted: the request is where it was, and the caller may retry.
            self.shared.defer.undo(token, undo);
        }
        r
    }
}

/// The loop's end of the channel.
pub struct Hub {
    shared: Arc<Shared>,
    rx: Receiver<Msg>,
}

impl Hub {
    pub fn new(capacity: usize, waker: Arc<Waker>, defer: Arc<DeferRegistry>) -> Hub {
        let (tx, rx) = bounded(capacity);
        let shared = Arc::new(Shared { tx, closed: RwLock::new(false), wake_pending: AtomicBool::new(false), waker, defer });
        Hub { shared, rx }
    }

    pub fn remote(&self) -> Remote {
        Remote { shared: self.shared.clone() }
    }

    /// Called before draining: posts from now on wake the loop again.
    pub fn arm(&self) {
        self.shared.wake_pending.store(false, Ordering::Release);
    }

    pub fn try_recv(&self) -> Option<Msg> {
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
