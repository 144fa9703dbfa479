//! Close frame payloads (RFC 6455 §5.5.1, §7.4): empty, or a 2-byte status code
//! followed by a UTF-8 reason.

use super::error::Error;
use super::frame::MAX_CONTROL_PAYLOAD;
use super::stack_buf::StackBuf;

/// Status codes (§7.4.1, and the IANA registry for 1012-1014).
pub mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Reported locally when a close frame had no code; never sent.
    pub const NO_STATUS: u16 = 1005;
    /// Reported locally when the connection dropped without a close frame; never sent.
    pub const ABNORMAL: u16 = 1006;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const MANDATORY_EXTENSION: u16 = 1010;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const SERVICE_RESTART: u16 = 1012;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const BAD_GATEWAY: u16 = 1014;
}

/// Whether `code` may appear in a close frame. 1004 is reserved, 1005/1006/1015 are
/// for local reporting only, 1016-2999 are unassigned protocol codes, 3000-3999 are
/// registered by libraries and frameworks and 4000-4999 are private: both accepted.
pub const fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A parsed close payload, borrowing the frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    code: Option<u16>,
    reason: &'a str,
    raw: &'a [u8],
}

impl<'a> CloseFrame<'a> {
    /// The status code; `None` for an empty payload (report it as 1005).
    pub fn code(&self) -> Option<u16> {
        self.code
    }

    /// The reason, possibly empty; validated UTF-8.
    pub fn reason(&self) -> &'a str {
        self.reason
    }

    /// The payload as received: 2-byte code and reason, or empty.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// Parses and validates a close payload (already unmasked).
pub fn parse_close(payload: &[u8]) -> Result<CloseFrame<'_>, Error> {
    match payload {
        [] => Ok(CloseFrame { code: None, reason: "", raw: payload }),
        [_] => Err(Error::Protocol("close payload of 1 byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_code(code) {
                return Err(Error::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Error::InvalidPayload("close reason not UTF-8"))?;
            Ok(CloseFrame { code: Some(code), reason, raw: payload })
        }
    }
}

/// A close payload to send: at most 125 bytes, on the stack.
pub type ClosePayload = StackBuf<MAX_CONTROL_PAYLOAD>;

/// Builds a close payload. `None` if `code` may not be sent (see [`is_valid_code`]).
/// A reason longer than the 123 bytes that fit is cut at a character boundary: a
/// close is not the place to fail over the length of a log message.
pub fn build_close(code: u16, reason: &str) -> Option<ClosePayload> {
    if !is_valid_code(code) {
        return None;
    }
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut p = ClosePayload::new();
    p.push(&code.to_be_bytes());
    p.push(&reason.as_bytes()[..cut]);
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_code_validity_matches_rfc_and_registry() {
        let valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
        let invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
        for c in valid {
            assert!(is_valid_code(c), "{c}");
        }
        for c in invalid {
            assert!(!is_valid_code(c), "{c}");
        }
    }

    #[test]
    fn parses_empty_code_only_and_code_with_reason() {
        let f = parse_close(&[]).unwrap();
        assert_eq!((f.code(), f.reason()), (None, ""));
        let f = parse_close(&[0x03, 0xe8]).unwrap();
        assert_eq!((f.code(), f.reason()), (Some(1000), ""));
        let raw = [&[0x0f, 0xa0][..], "bye κόσμε".as_bytes()].concat();
        let f = parse_close(&raw).unwrap();
        assert_eq!((f.code(), f.reason(), f.raw()), (Some(4000), "bye κόσμε", &raw[..]));
    }

    #[test]
    fn bad_payloads_fail_with_the_right_close_code() {
        assert_eq!(parse_close(&[0x03]).unwrap_err().close_code(), 1002);
        assert_eq!(parse_close(&[0x03, 0xed]).unwrap_err().close_code(), 1002); // 1005
        assert_eq!(parse_close(&[0x13, 0x88]).unwrap_err().close_code(), 1002); // 5000
        assert_eq!(parse_close(&[0x03, 0xe8, 0xce, 0xba, 0xed, 0xa0, 0x80]).unwrap_err().close_code(), 1007);
    }

    #[test]
    fn build_round_trips_and_truncates_at_a_char_boundary() {
        let p = build_close(1001, "going").unwrap();
        let f = parse_close(&p).unwrap();
        assert_eq!((f.code(), f.reason()), (Some(1001), "going"));
        let long = "é".repeat(100); // 200 bytes
        let p = build_close(1000, &long).unwrap();
        assert!(p.len() <= 125);
        assert_eq!(parse_close(&p).unwrap().reason(), "é".repeat(61));
        assert!(build_close(1005, "").is_none());
        assert!(build_close(999, "").is_none());
    }
}
