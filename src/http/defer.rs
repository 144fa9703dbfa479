//! Which deferred requests may still be answered, shared between the loop and the
//! threads holding tokens. A respond is checked here first, so a second or late
//! respond fails at the call (and releases its buffer) instead of vanishing.

use crate::bytes::Bytes;
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;

/// Identifies one request: (connection id, sequence on that connection).
pub type Token = (u64, u64);

/// One step of the answer to a deferred request, posted by a remote to the loop.
#[derive(Clone)]
pub struct Answer {
    pub token: Token,
    pub stage: Stage,
    pub status: u16,
    pub headers: Box<[u8]>,
    pub body: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Deferred, no answer posted yet.
    Waiting,
    /// `respond_begin` posted; writes may follow until `end`.
    Streaming,
    /// A complete answer is posted; nothing more may come.
    Ended,
}

/// What a thread wants to post for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Whole,
    Begin,
    Write,
    End,
}

#[derive(Default)]
struct Live {
    tokens: HashMap<Token, State>,
    /// Per open connection that deferred a request: the highest sequence deferred.
    /// A token at or below it that is no longer live was answered (`Protocol`).
    conns: HashMap<u64, u64>,
}

#[derive(Default)]
pub struct DeferRegistry {
    live: Mutex<Live>,
}

/// The state a token had before `advance`, to put back if the post fails.
#[derive(Debug, Clone, Copy)]
pub struct Undo(State);

impl DeferRegistry {
    pub fn insert(&self, t: Token) {
        let mut live = self.live.lock();
        live.tokens.insert(t, State::Waiting);
        let max = live.conns.entry(t.0).or_insert(0);
        *max = (*max).max(t.1);
    }

    /// Records `stage` if it is valid now: `Closed` for a timed-out token or a gone
    /// connection, `Protocol` for a step out of order (a second respond), also once the
    /// answer was written.
    pub fn advance(&self, t: Token, stage: Stage) -> Result<Undo> {
        let mut live = self.live.lock();
        let answered = live.conns.get(&t.0).is_some_and(|max| t.1 <= *max);
        let Some(state) = live.tokens.get_mut(&t) else {
            return Err(if answered { Error::Protocol } else { Error::Closed });
        };
        let prev = *state;
        *state = match (*state, stage) {
            (State::Waiting, Stage::Whole) => State::Ended,
            (State::Waiting, Stage::Begin) => State::Streaming,
            (State::Streaming, Stage::Write) => State::Streaming,
            (State::Streaming, Stage::End) => State::Ended,
            _ => return Err(Error::Protocol),
        };
        Ok(Undo(prev))
    }

    /// Puts back the state before a step whose post failed (the queue was full), so
    /// the caller may retry. Nothing if the token is gone meanwhile.
    pub fn undo(&self, t: Token, u: Undo) {
        if let Some(s) = self.live.lock().tokens.get_mut(&t) {
            *s = u.0;
        }
    }

    /// True if an answer was posted (even if not yet handled by the loop).
    pub fn answered(&self, t: Token) -> bool {
        matches!(self.live.lock().tokens.get(&t), Some(State::Streaming | State::Ended))
    }

    pub fn remove(&self, t: Token) {
        self.live.lock().tokens.remove(&t);
    }

    /// The connection is closing or gone: its remaining tokens answer `Closed`.
    pub fn remove_conn(&self, conn: u64) {
        self.live.lock().conns.remove(&conn);
    }

    pub fn len(&self) -> usize {
        self.live.lock().tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.lock().tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_and_late_responds_are_refused() {
        let r = DeferRegistry::default();
        r.insert((1, 1));
        assert_eq!(r.advance((1, 1), Stage::Write).err(), Some(Error::Protocol));
        r.advance((1, 1), Stage::Whole).unwrap();
        assert_eq!(r.advance((1, 1), Stage::Whole).err(), Some(Error::Protocol));
        r.remove((1, 1));
        assert_eq!(r.advance((1, 1), Stage::Whole).err(), Some(Error::Protocol));
        r.remove_conn(1);
        assert_eq!(r.advance((1, 1), Stage::Whole).err(), Some(Error::Closed));
        r.insert((1, 2));
        r.advance((1, 2), Stage::Begin).unwrap();
        r.advance((1, 2), Stage::Write).unwrap();
        r.advance((1, 2), Stage::End).unwrap();
        assert_eq!(r.advance((1, 2), Stage::Write).err(), Some(Error::Protocol));
    }
}
