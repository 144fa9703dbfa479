//! Why a WebSocket connection must be failed, and the close code that says so.
//!
//! Every check the decoder makes ends in one of these. The protocol layer sends a
//! close frame with [`Error::close_code`] and then closes the connection (RFC 6455
//! §7.1.7 "Fail the WebSocket Connection"); nothing else is shared with the peer.

use std::fmt;

/// A violation by the peer. The text is for logs, never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A framing rule was broken (close code 1002).
    Protocol(&'static str),
    /// A text message, close reason or compressed payload was not what it claimed to
    /// be: invalid UTF-8 or a corrupt deflate stream (close code 1007).
    InvalidPayload(&'static str),
    /// A message grew past the configured maximum (close code 1009).
    TooBig,
}

impl Error {
    /// The close code to send before closing (RFC 6455 §7.4.1).
    pub const fn close_code(self) -> u16 {
        match self {
            Error::Protocol(_) => 1002,
            Error::InvalidPayload(_) => 1007,
            Error::TooBig => 1009,
        }
    }

    /// A short description for logs.
    pub const fn detail(self) -> &'static str {
        match self {
            Error::Protocol(s) | Error::InvalidPayload(s) => s,
            Error::TooBig => "message too big",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "websocket: {} (close {})", self.detail(), self.close_code())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_rfc_close_code() {
        assert_eq!(Error::Protocol("x").close_code(), 1002);
        assert_eq!(Error::InvalidPayload("x").close_code(), 1007);
        assert_eq!(Error::TooBig.close_code(), 1009);
        assert_eq!(Error::Protocol("bad opcode").to_string(), "websocket: bad opcode (close 1002)");
    }
}
