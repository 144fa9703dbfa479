//! Form variables: percent-decoding and `name=value&...` lookup in a query string or
//! an `application/x-www-form-urlencoded` body. Works on borrowed bytes into a
//! caller's buffer, so a hostile request can only make it fail, never allocate.

use super::lex::hex_val;

/// Why a variable or a decoded string could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarError {
    /// No variable of that name.
    NotFound,
    /// The destination buffer cannot hold the decoded value (and, where one is written,
    /// its terminating NUL).
    TooSmall,
    /// A `%` not followed by two hex digits.
    BadEncoding,
}

/// Percent-decodes `src` into `dst` (`+` becomes a space when `plus_is_space`, as in
/// query strings and form bodies, but not in paths). Returns the decoded length, or
/// `TooSmall` / `BadEncoding` (a `%` not followed by two hex digits) whichever comes
/// first; on error `dst` holds a partial result. Decoding may produce any byte, NUL
/// included: callers that hand the result to C as a string must keep the length.
pub fn url_decode(src: &[u8], dst: &mut [u8], plus_is_space: bool) -> Result<usize, VarError> {
    let mut i = 0;
    let mut n = 0;
    while i < src.len() {
        let b = match src[i] {
            b'%' => {
                let hi = src.get(i + 1).copied().and_then(hex_val);
                let lo = src.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        i += 3;
                        h << 4 | l
                    }
                    _ => return Err(VarError::BadEncoding),
                }
            }
            b'+' if plus_is_space => {
                i += 1;
                b' '
            }
            c => {
                i += 1;
                c
            }
        };
        *dst.get_mut(n).ok_or(VarError::TooSmall)? = b;
        n += 1;
    }
    Ok(n)
}

/// Finds variable `name` in `buf`, a query string (without the `?`) or an
/// `application/x-www-form-urlencoded` body such as `a=1&b=2`.
///
/// Names are compared raw (not decoded) and case-sensitively, like Mongoose; the first
/// match wins; `a` with no `=` has the empty value. The value is decoded with
/// `plus_is_space` into `dst`, followed by a NUL for C callers, so `dst` needs room for
/// the length plus one. Returns the length. On any error `dst` (if not empty) starts
/// with a NUL, so a C caller that ignores the error still sees an empty string rather
/// than stale bytes.
pub fn var(buf: &[u8], name: &[u8], dst: &mut [u8]) -> Result<usize, VarError> {
    let r = find_var(buf, name, dst);
    if r.is_err() {
        if let Some(first) = dst.first_mut() {
            *first = 0;
        }
    }
    r
}

fn find_var(buf: &[u8], name: &[u8], dst: &mut [u8]) -> Result<usize, VarError> {
    if name.is_empty() {
        return Err(VarError::NotFound);
    }
    for field in buf.split(|&b| b == b'&') {
        let (key, value) = match field.iter().position(|&b| b == b'=') {
            Some(eq) => (&field[..eq], &field[eq + 1..]),
            None => (field, &field[field.len()..]),
        };
        if key == name {
            let room = dst.len().checked_sub(1).ok_or(VarError::TooSmall)?;
            let n = url_decode(value, &mut dst[..room], true)?;
            dst[n] = 0;
            return Ok(n);
        }
    }
    Err(VarError::NotFound)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn dec(src: &[u8], plus: bool) -> Result<Vec<u8>, VarError> {
        let mut buf = [0u8; 64];
        let n = url_decode(src, &mut buf, plus)?;
        Ok(buf[..n].to_vec())
    }

    #[test]
    fn url_decode_basics() {
        assert_eq!(dec(b"a%20b%2Fc%2f", false).unwrap(), b"a b/c/");
        assert_eq!(dec(b"%41%6a%4A%4a", false).unwrap(), b"AjJJ");
        assert_eq!(dec(b"a+b", true).unwrap(), b"a b");
        assert_eq!(dec(b"a+b", false).unwrap(), b"a+b");
        assert_eq!(dec(b"%2B+", true).unwrap(), b"+ ");
        assert_eq!(dec(b"%00%ff", false).unwrap(), [0, 0xff]);
        assert_eq!(dec(b"", false).unwrap(), b"");
        assert_eq!(dec(b"%%41", false), Err(VarError::BadEncoding));
    }

    #[test]
    fn url_decode_bad_encoding() {
        for s in [&b"%zz"[..], b"%4", b"%", b"ab%", b"%4g", b"%g4", b"x%+1"] {
            assert_eq!(dec(s, true), Err(VarError::BadEncoding), "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn url_decode_dst_size() {
        let mut buf = [0u8; 3];
        assert_eq!(url_decode(b"%41bc", &mut buf, false), Ok(3));
        assert_eq!(&buf, b"Abc");
        assert_eq!(url_decode(b"%41bcd", &mut buf, false), Err(VarError::TooSmall));
        assert_eq!(url_decode(b"", &mut [], false), Ok(0));
        assert_eq!(url_decode(b"a", &mut [], false), Err(VarError::TooSmall));
    }

    fn get(buf: &[u8], name: &[u8]) -> Result<Vec<u8>, VarError> {
        let mut dst = [0xaau8; 32];
        let n = var(buf, name, &mut dst)?;
        assert_eq!(dst[n], 0, "missing NUL");
        Ok(dst[..n].to_vec())
    }

    #[test]
    fn var_lookup() {
        let q = b"a=1&bb=hello+world&c=%41%42&empty=&bare&dup=first&dup=second";
        assert_eq!(get(q, b"a").unwrap(), b"1");
        assert_eq!(get(q, b"bb").unwrap(), b"hello world");
        assert_eq!(get(q, b"c").unwrap(), b"AB");
        assert_eq!(get(q, b"empty").unwrap(), b"");
        assert_eq!(get(q, b"bare").unwrap(), b"");
        assert_eq!(get(q, b"dup").unwrap(), b"first");
        assert_eq!(get(q, b"b"), Err(VarError::NotFound));
        assert_eq!(get(q, b"A"), Err(VarError::NotFound), "case-sensitive");
        assert_eq!(get(q, b""), Err(VarError::NotFound));
        assert_eq!(get(b"", b"a"), Err(VarError::NotFound));
        assert_eq!(get(b"&&a=3&", b"a").unwrap(), b"3");
        assert_eq!(get(b"x=1=2", b"x").unwrap(), b"1=2");
        assert_eq!(get(b"x=%zz&y=2", b"y").unwrap(), b"2");
        assert_eq!(get(b"x=%zz&y=2", b"x"), Err(VarError::BadEncoding));
        // Names are raw: an encoded name does not match its decoded form.
        assert_eq!(get(b"a%20b=1", b"a b"), Err(VarError::NotFound));
        assert_eq!(get(b"a%20b=1", b"a%20b").unwrap(), b"1");
    }

    #[test]
    fn var_prefix_names() {
        assert_eq!(get(b"ab=1&a=2", b"a").unwrap(), b"2");
        assert_eq!(get(b"ab=1&a=2", b"ab").unwrap(), b"1");
        assert_eq!(get(b"xa=1&a=2", b"a").unwrap(), b"2");
        assert_eq!(get(b"b=a=1&a=2", b"a").unwrap(), b"2");
    }

    #[test]
    fn var_dst_size() {
        let mut dst = [0xaau8; 6];
        assert_eq!(var(b"k=hello", b"k", &mut dst), Ok(5));
        assert_eq!(&dst, b"hello\0");
        // Exactly one byte short (no room for the NUL).
        let mut dst = [0xaau8; 5];
        assert_eq!(var(b"k=hello", b"k", &mut dst), Err(VarError::TooSmall));
        assert_eq!(dst[0], 0, "error leaves an empty C string");
        let mut dst = [0xaau8; 1];
        assert_eq!(var(b"k=", b"k", &mut dst), Ok(0));
        assert_eq!(dst, [0]);
        assert_eq!(var(b"k=", b"k", &mut []), Err(VarError::TooSmall));
        let mut dst = [0xaau8; 4];
        assert_eq!(var(b"k=1", b"z", &mut dst), Err(VarError::NotFound));
        assert_eq!(dst[0], 0);
    }
}
