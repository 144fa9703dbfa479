//! permessage-deflate (RFC 7692): negotiation, and compression of one message at a
//! time.
//!
//! # Backend
//!
//! `flate2` with the `zlib-rs` backend (a Rust port of zlib, no C build). The default
//! backend, miniz_oxide, ignores the window size when compressing, so it could not
//! honour a peer's `server_max_window_bits` / `client_max_window_bits` below 15; zlib-rs
//! does. zlib (and zlib-rs) refuse a raw-deflate window of 8 bits and flate2 accepts
//! only 9..=15, so a peer's request for 8 is met by compressing with 9 bits: zlib never
//! emits a distance above `window - 262` (`MAX_DIST`, the lookahead it reserves), which
//! is 250 for a 512-byte window, inside the 256 bytes the peer keeps. The test
//! `window_bits_8_is_honoured_with_a_9_bit_compressor` decodes the compressed stream
//! and checks the distances it uses. Inflating always uses a 15-bit window: a larger window
//! reads any smaller one, and zlib-rs allocates 32 KiB for the inflate window whatever
//! the size asked.
//!
//! # Memory (zlib-rs 0.6, measured by `memory_per_state_is_as_documented`)
//!
//! - compressor: about 243 KiB + 4 x 2^window_bits bytes: 371 KiB for 15 bits, 259 KiB
//!   for 12, 245 KiB for 9 (zlib-rs keeps a 128 KiB hash table and 112 KiB of block
//!   buffers whatever the window; flate2 offers no memory level to shrink the latter);
//! - decompressor: about 46 KiB (a 32 KiB window whatever the size asked, and state).
//!
//! Neither exists until a message needs it, and a direction without context takeover
//! drops its state after every message, so between messages it costs nothing; a
//! direction with context takeover must keep its state for the life of the
//! connection (that is what context takeover means). A server that wants idle
//! connections to cost nothing answers with both `*_no_context_takeover` parameters
//! (RFC 7692 lets it, whatever the client offered), see [`DeflateConfig::low_memory`].
//!
//! # Message transform (§7.2)
//!
//! Compressing a message = deflate with a sync flush, then strip the trailing
//! `00 00 ff ff`. Decompressing = append `00 00 ff ff` and inflate. Inflating is
//! bounded: output past the caller's maximum fails with [`Error::TooBig`] having
//! allocated at most that maximum plus one byte, so a small message that would inflate
//! to gigabytes costs only its connection.

use super::error::Error;
use super::frame::Role;
use super::handshake::{trim_ows, HandshakeError};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const NAME: &str = "permessage-deflate";

/// The block a sync flush ends with; stripped on send, put back on receive.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What this end wants, whichever role it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// zlib level 0..=9. Default 1: most of the gain on text and JSON for a fraction of
    /// level 6's CPU, as nginx's `gzip_comp_level` default.
    pub level: u32,
    /// The server resets its compressor after every message. A server asks for it
    /// in its answer even if not offered; a client offers it.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message. Same as above.
    pub client_no_context_takeover: bool,
    /// Largest window the server compresses with (8..=15). A server answers with the
    /// smaller of this and any value offered; a client offers it when below 15.
    pub server_max_window_bits: u8,
    /// Largest window the client compresses with (8..=15). A server can only ask for
    /// it when the client offered the parameter; a client offers it with this value
    /// when below 15, bare otherwise (meaning "you may choose").
    pub client_max_window_bits: u8,
    /// Messages shorter than this are sent uncompressed (RSV1 clear), which RFC 7692
    /// allows message by message: deflate's block overhead outweighs the gain.
    pub min_compress_len: usize,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            level: 1,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            min_compress_len: 32,
        }
    }
}

impl DeflateConfig {
    /// No context takeover in either direction: no (de)compressor state between
    /// messages, at the price of compressing each message on its own.
    pub fn low_memory() -> DeflateConfig {
        DeflateConfig { server_no_context_takeover: true, client_no_context_takeover: true, ..DeflateConfig::default() }
    }
}

/// What was agreed, in the RFC's terms (window bits 15 when not named).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
    /// The answer must name `server_max_window_bits` even at 15: the offer had it,
    /// and accepting it means naming it (§7.1.2.1).
    pub(crate) name_server_bits: bool,
}

impl Default for DeflateParams {
    fn default() -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            name_server_bits: false,
        }
    }
}

impl DeflateParams {
    /// The server's `Sec-WebSocket-Extensions` answer.
    pub fn response_header(&self) -> String {
        let mut s = String::from(NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.name_server_bits || self.server_max_window_bits < 15 {
            s.push_str(&format!("; server_max_window_bits={}", self.server_max_window_bits));
        }
        if self.client_max_window_bits < 15 {
            s.push_str(&format!("; client_max_window_bits={}", self.client_max_window_bits));
        }
        s
    }

    /// (no context takeover, window bits) of what `role` sends.
    pub fn send_side(&self, role: Role) -> (bool, u8) {
        match role {
            Role::Server => (self.server_no_context_takeover, self.server_max_window_bits),
            Role::Client => (self.client_no_context_takeover, self.client_max_window_bits),
        }
    }

    /// No context takeover for what `role` receives.
    pub fn recv_resets(&self, role: Role) -> bool {
        match role {
            Role::Server => self.client_no_context_takeover,
            Role::Client => self.server_no_context_takeover,
        }
    }
}

/// `client_max_window_bits` in an offer: absent, bare, or with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientBits {
    Absent,
    Bare,
    Value(u8),
}

/// One parsed permessage-deflate offer or answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientBits,
}

/// (server) Picks the first permessage-deflate offer this end can accept, from every
/// `Sec-WebSocket-Extensions` value of the request. An offer with an unknown or
/// repeated parameter, or a bad value, is declined and the next one tried (§7.1:
/// "the server MUST decline"); `None` when none is acceptable, and then the answer
/// names no extension.
pub fn negotiate<'a>(values: impl IntoIterator<Item = &'a [u8]>, cfg: &DeflateConfig) -> Option<DeflateParams> {
    values
        .into_iter()
        .flat_map(|v| split_quoted(v, b','))
        .filter_map(|element| parse_element(element).filter(|(name, _)| is_deflate(name)).and_then(|(_, params)| parse_offer(params)))
        .map(|offer| accept_offer(&offer, cfg))
        .next()
}

fn accept_offer(offer: &Offer, cfg: &DeflateConfig) -> DeflateParams {
    let server_bits = offer.server_max_window_bits.unwrap_or(15).min(cfg.server_max_window_bits.clamp(8, 15));
    let client_bits = match offer.client_max_window_bits {
        ClientBits::Absent => 15, // §7.1.2.2: may not be named in the answer
        ClientBits::Bare => cfg.client_max_window_bits.clamp(8, 15),
        ClientBits::Value(v) => v.min(cfg.client_max_window_bits.clamp(8, 15)),
    };
    DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover || cfg.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover || cfg.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        name_server_bits: offer.server_max_window_bits.is_some(),
    }
}

/// (client) The `Sec-WebSocket-Extensions` value to offer.
pub fn client_offer(cfg: &DeflateConfig) -> String {
    let mut s = String::from(NAME);
    if cfg.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if cfg.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if cfg.server_max_window_bits < 15 {
        s.push_str(&format!("; server_max_window_bits={}", cfg.server_max_window_bits.max(8)));
    }
    if cfg.client_max_window_bits < 15 {
        s.push_str(&format!("; client_max_window_bits={}", cfg.client_max_window_bits.max(8)));
    } else {
        s.push_str("; client_max_window_bits");
    }
    s
}

/// (client) Checks the server's answer to [`client_offer`]`(cfg)`. No extension
/// answered: `Ok(None)`. Anything this client did not offer, or cannot honour, fails
/// the connection (§7.1: "the client MUST Fail the WebSocket Connection").
pub fn accept_response<'a>(values: impl IntoIterator<Item = &'a [u8]>, cfg: &DeflateConfig) -> Result<Option<DeflateParams>, HandshakeError> {
    let bad = HandshakeError::BadResponse;
    let mut elements = values.into_iter().flat_map(|v| split_quoted(v, b','));
    let Some(element) = elements.next() else { return Ok(None) };
    if elements.next().is_some() {
        return Err(bad("more than one extension in the answer"));
    }
    let (name, params) = parse_element(element).ok_or(bad("malformed Sec-WebSocket-Extensions"))?;
    if !is_deflate(name) {
        return Err(bad("an extension that was not offered"));
    }
    let answer = parse_offer(params).ok_or(bad("bad permessage-deflate parameters"))?;
    if cfg.server_no_context_takeover && !answer.server_no_context_takeover {
        return Err(bad("server_no_context_takeover was offered, not accepted"));
    }
    let server_bits = match answer.server_max_window_bits {
        Some(b) if b <= cfg.server_max_window_bits.max(8) => b,
        Some(_) => return Err(bad("server_max_window_bits above the offer")),
        None if cfg.server_max_window_bits < 15 => return Err(bad("server_max_window_bits was offered, not accepted")),
        None => 15,
    };
    let offered_client_bits = cfg.client_max_window_bits.clamp(8, 15);
    let client_bits = match answer.client_max_window_bits {
        ClientBits::Value(b) if b <= offered_client_bits => b,
        ClientBits::Value(_) => return Err(bad("client_max_window_bits above the offer")),
        ClientBits::Bare => return Err(bad("client_max_window_bits without a value")),
        ClientBits::Absent => offered_client_bits,
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        // Offering it was a promise to reset (§7.1.1.2); keep it.
        client_no_context_takeover: answer.client_no_context_takeover || cfg.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        name_server_bits: answer.server_max_window_bits.is_some(),
    }))
}

fn is_deflate(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(NAME.as_bytes())
}

/// Splits `s` at `sep` outside quoted strings (RFC 9110 §5.6.4), trimming OWS and
/// skipping empty pieces.
fn split_quoted(s: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(s);
    std::iter::from_fn(move || loop {
        let s = rest?;
        let mut quoted = false;
        let mut escaped = false;
        let mut end = s.len();
        for (i, &b) in s.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == sep && !quoted {
                end = i;
                break;
            }
        }
        rest = s.get(end + 1..);
        let piece = trim_ows(&s[..end]);
        if !piece.is_empty() {
            return Some(piece);
        }
    })
}

/// An extension element: its name and its `;`-separated parameters (unparsed).
fn parse_element(element: &[u8]) -> Option<(&[u8], impl Iterator<Item = &[u8]>)> {
    let mut parts = split_quoted(element, b';');
    let name = parts.next()?;
    is_token(name).then_some((name, parts))
}

/// Parses the parameters of one offer (or answer); `None` declines it.
fn parse_offer<'a>(params: impl Iterator<Item = &'a [u8]>) -> Option<Offer> {
    let mut offer = Offer {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        client_max_window_bits: ClientBits::Absent,
    };
    for param in params {
        let (name, value) = parse_param(param)?;
        let mut value_buf = [0u8; 8];
        let value = match value {
            Some(v) => Some(unquote(v, &mut value_buf)?),
            None => None,
        };
        match name.to_ascii_lowercase().as_slice() {
            b"server_no_context_takeover" if value.is_none() && !offer.server_no_context_takeover => {
                offer.server_no_context_takeover = true
            }
            b"client_no_context_takeover" if value.is_none() && !offer.client_no_context_takeover => {
                offer.client_no_context_takeover = true
            }
            b"server_max_window_bits" if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(value?)?)
            }
            b"client_max_window_bits" if offer.client_max_window_bits == ClientBits::Absent => {
                offer.client_max_window_bits = match value {
                    None => ClientBits::Bare,
                    Some(v) => ClientBits::Value(window_bits(v)?),
                }
            }
            _ => return None, // unknown, repeated, or a value where none belongs
        }
    }
    Some(offer)
}

/// `name` or `name=value`; the value is a token or a quoted string.
fn parse_param(param: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    match param.iter().position(|&b| b == b'=') {
        None => is_token(param).then_some((param, None)),
        Some(i) => {
            let (name, value) = (trim_ows(&param[..i]), trim_ows(&param[i + 1..]));
            is_token(name).then_some((name, Some(value)))
        }
    }
}

/// A token as is, or a quoted string with its escapes undone (into `buf`; values
/// longer than it cannot be valid window sizes anyway).
fn unquote<'b>(value: &'b [u8], buf: &'b mut [u8; 8]) -> Option<&'b [u8]> {
    let Some(inner) = value.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")) else {
        return is_token(value).then_some(value);
    };
    let mut n = 0;
    let mut escaped = false;
    for &b in inner {
        if !escaped && b == b'\\' {
            escaped = true;
            continue;
        }
        if !escaped && b == b'"' {
            return None;
        }
        escaped = false;
        *buf.get_mut(n)? = b;
        n += 1;
    }
    (!escaped).then_some(&buf[..n])
}

/// A window size: 8..=15, decimal, no leading zero (§7.1.2.1).
fn window_bits(v: &[u8]) -> Option<u8> {
    match v {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// RFC 9110 token characters.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The compressing side of one direction.
pub struct Compressor {
    state: Option<Compress>,
    level: u32,
    /// 9..=15 (a negotiated 8 compresses with 9, see the module comment).
    window_bits: u8,
    no_context_takeover: bool,
}

impl Compressor {
    /// No memory is allocated until the first message.
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Compressor {
        Compressor { state: None, level: level.min(9), window_bits: window_bits.clamp(9, 15), no_context_takeover }
    }

    /// Appends `data` compressed as one message (tail stripped) to `out`. On an error
    /// (which zlib only reports for misuse) the state is dropped, the output is
    /// unusable and the message should be sent uncompressed.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), flate2::CompressError> {
        let start = out.len();
        let result = self.deflate(data, out);
        if result.is_err() {
            self.state = None;
            out.truncate(start);
            return result;
        }
        debug_assert!(out[start..].ends_with(&TAIL));
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.no_context_takeover {
            self.state = None;
        }
        Ok(())
    }

    /// Forgets the context (before sending a message uncompressed after a failure,
    /// or to release memory when context takeover is off anyway).
    pub fn reset(&mut self) {
        self.state = None;
    }

    /// Whether the state is allocated right now.
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    fn deflate(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), flate2::CompressError> {
        let (level, bits) = (self.level, self.window_bits);
        let c = self.state.get_or_insert_with(|| Compress::new_with_window_bits(Compression::new(level), false, bits));
        out.reserve(data.len() / 2 + 16);
        let mut rest = data;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = c.total_in();
            c.compress_vec(rest, out, FlushCompress::Sync)?;
            rest = &rest[(c.total_in() - before) as usize..];
            // With all input taken, room left over means the flush is complete.
            if rest.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// The decompressing side of one direction.
pub struct Decompressor {
    state: Option<Decompress>,
    no_context_takeover: bool,
    /// The peer ended the deflate stream (BFINAL) inside this message: the rest of
    /// the message is ignored and the next one starts a new stream.
    ended: bool,
}

impl Decompressor {
    /// No memory is allocated until the first compressed message.
    pub fn new(no_context_takeover: bool) -> Decompressor {
        Decompressor { state: None, no_context_takeover, ended: false }
    }

    /// Inflates the next piece of a message's compressed payload, appending to `out`,
    /// which must not grow past `max` bytes (else [`Error::TooBig`]).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), Error> {
        let result = self.inflate(input, out, max);
        if result.is_err() {
            self.state = None;
        }
        result
    }

    /// Ends the message: inflates the stripped tail and, without context takeover,
    /// releases the state.
    pub fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), Error> {
        self.feed(&TAIL, out, max)?;
        if self.no_context_takeover || self.ended {
            self.state = None;
        }
        self.ended = false;
        Ok(())
    }

    /// Drops the state (after a failed connection, or to return to zero memory).
    pub fn reset(&mut self) {
        self.state = None;
        self.ended = false;
    }

    /// Whether the state is allocated right now.
    pub fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    fn inflate(&mut self, mut input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), Error> {
        if self.ended {
            return Ok(());
        }
        let d = self.state.get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        // One byte past `max` is enough to tell "exactly max" from "too big".
        let cap = max.saturating_add(1);
        loop {
            if out.len() == out.capacity() {
                let want = out.capacity().max(input.len() * 2).max(256);
                out.reserve_exact(want.min(cap - out.len()));
            }
            let (in_before, out_before) = (d.total_in(), out.len());
            let status = d
                .decompress_vec(input, out, FlushDecompress::None)
                .map_err(|_| Error::InvalidPayload("corrupt permessage-deflate data"))?;
            input = &input[(d.total_in() - in_before) as usize..];
            if out.len() > max {
                return Err(Error::TooBig);
            }
            if status == Status::StreamEnd {
                self.ended = true;
                return Ok(());
            }
            // Out of input with room to spare: inflate has written all it can.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
            if input.is_empty() && out.len() == out_before && status == Status::BufError {
                return Ok(()); // no progress possible, nothing pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::alloc_count;

    fn offer(v: &str) -> Option<DeflateParams> {
        negotiate([v.as_bytes()], &DeflateConfig::default())
    }

    fn answer(v: &str, cfg: &DeflateConfig) -> Result<Option<DeflateParams>, HandshakeError> {
        accept_response([v.as_bytes()], cfg)
    }

    #[test]
    fn plain_offer_is_accepted_with_defaults() {
        let p = offer("permessage-deflate").unwrap();
        assert_eq!(p, DeflateParams::default());
        assert_eq!(p.response_header(), "permessage-deflate");
    }

    #[test]
    fn every_parameter_is_parsed_and_answered() {
        let p = offer("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12").unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (10, 12));
        assert_eq!(
            p.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
        );
        // An offered server_max_window_bits is named in the answer even at 15.
        assert_eq!(offer("permessage-deflate; server_max_window_bits=15").unwrap().response_header(), "permessage-deflate; server_max_window_bits=15");
        // Bare client_max_window_bits: the server may choose, and by default does not.
        assert_eq!(offer("permessage-deflate; client_max_window_bits").unwrap().client_max_window_bits, 15);
        // Quoted values, odd spacing and case.
        let p = offer("PerMessage-Deflate ;SERVER_MAX_WINDOW_BITS = \"9\" ; client_max_window_bits=\"1\\5\"").unwrap();
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (9, 15));
    }

    #[test]
    fn bad_offers_are_declined_and_the_next_one_taken() {
        let bad = [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits=0x0f",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=\"1,0\"",
            "x-webkit-deflate-frame",
        ];
        for b in bad {
            assert_eq!(offer(b), None, "{b}");
            let both = format!("{b}, permessage-deflate; client_no_context_takeover");
            assert!(offer(&both).unwrap().client_no_context_takeover, "{both}");
        }
        // Offers in separate header lines count in order too.
        let p = negotiate([&b"permessage-deflate; bogus"[..], b"permessage-deflate; server_max_window_bits=8"], &DeflateConfig::default());
        assert_eq!(p.unwrap().server_max_window_bits, 8);
        assert_eq!(negotiate(Vec::<&[u8]>::new(), &DeflateConfig::default()), None);
    }

    #[test]
    fn server_settings_narrow_what_is_agreed() {
        let cfg = DeflateConfig { server_max_window_bits: 11, client_max_window_bits: 10, ..DeflateConfig::low_memory() };
        let p = negotiate([&b"permessage-deflate; client_max_window_bits"[..]], &cfg).unwrap();
        assert_eq!(
            p.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10"
        );
        // The client's window can only be narrowed when it named the parameter.
        let p = negotiate([&b"permessage-deflate"[..]], &cfg).unwrap();
        assert_eq!(p.client_max_window_bits, 15);
        // A smaller offer wins over the setting.
        let p = negotiate([&b"permessage-deflate; server_max_window_bits=9; client_max_window_bits=8"[..]], &cfg).unwrap();
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (9, 8));
        assert_eq!(p.send_side(Role::Server), (true, 9));
        assert_eq!(p.send_side(Role::Client), (true, 8));
    }

    #[test]
    fn client_offer_and_answers() {
        let cfg = DeflateConfig::default();
        assert_eq!(client_offer(&cfg), "permessage-deflate; client_max_window_bits");
        assert_eq!(answer("permessage-deflate", &cfg).unwrap().unwrap(), DeflateParams::default());
        let p = answer("permessage-deflate; server_no_context_takeover; client_max_window_bits=9", &cfg).unwrap().unwrap();
        assert!(p.server_no_context_takeover);
        assert_eq!(p.send_side(Role::Client), (false, 9));
        assert!(p.recv_resets(Role::Client));
        assert_eq!(accept_response(Vec::<&[u8]>::new(), &cfg), Ok(None));
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate, permessage-deflate",
            "x-other",
            "permessage-deflate; server_max_window_bits=16",
        ] {
            assert!(answer(bad, &cfg).is_err(), "{bad}");
        }
        let asked = DeflateConfig { server_no_context_takeover: true, server_max_window_bits: 10, client_max_window_bits: 12, ..cfg };
        assert_eq!(
            client_offer(&asked),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
        );
        assert!(answer("permessage-deflate; server_max_window_bits=10", &asked).is_err(), "no_context_takeover dropped");
        assert!(answer("permessage-deflate; server_no_context_takeover", &asked).is_err(), "window dropped");
        assert!(answer("permessage-deflate; server_no_context_takeover; server_max_window_bits=11", &asked).is_err());
        assert!(answer("permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=13", &asked).is_err());
        let p = answer("permessage-deflate; server_no_context_takeover; server_max_window_bits=9", &asked).unwrap().unwrap();
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (9, 12));
    }

    fn compress_one(c: &mut Compressor, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.compress(data, &mut out).unwrap();
        out
    }

    fn inflate_one(d: &mut Decompressor, data: &[u8], max: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        d.feed(data, &mut out, max)?;
        d.finish(&mut out, max)?;
        Ok(out)
    }

    #[test]
    fn rfc_example_hello_round_trips() {
        // §7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00.
        let mut d = Decompressor::new(false);
        assert_eq!(inflate_one(&mut d, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100).unwrap(), b"Hello");
        let mut c = Compressor::new(6, 15, true);
        assert_eq!(compress_one(&mut c, b"Hello"), [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        // §7.2.3.6: an empty message may be a single 00 byte.
        assert_eq!(compress_one(&mut c, b""), [0x00]);
        assert_eq!(inflate_one(&mut d, &[0x00], 100).unwrap(), b"");
    }

    #[test]
    fn context_takeover_makes_repeats_cheaper_and_no_takeover_does_not() {
        let msg = b"{\"type\":\"update\",\"symbol\":\"ABCD\",\"price\":123.45,\"volume\":1000}";
        for no_takeover in [false, true] {
            let mut c = Compressor::new(6, 15, no_takeover);
            let mut d = Decompressor::new(no_takeover);
            let first = compress_one(&mut c, msg);
            let second = compress_one(&mut c, msg);
            assert_eq!(no_takeover, first == second, "takeover {}", !no_takeover);
            assert!(no_takeover || second.len() < first.len() / 2);
            assert_eq!(c.is_allocated(), !no_takeover);
            assert_eq!(inflate_one(&mut d, &first, 1000).unwrap(), msg);
            assert_eq!(inflate_one(&mut d, &second, 1000).unwrap(), msg);
            assert_eq!(d.is_allocated(), !no_takeover);
        }
    }

    #[test]
    fn random_messages_round_trip_in_random_pieces() {
        let mut rng = fastrand::Rng::with_seed(0x6465_666c);
        for bits in [9u8, 12, 15] {
            let mut c = Compressor::new(rng.u32(0..=9), bits, rng.bool());
            let mut d = Decompressor::new(false);
            for _ in 0..60 {
                let len = rng.usize(0..20_000);
                let alphabet = rng.u8(1..=255);
                let data: Vec<u8> = (0..len).map(|_| rng.u8(0..alphabet)).collect();
                let wire = compress_one(&mut c, &data);
                let mut out = Vec::new();
                let mut at = 0;
                while at < wire.len() {
                    let n = rng.usize(1..=wire.len() - at);
                    d.feed(&wire[at..at + n], &mut out, len).unwrap();
                    at += n;
                }
                d.finish(&mut out, len).unwrap();
                assert_eq!(out, data);
            }
        }
    }

    #[test]
    fn inflate_is_bounded_and_a_bomb_fails_without_allocating_more_than_max() {
        let mut c = Compressor::new(9, 15, true);
        let bomb = compress_one(&mut c, &vec![0u8; 16 << 20]); // 16 MiB of zeros
        assert!(bomb.len() < 40_000);
        let max = 1 << 20;
        let mut d = Decompressor::new(false);
        let mut out = Vec::new();
        let before = alloc_count::live_bytes();
        assert_eq!(d.feed(&bomb, &mut out, max), Err(Error::TooBig));
        assert!(out.capacity() <= max + 1, "capacity {}", out.capacity());
        assert!(alloc_count::live_bytes() - before < (max + 64 * 1024) as isize);
        assert!(!d.is_allocated(), "state dropped after the failure");
        // Exactly max is fine.
        let exact = compress_one(&mut c, &vec![7u8; max]);
        assert_eq!(inflate_one(&mut d, &exact, max).unwrap().len(), max);
        assert_eq!(inflate_one(&mut d, &exact, max - 1), Err(Error::TooBig));
    }

    #[test]
    fn corrupt_data_is_invalid_payload() {
        let mut d = Decompressor::new(false);
        assert_eq!(inflate_one(&mut d, &[0xff, 0xff, 0xff, 0x00], 100).unwrap_err().close_code(), 1007);
    }

    #[test]
    fn a_final_block_ends_the_message_and_the_next_starts_fresh() {
        // A peer may end a message with BFINAL set (§7.2.3.5 gives 03 00 for "").
        let mut d = Decompressor::new(false);
        assert_eq!(inflate_one(&mut d, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100).unwrap(), b"Hello");
        assert_eq!(inflate_one(&mut d, &[0x03, 0x00], 100).unwrap(), b"");
        assert_eq!(inflate_one(&mut d, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100).unwrap(), b"Hello");
    }

    /// A minimal RFC 1951 decoder for the test below: inflates a raw deflate stream
    /// (stored, fixed and dynamic blocks, up to a sync-flush end) and reports the
    /// longest match distance it used, which is what a peer's window must cover.
    fn inflate_max_distance(data: &[u8]) -> (Vec<u8>, usize) {
        struct Bits<'a> {
            data: &'a [u8],
            pos: usize, // in bits
        }
        impl Bits<'_> {
            fn bit(&mut self) -> u32 {
                let b = (self.data[self.pos / 8] >> (self.pos % 8)) & 1;
                self.pos += 1;
                b as u32
            }
            fn bits(&mut self, n: u32) -> u32 {
                (0..n).fold(0, |acc, i| acc | self.bit() << i)
            }
            fn done(&self) -> bool {
                self.pos / 8 >= self.data.len()
            }
        }
        // Canonical Huffman code: count of codes per length, symbols in code order.
        struct Huff {
            count: [u16; 16],
            symbol: Vec<u16>,
        }
        fn huff(lengths: &[u8]) -> Huff {
            let mut count = [0u16; 16];
            for &l in lengths {
                count[l as usize] += 1;
            }
            count[0] = 0;
            let mut symbol = Vec::new();
            for len in 1..16 {
                for (s, &l) in lengths.iter().enumerate() {
                    if l as usize == len {
                        symbol.push(s as u16);
                    }
                }
            }
            Huff { count, symbol }
        }
        fn decode(b: &mut Bits, h: &Huff) -> u16 {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= b.bit() as i32;
                let count = h.count[len] as i32;
                if code - first < count {
                    return h.symbol[(index + code - first) as usize];
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            panic!("bad code");
        }
        const LEN_BASE: [u16; 29] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
        const LEN_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
        const DIST_BASE: [u16; 30] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
        const DIST_EXTRA: [u8; 30] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
        const ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
        let mut b = Bits { data, pos: 0 };
        let (mut out, mut max_dist) = (Vec::new(), 0usize);
        while !b.done() {
            let _final = b.bit();
            match b.bits(2) {
                0 => {
                    b.pos = b.pos.div_ceil(8) * 8;
                    let len = b.bits(16) as usize;
                    let _nlen = b.bits(16);
                    for _ in 0..len {
                        out.push(b.bits(8) as u8);
                    }
                    continue;
                }
                1 => {
                    let mut l = [8u8; 288];
                    l[144..256].fill(9);
                    l[256..280].fill(7);
                    blocks(&mut b, &huff(&l), &huff(&[5u8; 30]), &mut out, &mut max_dist);
                }
                2 => {
                    let (hlit, hdist, hclen) = (b.bits(5) as usize + 257, b.bits(5) as usize + 1, b.bits(4) as usize + 4);
                    let mut cl = [0u8; 19];
                    for &i in &ORDER[..hclen] {
                        cl[i] = b.bits(3) as u8;
                    }
                    let clh = huff(&cl);
                    let mut lengths = Vec::new();
                    while lengths.len() < hlit + hdist {
                        match decode(&mut b, &clh) {
                            s @ 0..=15 => lengths.push(s as u8),
                            16 => {
                                let prev = *lengths.last().unwrap();
                                (0..3 + b.bits(2)).for_each(|_| lengths.push(prev))
                            }
                            17 => (0..3 + b.bits(3)).for_each(|_| lengths.push(0)),
                            _ => (0..11 + b.bits(7)).for_each(|_| lengths.push(0)),
                        }
                    }
                    blocks(&mut b, &huff(&lengths[..hlit]), &huff(&lengths[hlit..]), &mut out, &mut max_dist);
                }
                _ => panic!("bad block type"),
            }
        }
        fn blocks(b: &mut Bits, lit: &Huff, dist: &Huff, out: &mut Vec<u8>, max_dist: &mut usize) {
            loop {
                match decode(b, lit) {
                    s @ 0..=255 => out.push(s as u8),
                    256 => return,
                    s => {
                        let i = (s - 257) as usize;
                        let len = LEN_BASE[i] as usize + b.bits(LEN_EXTRA[i] as u32) as usize;
                        let d = decode(b, dist) as usize;
                        let d = DIST_BASE[d] as usize + b.bits(DIST_EXTRA[d] as u32) as usize;
                        *max_dist = (*max_dist).max(d);
                        for _ in 0..len {
                            out.push(out[out.len() - d]);
                        }
                    }
                }
            }
        }
        (out, max_dist)
    }

    /// A peer's `*_max_window_bits=8` (256-byte window) is met with a 9-bit zlib
    /// compressor, whose matches reach back at most 512 - 262 = 250 bytes.
    #[test]
    fn window_bits_8_is_honoured_with_a_9_bit_compressor() {
        // Repeats at distances 200..700.
        let mut rng = fastrand::Rng::with_seed(8);
        let mut data = Vec::new();
        for _ in 0..200 {
            let block: Vec<u8> = (0..rng.usize(200..700)).map(|_| rng.u8(0..8)).collect();
            data.extend_from_slice(&block);
            data.extend_from_slice(&block[..60]);
        }
        for level in [1, 6, 9] {
            let wire = compress_one(&mut Compressor::new(level, 8, false), &data);
            let (out, max_dist) = inflate_max_distance(&[&wire[..], &TAIL].concat());
            assert_eq!(out, data, "the test decoder works");
            assert!(max_dist > 200 && max_dist <= 256, "level {level}: distance {max_dist}");
            // And the check can fail: a 10-bit compressor reaches further back.
            let wire = compress_one(&mut Compressor::new(level, 10, false), &data);
            let (out, max_dist) = inflate_max_distance(&[&wire[..], &TAIL].concat());
            assert_eq!(out, data);
            assert!(max_dist > 256, "level {level}: distance {max_dist}");
        }
    }

    #[test]
    fn memory_per_state_is_as_documented() {
        let measure = |f: &mut dyn FnMut()| {
            let before = alloc_count::live_bytes();
            f();
            alloc_count::live_bytes() - before
        };
        for (bits, limit_kib) in [(15u8, 400), (12, 300), (9, 260)] {
            let mut c = Compressor::new(1, bits, false);
            assert_eq!(measure(&mut || {}), 0);
            let mut out = Vec::with_capacity(64);
            let kept = measure(&mut || c.compress(b"hello hello hello", &mut out).unwrap());
            assert!(kept > 0 && kept < limit_kib * 1024, "{bits} bits: {kept}");
            println!("compressor, {bits}-bit window: {} KiB", kept / 1024);
            let freed = measure(&mut || c.reset());
            assert_eq!(freed, -kept);
        }
        let mut d = Decompressor::new(false);
        let mut out = Vec::with_capacity(64);
        let kept = measure(&mut || d.feed(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100).unwrap());
        println!("decompressor: {} KiB", kept / 1024);
        assert!(kept > 0 && kept < 48 * 1024, "{kept}");
        // Without context takeover nothing stays between messages.
        let mut c = Compressor::new(1, 15, true);
        let mut d = Decompressor::new(true);
        let kept = measure(&mut || {
            let wire = compress_one(&mut c, b"hello hello hello");
            drop(inflate_one(&mut d, &wire, 100).unwrap());
        });
        assert_eq!(kept, 0);
    }
}
