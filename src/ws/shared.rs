//! WebSocket's part of a manager: what every WebSocket connection on one loop shares.

use super::topics::Topics;
use crate::http::parse::Head;

#[derive(Default)]
pub struct Shared {
    /// Who subscribed to what.
    pub topics: Topics,
    /// Scratch for parsing a client's handshake answer.
    pub(super) head: Head,
}
