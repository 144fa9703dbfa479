//! `Authorization: Basic` credentials (RFC 7617), decoded byte by byte into the
//! caller's buffers.

use super::lex::trim_ows;

/// Decodes an `Authorization` header value of the Basic scheme (RFC 7617) into the user
/// and password, split at the first `:`.
///
/// The scheme is case-insensitive and extra spaces are tolerated; the base64 may be
/// padded or not. Both parts are written NUL-terminated into `user` and `pass` and their
/// lengths returned. `None` if the scheme is not Basic, the base64 or the credentials
/// are malformed (no `:`, or a control character, which RFC 7617 forbids and which could
/// truncate or confuse the C strings), or a buffer is too small.
pub fn basic_auth(value: &[u8], user: &mut [u8], pass: &mut [u8]) -> Option<(usize, usize)> {
    let v = trim_ows(value);
    if v.len() < 6 || !v[..5].eq_ignore_ascii_case(b"basic") || v[5] != b' ' {
        return None;
    }
    let token = trim_ows(&v[5..]);
    if token.is_empty() {
        return None;
    }
    let mut out = Creds { user, pass, ulen: 0, plen: 0, in_pass: false };
    base64_decode(token, &mut |b| out.push(b))?;
    if !out.in_pass {
        return None;
    }
    *out.user.get_mut(out.ulen)? = 0;
    *out.pass.get_mut(out.plen)? = 0;
    Some((out.ulen, out.plen))
}

/// Where decoded credentials go, byte by byte, so no scratch buffer is needed.
struct Creds<'a> {
    user: &'a mut [u8],
    pass: &'a mut [u8],
    ulen: usize,
    plen: usize,
    in_pass: bool,
}

impl Creds<'_> {
    fn push(&mut self, b: u8) -> Option<()> {
        if b < 0x20 || b == 0x7f {
            return None;
        }
        let (buf, len) = if self.in_pass {
            (&mut *self.pass, &mut self.plen)
        } else if b == b':' {
            self.in_pass = true;
            return Some(());
        } else {
            (&mut *self.user, &mut self.ulen)
        };
        // Keep one byte free for the NUL.
        if *len + 1 >= buf.len() {
            return None;
        }
        buf[*len] = b;
        *len += 1;
        Some(())
    }
}

/// Standard-alphabet base64, padded or not, each byte passed to `out` (which may stop
/// the decoding by returning `None`). Non-zero bits left over at the end are ignored.
fn base64_decode(s: &[u8], out: &mut dyn FnMut(u8) -> Option<()>) -> Option<()> {
    let pad = s.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    let data = &s[..s.len() - pad];
    if (pad > 0 && !s.len().is_multiple_of(4)) || data.len() % 4 == 1 {
        return None;
    }
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out((acc >> bits) as u8)?;
            acc &= (1 << bits) - 1;
        }
    }
    Some(())
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_rng::Rng;
    /// Test-side base64 encoder, to check the decoder against.
    fn b64(data: &[u8], pad: bool) -> Vec<u8> {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        for c in data.chunks(3) {
            let n = u32::from(c[0]) << 16 | u32::from(*c.get(1).unwrap_or(&0)) << 8 | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..=c.len() {
                out.push(A[(n >> (18 - 6 * k)) as usize & 63]);
            }
            if pad {
                out.extend(std::iter::repeat_n(b'=', 3 - c.len()));
            }
        }
        out
    }

    fn auth(v: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let (mut u, mut p) = ([0xaau8; 32], [0xaau8; 32]);
        let (ul, pl) = basic_auth(v, &mut u, &mut p)?;
        assert_eq!((u[ul], p[pl]), (0, 0), "missing NULs");
        Some((u[..ul].to_vec(), p[..pl].to_vec()))
    }

    #[test]
    fn basic_auth_cases() {
        let up = |u: &[u8], p: &[u8]| Some((u.to_vec(), p.to_vec()));
        // RFC 7617's example.
        assert_eq!(auth(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), up(b"Aladdin", b"open sesame"));
        assert_eq!(auth(b"basic QWxhZGRpbjpvcGVuIHNlc2FtZQ"), up(b"Aladdin", b"open sesame"));
        assert_eq!(auth(b"  BASIC    QWxhZGRpbjpvcGVuIHNlc2FtZQ==  "), up(b"Aladdin", b"open sesame"));
        assert_eq!(auth(b"Basic dXNlcjpwYTpzcw=="), up(b"user", b"pa:ss"), "split at the first colon");
        assert_eq!(auth(b"Basic OnA="), up(b"", b"p"));
        assert_eq!(auth(b"Basic dTo="), up(b"u", b""));
        for bad in [
            &b"Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="[..],
            b"Basic",
            b"Basic ",
            b"BasicQWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            b"Basic dXNlcg==",                     // no colon
            b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=",  // wrong padding
            b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ===",
            b"Basic QWxh=ZGRpbjpvcGVuIHNlc2FtZQ==", // padding inside
            b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZ",     // 4n+1 characters
            b"Basic QWxhZGRp bjpvcGVuIHNlc2FtZQ==",
            b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ-_",  // URL-safe alphabet
            b"Basic dQB4OnA=",                     // "u\0x:p": NUL in user
            b"Basic dTpwCg==",                     // "u:p\n"
        ] {
            assert_eq!(auth(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn basic_auth_buffer_sizes() {
        let v = b"Basic dXNlcjpwYXNz"; // user:pass
        let (mut u, mut p) = ([0u8; 5], [0u8; 5]);
        assert_eq!(basic_auth(v, &mut u, &mut p), Some((4, 4)));
        assert_eq!((&u, &p), (b"user\0", b"pass\0"));
        let (mut u4, mut p4) = ([0u8; 4], [0u8; 4]);
        assert_eq!(basic_auth(v, &mut u4, &mut p), None);
        assert_eq!(basic_auth(v, &mut u, &mut p4), None);
        let v = b"Basic OnA="; // ":p"
        assert_eq!(basic_auth(v, &mut [0u8; 1], &mut [0u8; 2]), Some((0, 1)));
        assert_eq!(basic_auth(v, &mut [], &mut [0u8; 2]), None);
    }

    #[test]
    fn basic_auth_random_round_trips() {
        // Random printable-or-high bytes; user never contains ':'.
        fn gen(r: &mut Rng, n: usize, colon_ok: bool) -> Vec<u8> {
            (0..n)
                .map(|_| loop {
                    let b = r.next() as u8;
                    if b >= 0x20 && b != 0x7f && (colon_ok || b != b':') {
                        break b;
                    }
                })
                .collect()
        }
        let mut r = Rng(42);
        for _ in 0..5000 {
            let (ul, pl) = (r.below(31), r.below(31));
            let user = gen(&mut r, ul, false);
            let pass = gen(&mut r, pl, true);
            let mut creds = user.clone();
            creds.push(b':');
            creds.extend_from_slice(&pass);
            for pad in [true, false] {
                let mut v = b"Basic ".to_vec();
                v.extend_from_slice(&b64(&creds, pad));
                assert_eq!(auth(&v), Some((user.clone(), pass.clone())));
            }
        }
    }
}
