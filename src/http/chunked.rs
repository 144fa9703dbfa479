//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! The decoder is a byte-level state machine so that a body can be decoded straight out
//! of the connection's read buffer, whatever way the network happened to split it: it
//! never copies input, and the only state it carries between calls is a handful of
//! integers (the partial chunk-size, a few counters), never a partial line.
//!
//! Parsing is strict on purpose. Every place where a lenient parser would guess (a bare
//! LF instead of CRLF, garbage after a chunk's data, a size that wraps around) is a
//! place where two parsers on the path of a request can disagree about where it ends,
//! which is what request smuggling exploits; all of them are rejected here.

use super::lex::{hex_val, is_tchar};

/// Why a chunked body was rejected; each maps to the status the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// The bytes are not a valid chunked body (answered with 400 and a closed
    /// connection, since the end of the message can no longer be found).
    Malformed,
    /// The decoded body would exceed the caller's limit, or the trailer section exceeds
    /// [`MAX_TRAILER_BYTES`] (answered with 413).
    TooLarge,
}

/// Longest chunk-size line accepted, extensions included and CRLF excluded. Extensions
/// carry nothing tern uses; the bound stops a peer from streaming an endless line that
/// costs CPU without ever producing a byte of body.
pub(crate) const MAX_SIZE_LINE: usize = 4096;

/// Most bytes accepted in the trailer section (field lines, their CRLFs and the final
/// CRLF). Trailers are discarded, so this only bounds the work spent skipping them.
pub(crate) const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Where the decoder is within the chunked body. Kept separate from the counters so the
/// whole decoder stays a few words long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Start of a chunk-size line: at least one hex digit must come.
    #[default]
    SizeStart,
    /// Inside the hex digits of a chunk-size.
    SizeDigits,
    /// Whitespace after the size or an extension: only more of it or `;` may follow
    /// (RFC 9112 allows whitespace before `;`, not before the CRLF).
    ExtBws,
    /// After `;`: optional whitespace, then an extension name.
    ExtNameStart,
    /// Inside an extension name.
    ExtName,
    /// Whitespace after an extension name: `=` or `;` may follow.
    ExtNameEnd,
    /// After `=`: optional whitespace, then a token or a quoted string.
    ExtValueStart,
    /// Inside an unquoted extension value.
    ExtToken,
    /// Inside a quoted extension value.
    ExtQuoted,
    /// After a backslash inside a quoted extension value.
    ExtQuotedPair,
    /// Just after the closing quote of an extension value.
    ExtQuotedEnd,
    /// CR of the size line seen; LF must follow.
    SizeLf,
    /// Inside chunk data; `value` holds the bytes still to come.
    Data,
    /// Chunk data complete; its CR must follow.
    DataCr,
    /// CR after chunk data seen; LF must follow.
    DataLf,
    /// Start of a trailer line: a field name, or CR for the end of the body.
    TrailerStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value (everything after the colon).
    TrailerValue,
    /// CR of a trailer field line seen; LF must follow.
    TrailerLf,
    /// CR of the final empty line seen; LF must follow.
    EndLf,
    /// The whole chunked body, trailers included, has been consumed.
    Done,
    /// An error was returned; it is returned again until [`ChunkedDecoder::reset`], so
    /// a caller that retries cannot resynchronise on attacker-chosen bytes.
    Failed(ChunkError),
}

/// Incremental chunked-body decoder, one per connection, reused across messages.
///
/// Feed it the bytes that follow the request head with [`decode`](Self::decode); it
/// hands out the body pieces as sub-slices of the input and says when the message ends,
/// so that pipelined bytes after it stay in the caller's buffer.
#[derive(Debug, Default, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk-size being accumulated, then the chunk bytes still expected.
    value: u64,
    /// Bytes of the current size line so far (for [`MAX_SIZE_LINE`]).
    line_len: u32,
    /// Bytes of the trailer section so far (for [`MAX_TRAILER_BYTES`]).
    trailer_len: u32,
    /// Decoded body bytes of the current message.
    body_len: usize,
}

impl ChunkedDecoder {
    /// A decoder positioned at the start of a chunked body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the decoder ready for the next message (also after an error); nothing is
    /// allocated or freed, so a connection can keep one decoder for its whole life.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Decodes as much of `input` as possible.
    ///
    /// Each piece of decoded body is passed to `sink` as a sub-slice of `input` (never
    /// empty, never copied). Returns `(consumed, done)`: `done` is true once the last
    /// chunk, the trailer section and its final CRLF have been consumed, and bytes after
    /// that (a pipelined request) are left unconsumed. Until then every byte of `input`
    /// is consumed, so the caller never has to keep a partial line around: it just calls
    /// again with the next bytes that arrive.
    ///
    /// `max_body` bounds the total decoded size of this message and is enforced when a
    /// chunk-size is read, before its data arrives, so an oversized upload is refused
    /// without being received. On error, pieces already passed to `sink` during this
    /// call stay delivered; the caller is expected to answer 400/413 and close.
    pub fn decode(
        &mut self,
        input: &[u8],
        max_body: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(usize, bool), ChunkError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Data => {
                    // The hot path: hand out the whole run of data at once.
                    let avail = input.len() - i;
                    let n = if self.value < avail as u64 { self.value as usize } else { avail };
                    sink(&input[i..i + n]);
                    self.body_len += n;
                    self.value -= n as u64;
                    i += n;
                    if self.value == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::Done => return Ok((i, true)),
                State::Failed(e) => return Err(e),
                _ => {
                    let b = input[i];
                    i += 1;
                    if let Err(e) = self.step(b, max_body) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
        }
        match self.state {
            State::Failed(e) => Err(e),
            s => Ok((i, s == State::Done)),
        }
    }

    /// Decoded body bytes of the current message so far.
    pub fn body_len(&self) -> usize {
        self.body_len
    }

    /// True once the current message's chunked body has been completely consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Advances the state machine by one byte outside chunk data.
    fn step(&mut self, b: u8, max_body: usize) -> Result<(), ChunkError> {
        use State::*;
        if matches!(
            self.state,
            SizeStart
                | SizeDigits
                | ExtBws
                | ExtNameStart
                | ExtName
                | ExtNameEnd
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedPair
                | ExtQuotedEnd
        ) && b != b'\r'
        {
            self.line_len += 1;
            if self.line_len as usize > MAX_SIZE_LINE {
                return Err(ChunkError::Malformed);
            }
        }
        if matches!(self.state, TrailerStart | TrailerName | TrailerValue | TrailerLf | EndLf) {
            self.trailer_len += 1;
            if self.trailer_len as usize > MAX_TRAILER_BYTES {
                return Err(ChunkError::TooLarge);
            }
        }

        self.state = match self.state {
            SizeStart | SizeDigits => {
                if let Some(d) = hex_val(b) {
                    // Leading zeros never overflow; a 17th significant digit would.
                    if self.value > u64::MAX >> 4 {
                        return Err(ChunkError::Malformed);
                    }
                    self.value = self.value << 4 | u64::from(d);
                    SizeDigits
                } else if self.state == SizeStart {
                    return Err(ChunkError::Malformed);
                } else {
                    // The size is complete: refuse it now rather than after receiving it.
                    let room = max_body.saturating_sub(self.body_len) as u64;
                    if self.value > room {
                        return Err(ChunkError::TooLarge);
                    }
                    match b {
                        b' ' | b'\t' => ExtBws,
                        b';' => ExtNameStart,
                        b'\r' => SizeLf,
                        _ => return Err(ChunkError::Malformed),
                    }
                }
            }
            ExtBws => match b {
                b' ' | b'\t' => ExtBws,
                b';' => ExtNameStart,
                _ => return Err(ChunkError::Malformed),
            },
            ExtNameStart => match b {
                b' ' | b'\t' => ExtNameStart,
                _ if is_tchar(b) => ExtName,
                _ => return Err(ChunkError::Malformed),
            },
            ExtName => match b {
                _ if is_tchar(b) => ExtName,
                b' ' | b'\t' => ExtNameEnd,
                b'=' => ExtValueStart,
                b';' => ExtNameStart,
                b'\r' => SizeLf,
                _ => return Err(ChunkError::Malformed),
            },
            ExtNameEnd => match b {
                b' ' | b'\t' => ExtNameEnd,
                b'=' => ExtValueStart,
                b';' => ExtNameStart,
                _ => return Err(ChunkError::Malformed),
            },
            ExtValueStart => match b {
                b' ' | b'\t' => ExtValueStart,
                b'"' => ExtQuoted,
                _ if is_tchar(b) => ExtToken,
                _ => return Err(ChunkError::Malformed),
            },
            ExtToken => match b {
                _ if is_tchar(b) => ExtToken,
                b' ' | b'\t' => ExtBws,
                b';' => ExtNameStart,
                b'\r' => SizeLf,
                _ => return Err(ChunkError::Malformed),
            },
            ExtQuoted => match b {
                b'"' => ExtQuotedEnd,
                b'\\' => ExtQuotedPair,
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => ExtQuoted,
                _ => return Err(ChunkError::Malformed),
            },
            ExtQuotedPair => match b {
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => ExtQuoted,
                _ => return Err(ChunkError::Malformed),
            },
            ExtQuotedEnd => match b {
                b' ' | b'\t' => ExtBws,
                b';' => ExtNameStart,
                b'\r' => SizeLf,
                _ => return Err(ChunkError::Malformed),
            },
            SizeLf => match b {
                b'\n' if self.value == 0 => TrailerStart,
                b'\n' => Data,
                _ => return Err(ChunkError::Malformed),
            },
            DataCr => match b {
                b'\r' => DataLf,
                _ => return Err(ChunkError::Malformed),
            },
            DataLf => match b {
                b'\n' => {
                    self.value = 0;
                    self.line_len = 0;
                    SizeStart
                }
                _ => return Err(ChunkError::Malformed),
            },
            // A line starting with whitespace (obs-fold) is rejected along with
            // everything else that is not a field name.
            TrailerStart => match b {
                b'\r' => EndLf,
                _ if is_tchar(b) => TrailerName,
                _ => return Err(ChunkError::Malformed),
            },
            TrailerName => match b {
                _ if is_tchar(b) => TrailerName,
                b':' => TrailerValue,
                _ => return Err(ChunkError::Malformed),
            },
            TrailerValue => match b {
                b'\r' => TrailerLf,
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => TrailerValue,
                _ => return Err(ChunkError::Malformed),
            },
            TrailerLf => match b {
                b'\n' => TrailerStart,
                _ => return Err(ChunkError::Malformed),
            },
            EndLf => match b {
                b'\n' => Done,
                _ => return Err(ChunkError::Malformed),
            },
            // `decode` handles these without calling `step`.
            Data | Done | Failed(_) => unreachable!("step called in state {:?}", self.state),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` in one call, returning the body, consumed count and done flag.
    fn run(input: &[u8], max: usize) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let (n, done) = d.decode(input, max, &mut |p| out.extend_from_slice(p))?;
        assert_eq!(d.body_len(), out.len());
        Ok((out, n, done))
    }

    /// Decodes `input` one byte per call, the most adversarial split.
    fn run_bytewise(input: &[u8], max: usize) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        for (i, b) in input.iter().enumerate() {
            let (n, done) = d.decode(std::slice::from_ref(b), max, &mut |p| out.extend_from_slice(p))?;
            if done {
                return Ok((out, i + n, true));
            }
            assert_eq!(n, 1);
        }
        Ok((out, input.len(), false))
    }

    fn err(input: &[u8], max: usize) -> ChunkError {
        let one = run(input, max).expect_err("accepted in one piece");
        let split = run_bytewise(input, max).expect_err("accepted byte by byte");
        assert_eq!(one, split, "split changed the error");
        one
    }

    const RFC_EXAMPLE: &[u8] = b"7\r\nMozilla\r\n11\r\nDeveloper Network\r\n0\r\n\r\n";

    #[test]
    fn rfc_example() {
        let (out, n, done) = run(RFC_EXAMPLE, usize::MAX).unwrap();
        assert_eq!(out, b"MozillaDeveloper Network");
        assert_eq!(n, RFC_EXAMPLE.len());
        assert!(done);
    }

    #[test]
    fn zero_copy_pieces_borrow_input() {
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let mut d = ChunkedDecoder::new();
        let base = input.as_ptr() as usize;
        let mut pieces = Vec::new();
        d.decode(input, 100, &mut |p| pieces.push((p.as_ptr() as usize - base, p.len()))).unwrap();
        assert_eq!(pieces, vec![(3, 3), (11, 2)]);
    }

    #[test]
    fn every_split_point() {
        let msg: &[u8] = b"4;a=1\r\nWiki\r\n5 ; b = \"x;\\\"y\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0;last\r\nX-Sum: 12\r\nX-B:\r\n\r\n";
        let want = b"Wikipedia in\r\n\r\nchunks.";
        for a in 0..=msg.len() {
            for b in a..=msg.len() {
                let mut d = ChunkedDecoder::new();
                let mut out = Vec::new();
                let mut sink = |p: &[u8]| out.extend_from_slice(p);
                let r1 = d.decode(&msg[..a], 1000, &mut sink).unwrap();
                assert_eq!(r1, (a, a == msg.len()));
                let r2 = d.decode(&msg[a..b], 1000, &mut sink).unwrap();
                assert_eq!(r2, (b - a, b == msg.len()));
                let r3 = d.decode(&msg[b..], 1000, &mut sink).unwrap();
                assert_eq!(r3, (msg.len() - b, true));
                assert_eq!(out, want, "split at {a},{b}");
                assert_eq!(d.body_len(), want.len());
            }
        }
    }

    #[test]
    fn extensions_accepted_and_ignored() {
        for line in [
            &b"5;name"[..],
            b"5;name=value",
            b"5;name=\"quoted value\"",
            b"5;n=\"with \\\" escaped quote and ; semicolon\"",
            b"5 ;a=1;b;c=\"\"",
            b"5\t; a = b ; c",
            b"0005;x=y",
            b"5;a=\"\x80\xff obs-text\"",
        ] {
            let mut msg = line.to_vec();
            msg.extend_from_slice(b"\r\nhello\r\n0;z=9\r\n\r\n");
            let (out, n, done) = run(&msg, 100).unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(line)));
            assert_eq!((out.as_slice(), n, done), (&b"hello"[..], msg.len(), true));
        }
    }

    #[test]
    fn bad_extensions_rejected() {
        for line in [
            &b"5;"[..],          // missing name
            b"5;=v",             // empty name
            b"5;a=",             // empty value
            b"5;a=\"unterminated",
            b"5;a=\"ctl\x01\"",
            b"5;a b",            // two tokens
            b"5;a=b c",
            b"5 a",
            b"5;a=\"x\"y",
            b"5;a@b",
            // Whitespace is allowed before `;` only, never before the CRLF.
            b"5 ",
            b"5\t",
            b"5;a ",
            b"5;a=b ",
            b"5;a=\"b\" ",
            b"5;a =",
        ] {
            let mut msg = line.to_vec();
            msg.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            assert_eq!(err(&msg, 100), ChunkError::Malformed, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn trailers_accepted_and_ignored() {
        let msg = b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Empty:\r\nX-Tab:\tv a l\r\n\r\n";
        assert_eq!(run(msg, 10).unwrap(), (b"abc".to_vec(), msg.len(), true));
        assert_eq!(run_bytewise(msg, 10).unwrap(), (b"abc".to_vec(), msg.len(), true));
    }

    #[test]
    fn bad_trailers_rejected() {
        for t in [
            &b"NoColon\r\n\r\n"[..],
            b": no name\r\n\r\n",
            b"Bad Name: v\r\n\r\n",
            b"A: v\r\n folded\r\n\r\n",
            b"A: nul\x00\r\n\r\n",
            b"A: del\x7f\r\n\r\n",
            b"A: v\n\r\n",
            b"A: v\r\n\n",
            b"A: v\rx\n\r\n",
            b"A: v\r\rB: w\r\n\r\n",
        ] {
            let mut msg = b"1\r\nx\r\n0\r\n".to_vec();
            msg.extend_from_slice(t);
            assert_eq!(err(&msg, 10), ChunkError::Malformed, "{:?}", String::from_utf8_lossy(t));
        }
    }

    #[test]
    fn trailer_section_bounded() {
        let mut msg = b"0\r\n".to_vec();
        let mut fits = msg.clone();
        // Lines of exactly 100 bytes with CRLF; the final CRLF counts too.
        let line = [b"X-Pad: ".as_slice(), &[b'p'; 91], b"\r\n"].concat();
        assert_eq!(line.len(), 100);
        for _ in 0..(MAX_TRAILER_BYTES - 2) / 100 {
            fits.extend_from_slice(&line);
        }
        let pad = MAX_TRAILER_BYTES - 2 - (fits.len() - 3);
        fits.extend_from_slice(b"Y:");
        fits.extend(std::iter::repeat_n(b'q', pad - 4));
        fits.extend_from_slice(b"\r\n\r\n");
        assert_eq!(fits.len() - 3, MAX_TRAILER_BYTES);
        assert_eq!(run(&fits, 0).unwrap(), (vec![], fits.len(), true));

        for _ in 0..=MAX_TRAILER_BYTES / 100 {
            msg.extend_from_slice(&line);
        }
        msg.extend_from_slice(b"\r\n");
        assert_eq!(err(&msg, 0), ChunkError::TooLarge);
        // One byte more than the limit is refused, even with the end in sight.
        let mut over = fits.clone();
        over.insert(5, b'q');
        assert_eq!(err(&over, 0), ChunkError::TooLarge);
    }

    #[test]
    fn missing_crlf_after_data() {
        assert_eq!(err(b"3\r\nabcd\r\n0\r\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc0\r\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\rX0\r\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\n0\r\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\n\n0\r\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\r\n0\r\n\r\r", 100), ChunkError::Malformed);
    }

    #[test]
    fn lf_only_rejected() {
        assert_eq!(err(b"3\nabc\r\n0\r\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\r\n0\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\r\n0\r\n\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\r\n0\r\nA: b\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\rabc\r\n0\r\n\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\r\n0\r\r\n", 100), ChunkError::Malformed);
        assert_eq!(err(b"3\r\nabc\r\n0\r\r\r\n", 100), ChunkError::Malformed);
    }

    #[test]
    fn bad_hex_rejected() {
        for msg in [
            &b"\r\n"[..],
            b"g\r\n",
            b"-1\r\n",
            b"+1\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5\x00\r\nhello\r\n",
            b";a\r\n",
        ] {
            assert_eq!(err(msg, 100), ChunkError::Malformed, "{:?}", String::from_utf8_lossy(msg));
        }
    }

    #[test]
    fn sizes_and_limits() {
        // Hex that does not fit in 64 bits is not a size at all.
        assert_eq!(err(b"10000000000000000\r\n", usize::MAX), ChunkError::Malformed);
        // 16 digits fit; leading zeros are free.
        assert_eq!(err(b"FFFFFFFFFFFFFFFF\r\n", 1 << 20), ChunkError::TooLarge);
        assert_eq!(err(b"0000000000000000000000001\r\n", 0), ChunkError::TooLarge);
        assert_eq!(run(b"0000000000000000000000001\r\nx\r\n0\r\n\r\n", 1).unwrap().0, b"x");
        // The limit is on the running total, refused at the size line of the chunk that
        // crosses it, before any of its data.
        let msg = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(run(msg, 11).unwrap().0, b"hello world");
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let r = d.decode(&msg[..13], 10, &mut |p| out.extend_from_slice(p));
        assert_eq!(r, Err(ChunkError::TooLarge));
        assert_eq!(out, b"hello");
        assert_eq!(d.body_len(), 5);
    }

    #[test]
    fn too_long_size_line() {
        let mut ok = b"1;".to_vec();
        ok.resize(MAX_SIZE_LINE, b'a');
        ok.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(run(&ok, 10).unwrap().0, b"x");
        let mut long = b"1;".to_vec();
        long.resize(MAX_SIZE_LINE + 1, b'a');
        long.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(err(&long, 10), ChunkError::Malformed);
        // Leading zeros count too, so they cannot make an endless line either.
        let zeros = vec![b'0'; MAX_SIZE_LINE + 1];
        assert_eq!(err(&zeros, 10), ChunkError::Malformed);
        // The bound is per line, not per body.
        let mut many = Vec::new();
        for _ in 0..3 {
            many.extend_from_slice(&ok[..MAX_SIZE_LINE + 5]);
        }
        many.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(run(&many, 10).unwrap().0, b"xxx");
    }

    #[test]
    fn bytes_after_message_not_consumed() {
        let next = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut msg = b"5\r\nhello\r\n0\r\n\r\n".to_vec();
        let end = msg.len();
        msg.extend_from_slice(next);
        let (out, n, done) = run(&msg, 100).unwrap();
        assert_eq!((out.as_slice(), n, done), (&b"hello"[..], end, true));
        // Byte by byte: the first byte after the end is not taken either.
        assert_eq!(run_bytewise(&msg, 100).unwrap(), (b"hello".to_vec(), end, true));
        // Once done, further input is refused until reset.
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(&msg, 100, &mut |_| {}), Ok((end, true)));
        assert!(d.is_done());
        assert_eq!(d.decode(next, 100, &mut |_| panic!("no body")), Ok((0, true)));
        // Reset makes the same decoder ready for the next chunked message.
        d.reset();
        assert_eq!(d.body_len(), 0);
        let mut out = Vec::new();
        assert_eq!(d.decode(&msg, 100, &mut |p| out.extend_from_slice(p)), Ok((end, true)));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn errors_are_sticky_until_reset() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b"zz", 10, &mut |_| {}), Err(ChunkError::Malformed));
        assert_eq!(d.decode(b"1\r\nx\r\n0\r\n\r\n", 10, &mut |_| panic!()), Err(ChunkError::Malformed));
        assert_eq!(d.decode(b"", 10, &mut |_| {}), Err(ChunkError::Malformed));
        d.reset();
        assert_eq!(d.decode(b"1\r\nx\r\n0\r\n\r\n", 10, &mut |_| {}), Ok((11, true)));
    }

    #[test]
    fn empty_input_and_empty_body() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.decode(b"", 10, &mut |_| panic!()), Ok((0, false)));
        assert_eq!(run(b"0\r\n\r\n", 0).unwrap(), (vec![], 5, true));
        let msg = b"000;e=1\r\nT: 1\r\n\r\n";
        assert_eq!(run(msg, 0).unwrap(), (vec![], msg.len(), true));
    }

    #[test]
    fn decoder_is_small() {
        assert!(std::mem::size_of::<ChunkedDecoder>() <= 32);
    }

    use crate::http::test_rng::Rng;

    fn random_ws(r: &mut Rng, out: &mut Vec<u8>) {
        for _ in 0..r.below(3) {
            out.push(if r.below(2) == 0 { b' ' } else { b'\t' });
        }
    }

    fn random_exts(r: &mut Rng, out: &mut Vec<u8>) {
        for _ in 0..r.below(3) {
            random_ws(r, out);
            out.push(b';');
            random_ws(r, out);
            out.extend_from_slice(r.pick(&[b"a", b"name", b"x-y_z", b"!#$%&'*+-.^_`|~"]));
            match r.below(3) {
                0 => {}
                1 => {
                    random_ws(r, out);
                    out.push(b'=');
                    random_ws(r, out);
                    out.extend_from_slice(r.pick(&[b"1", b"tok", b"A.B"]));
                }
                _ => {
                    out.push(b'=');
                    out.extend_from_slice(r.pick(&[b"\"\"", b"\"a b;c=d\"", b"\"q\\\"uote\\\\\"", b"\"\xe9t\xe9\""]));
                }
            }
        }
    }

    /// Chunked-encodes `body` with random chunk sizes, hex case, leading zeros,
    /// extensions and trailers.
    fn encode(r: &mut Rng, body: &[u8], out: &mut Vec<u8>) {
        let mut rest = body;
        while !rest.is_empty() {
            let cap = if r.below(4) == 0 { 5000 } else { 40 };
            let n = 1 + r.below(rest.len().min(cap));
            for _ in 0..r.below(3) {
                out.push(b'0');
            }
            let hex = if r.below(2) == 0 { format!("{n:x}") } else { format!("{n:X}") };
            out.extend_from_slice(hex.as_bytes());
            random_exts(r, out);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        out.extend_from_slice(r.pick(&[b"0", b"00", b"000"]));
        random_exts(r, out);
        out.extend_from_slice(b"\r\n");
        for _ in 0..r.below(3) {
            out.extend_from_slice(r.pick(&[b"Expires: never", b"X-Checksum:abc", b"a:", b"T: v\tw \x80"]));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    #[test]
    fn random_round_trips() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let next_req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut body = Vec::new();
        let mut wire = Vec::new();
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for iter in 0..3000 {
            body.clear();
            wire.clear();
            out.clear();
            pending.clear();
            let len = if iter % 50 == 0 { r.below(20000) } else { r.below(300) };
            body.extend((0..len).map(|_| r.next() as u8));
            encode(&mut r, &body, &mut wire);
            let end = wire.len();
            wire.extend_from_slice(next_req);

            // Deliver the wire bytes in random pieces, the way a socket would, keeping
            // only what the decoder did not consume.
            let mut d = ChunkedDecoder::new();
            let mut fed = 0;
            let mut done = false;
            while !done {
                assert!(fed < wire.len(), "iteration {iter}: message never completed");
                let cap = if r.below(2) == 0 { 4 } else { 700 };
                let piece = 1 + r.below(cap);
                let to = (fed + piece).min(wire.len());
                pending.extend_from_slice(&wire[fed..to]);
                fed = to;
                let (n, d_done) = d.decode(&pending, body.len(), &mut |p| out.extend_from_slice(p)).unwrap_or_else(|e| {
                    panic!("iteration {iter}: {e:?} on {:?}", String::from_utf8_lossy(&wire[..end]))
                });
                done = d_done;
                if !done {
                    assert_eq!(n, pending.len(), "unconsumed bytes mid-message");
                }
                pending.drain(..n);
            }
            assert_eq!(out, body, "iteration {iter}");
            assert_eq!(d.body_len(), body.len());
            // Exactly the pipelined bytes are left over.
            pending.extend_from_slice(&wire[fed..]);
            assert_eq!(pending, next_req, "iteration {iter}");

            // A limit one byte short is refused, never silently truncated.
            if !body.is_empty() {
                let mut d = ChunkedDecoder::new();
                assert_eq!(d.decode(&wire, body.len() - 1, &mut |_| {}), Err(ChunkError::TooLarge));
            }
        }
    }

    #[test]
    fn random_corruption_never_panics_or_overreads() {
        // Flip, insert or delete one byte of valid encodings: the decoder must either
        // reject, or produce a body no longer than the limit, and never consume past
        // the end of a completed message.
        let mut r = Rng(0x1234_5678_9abc_def1);
        let mut wire = Vec::new();
        for _ in 0..3000 {
            wire.clear();
            let body: Vec<u8> = (0..r.below(100)).map(|_| r.next() as u8).collect();
            encode(&mut r, &body, &mut wire);
            let at = r.below(wire.len());
            match r.below(3) {
                0 => wire[at] = r.next() as u8,
                1 => wire.insert(at, r.next() as u8),
                _ => {
                    wire.remove(at);
                }
            }
            let limit = body.len() + 8;
            let mut d = ChunkedDecoder::new();
            let mut got = 0;
            let mut fed = 0;
            while fed < wire.len() {
                let to = (fed + 1 + r.below(16)).min(wire.len());
                match d.decode(&wire[fed..to], limit, &mut |p| got += p.len()) {
                    Ok((n, true)) => {
                        assert!(n <= to - fed);
                        break;
                    }
                    Ok((n, false)) => assert_eq!(n, to - fed),
                    Err(_) => break,
                }
                fed = to;
            }
            assert!(got <= limit);
            assert_eq!(got, d.body_len());
        }
    }
}
