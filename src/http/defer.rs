//! Which deferred requests may still be answered, shared between the loop and the
//! threads holding tokens. A respond is checked here first, so a second or late
//! respond fails at the call (and releases its buffer) instead of vanishing.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;

/// Identifies one request: (connection id, sequence on that connection).
pub type Token = (u64, u64);

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
pub enum Step {
    Whole,
    Begin,
    Write,
    End,
}

#[derive(Default)]
pub struct DeferRegistry {
    live: Mutex<HashMap<Token, State>>,
}

impl DeferRegistry {
    pub fn insert(&self, t: Token) {
        self.live.lock().insert(t, State::Waiting);
    }

    /// Records `step` if it is valid now: `Closed` for an unknown (timed out, closed,
    /// finished) token, `Protocol` for a step out of order (a second respond).
    pub fn advance(&self, t: Token, step: Step) -> Result<()> {
        let mut live = self.live.lock();
        let state = live.get_mut(&t).ok_or(Error::Closed)?;
        *state = match (*state, step) {
            (State::Waiting, Step::Whole) => State::Ended,
            (State::Waiting, Step::Begin) => State::Streaming,
            (State::Streaming, Step::Write) => State::Streaming,
            (State::Streaming, Step::End) => State::Ended,
            _ => return Err(Error::Protocol),
        };
        Ok(())
    }

    /// True if an answer was posted (even if not yet handled by the loop).
    pub fn answered(&self, t: Token) -> bool {
        matches!(self.live.lock().get(&t), Some(State::Streaming | State::Ended))
    }

    pub fn remove(&self, t: Token) {
        self.live.lock().remove(&t);
    }

    pub fn len(&self) -> usize {
        self.live.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_and_late_responds_are_refused() {
        let r = DeferRegistry::default();
        r.insert((1, 1));
        assert_eq!(r.advance((1, 1), Step::Write), Err(Error::Protocol));
        r.advance((1, 1), Step::Whole).unwrap();
        assert_eq!(r.advance((1, 1), Step::Whole), Err(Error::Protocol));
        r.remove((1, 1));
        assert_eq!(r.advance((1, 1), Step::Whole), Err(Error::Closed));
        r.insert((1, 2));
        r.advance((1, 2), Step::Begin).unwrap();
        r.advance((1, 2), Step::Write).unwrap();
        r.advance((1, 2), Step::End).unwrap();
        assert_eq!(r.advance((1, 2), Step::Write), Err(Error::Protocol));
    }
}
