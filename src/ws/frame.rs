//! RFC 6455 §5.2 frame headers: decoding with every check a receiver must make, and
//! encoding into a small stack buffer.
//!
//! ```text
//!  byte 0: FIN RSV1 RSV2 RSV3 opcode(4)    byte 1: MASK len7
//!  len7 = 126: 16-bit length follows; 127: 64-bit length (MSB 0); then 4-byte key if MASK
//! ```
//!
//! A header is 2 to 14 bytes. The server sends it as its own small buffer in front of
//! the payload, so a payload buffer shared between many connections goes to `writev`
//! untouched ([`encode_header`]).

use super::error::Error;
use super::stack_buf::StackBuf;

/// Longest possible header: 2 + 8 (64-bit length) + 4 (masking key).
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Which end of the connection this is; it decides the masking rules (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends masked ones.
    Client,
}

/// The opcodes RFC 6455 defines. Others (3-7, 0xB-0xF) are reserved and fail the
/// connection, since no extension we negotiate defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation = 0,
    Text = 1,
    Binary = 2,
    Close = 8,
    Ping = 9,
    Pong = 10,
}

impl OpCode {
    pub const fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0 => OpCode::Continuation,
            1 => OpCode::Text,
            2 => OpCode::Binary,
            8 => OpCode::Close,
            9 => OpCode::Ping,
            10 => OpCode::Pong,
            _ => return None,
        })
    }

    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented.
    pub const fn is_control(self) -> bool {
        self as u8 >= 8
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// Set only on the first frame of a compressed message (permessage-deflate).
    pub rsv1: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes the header took (2..=14); the payload starts there.
    pub header_len: usize,
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV2_3: u8 = 0x30;
const MASK: u8 = 0x80;

/// Decodes the header at the start of `buf`.
///
/// `Ok(None)`: more bytes are needed. The rules are checked as soon as the bytes they
/// concern are there, so a bad first byte fails at once, not when the header is
/// complete. `deflate` says permessage-deflate was negotiated, which is what allows
/// RSV1, and only on a text or binary frame (the first frame of a message; a
/// continuation frame never starts one, RFC 7692 §6.1).
///
/// Lengths need not be minimally encoded: RFC 6455 puts "the minimal number of bytes
/// MUST be used" on the sender but asks the receiver to check nothing, and a longer
/// encoding is harmless (the 64-bit MSB rule still applies), so it is accepted.
pub fn decode_header(buf: &[u8], role: Role, deflate: bool) -> Result<Option<FrameHeader>, Error> {
    let Some(&b0) = buf.first() else { return Ok(None) };
    let opcode = check_first_byte(b0, deflate)?;
    let Some(&b1) = buf.get(1) else { return Ok(None) };
    let masked = b1 & MASK != 0;
    match role {
        Role::Server if !masked => return Err(Error::Protocol("client frame not masked")),
        Role::Client if masked => return Err(Error::Protocol("server frame masked")),
        _ => {}
    }
    let len7 = b1 & 0x7f;
    if opcode.is_control() && len7 as usize > MAX_CONTROL_PAYLOAD {
        return Err(Error::Protocol("control frame payload over 125 bytes"));
    }
    let (payload_len, mut at) = match len7 {
        126 => match buf.get(2..4) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let n = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if n >> 63 != 0 {
                    return Err(Error::Protocol("64-bit payload length with the top bit set"));
                }
                (n, 10)
            }
            None => return Ok(None),
        },
        n => (n as u64, 2),
    };
    let mask = if masked {
        let Some(k) = buf.get(at..at + 4) else { return Ok(None) };
        at += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Ok(Some(FrameHeader { fin: b0 & FIN != 0, rsv1: b0 & RSV1 != 0, opcode, mask, payload_len, header_len: at }))
}

/// The checks that byte 0 alone decides.
fn check_first_byte(b0: u8, deflate: bool) -> Result<OpCode, Error> {
    if b0 & RSV2_3 != 0 {
        return Err(Error::Protocol("RSV2/RSV3 set, no extension defines them"));
    }
    let opcode = OpCode::from_bits(b0 & 0x0f).ok_or(Error::Protocol("reserved opcode"))?;
    if b0 & RSV1 != 0 {
        if !deflate {
            return Err(Error::Protocol("RSV1 set without permessage-deflate"));
        }
        if opcode.is_control() {
            return Err(Error::Protocol("RSV1 set on a control frame"));
        }
        if opcode == OpCode::Continuation {
            return Err(Error::Protocol("RSV1 set on a continuation frame"));
        }
    }
    if opcode.is_control() && b0 & FIN == 0 {
        return Err(Error::Protocol("fragmented control frame"));
    }
    Ok(opcode)
}

/// An encoded header: up to 14 bytes on the stack.
pub type HeaderBuf = StackBuf<MAX_HEADER_LEN>;

/// Encodes a header with the shortest length encoding. `mask` is the client's key
/// (the payload must then be masked with it separately, see `mask::apply_mask`).
pub fn encode_header(opcode: OpCode, fin: bool, rsv1: bool, payload_len: u64, mask: Option<[u8; 4]>) -> HeaderBuf {
    let mut h = HeaderBuf::new();
    let b0 = opcode.bits() | if fin { FIN } else { 0 } | if rsv1 { RSV1 } else { 0 };
    let mask_bit = if mask.is_some() { MASK } else { 0 };
    if payload_len < 126 {
        h.push(&[b0, mask_bit | payload_len as u8]);
    } else if payload_len <= u16::MAX as u64 {
        h.push(&[b0, mask_bit | 126]);
        h.push(&(payload_len as u16).to_be_bytes());
    } else {
        h.push(&[b0, mask_bit | 127]);
        h.push(&payload_len.to_be_bytes());
    }
    if let Some(key) = mask {
        h.push(&key);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(buf: &[u8]) -> Result<Option<FrameHeader>, Error> {
        decode_header(buf, Role::Server, false)
    }

    fn client(buf: &[u8]) -> Result<Option<FrameHeader>, Error> {
        decode_header(buf, Role::Client, false)
    }

    #[test]
    fn decodes_rfc_examples() {
        // §5.7: unmasked "Hello" (server to client) and its masked twin.
        let h = client(&[0x81, 0x05, b'H']).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.payload_len, h.header_len, h.mask), (true, OpCode::Text, 5, 2, None));
        let h = server(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f]).unwrap().unwrap();
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.header_len, 6);
        // Fragmented "Hel" + "lo".
        let h = client(&[0x01, 0x03]).unwrap().unwrap();
        assert!(!h.fin && h.opcode == OpCode::Text);
        let h = client(&[0x80, 0x02]).unwrap().unwrap();
        assert!(h.fin && h.opcode == OpCode::Continuation);
        // 256-byte binary (16-bit length) and 64 KiB (64-bit length).
        let h = client(&[0x82, 0x7e, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.payload_len, h.header_len), (256, 4));
        let h = client(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap().unwrap();
        assert_eq!((h.payload_len, h.header_len), (65536, 10));
    }

    #[test]
    fn incomplete_headers_ask_for_more_at_every_length() {
        let full = encode_header(OpCode::Binary, true, false, 70_000, Some([9, 8, 7, 6]));
        for n in 0..full.len() {
            assert_eq!(server(&full[..n]), Ok(None), "{n} bytes");
        }
        let h = server(&full).unwrap().unwrap();
        assert_eq!((h.payload_len, h.header_len, h.mask), (70_000, 14, Some([9, 8, 7, 6])));
    }

    #[test]
    fn reserved_bits_fail_unless_deflate_allows_rsv1_on_a_first_frame() {
        for b0 in [0x91u8, 0xa1, 0xb1] {
            assert!(matches!(decode_header(&[b0], Role::Client, true), Err(Error::Protocol(_))), "{b0:x}");
        }
        assert!(client(&[0xc1]).is_err(), "RSV1 without deflate");
        assert!(decode_header(&[0xc1, 0x00], Role::Client, true).unwrap().unwrap().rsv1);
        assert!(decode_header(&[0xc2, 0x00], Role::Client, true).unwrap().unwrap().rsv1);
        assert!(decode_header(&[0xc0], Role::Client, true).is_err(), "RSV1 on continuation");
        assert!(decode_header(&[0xc9], Role::Client, true).is_err(), "RSV1 on ping");
        assert!(decode_header(&[0xc8], Role::Client, true).is_err(), "RSV1 on close");
    }

    #[test]
    fn reserved_opcodes_fail_from_the_first_byte() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(client(&[0x80 | op]), Err(Error::Protocol("reserved opcode")), "{op}");
        }
    }

    #[test]
    fn control_frames_must_be_final_and_short() {
        for op in [8u8, 9, 10] {
            assert!(client(&[op]).is_err(), "fragmented {op}");
            assert!(client(&[0x80 | op, 125]).unwrap().is_some());
            assert!(client(&[0x80 | op, 126]).is_err(), "126-byte {op}");
            assert!(client(&[0x80 | op, 127]).is_err());
        }
    }

    #[test]
    fn masking_direction_is_enforced_per_role() {
        assert_eq!(server(&[0x81, 0x00]), Err(Error::Protocol("client frame not masked")));
        assert_eq!(client(&[0x81, 0x80]), Err(Error::Protocol("server frame masked")));
    }

    #[test]
    fn sixty_four_bit_length_with_msb_fails() {
        let mut b = vec![0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(client(&b).is_err());
        b[2] = 0x7f;
        assert_eq!(client(&b).unwrap().unwrap().payload_len, 0x7f00_0000_0000_0000);
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        assert_eq!(client(&[0x82, 0x7e, 0x00, 0x05]).unwrap().unwrap().payload_len, 5);
        assert_eq!(client(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 5]).unwrap().unwrap().payload_len, 5);
    }

    #[test]
    fn encode_uses_minimal_lengths_and_round_trips() {
        let cases: &[(u64, usize)] = &[(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 40, 10)];
        for &(len, hl) in cases {
            for mask in [None, Some([1, 2, 3, 4])] {
                for (op, fin, rsv1) in [(OpCode::Text, true, true), (OpCode::Continuation, false, false), (OpCode::Binary, false, true)] {
                    let h = encode_header(op, fin, rsv1, len, mask);
                    assert_eq!(h.len(), hl + if mask.is_some() { 4 } else { 0 });
                    let role = if mask.is_some() { Role::Server } else { Role::Client };
                    let d = decode_header(&h, role, true).unwrap().unwrap();
                    assert_eq!((d.opcode, d.fin, d.rsv1, d.payload_len, d.mask, d.header_len), (op, fin, rsv1, len, mask, h.len()));
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_and_decoded_headers_reencode() {
        let mut rng = fastrand::Rng::with_seed(0x6672_616d);
        for _ in 0..100_000 {
            let len = rng.usize(0..16);
            let buf: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let role = if rng.bool() { Role::Server } else { Role::Client };
            let deflate = rng.bool();
            if let Ok(Some(h)) = decode_header(&buf, role, deflate) {
                assert!(h.header_len <= buf.len());
                let again = encode_header(h.opcode, h.fin, h.rsv1, h.payload_len, h.mask);
                let d = decode_header(&again, role, deflate).unwrap().unwrap();
                assert_eq!((d.opcode, d.fin, d.rsv1, d.payload_len, d.mask), (h.opcode, h.fin, h.rsv1, h.payload_len, h.mask));
            }
        }
    }
}
