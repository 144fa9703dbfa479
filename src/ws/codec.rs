//! The sans-IO WebSocket codec: a [`Decoder`] that turns received bytes into
//! messages and control frames, and an [`Encoder`] that builds frames to send.
//!
//! # Driving the decoder
//!
//! ```
//! use tern::ws::codec::{Decoder, Item};
//! use tern::ws::Role;
//!
//! let mut dec = Decoder::new(Role::Client, 1 << 20, None);
//! // Received so far: an unmasked text frame "hi" and half of the next frame.
//! let mut recv = vec![0x81, 0x02, b'h', b'i', 0x82];
//! let d = dec.decode(&mut recv).unwrap();
//! assert!(matches!(d.item, Some(Item::Message { data: b"hi", .. })));
//! let used = d.consumed;
//! recv.drain(..used); // only once the item is no longer needed: it may borrow `recv`
//! let d = dec.decode(&mut recv).unwrap();
//! assert!(d.item.is_none() && d.consumed == 0); // wait for more bytes
//! ```
//!
//! Each call takes the connection's unconsumed received bytes, as `&mut [u8]` so that
//! payloads are unmasked in place, and returns how many of them it consumed and at
//! most one [`Item`]. The caller drops the consumed bytes (after it is done with the
//! item) and calls again with the rest, until a call returns no item: that means every
//! usable byte was consumed and more are needed. Bytes not consumed are left exactly
//! as they were; consumed bytes may have been unmasked.
//!
//! - A message that arrives as one unfragmented, uncompressed frame, complete in the
//!   input, is returned borrowed straight from the input: no copy.
//! - Anything else (fragments, compressed messages, a frame still arriving) is
//!   streamed: the decoder consumes the frame header and the payload bytes at hand,
//!   unmasks, validates UTF-8 and inflates them into its own buffer, so a frame never
//!   needs to fit in the receive buffer, a bad byte fails the connection as soon as
//!   it arrives, and the item then borrows that buffer. The buffer is freed on the
//!   next call (or [`Decoder::release`]): an idle decoder holds no heap memory.
//! - Control frames (at most 125 bytes) are returned only when complete, borrowed
//!   from the input; they may come between the fragments of a message.
//! - An error carries the close code to send ([`Error::close_code`]); the decoder then
//!   stays failed. After a close frame the decoder ignores (consumes) everything.
//!
//! # Driving the encoder
//!
//! [`Encoder::message`] returns a [`Frame`]: the header (2..14 bytes, on the stack)
//! and the payload, which for a server sending uncompressed is the caller's own
//! buffer ([`Payload::Borrowed`]) so a shared buffer goes to `writev` untouched. A
//! client's payload is a masked copy, a compressed payload is new bytes
//! ([`Payload::Owned`]). Control frames ([`Encoder::ping`], `pong`, `close`) come
//! whole in one small stack buffer.
//!
//! # Memory
//!
//! `Decoder` and `Encoder` are small structs (`memory_of_idle_codec` measures them)
//! that own no heap memory between messages without permessage-deflate. With it, one
//! small box each, and the (de)compressor state of a direction with context takeover
//! once its first message has passed (see `deflate`'s module comment).

use super::close::{build_close, parse_close, CloseFrame};
use super::deflate::{Compressor, Decompressor, DeflateConfig, DeflateParams};
use super::error::Error;
use super::frame::{decode_header, encode_header, FrameHeader, HeaderBuf, OpCode, Role, MAX_CONTROL_PAYLOAD};
use super::mask::{apply_mask, random_key};
use super::stack_buf::StackBuf;
use super::utf8::Utf8Validator;
use std::ops::Range;

/// Text or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Binary,
}

impl MessageKind {
    pub const fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// What the decoder found.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// A complete data message. Text is validated UTF-8.
    Message { kind: MessageKind, data: &'a [u8] },
    /// Answer with a pong carrying the same bytes.
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The peer is closing; answer with a close frame (the same code) and end.
    Close(CloseFrame<'a>),
}

/// One decoding step's result.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Bytes of the input used; drop them once `item` is no longer needed.
    pub consumed: usize,
    /// `None`: every usable byte was consumed, call again when more arrive.
    pub item: Option<Item<'a>>,
}

/// A data frame whose payload is still arriving.
#[derive(Debug, Clone, Copy)]
struct PartialFrame {
    fin: bool,
    mask: Option<[u8; 4]>,
    remaining: u64,
    /// Payload bytes already handled, for the key's phase.
    offset: usize,
}

/// A data message whose frames are still arriving.
#[derive(Debug, Clone)]
struct OpenMessage {
    kind: MessageKind,
    compressed: bool,
    utf8: Utf8Validator,
    /// Payload bytes announced by its frames so far (compressed, if it is).
    wire_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Closed,
    Failed(Error),
}

/// Where a finished step's item is.
enum Out {
    Message(MessageKind, Option<Range<usize>>), // None: in the decoder's buffer
    Ping(Range<usize>),
    Pong(Range<usize>),
    Close(Range<usize>),
}

/// One step over the input, holding no borrow (ranges are relative to the step's
/// input slice).
enum Step {
    /// Consumed this much; nothing more can be done until more bytes arrive.
    NeedMore(usize),
    /// Consumed this much; go on with the rest.
    Continue(usize),
    /// Consumed this much; here is an item.
    Ready(usize, Out),
}

/// Decodes one direction of a connection: see the module comment.
pub struct Decoder {
    role: Role,
    max_message: usize,
    inflate: Option<Box<Decompressor>>,
    frame: Option<PartialFrame>,
    message: Option<OpenMessage>,
    /// Reassembly and inflate output; empty (no capacity) between messages.
    buf: Vec<u8>,
    /// `buf` was lent out by the last item: free it on the next call.
    lent: bool,
    state: State,
}

impl Decoder {
    /// A decoder for `role` (what this end is: a server decodes masked client
    /// frames). Messages past `max_message` bytes (after inflating) fail with 1009.
    /// `deflate` is what the handshake agreed, if permessage-deflate was.
    pub fn new(role: Role, max_message: usize, deflate: Option<&DeflateParams>) -> Decoder {
        Decoder {
            role,
            max_message,
            inflate: deflate.map(|p| Box::new(Decompressor::new(p.recv_resets(role)))),
            frame: None,
            message: None,
            buf: Vec::new(),
            lent: false,
            state: State::Open,
        }
    }

    /// Decodes from `input`, the connection's unconsumed received bytes.
    pub fn decode<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Decoded<'a>, Error> {
        self.release();
        match self.state {
            State::Failed(e) => return Err(e),
            State::Closed => return Ok(Decoded { consumed: input.len(), item: None }),
            State::Open => {}
        }
        let mut pos = 0;
        loop {
            let step = match self.step(&mut input[pos..]) {
                Ok(step) => step,
                Err(e) => {
                    self.fail(e);
                    return Err(e);
                }
            };
            match step {
                Step::NeedMore(n) => return Ok(Decoded { consumed: pos + n, item: None }),
                Step::Continue(n) => pos += n,
                Step::Ready(n, out) => {
                    let input: &'a [u8] = input;
                    let at = |r: Range<usize>| &input[pos + r.start..pos + r.end];
                    let item = match out {
                        Out::Message(kind, Some(r)) => Item::Message { kind, data: at(r) },
                        Out::Message(kind, None) => {
                            self.lent = true;
                            Item::Message { kind, data: &self.buf }
                        }
                        Out::Ping(r) => Item::Ping(at(r)),
                        Out::Pong(r) => Item::Pong(at(r)),
                        Out::Close(r) => Item::Close(parse_close(at(r))?),
                    };
                    return Ok(Decoded { consumed: pos + n, item: Some(item) });
                }
            }
        }
    }

    /// The buffer the last item (a message) was lent from, taken over by the caller
    /// (it would be freed by the next `decode` anyway): lets a protocol layer hand the
    /// message to its handler while the decoder goes on. Empty if the last item was
    /// borrowed from the input.
    pub fn take_message(&mut self) -> Vec<u8> {
        if !self.lent {
            return Vec::new();
        }
        self.lent = false;
        std::mem::take(&mut self.buf)
    }

    /// Frees the buffer a delivered message was lent from (the next `decode` does it
    /// anyway). Never frees a message still being assembled.
    pub fn release(&mut self) {
        if self.lent {
            self.buf = Vec::new();
            self.lent = false;
        }
    }

    /// Heap bytes this decoder holds right now, besides an inflater's state.
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether a close frame was received.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn fail(&mut self, e: Error) {
        self.state = State::Failed(e);
        self.buf = Vec::new();
        self.frame = None;
        self.message = None;
        if let Some(d) = &mut self.inflate {
            d.reset();
        }
    }

    fn step(&mut self, input: &mut [u8]) -> Result<Step, Error> {
        if self.frame.is_some() {
            return self.payload(input);
        }
        let Some(h) = decode_header(input, self.role, self.inflate.is_some())? else {
            return Ok(Step::NeedMore(0));
        };
        if h.opcode.is_control() {
            return self.control(input, &h);
        }
        self.data_frame(input, &h)
    }

    fn control(&mut self, input: &mut [u8], h: &FrameHeader) -> Result<Step, Error> {
        let (start, end) = (h.header_len, h.header_len + h.payload_len as usize);
        let Some(payload) = input.get_mut(start..end) else { return Ok(Step::NeedMore(0)) };
        if let Some(key) = h.mask {
            apply_mask(payload, key, 0);
        }
        let out = match h.opcode {
            OpCode::Ping => Out::Ping(start..end),
            OpCode::Pong => Out::Pong(start..end),
            _ => {
                parse_close(payload)?;
                self.state = State::Closed;
                Out::Close(start..end)
            }
        };
        Ok(Step::Ready(end, out))
    }

    fn data_frame(&mut self, input: &mut [u8], h: &FrameHeader) -> Result<Step, Error> {
        let first = h.opcode != OpCode::Continuation;
        let (kind, compressed, so_far) = match (&self.message, first) {
            (None, false) => return Err(Error::Protocol("continuation frame outside a fragmented message")),
            (Some(_), true) => return Err(Error::Protocol("new data frame inside a fragmented message")),
            (Some(m), false) => (m.kind, m.compressed, m.wire_len),
            (None, true) => (if h.opcode == OpCode::Text { MessageKind::Text } else { MessageKind::Binary }, h.rsv1, 0),
        };
        // Compressed bytes are bounded too, generously: the real bound is on what
        // they inflate to, but a stream of empty blocks must not run forever.
        let limit = if compressed { self.max_message.saturating_mul(2).saturating_add(1024) } else { self.max_message };
        if h.payload_len > (limit - so_far) as u64 {
            return Err(Error::TooBig);
        }
        let (hl, len) = (h.header_len, h.payload_len as usize);
        if first && h.fin && !compressed && input.len() - hl >= len {
            return self.whole_message(&mut input[hl..hl + len], kind, h.mask).map(|()| Step::Ready(hl + len, Out::Message(kind, Some(hl..hl + len))));
        }
        if first {
            self.message = Some(OpenMessage { kind, compressed, utf8: Utf8Validator::new(), wire_len: 0 });
        }
        if let Some(m) = &mut self.message {
            m.wire_len += len;
        }
        self.frame = Some(PartialFrame { fin: h.fin, mask: h.mask, remaining: h.payload_len, offset: 0 });
        Ok(match self.payload(&mut input[hl..])? {
            Step::NeedMore(n) => Step::NeedMore(hl + n),
            Step::Continue(n) => Step::Continue(hl + n),
            Step::Ready(n, out) => Step::Ready(hl + n, out),
        })
    }

    /// The zero-copy case: unmask and validate in place.
    fn whole_message(&mut self, payload: &mut [u8], kind: MessageKind, mask: Option<[u8; 4]>) -> Result<(), Error> {
        if let Some(key) = mask {
            apply_mask(payload, key, 0);
        }
        if kind == MessageKind::Text && std::str::from_utf8(payload).is_err() {
            return Err(Error::InvalidPayload("text message is not UTF-8"));
        }
        Ok(())
    }

    /// Takes what is at hand of the current data frame's payload.
    fn payload(&mut self, input: &mut [u8]) -> Result<Step, Error> {
        let (Some(frame), Some(msg)) = (&mut self.frame, &mut self.message) else {
            return Err(Error::Protocol("decoder state lost")); // unreachable by construction
        };
        let n = frame.remaining.min(input.len() as u64) as usize;
        let chunk = &mut input[..n];
        if let Some(key) = frame.mask {
            apply_mask(chunk, key, frame.offset);
        }
        frame.offset += n;
        frame.remaining -= n as u64;
        let (done, fin) = (frame.remaining == 0, frame.fin);
        let text = msg.kind == MessageKind::Text;
        let bad_text = Error::InvalidPayload("text message is not UTF-8");
        if msg.compressed {
            let Some(inflate) = &mut self.inflate else { return Err(Error::Protocol("compressed frame without deflate")) };
            let before = self.buf.len();
            inflate.feed(chunk, &mut self.buf, self.max_message)?;
            if text {
                msg.utf8.feed(&self.buf[before..]).map_err(|_| bad_text)?;
            }
        } else {
            if text {
                msg.utf8.feed(chunk).map_err(|_| bad_text)?;
            }
            reserve_bounded(&mut self.buf, n, self.max_message);
            self.buf.extend_from_slice(chunk);
        }
        if !done {
            return Ok(Step::NeedMore(n));
        }
        self.frame = None;
        if !fin {
            return Ok(Step::Continue(n));
        }
        if msg.compressed {
            if let Some(inflate) = &mut self.inflate {
                let before = self.buf.len();
                inflate.finish(&mut self.buf, self.max_message)?;
                if text {
                    msg.utf8.feed(&self.buf[before..]).map_err(|_| bad_text)?;
                }
            }
        }
        if text {
            msg.utf8.finish().map_err(|_| bad_text)?;
        }
        let kind = msg.kind;
        self.message = None;
        Ok(Step::Ready(n, Out::Message(kind, None)))
    }
}

/// Makes room for `additional` more bytes, doubling as a `Vec` would but never past
/// `max` in total, so a message announced as large is only allocated as it arrives.
fn reserve_bounded(buf: &mut Vec<u8>, additional: usize, max: usize) {
    let need = buf.len() + additional;
    if need <= buf.capacity() {
        return;
    }
    let target = need.max(buf.capacity().saturating_mul(2).min(max)).max(256.min(max));
    buf.reserve_exact(target - buf.len());
}

/// A frame's payload, as it goes to the send queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// The caller's own bytes, untouched: queue the buffer they came from.
    Borrowed(&'a [u8]),
    /// New bytes (compressed and/or masked).
    Owned(Vec<u8>),
}

impl Payload<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Borrowed(b) => b,
            Payload::Owned(v) => v,
        }
    }
}

/// A data frame to send: write `header`, then `payload`.
#[derive(Debug)]
pub struct Frame<'a> {
    pub header: HeaderBuf,
    pub payload: Payload<'a>,
}

/// A whole control frame (header and payload, masked for a client), on the stack.
pub type ControlFrame = StackBuf<{ 6 + MAX_CONTROL_PAYLOAD }>;

/// Compression settings of the sending side.
struct SendDeflate {
    compressor: Compressor,
    min_len: usize,
    /// No context takeover: a message may go uncompressed when that is shorter.
    resets: bool,
}

/// Builds frames for one direction of a connection: see the module comment.
pub struct Encoder {
    role: Role,
    deflate: Option<Box<SendDeflate>>,
}

impl Encoder {
    /// An encoder for `role`; `deflate` is what the handshake agreed (if it did) and
    /// this end's settings (level, threshold).
    pub fn new(role: Role, deflate: Option<(&DeflateParams, &DeflateConfig)>) -> Encoder {
        let deflate = deflate.map(|(params, cfg)| {
            let (resets, bits) = params.send_side(role);
            Box::new(SendDeflate { compressor: Compressor::new(cfg.level, bits, resets), min_len: cfg.min_compress_len, resets })
        });
        Encoder { role, deflate }
    }

    /// One frame holding the whole message, compressed when permessage-deflate was
    /// agreed and the message is long enough to gain from it.
    pub fn message<'a>(&mut self, kind: MessageKind, data: &'a [u8]) -> Frame<'a> {
        let (payload, compressed) = match self.compress(data) {
            Some(v) => (Payload::Owned(v), true),
            None => (Payload::Borrowed(data), false),
        };
        self.frame(kind.opcode(), compressed, payload)
    }

    /// A ping; `None` if `data` is over 125 bytes.
    pub fn ping(&mut self, data: &[u8]) -> Option<ControlFrame> {
        self.control(OpCode::Ping, data)
    }

    /// A pong (the answer to a ping carries the ping's bytes); `None` if over 125.
    pub fn pong(&mut self, data: &[u8]) -> Option<ControlFrame> {
        self.control(OpCode::Pong, data)
    }

    /// A close frame: with `code` and `reason` (cut to fit 125 bytes), or empty for
    /// `None`. `None` if `code` may not be sent (1005, 1006, 1015, unassigned).
    pub fn close(&mut self, code: Option<u16>, reason: &str) -> Option<ControlFrame> {
        match code {
            None => self.control(OpCode::Close, &[]),
            Some(code) => self.control(OpCode::Close, &build_close(code, reason)?),
        }
    }

    fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let d = self.deflate.as_mut().filter(|d| data.len() >= d.min_len)?;
        let mut out = Vec::new();
        if d.compressor.compress(data, &mut out).is_err() {
            d.compressor.reset(); // safe: a fresh compressor refers to nothing the peer lacks
            return None;
        }
        // Without context takeover nothing depends on this message having gone
        // through the compressor, so send whichever is shorter.
        if d.resets && out.len() >= data.len() {
            return None;
        }
        Some(out)
    }

    fn frame<'a>(&mut self, opcode: OpCode, rsv1: bool, payload: Payload<'a>) -> Frame<'a> {
        let len = payload.as_slice().len() as u64;
        match self.role {
            Role::Server => Frame { header: encode_header(opcode, true, rsv1, len, None), payload },
            Role::Client => {
                let key = random_key();
                let mut bytes = match payload {
                    Payload::Borrowed(b) => b.to_vec(), // a masked copy cannot be avoided
                    Payload::Owned(v) => v,
                };
                apply_mask(&mut bytes, key, 0);
                Frame { header: encode_header(opcode, true, rsv1, len, Some(key)), payload: Payload::Owned(bytes) }
            }
        }
    }

    fn control(&mut self, opcode: OpCode, data: &[u8]) -> Option<ControlFrame> {
        if data.len() > MAX_CONTROL_PAYLOAD {
            return None;
        }
        let key = (self.role == Role::Client).then(random_key);
        let header = encode_header(opcode, true, false, data.len() as u64, key);
        let mut f = ControlFrame::new();
        f.push(&header);
        f.push(data);
        if let Some(key) = key {
            apply_mask(&mut f.as_mut_slice()[header.len()..], key, 0);
        }
        Some(f)
    }
}

/// The decoder and encoder of one connection, from what the handshake agreed.
pub fn codec(role: Role, max_message: usize, deflate: Option<&DeflateParams>, cfg: &DeflateConfig) -> (Decoder, Encoder) {
    (Decoder::new(role, max_message, deflate), Encoder::new(role, deflate.map(|p| (p, cfg))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::alloc_count;

    const MAX: usize = 4 << 20;

    /// An owned copy of an item, to compare across calls.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Got {
        Text(Vec<u8>),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, String),
    }

    fn own(item: &Item) -> Got {
        match item {
            Item::Message { kind: MessageKind::Text, data } => Got::Text(data.to_vec()),
            Item::Message { kind: MessageKind::Binary, data } => Got::Binary(data.to_vec()),
            Item::Ping(d) => Got::Ping(d.to_vec()),
            Item::Pong(d) => Got::Pong(d.to_vec()),
            Item::Close(c) => Got::Close(c.code(), c.reason().to_string()),
        }
    }

    /// Feeds `wire` in chunks of the given sizes (cycled), the way a connection's
    /// receive buffer would: append, decode until no item, drop what was consumed.
    fn run(dec: &mut Decoder, wire: &[u8], chunks: &[usize]) -> (Vec<Got>, Option<Error>) {
        let (mut recv, mut got, mut at, mut i) = (Vec::new(), Vec::new(), 0, 0);
        while at < wire.len() {
            let n = chunks[i % chunks.len()].clamp(1, wire.len() - at);
            i += 1;
            recv.extend_from_slice(&wire[at..at + n]);
            at += n;
            loop {
                match dec.decode(&mut recv) {
                    Err(e) => return (got, Some(e)),
                    Ok(d) => {
                        let item = d.item.as_ref().map(own);
                        let consumed = d.consumed;
                        recv.drain(..consumed);
                        match item {
                            Some(g) => got.push(g),
                            None => break,
                        }
                    }
                }
            }
        }
        (got, None)
    }

    /// A frame as a client sends it (masked), built by hand.
    fn client_frame(opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
        let key = [0x11, 0x22, 0x33, 0x44];
        let op = OpCode::from_bits(opcode).unwrap();
        let mut f = encode_header(op, fin, rsv1, payload.len() as u64, Some(key)).to_vec();
        let mut p = payload.to_vec();
        apply_mask(&mut p, key, 0);
        f.extend_from_slice(&p);
        f
    }

    fn server_decoder() -> Decoder {
        Decoder::new(Role::Server, MAX, None)
    }

    #[test]
    fn single_frame_message_is_borrowed_from_the_input() {
        let mut dec = server_decoder();
        let mut wire = client_frame(1, true, false, b"Hello");
        let range = wire.as_ptr_range();
        let d = dec.decode(&mut wire).unwrap();
        assert_eq!(d.consumed, 11);
        let Some(Item::Message { kind: MessageKind::Text, data }) = d.item else { panic!("{:?}", d.item) };
        assert_eq!(data, b"Hello");
        assert!(range.contains(&data.as_ptr()), "zero copy");
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn fragments_reassemble_with_control_frames_between() {
        let mut wire = client_frame(1, false, false, b"Hel");
        wire.extend(client_frame(9, true, false, b"are you there"));
        wire.extend(client_frame(0, false, false, b"lo, "));
        wire.extend(client_frame(10, true, false, b""));
        wire.extend(client_frame(0, true, false, "κόσμε".as_bytes()));
        wire.extend(client_frame(2, true, false, &[0, 1, 2]));
        wire.extend(client_frame(8, true, false, &[0x03, 0xe8, b'o', b'k']));
        wire.extend(client_frame(1, true, false, b"after close: ignored"));
        let expect = vec![
            Got::Ping(b"are you there".to_vec()),
            Got::Pong(vec![]),
            Got::Text("Hello, κόσμε".as_bytes().to_vec()),
            Got::Binary(vec![0, 1, 2]),
            Got::Close(Some(1000), "ok".into()),
        ];
        for chunks in [&[usize::MAX][..], &[1], &[2, 3, 5, 7], &[13, 1, 4]] {
            let mut dec = server_decoder();
            assert_eq!(run(&mut dec, &wire, chunks), (expect.clone(), None), "{chunks:?}");
            assert!(dec.is_closed());
        }
    }

    #[test]
    fn bad_fragment_sequences_are_protocol_errors() {
        let bad = [
            client_frame(0, true, false, b"x"),                                              // continuation first
            [client_frame(1, false, false, b"a"), client_frame(1, true, false, b"b")].concat(), // text inside text
            [client_frame(2, false, false, b"a"), client_frame(2, false, false, b"b")].concat(),
            [client_frame(1, true, false, b"a"), client_frame(0, true, false, b"b")].concat(), // nothing to continue
        ];
        for wire in bad {
            let mut dec = server_decoder();
            let (_, err) = run(&mut dec, &wire, &[usize::MAX]);
            assert_eq!(err.map(Error::close_code), Some(1002), "{wire:x?}");
            // Failed stays failed.
            assert!(dec.decode(&mut client_frame(1, true, false, b"x")).is_err());
        }
    }

    #[test]
    fn frame_level_violations_fail_with_1002() {
        let mut unmasked = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(server_decoder().decode(&mut unmasked).unwrap_err().close_code(), 1002);
        let mut masked = client_frame(1, true, false, b"hi");
        assert_eq!(Decoder::new(Role::Client, MAX, None).decode(&mut masked).unwrap_err().close_code(), 1002);
        let mut rsv1 = client_frame(1, true, true, b"hi");
        assert_eq!(server_decoder().decode(&mut rsv1).unwrap_err().close_code(), 1002);
        let mut long_ping = client_frame(9, true, false, &[0; 126]);
        assert_eq!(server_decoder().decode(&mut long_ping).unwrap_err().close_code(), 1002);
        let mut bad_close = client_frame(8, true, false, &[0x03]);
        assert_eq!(server_decoder().decode(&mut bad_close).unwrap_err().close_code(), 1002);
        let mut bad_reason = client_frame(8, true, false, &[0x03, 0xe8, 0xff]);
        assert_eq!(server_decoder().decode(&mut bad_reason).unwrap_err().close_code(), 1007);
    }

    #[test]
    fn invalid_utf8_fails_at_the_chunk_holding_the_bad_byte() {
        // One 1000-byte text frame; byte 500 is invalid. Fed 100 bytes at a time,
        // the error must come with the chunk holding header + 500, not at the end.
        let mut payload = vec![b'a'; 1000];
        payload[500] = 0xff;
        let wire = client_frame(1, true, false, &payload);
        let mut dec = server_decoder();
        let mut recv = Vec::new();
        let mut fed = 0;
        let err = loop {
            recv.extend_from_slice(&wire[fed..fed + 100]);
            fed += 100;
            match dec.decode(&mut recv) {
                Ok(d) => {
                    assert!(d.item.is_none());
                    let n = d.consumed;
                    recv.drain(..n);
                }
                Err(e) => break e,
            }
        };
        assert_eq!(err.close_code(), 1007);
        assert_eq!(fed, 600, "failed as soon as byte 500 of the payload (wire byte 508) arrived");
        // Split inside a code point across fragments is fine; a surrogate in a later
        // fragment fails there.
        let ok = [client_frame(1, false, false, &[0xce]), client_frame(0, true, false, &[0xba])].concat();
        assert_eq!(run(&mut server_decoder(), &ok, &[1]).0, vec![Got::Text("κ".as_bytes().to_vec())]);
        let bad = [client_frame(1, false, false, b"ok\xed"), client_frame(0, false, false, b"\xa0\x80")].concat();
        assert_eq!(run(&mut server_decoder(), &bad, &[usize::MAX]).1.map(Error::close_code), Some(1007));
        // Truncated at the end of the message.
        let cut = [client_frame(1, false, false, b"ok"), client_frame(0, true, false, b"\xe2\x82")].concat();
        assert_eq!(run(&mut server_decoder(), &cut, &[usize::MAX]).1.map(Error::close_code), Some(1007));
        // Zero-copy path too.
        assert_eq!(server_decoder().decode(&mut client_frame(1, true, false, b"\xc0\x80")).unwrap_err().close_code(), 1007);
    }

    #[test]
    fn too_big_fails_on_the_header_before_the_payload_arrives() {
        let mut dec = Decoder::new(Role::Server, 1000, None);
        let wire = client_frame(2, true, false, &[0; 1001]);
        assert_eq!(dec.decode(&mut wire[..8].to_vec()), Err(Error::TooBig));
        // Fragments adding up past the limit.
        let mut dec = Decoder::new(Role::Server, 1000, None);
        let wire = [client_frame(2, false, false, &[0; 600]), client_frame(0, true, false, &[0; 401])].concat();
        assert_eq!(run(&mut dec, &wire, &[usize::MAX]).1, Some(Error::TooBig));
        // Exactly the limit is fine.
        let mut dec = Decoder::new(Role::Server, 1000, None);
        let wire = [client_frame(2, false, false, &[0; 600]), client_frame(0, true, false, &[0; 400])].concat();
        assert_eq!(run(&mut dec, &wire, &[usize::MAX]).0, vec![Got::Binary(vec![0; 1000])]);
    }

    #[test]
    fn partial_frames_leave_unconsumed_bytes_untouched() {
        let mut dec = server_decoder();
        let wire = client_frame(9, true, false, b"ping!");
        let mut part = wire[..8].to_vec();
        let d = dec.decode(&mut part).unwrap();
        assert_eq!((d.consumed, d.item), (0, None));
        assert_eq!(part, wire[..8], "control frame left as it was until complete");
    }

    #[test]
    fn large_messages_stream_through_in_small_chunks() {
        let mut rng = fastrand::Rng::with_seed(1);
        let big: Vec<u8> = (0..(3 << 20) / 2).map(|_| rng.u8(..)).collect(); // 1.5 MiB
        let wire = client_frame(2, true, false, &big);
        let mut dec = server_decoder();
        assert_eq!(run(&mut dec, &wire, &[16 * 1024]).0, vec![Got::Binary(big.clone())]);
        assert!(dec.decode(&mut []).is_ok());
        assert_eq!(dec.buffered(), 0, "released after the message");
        // All of it at once is the zero-copy path.
        let mut wire2 = wire.clone();
        let d = dec.decode(&mut wire2).unwrap();
        assert!(matches!(d.item, Some(Item::Message { data, .. }) if data == &big[..]));
    }

    #[test]
    fn idle_decoder_holds_no_heap_after_fragmented_messages() {
        let mut dec = server_decoder();
        let wire = [client_frame(1, false, false, b"Hel"), client_frame(0, true, false, b"lo")].concat();
        let before = alloc_count::live_bytes();
        let (got, _) = run(&mut dec, &wire, &[usize::MAX]);
        assert_eq!(got, vec![Got::Text(b"Hello".to_vec())]);
        drop(got);
        assert_eq!(dec.buffered(), 0);
        assert_eq!(alloc_count::live_bytes() - before, 0);
    }

    #[test]
    fn small_unfragmented_messages_cost_no_allocation() {
        let mut dec = server_decoder();
        let mut enc = Encoder::new(Role::Server, None);
        let mut wire = Vec::with_capacity(64 * 1000);
        for i in 0..1000u32 {
            wire.extend(client_frame(if i % 2 == 0 { 1 } else { 2 }, true, false, format!("message {i}").as_bytes()));
        }
        let mut sent = 0usize;
        let before = alloc_count::allocations();
        let mut at = 0;
        while let Ok(Decoded { consumed, item: Some(item) }) = dec.decode(&mut wire[at..]) {
            if let Item::Message { kind, data } = item {
                let f = enc.message(kind, data); // an echo server's reply
                sent += f.header.len() + f.payload.as_slice().len();
            }
            at += consumed;
        }
        assert_eq!(alloc_count::allocations() - before, 0);
        assert_eq!(at, wire.len());
        assert!(sent > 10_000);
    }

    #[test]
    fn server_encoder_borrows_the_payload_and_client_encoder_masks() {
        let data = vec![7u8; 300];
        let mut enc = Encoder::new(Role::Server, None);
        let f = enc.message(MessageKind::Binary, &data);
        assert_eq!(&f.header[..], &[0x82, 0x7e, 0x01, 0x2c]);
        assert!(matches!(f.payload, Payload::Borrowed(p) if p.as_ptr() == data.as_ptr()));
        let mut enc = Encoder::new(Role::Client, None);
        let f = enc.message(MessageKind::Text, b"hello");
        assert_eq!(f.header.len(), 6);
        assert_ne!(f.payload.as_slice(), b"hello");
        let mut wire = [&f.header[..], f.payload.as_slice()].concat();
        let d = server_decoder().decode(&mut wire).map(|d| d.item.as_ref().map(own)).unwrap();
        assert_eq!(d, Some(Got::Text(b"hello".to_vec())));
        // Two frames get different keys.
        let g = enc.message(MessageKind::Text, b"hello");
        assert_ne!(f.header[2..6], g.header[2..6]);
    }

    #[test]
    fn control_frames_encode_whole_and_decode_on_the_other_side() {
        for role in [Role::Server, Role::Client] {
            let peer = if role == Role::Server { Role::Client } else { Role::Server };
            let mut enc = Encoder::new(role, None);
            let mut wire = Vec::new();
            wire.extend_from_slice(&enc.ping(b"p").unwrap());
            wire.extend_from_slice(&enc.pong(&[1; 125]).unwrap());
            wire.extend_from_slice(&enc.close(Some(4001), "bye").unwrap());
            assert!(enc.ping(&[0; 126]).is_none());
            assert!(enc.close(Some(1005), "").is_none());
            assert_eq!(enc.close(None, "").unwrap().len(), if role == Role::Client { 6 } else { 2 });
            let mut dec = Decoder::new(peer, MAX, None);
            assert_eq!(
                run(&mut dec, &wire, &[3]).0,
                vec![Got::Ping(b"p".to_vec()), Got::Pong(vec![1; 125]), Got::Close(Some(4001), "bye".into())]
            );
        }
    }

    fn deflate_pair(params: &DeflateParams) -> (Encoder, Decoder) {
        let cfg = DeflateConfig { min_compress_len: 0, ..DeflateConfig::default() };
        (Encoder::new(Role::Client, Some((params, &cfg))), Decoder::new(Role::Server, MAX, Some(params)))
    }

    #[test]
    fn compressed_messages_round_trip_with_and_without_context_takeover() {
        for takeover in [true, false] {
            let params = DeflateParams { client_no_context_takeover: !takeover, ..DeflateParams::default() };
            let (mut enc, mut dec) = deflate_pair(&params);
            let msg = "{\"event\":\"tick\",\"value\":42,\"text\":\"κόσμε\"}".repeat(3);
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let f = enc.message(MessageKind::Text, msg.as_bytes());
                assert_eq!(f.header[0], 0xc1, "RSV1 on a compressed frame");
                sizes.push(f.payload.as_slice().len());
                let wire = [&f.header[..], f.payload.as_slice()].concat();
                assert_eq!(run(&mut dec, &wire, &[5]).0, vec![Got::Text(msg.as_bytes().to_vec())]);
            }
            assert_eq!(takeover, sizes[1] < sizes[0], "{sizes:?}");
        }
    }

    #[test]
    fn compressed_fragments_and_uncompressed_messages_mix() {
        let params = DeflateParams::default();
        let mut c = Compressor::new(6, 15, false);
        let mut z = Vec::new();
        c.compress(b"Hello, compressed world", &mut z).unwrap();
        let (a, b) = z.split_at(z.len() / 2);
        let wire = [
            client_frame(1, false, true, a),
            client_frame(9, true, false, b"between"),
            client_frame(0, true, false, b),
            client_frame(1, true, false, b"plain"),
        ]
        .concat();
        let mut dec = Decoder::new(Role::Server, MAX, Some(&params));
        assert_eq!(
            run(&mut dec, &wire, &[1, 2, 3]).0,
            vec![Got::Ping(b"between".to_vec()), Got::Text(b"Hello, compressed world".to_vec()), Got::Text(b"plain".to_vec())]
        );
        // RSV1 on the continuation is an error even with deflate.
        let wire = [client_frame(1, false, true, a), client_frame(0, true, true, b)].concat();
        let mut dec = Decoder::new(Role::Server, MAX, Some(&params));
        assert_eq!(run(&mut dec, &wire, &[usize::MAX]).1.map(Error::close_code), Some(1002));
    }

    #[test]
    fn compressed_bomb_fails_with_1009_and_bounded_memory() {
        let params = DeflateParams::default();
        let mut c = Compressor::new(9, 15, true);
        let mut z = Vec::new();
        c.compress(&vec![b'a'; 8 << 20], &mut z).unwrap();
        let wire = client_frame(2, true, true, &z);
        let mut dec = Decoder::new(Role::Server, 1 << 20, Some(&params));
        let before = alloc_count::live_bytes();
        let (_, err) = run(&mut dec, &wire, &[4096]);
        assert_eq!(err, Some(Error::TooBig));
        assert_eq!(alloc_count::live_bytes() - before, 0, "everything released on failure");
        // Invalid UTF-8 inside compressed text is found as it inflates.
        let mut z = Vec::new();
        c.compress(b"valid then \xff", &mut z).unwrap();
        let mut dec = Decoder::new(Role::Server, MAX, Some(&params));
        assert_eq!(run(&mut dec, &client_frame(1, true, true, &z), &[usize::MAX]).1.map(Error::close_code), Some(1007));
    }

    #[test]
    fn large_compressed_message_in_small_chunks() {
        let params = DeflateParams::default();
        let (mut enc, mut dec) = deflate_pair(&params);
        let mut rng = fastrand::Rng::with_seed(2);
        let big: Vec<u8> = (0..(2 << 20)).map(|i| if i % 3 == 0 { rng.u8(..) } else { b'x' }).collect();
        let f = enc.message(MessageKind::Binary, &big);
        let wire = [&f.header[..], f.payload.as_slice()].concat();
        assert_eq!(run(&mut dec, &wire, &[16 * 1024]).0, vec![Got::Binary(big)]);
    }

    #[test]
    fn random_streams_decode_the_same_in_any_chunking() {
        let mut rng = fastrand::Rng::with_seed(0x636f_6465);
        for round in 0..150 {
            let deflate = round % 2 == 1;
            let params = DeflateParams { client_no_context_takeover: rng.bool(), ..DeflateParams::default() };
            let mut comp = Compressor::new(rng.u32(0..=9), 15, params.client_no_context_takeover);
            let mut wire = Vec::new();
            let mut expect = Vec::new();
            for _ in 0..rng.usize(1..8) {
                if rng.u8(0..4) == 0 {
                    let p: Vec<u8> = (0..rng.usize(0..=125)).map(|_| rng.u8(..)).collect();
                    wire.extend(client_frame(9, true, false, &p));
                    expect.push(Got::Ping(p));
                    continue;
                }
                let text = rng.bool();
                let data: Vec<u8> = if text {
                    "aé€𝄞".chars().cycle().skip(rng.usize(0..4)).take(rng.usize(0..3000)).collect::<String>().into_bytes()
                } else {
                    (0..rng.usize(0..3000)).map(|_| rng.u8(0..4)).collect()
                };
                let compressed = deflate && rng.bool();
                let body = if compressed {
                    let mut z = Vec::new();
                    comp.compress(&data, &mut z).unwrap();
                    z
                } else {
                    data.clone()
                };
                // Split into 1..4 fragments with pongs between.
                let mut cuts: Vec<usize> = (0..rng.usize(0..4)).map(|_| rng.usize(0..=body.len())).collect();
                cuts.sort();
                let mut prev = 0;
                let mut pieces: Vec<&[u8]> = cuts.iter().map(|&c| { let p = &body[prev..c]; prev = c; p }).collect();
                pieces.push(&body[prev..]);
                for (i, piece) in pieces.iter().enumerate() {
                    let op = if i > 0 { 0 } else if text { 1 } else { 2 };
                    wire.extend(client_frame(op, i + 1 == pieces.len(), compressed && i == 0, piece));
                    if rng.u8(0..3) == 0 && i + 1 < pieces.len() {
                        wire.extend(client_frame(10, true, false, b"pong"));
                        expect.push(Got::Pong(b"pong".to_vec()));
                    }
                }
                expect.push(if text { Got::Text(data) } else { Got::Binary(data) });
            }
            let chunks: Vec<usize> = (0..5).map(|_| rng.usize(1..200)).collect();
            let mut dec = Decoder::new(Role::Server, MAX, deflate.then_some(&params));
            assert_eq!(run(&mut dec, &wire, &chunks), (expect.clone(), None), "round {round}");
            let mut dec = Decoder::new(Role::Server, MAX, deflate.then_some(&params));
            assert_eq!(run(&mut dec, &wire, &[usize::MAX]), (expect, None), "round {round} whole");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = fastrand::Rng::with_seed(99);
        for _ in 0..20_000 {
            let mut wire: Vec<u8> = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect();
            let role = if rng.bool() { Role::Server } else { Role::Client };
            let params = DeflateParams::default();
            let mut dec = Decoder::new(role, 100, rng.bool().then_some(&params));
            let mut at = 0;
            while let Ok(Decoded { consumed, item: Some(_) }) = dec.decode(&mut wire[at..]) {
                at += consumed;
            }
        }
    }

    /// Decode throughput: `cargo test --release --lib ws::codec::tests::codec_bench --
    /// --ignored --nocapture`. Prints, asserts nothing about time.
    #[test]
    #[ignore]
    fn codec_bench() {
        let small: Vec<u8> = (0..10_000).flat_map(|i| client_frame(1, true, false, format!("{{\"n\":{i:08},\"pad\":\"abcdefghijklmnop\"}}").as_bytes())).collect();
        let big = client_frame(1, true, false, &"é".repeat(4 << 20).into_bytes());
        let mut dec = Decoder::new(Role::Server, 16 << 20, None);
        let t = std::time::Instant::now();
        let mut msgs = 0;
        for _ in 0..100 {
            let mut wire = small.clone();
            let mut at = 0;
            while let Ok(Decoded { consumed, item: Some(_) }) = dec.decode(&mut wire[at..]) {
                at += consumed;
                msgs += 1;
            }
        }
        let per = t.elapsed().as_nanos() as f64 / msgs as f64;
        println!("small text messages: {per:.0} ns each (incl. a copy of the input)");
        let ascii = client_frame(1, true, false, &b"a".repeat(8 << 20));
        for (name, frame) in [("8 MiB of 2-byte UTF-8", &big), ("8 MiB of ASCII", &ascii)] {
            let mut wire = frame.clone();
            let rounds = 20;
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..rounds {
                wire.copy_from_slice(frame); // re-mask: not timed
                let t = std::time::Instant::now();
                assert!(dec.decode(&mut wire).unwrap().item.is_some());
                spent += t.elapsed();
            }
            let gbps = (rounds * frame.len()) as f64 / spent.as_secs_f64() / 1e9;
            println!("{name}, one frame: {gbps:.2} GB/s (unmask + UTF-8 check, zero copy)");
        }
    }

    #[test]
    fn memory_of_idle_codec() {
        let size = std::mem::size_of::<Decoder>() + std::mem::size_of::<Encoder>();
        println!("Decoder {} + Encoder {} bytes", std::mem::size_of::<Decoder>(), std::mem::size_of::<Encoder>());
        assert!(size <= 160, "{size}");
        let before = alloc_count::live_bytes();
        let (dec, enc) = codec(Role::Server, MAX, None, &DeflateConfig::default());
        assert_eq!(alloc_count::live_bytes() - before, 0, "no deflate: no heap");
        drop((dec, enc));
        let params = DeflateParams { server_no_context_takeover: true, client_no_context_takeover: true, ..DeflateParams::default() };
        let (mut dec, mut enc) = codec(Role::Server, MAX, Some(&params), &DeflateConfig::default());
        let boxes = alloc_count::live_bytes() - before;
        assert!(boxes < 512, "{boxes}");
        // A compressed message each way, then idle again: back to the two boxes.
        let text = "x".repeat(1000);
        let f = enc.message(MessageKind::Text, text.as_bytes());
        assert!(matches!(f.payload, Payload::Owned(_)));
        drop(f);
        drop(text);
        let mut c = Compressor::new(1, 15, true);
        let mut z = Vec::new();
        c.compress("y".repeat(1000).as_bytes(), &mut z).unwrap();
        let (got, _) = run(&mut dec, &client_frame(1, true, true, &z), &[usize::MAX]);
        assert_eq!(got.len(), 1);
        drop(got);
        drop(c);
        drop(z);
        assert_eq!(alloc_count::live_bytes() - before, boxes);
        println!("with deflate, idle: {boxes} heap bytes"); // last: captured output allocates
    }
}
