//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across frames, and a frame across reads, at any byte,
//! even inside a code point. [`Utf8Validator`] is fed the pieces in order and fails
//! at the first byte that no valid UTF-8 text can continue with, without waiting for
//! the message (or the frame) to end: RFC 6455 §8.1 asks that an endpoint fail the
//! connection on invalid UTF-8, and Autobahn's case 6.4 checks that this happens as
//! soon as the bad byte has arrived.
//!
//! The work is done by `std::str::from_utf8` (word-at-a-time over ASCII), whose
//! error says both where the valid text ends and whether the rest is a bad sequence
//! (`error_len() == Some(_)`) or just cut short (`None`). It checks the second byte of
//! a sequence against the lead byte's exact range, so overlongs (E0 80..9F, F0
//! 80..8F), surrogates (ED A0..BF) and code points past U+10FFFF (F4 90.., F5..FF) are
//! rejected at that byte. Only a cut-short tail (at most 3 bytes) is carried over.

/// A piece of text was not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

/// Validation state between pieces: the unfinished code point at the end of the
/// last piece, if any. 5 bytes, no heap.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

impl Utf8Validator {
    pub const fn new() -> Utf8Validator {
        Utf8Validator { pending: [0; 4], pending_len: 0 }
    }

    /// Checks the next piece. An error means the text is invalid whatever follows.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        if self.pending_len > 0 {
            data = self.complete_pending(data)?;
            if self.pending_len > 0 {
                return Ok(()); // the piece ended inside the same code point
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(Utf8Error),
            Err(e) => {
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// The text ended: an unfinished code point is an error. Resets for the next text.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let complete = self.pending_len == 0;
        self.reset();
        if complete {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }

    /// Forgets any unfinished code point.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// Adds bytes from `data` to the carried code point; returns the rest of `data`.
    fn complete_pending<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], Utf8Error> {
        let have = self.pending_len as usize;
        let need = sequence_len(self.pending[0]) - have;
        let take = need.min(data.len());
        let mut seq = self.pending;
        seq[have..have + take].copy_from_slice(&data[..take]);
        match std::str::from_utf8(&seq[..have + take]) {
            Ok(_) => {
                self.pending_len = 0;
                Ok(&data[take..])
            }
            Err(e) if e.error_len().is_none() => {
                self.pending = seq;
                self.pending_len = (have + take) as u8;
                Ok(&data[take..])
            }
            Err(_) => Err(Utf8Error),
        }
    }
}

/// Length of the sequence a lead byte starts. Only called on lead bytes that
/// `from_utf8` left as a valid, unfinished prefix (C2..F4).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index of the first byte at which `data` stops being a prefix of valid UTF-8,
    /// feeding one byte at a time.
    fn fail_index_bytewise(data: &[u8]) -> Option<usize> {
        let mut v = Utf8Validator::new();
        (0..data.len()).find(|&i| v.feed(&data[i..i + 1]).is_err())
    }

    fn valid_whole(data: &[u8]) -> bool {
        let mut v = Utf8Validator::new();
        v.feed(data).is_ok() && v.finish().is_ok()
    }

    #[test]
    fn every_split_of_valid_multibyte_text_is_accepted() {
        let text = "κόσμε a\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}€𝄞 done".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                let mut v = Utf8Validator::new();
                assert!(v.feed(&text[..a]).is_ok(), "split {a}");
                assert!(v.feed(&text[a..b]).is_ok(), "split {a}/{b}");
                assert!(v.feed(&text[b..]).is_ok(), "split {a}/{b}");
                assert!(v.finish().is_ok(), "split {a}/{b}");
            }
        }
    }

    #[test]
    fn fails_at_the_exact_first_bad_byte() {
        // (bytes, index of the first byte that makes it invalid)
        let cases: &[(&[u8], usize)] = &[
            (b"ab\xffcd", 2),                  // never valid
            (b"\xc0\x80", 0),                  // overlong lead, never valid
            (b"\xc1\xbf", 0),
            (b"\xe0\x80\xaf", 1),              // overlong 3-byte
            (b"\xe0\x9f\xbf", 1),
            (b"\xf0\x80\x80\xaf", 1),          // overlong 4-byte
            (b"\xf0\x8f\xbf\xbf", 1),
            (b"\xed\xa0\x80", 1),              // U+D800 surrogate
            (b"\xed\xbf\xbf", 1),              // U+DFFF
            (b"\xf4\x90\x80\x80", 1),          // U+110000
            (b"\xf5\x80\x80\x80", 0),          // lead past F4
            (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", 12), // Autobahn 6.3.1
            (b"\xe2\x82\x28", 2),              // continuation missing
            (b"a\x80", 1),                     // lone continuation
            (b"\xf0\x90\x80\x41", 3),
        ];
        for &(data, at) in cases {
            assert_eq!(fail_index_bytewise(data), Some(at), "{data:x?}");
            let mut v = Utf8Validator::new();
            assert!(v.feed(data).is_err(), "{data:x?} whole");
            // Everything before the bad byte is an acceptable prefix.
            let mut v = Utf8Validator::new();
            assert!(v.feed(&data[..at]).is_ok());
        }
    }

    #[test]
    fn truncated_code_point_at_the_end_fails_only_at_finish() {
        for data in [&b"\xce"[..], b"\xe2\x82", b"\xf0\x9d\x84", b"ok\xf4\x8f\xbf"] {
            let mut v = Utf8Validator::new();
            assert!(v.feed(data).is_ok());
            assert_eq!(v.finish(), Err(Utf8Error));
            // finish() reset the state: the next text starts clean.
            assert!(v.feed(b"x").is_ok() && v.finish().is_ok());
        }
    }

    #[test]
    fn all_code_points_split_at_every_byte() {
        let mut buf = [0u8; 4];
        for cp in (0..=0x10ffffu32).step_by(97).chain([0x7f, 0x80, 0x7ff, 0x800, 0xffff, 0x10000, 0x10ffff]) {
            let Some(c) = char::from_u32(cp) else { continue };
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            for split in 0..=bytes.len() {
                let mut v = Utf8Validator::new();
                assert!(v.feed(&bytes[..split]).is_ok());
                assert!(v.feed(&bytes[split..]).is_ok());
                assert!(v.finish().is_ok(), "U+{cp:x} split {split}");
            }
        }
    }

    #[test]
    fn random_pieces_agree_with_std_on_random_bytes() {
        let mut rng = fastrand::Rng::with_seed(0x7574_6638);
        let alphabet: &[u8] = &[b'a', 0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xa0, 0x90, 0x8f, 0xff];
        for _ in 0..20_000 {
            let len = rng.usize(0..12);
            let data: Vec<u8> = (0..len).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
            let expect = std::str::from_utf8(&data).is_ok();
            let mut v = Utf8Validator::new();
            let mut ok = true;
            let mut at = 0;
            while at < len && ok {
                let n = rng.usize(1..=len - at);
                ok = v.feed(&data[at..at + n]).is_ok();
                at += n;
            }
            let got = ok && v.finish().is_ok();
            assert_eq!(got, expect, "{data:x?}");
            assert_eq!(valid_whole(&data), expect);
            // Fail-fast: the byte-wise failure index is where the prefix stops being valid.
            let first_bad = (0..len).find(|&i| {
                matches!(std::str::from_utf8(&data[..=i]), Err(e) if e.error_len().is_some())
            });
            assert_eq!(fail_index_bytewise(&data), first_bad, "{data:x?}");
        }
    }
}
