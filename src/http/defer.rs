//! Which deferred requests may still be answered, shared between the loop and the
//! threads holding tokens. A respond is checked here first, so a second or late
//! respond fails at the call (and releases its buffer) instead of vanishing.

use super::fields::Fields;
use crate::bytes::Bytes;
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;

/// Identifies one request: (connection id, sequence on that connection).
pub type Token = (u64, u64);

/// One step of the answer to a deferred request, posted by a remote to the loop.
/// `fields` is what `fields::scan` found in `headers` on the posting thread (the
/// loop does not scan them again).
#[derive(Clone)]
pub struct Answer {
    pub token: Token,
    pub stage: Stage,
    pub status: u16,
    pub headers: Box<[u8]>,
    pub fields: Fields,
    pub body: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Deferred, no answer posted yet; whether the request is a HEAD.
    Waiting { head: bool },
    /// `respond_begin` posted; writes may follow until `end`. `left`: the body bytes
    /// the head promised that are still to come (`None`: no promise to keep).
    Streaming { left: Option<u64> },
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

/// What a step says about the body, for the checks made before it is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Nothing to check (a whole answer is checked on its own; an end).
    None,
    /// A `Begin` whose head promises this many body bytes (`None`: chunked, no
    /// promise).
    Promised(Option<u64>),
    /// A `Write` of this many bytes.
    Bytes(u64),
}

#[derive(Default)]
struct Live {
    tokens: HashMap<Token, State>,
    /// Per open connection that deferred a request: the highest sequence deferred.
    /// A token at or below it that is no longer live was answered (`Protocol`).
    conns: HashMap<u64, u64>,
    /// The manager's shutdown deadline passed: nothing more is accepted.
    frozen: bool,
}

#[derive(Default)]
pub struct DeferRegistry {
    live: Mutex<Live>,
}

/// What a step that was posted leaves to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    /// An end that came before every promised byte: the response cannot be
    /// completed (the loop fails the connection when it gets the end).
    pub short: bool,
}

impl DeferRegistry {
    /// Request `t` was deferred (`head`: it is a HEAD, whose answer has no body).
    pub fn insert(&self, t: Token, head: bool) {
        let mut live = self.live.lock();
        live.tokens.insert(t, State::Waiting { head });
        let max = live.conns.entry(t.0).or_insert(0);
        *max = (*max).max(t.1);
    }

    /// Records `stage` of `t`'s answer if it is valid now and hands it to `post` with
    /// the registry locked, so the loop cannot forget the token in between (a
    /// timeout, a shutdown's deadline): a step that returns Ok was posted while the
    /// token was live. If `post` fails, the token is left as it was (the caller may
    /// retry) and its error returned. Errors: `Closed` for a timed-out token or a
    /// gone connection, `Protocol` for a step out of order (a second respond), also
    /// once the answer was written; `Invalid` for a write past the length the head
    /// promised (nothing recorded).
    pub fn step(&self, t: Token, stage: Stage, size: Size, post: impl FnOnce() -> Result<()>) -> Result<Posted> {
        let mut live = self.live.lock();
        let answered = live.conns.get(&t.0).is_some_and(|max| t.1 <= *max);
        let frozen = live.frozen;
        let Some(state) = live.tokens.get_mut(&t).filter(|_| !frozen) else {
            return Err(if answered && !frozen { Error::Protocol } else { Error::Closed });
        };
        let prev = *state;
        let mut short = false;
        let next = match (prev, stage, size) {
            (State::Waiting { .. }, Stage::Whole, _) => State::Ended,
            (State::Waiting { head }, Stage::Begin, Size::Promised(n)) => State::Streaming { left: if head { None } else { n } },
            (State::Waiting { .. }, Stage::Begin, _) => State::Streaming { left: None },
            (State::Streaming { left: Some(l) }, Stage::Write, Size::Bytes(n)) if n > l => return Err(Error::Invalid),
            (State::Streaming { left }, Stage::Write, Size::Bytes(n)) => State::Streaming { left: left.map(|l| l - n) },
            (State::Streaming { left }, Stage::Write, _) => State::Streaming { left },
            (State::Streaming { left }, Stage::End, _) => {
                short = left.is_some_and(|l| l > 0);
                State::Ended
            }
            _ => return Err(Error::Protocol),
        };
        *state = next;
        match post() {
            Ok(()) => Ok(Posted { short }),
            Err(e) => {
                if let Some(s) = live.tokens.get_mut(&t) {
                    *s = prev;
                }
                Err(e)
            }
        }
    }

    /// True if an answer was posted (even if not yet handled by the loop).
    pub fn answered(&self, t: Token) -> bool {
        matches!(self.live.lock().tokens.get(&t), Some(State::Streaming { .. } | State::Ended))
    }

    pub fn remove(&self, t: Token) {
        self.live.lock().tokens.remove(&t);
    }

    /// The connection is closing or gone: its remaining tokens answer `Closed`.
    pub fn remove_conn(&self, conn: u64) {
        self.live.lock().conns.remove(&conn);
    }

    /// Every token answers `Closed` from now on (the shutdown's deadline passed).
    pub fn freeze(&self) {
        self.live.lock().frozen = true;
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

    fn step(r: &DeferRegistry, t: Token, stage: Stage, size: Size) -> Result<Posted> {
        r.step(t, stage, size, || Ok(()))
    }

    #[test]
    fn second_and_late_responds_are_refused() {
        let r = DeferRegistry::default();
        r.insert((1, 1), false);
        assert_eq!(step(&r, (1, 1), Stage::Write, Size::Bytes(1)).err(), Some(Error::Protocol));
        step(&r, (1, 1), Stage::Whole, Size::None).unwrap();
        assert_eq!(step(&r, (1, 1), Stage::Whole, Size::None).err(), Some(Error::Protocol));
        r.remove((1, 1));
        assert_eq!(step(&r, (1, 1), Stage::Whole, Size::None).err(), Some(Error::Protocol));
        r.remove_conn(1);
        assert_eq!(step(&r, (1, 1), Stage::Whole, Size::None).err(), Some(Error::Closed));
        r.insert((1, 2), false);
        step(&r, (1, 2), Stage::Begin, Size::Promised(None)).unwrap();
        step(&r, (1, 2), Stage::Write, Size::Bytes(5)).unwrap();
        step(&r, (1, 2), Stage::End, Size::None).unwrap();
        assert_eq!(step(&r, (1, 2), Stage::Write, Size::Bytes(1)).err(), Some(Error::Protocol));
    }

    #[test]
    fn a_promised_length_is_kept_on_the_calling_thread() {
        let r = DeferRegistry::default();
        r.insert((1, 1), false);
        step(&r, (1, 1), Stage::Begin, Size::Promised(Some(10))).unwrap();
        step(&r, (1, 1), Stage::Write, Size::Bytes(6)).unwrap();
        assert_eq!(step(&r, (1, 1), Stage::Write, Size::Bytes(5)).err(), Some(Error::Invalid), "past the length");
        step(&r, (1, 1), Stage::Write, Size::Bytes(3)).unwrap();
        assert_eq!(step(&r, (1, 1), Stage::End, Size::None), Ok(Posted { short: true }));
        // A HEAD's answer promises no body on the wire.
        r.insert((1, 2), true);
        step(&r, (1, 2), Stage::Begin, Size::Promised(Some(10))).unwrap();
        assert_eq!(step(&r, (1, 2), Stage::End, Size::None), Ok(Posted { short: false }));
        // A failed post leaves the token where it was.
        r.insert((1, 3), false);
        assert_eq!(r.step((1, 3), Stage::Whole, Size::None, || Err(Error::Full)).err(), Some(Error::Full));
        step(&r, (1, 3), Stage::Whole, Size::None).unwrap();
        // Past the shutdown's deadline nothing is accepted.
        r.insert((1, 4), false);
        r.freeze();
        assert_eq!(step(&r, (1, 4), Stage::Whole, Size::None).err(), Some(Error::Closed));
    }
}
