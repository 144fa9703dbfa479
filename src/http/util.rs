//! Request helpers exposed to C handlers: form variables, URI glob routing, Basic
//! credentials and multipart/form-data.
//!
//! Everything here works on borrowed bytes and writes into caller-provided buffers, so
//! the C API can offer them without allocating per request, and so a hostile request can
//! only make them fail, never make them allocate or run long.

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

/// Patterns up to this many bytes are matched without allocating; routes are short.
const GLOB_STACK_BITS: usize = 512;

/// URI glob matching for routing: `?` is one byte other than `/`, `*` any run of bytes
/// other than `/`, `**` any run including `/`; everything else is literal, and the
/// whole path must match.
///
/// Runs as a set-of-states simulation over the pattern, so the cost is
/// O(pattern × path) even for patterns like `*a*a*a*b` that make backtracking matchers
/// explode; a URL chosen by an attacker cannot stall the event loop.
pub fn glob_match(pattern: &[u8], path: &[u8]) -> bool {
    if !pattern.iter().any(|&b| b == b'*' || b == b'?') {
        return pattern == path;
    }
    // One bit per pattern position, plus one for "whole pattern matched".
    let words = (pattern.len() + 1).div_ceil(64);
    if words * 64 <= GLOB_STACK_BITS {
        let mut a = [0u64; GLOB_STACK_BITS / 64];
        let mut b = [0u64; GLOB_STACK_BITS / 64];
        glob_run(pattern, path, &mut a[..words], &mut b[..words])
    } else {
        let mut v = vec![0u64; 2 * words];
        let (a, b) = v.split_at_mut(words);
        glob_run(pattern, path, a, b)
    }
}

/// One element of a glob pattern.
#[derive(Clone, Copy)]
enum Tok {
    Lit(u8),
    One,
    Star,
    DoubleStar,
}

/// The element starting at byte `i` of `p`, and its length in bytes. `***` reads as
/// `**` then `*`, which matches the same as `**`.
fn tok(p: &[u8], i: usize) -> (Tok, usize) {
    match p[i] {
        b'*' if p.get(i + 1) == Some(&b'*') => (Tok::DoubleStar, 2),
        b'*' => (Tok::Star, 1),
        b'?' => (Tok::One, 1),
        c => (Tok::Lit(c), 1),
    }
}

fn set_bit(set: &mut [u64], i: usize) {
    set[i / 64] |= 1 << (i % 64);
}

/// Adds every position reachable from the set by letting stars match nothing. Stars
/// only lead forward, so one ascending pass reaches the fixed point.
fn glob_closure(p: &[u8], set: &mut [u64]) {
    for w in 0..set.len() {
        let mut bits = set[w];
        while bits != 0 {
            let i = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if i < p.len() {
                if let (Tok::Star | Tok::DoubleStar, n) = tok(p, i) {
                    let j = i + n;
                    set_bit(set, j);
                    if j / 64 == w {
                        bits |= 1 << (j % 64);
                    }
                }
            }
        }
    }
}

fn glob_run<'a>(p: &[u8], s: &[u8], mut cur: &'a mut [u64], mut next: &'a mut [u64]) -> bool {
    set_bit(cur, 0);
    glob_closure(p, cur);
    for &c in s {
        next.fill(0);
        for (w, &word) in cur.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if i == p.len() {
                    continue;
                }
                match tok(p, i) {
                    (Tok::Lit(l), n) if l == c => set_bit(next, i + n),
                    (Tok::One, n) if c != b'/' => set_bit(next, i + n),
                    (Tok::Star, _) if c != b'/' => set_bit(next, i),
                    (Tok::DoubleStar, _) => set_bit(next, i),
                    _ => {}
                }
            }
        }
        glob_closure(p, next);
        std::mem::swap(&mut cur, &mut next);
        if cur.iter().all(|&w| w == 0) {
            return false;
        }
    }
    cur[p.len() / 64] & (1 << (p.len() % 64)) != 0
}

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

/// The boundary parameter of a `multipart/*` Content-Type value, such as
/// `multipart/form-data; boundary=xyz` or `boundary="x y"` (RFC 7578, RFC 2046).
///
/// `None` if the type is not multipart, the boundary is absent, given twice (which two
/// parsers could resolve differently), or not a valid boundary (1 to 70 of RFC 2046's
/// `bchars`, not ending in a space), since an invalid one cannot delimit anything
/// reliably.
pub fn multipart_boundary(content_type: &[u8]) -> Option<&[u8]> {
    let end = content_type.iter().position(|&b| b == b';').unwrap_or(content_type.len());
    let media = trim_ows(&content_type[..end]);
    let slash = media.iter().position(|&b| b == b'/')?;
    let (ty, sub) = (&media[..slash], &media[slash + 1..]);
    if !ty.eq_ignore_ascii_case(b"multipart") || sub.is_empty() || !sub.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    let mut boundary = None;
    let mut dup = false;
    let ok = parse_params(&content_type[end..], true, &mut |name, value, escaped| {
        if name.eq_ignore_ascii_case(b"boundary") {
            dup |= boundary.is_some();
            boundary = Some((value, escaped));
        }
    });
    match boundary {
        Some((b, false)) if ok && !dup && is_valid_boundary(b) => Some(b),
        _ => None,
    }
}

fn is_valid_boundary(b: &[u8]) -> bool {
    (1..=70).contains(&b.len())
        && b.last() != Some(&b' ')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
}

/// Parses the `; name=value` parameters after a media type or disposition type,
/// calling `f(name, value, had_escapes)` for each; values are token or quoted-string
/// (the slice is what is between the quotes). With `escapes` false a backslash is an
/// ordinary character in quoted strings, which is how browsers write multipart
/// filenames (they percent-encode quotes and leave `C:\path` alone). Returns false if
/// the parameters are malformed.
fn parse_params<'a>(s: &'a [u8], escapes: bool, f: &mut dyn FnMut(&'a [u8], &'a [u8], bool)) -> bool {
    let mut i = 0;
    loop {
        i = skip_ows(s, i);
        if i == s.len() {
            return true;
        }
        if s[i] != b';' {
            return false;
        }
        i = skip_ows(s, i + 1);
        if i == s.len() || s[i] == b';' {
            continue; // empty parameter, allowed by RFC 9110 §5.6.6
        }
        let n0 = i;
        while i < s.len() && is_tchar(s[i]) {
            i += 1;
        }
        let name = &s[n0..i];
        i = skip_ows(s, i);
        if name.is_empty() || s.get(i) != Some(&b'=') {
            return false;
        }
        i = skip_ows(s, i + 1);
        if s.get(i) == Some(&b'"') {
            i += 1;
            let v0 = i;
            let mut escaped = false;
            loop {
                match s.get(i) {
                    None => return false,
                    Some(b'"') => break,
                    Some(b'\\') if escapes => {
                        escaped = true;
                        i += 2;
                    }
                    Some(&c) if (c < 0x20 && c != b'\t') || c == 0x7f => return false,
                    Some(_) => i += 1,
                }
            }
            f(name, &s[v0..i], escaped);
            i += 1;
        } else {
            let v0 = i;
            while i < s.len() && is_tchar(s[i]) {
                i += 1;
            }
            if i == v0 {
                return false;
            }
            f(name, &s[v0..i], false);
        }
    }
}

/// One part of a multipart/form-data body; all fields borrow the body. Fields whose
/// header is absent are empty.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Part<'a> {
    /// The `name` parameter of Content-Disposition: the form field.
    pub name: &'a [u8],
    /// The `filename` parameter of Content-Disposition, for file uploads.
    pub filename: &'a [u8],
    /// The part's Content-Type value (browsers send it for files only).
    pub content_type: &'a [u8],
    /// The part's content, without the CRLF that precedes the next delimiter.
    pub body: &'a [u8],
}

/// The part at or after byte `offset` of a multipart `body` (0 for the first: the
/// preamble is skipped), and the offset to pass to get the next one. `None` once the
/// closing delimiter is reached, or when the body is malformed (a part without its
/// blank line, an unparsable Content-Disposition, a part with no delimiter after it).
///
/// A part ends only at CRLF `--boundary` followed by `--`, optional whitespace and
/// CRLF, or the end of the body, so boundary text elsewhere in a part is content. A
/// body truncated after a complete part's delimiter yields that part and then `None`.
pub fn multipart_next<'a>(body: &'a [u8], boundary: &[u8], offset: usize) -> Option<(Part<'a>, usize)> {
    if boundary.is_empty() || offset > body.len() {
        return None;
    }
    // The opening delimiter: at the very start, or after a preamble (or previous part)
    // and the CRLF that belongs to the delimiter.
    let opening = if offset == 0 { delimiter_at(body, boundary, 0) } else { None };
    let after = match opening {
        Some(after) => after,
        None => find_delimiter(body, boundary, offset)?.1,
    };
    if body[after..].starts_with(b"--") {
        return None;
    }
    let mut i = skip_lwsp(body, after);
    if !body[i..].starts_with(b"\r\n") {
        return None;
    }
    i += 2;

    let mut part = Part::default();
    let mut seen_disposition = false;
    loop {
        let eol = find(&body[i..], b"\r\n")? + i;
        if eol == i {
            i += 2;
            break;
        }
        let line = &body[i..eol];
        let colon = line.iter().position(|&b| b == b':')?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        let value = trim_ows(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-disposition") {
            if seen_disposition {
                return None;
            }
            seen_disposition = true;
            let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
            let mut dup = false;
            let (mut field, mut file) = (None, None);
            let ok = parse_params(&value[end..], false, &mut |k, v, _| {
                let slot = if k.eq_ignore_ascii_case(b"name") {
                    &mut field
                } else if k.eq_ignore_ascii_case(b"filename") {
                    &mut file
                } else {
                    return;
                };
                dup |= slot.is_some();
                *slot = Some(v);
            });
            if !ok || dup {
                return None;
            }
            part.name = field.unwrap_or_default();
            part.filename = file.unwrap_or_default();
        } else if name.eq_ignore_ascii_case(b"content-type") {
            part.content_type = value;
        }
        i = eol + 2;
    }

    let (end, _) = find_delimiter(body, boundary, i)?;
    part.body = &body[i..end];
    Some((part, end))
}

/// If `--boundary` starts at `at` and is a real delimiter (followed by `--`, by
/// optional whitespace and CRLF, or by the end of the body), the index just after it.
fn delimiter_at(body: &[u8], boundary: &[u8], at: usize) -> Option<usize> {
    let rest = body.get(at..)?.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let after = body.len() - rest.len();
    let j = skip_lwsp(body, after);
    (rest.starts_with(b"--") || body[j..].starts_with(b"\r\n") || j == body.len()).then_some(after)
}

/// The first CRLF `--boundary` delimiter at or after `from`: the index of its CRLF and
/// the index just after the boundary.
fn find_delimiter(body: &[u8], boundary: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    loop {
        let crlf = at + find(body.get(at..)?, b"\r\n--")?;
        if let Some(after) = delimiter_at(body, boundary, crlf + 2) {
            return Some((crlf, after));
        }
        at = crlf + 1;
    }
}

/// The first occurrence of `needle` (short) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let p = hay[i..hay.len() - rest.len()].iter().position(|&b| b == first)? + i;
        if hay[p + 1..].starts_with(rest) {
            return Some(p);
        }
        i = p + 1;
    }
    None
}

fn skip_lwsp(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
        i += 1;
    }
    i
}

fn skip_ows(s: &[u8], i: usize) -> usize {
    skip_lwsp(s, i)
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let start = skip_ows(s, 0);
    let end = s.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

/// The value of an ASCII hex digit.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `tchar` of RFC 9110 §5.6.2: the characters allowed in tokens (names, bare values).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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

    /// Reference glob matcher: plain recursion, exponential but obviously right.
    fn naive_glob(p: &[u8], s: &[u8]) -> bool {
        if p.is_empty() {
            s.is_empty()
        } else if p.starts_with(b"**") {
            (0..=s.len()).any(|k| naive_glob(&p[2..], &s[k..]))
        } else if p[0] == b'*' {
            (0..=s.len()).take_while(|&k| k == 0 || s[k - 1] != b'/').any(|k| naive_glob(&p[1..], &s[k..]))
        } else if p[0] == b'?' {
            !s.is_empty() && s[0] != b'/' && naive_glob(&p[1..], &s[1..])
        } else {
            !s.is_empty() && s[0] == p[0] && naive_glob(&p[1..], &s[1..])
        }
    }

    #[test]
    fn glob_cases() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"/api/users", b"/api/users", true),
            (b"/api/users", b"/api/user", false),
            (b"/api/users", b"/api/users/", false),
            (b"", b"", true),
            (b"", b"/", false),
            (b"/api/*", b"/api/users", true),
            (b"/api/*", b"/api/", true),
            (b"/api/*", b"/api/users/1", false),
            (b"/api/*/x", b"/api/users/x", true),
            (b"/api/*/x", b"/api//x", true),
            (b"/api/**", b"/api/users/1/2", true),
            (b"/api/**", b"/api/", true),
            (b"/api/**", b"/api", false),
            (b"/**/x", b"/a/b/c/x", true),
            (b"/**/x", b"//x", true),
            (b"/**.html", b"/a/b.html", true),
            (b"/*.html", b"/a/b.html", false),
            (b"/?", b"/a", true),
            (b"/?", b"/", false),
            (b"/?", b"//", false),
            (b"/?/", b"/ab/", false),
            (b"*", b"", true),
            (b"*", b"abc", true),
            (b"*", b"a/c", false),
            (b"**", b"a/c", true),
            (b"***", b"a/c", true),
            (b"a*b*c", b"aXXbYYc", true),
            (b"a*b*c", b"aXXbYYcd", false),
            (b"*a*a*b", b"aaab", true),
            (b"/x/**/y/*", b"/x/1/2/y/z", true),
            (b"/x/**/y/*", b"/x/1/2/y/z/w", false),
        ];
        for &(p, s, want) in cases {
            assert_eq!(glob_match(p, s), want, "{:?} vs {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(s));
            assert_eq!(naive_glob(p, s), want, "reference disagrees on {:?}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn glob_pathological_is_fast() {
        let t = std::time::Instant::now();
        let long = vec![b'a'; 20_000];
        assert!(!glob_match(b"*a*a*a*a*a*a*a*a*a*a*b", &long));
        assert!(!glob_match(b"**a**a**a**a**a**a**a**b", &long));
        let mut with_b = long.clone();
        with_b.push(b'b');
        assert!(glob_match(b"*a*a*a*a*a*a*a*a*a*a*b", &with_b));
        // A long pattern takes the allocating path and still behaves.
        let mut pat = b"*a".repeat(400);
        pat.extend_from_slice(b"*b");
        assert!(pat.len() + 1 > GLOB_STACK_BITS);
        assert!(!glob_match(&pat, &long));
        assert!(glob_match(&pat, &with_b));
        let slashy: Vec<u8> = b"a/".repeat(10_000);
        assert!(!glob_match(b"**a*/**a*/**a*/**b", &slashy));
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t.elapsed());
    }

    use crate::http::test_rng::Rng;

    #[test]
    fn glob_random_against_reference() {
        let mut r = Rng(0xdead_beef_cafe_f00d);
        let palette = b"ab/*?";
        let mut matches = 0;
        for _ in 0..30_000 {
            let p: Vec<u8> = (0..r.below(8)).map(|_| palette[r.below(5)]).collect();
            let s: Vec<u8> = (0..r.below(10)).map(|_| palette[r.below(3)]).collect();
            let want = naive_glob(&p, &s);
            matches += usize::from(want);
            assert_eq!(glob_match(&p, &s), want, "{:?} vs {:?}", String::from_utf8_lossy(&p), String::from_utf8_lossy(&s));
        }
        assert!(matches > 1000, "random cases too rarely match to test much ({matches})");
    }

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

    #[test]
    fn boundary_parsing() {
        let b = |ct: &[u8]| multipart_boundary(ct).map(<[u8]>::to_vec);
        assert_eq!(b(b"multipart/form-data; boundary=xyz"), Some(b"xyz".to_vec()));
        assert_eq!(b(b"Multipart/Form-Data;BOUNDARY=xyz"), Some(b"xyz".to_vec()));
        assert_eq!(b(b"multipart/form-data; boundary=\"x y\""), Some(b"x y".to_vec()));
        assert_eq!(b(b"multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"), Some(b"----WebKitFormBoundary7MA4YWxkTrZu0gW".to_vec()));
        assert_eq!(b(b"multipart/form-data; a=\"q;boundary=no\"; boundary=yes"), Some(b"yes".to_vec()));
        assert_eq!(b(b"multipart/mixed; boundary=m"), Some(b"m".to_vec()));
        assert_eq!(b(b"multipart/form-data ; boundary = spaced ;"), Some(b"spaced".to_vec()));
        for bad in [
            &b"text/plain; boundary=xyz"[..],
            b"multipart/form-data",
            b"multipart/form-data; boundary=",
            b"multipart/form-data; boundary=\"\"",
            b"multipart/form-data; boundary=\"ends in space \"",
            b"multipart/form-data; boundary=a; boundary=b",
            b"multipart/form-data; boundary=\"unterminated",
            b"multipart/form-data; boundary=\"esc\\\"aped\"",
            b"multipart/form-data; boundary=a{b",
            b"multipart/; boundary=a",
            b"multipartform-data; boundary=a",
            b"multipart/form-data boundary=a",
        ] {
            assert_eq!(b(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b"multipart/form-data; boundary=".as_slice(), &[b'x'; 71]].concat();
        assert_eq!(b(&long), None);
        assert_eq!(b(&long[..long.len() - 1]).map(|v| v.len()), Some(70));
    }

    fn parts<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<Part<'a>> {
        let mut out = Vec::new();
        let mut off = 0;
        while let Some((p, next)) = multipart_next(body, boundary, off) {
            assert!(next > off || (out.is_empty() && next >= off), "no progress");
            out.push(p);
            off = next;
            assert!(out.len() < 100);
        }
        out
    }

    #[test]
    fn multipart_form() {
        let body = b"This is the preamble.\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"field1\"\r\n\
\r\n\
value1\r\n\
--XyZ  \r\n\
content-disposition: form-data; name=\"file\"; filename=\"C:\\dir\\a b;c.txt\"\r\n\
Content-Type: text/plain\r\n\
X-Other: ignored\r\n\
\r\n\
line one\r\n\
--XyZnot a delimiter, and neither is this: --XyZ\r\n\
\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=empty\r\n\
\r\n\
\r\n\
--XyZ--\r\n\
This is the epilogue.\r\n--XyZ\r\nContent-Disposition: form-data; name=\"no\"\r\n\r\nx\r\n--XyZ--";
        let got = parts(body, b"XyZ");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Part { name: b"field1", body: b"value1", ..Part::default() });
        assert_eq!(got[1].name, b"file");
        assert_eq!(got[1].filename, b"C:\\dir\\a b;c.txt");
        assert_eq!(got[1].content_type, b"text/plain");
        assert_eq!(got[1].body, b"line one\r\n--XyZnot a delimiter, and neither is this: --XyZ\r\n");
        assert_eq!(got[2], Part { name: b"empty", ..Part::default() });
        // Zero-copy: the body is a slice of the input.
        let base = body.as_ptr() as usize;
        assert!((got[0].body.as_ptr() as usize) > base && (got[0].body.as_ptr() as usize) < base + body.len());
    }

    #[test]
    fn multipart_no_preamble_and_lf_only_is_not_a_delimiter() {
        let body = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\n--b\r\nmore\r\n--b--";
        let got = parts(body, b"b");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, b"1\n--b\r\nmore");
    }

    #[test]
    fn multipart_missing_final_dashes() {
        // The last delimiter lacks its closing `--`: the parts before it are still
        // complete, and iteration then stops.
        let body = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b\r\nContent-Disposition: form-data; name=c\r\n\r\n2\r\n--b\r\n";
        let got = parts(body, b"b");
        assert_eq!(got.iter().map(|p| (p.name, p.body)).collect::<Vec<_>>(), vec![(&b"a"[..], &b"1"[..]), (b"c", b"2")]);
        let body = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b";
        assert_eq!(parts(body, b"b").len(), 1);
        // A part with no delimiter after it at all is not returned.
        let body = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b\r\nContent-Disposition: form-data; name=c\r\n\r\ntruncated";
        assert_eq!(parts(body, b"b").len(), 1);
    }

    #[test]
    fn multipart_malformed() {
        for body in [
            &b""[..],
            b"no delimiter here",
            b"--b--\r\n",
            b"--b\r\nContent-Disposition: form-data; name=a\r\n1\r\n--b--",       // no blank line
            b"--b\r\nNoColon\r\n\r\n1\r\n--b--",
            b"--b\r\nBad Name: x\r\n\r\n1\r\n--b--",
            b"--b\r\n folded: x\r\n\r\n1\r\n--b--",
            b"--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\n1\r\n--b--",
            b"--b\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\n1\r\n--b--",
            b"--b\r\nContent-Disposition: form-data\r\nContent-Disposition: form-data\r\n\r\n1\r\n--b--",
            b"--b junk\r\n\r\n1\r\n--b--",
            b"--b\r\n\r\n1\r\n--bb--",
            b"--b\r\n\r\n1--b--",
        ] {
            assert_eq!(multipart_next(body, b"b", 0), None, "{:?}", String::from_utf8_lossy(body));
        }
        let ok = b"--b\r\n\r\n1\r\n--b--";
        assert_eq!(multipart_next(ok, b"b", 0), Some((Part { body: b"1", ..Part::default() }, 8)));
        assert_eq!(multipart_next(ok, b"", 0), None);
        assert_eq!(multipart_next(ok, b"b", ok.len() + 1), None);
        assert_eq!(multipart_next(ok, b"b", 9), None);
    }

    #[test]
    fn multipart_random_round_trips() {
        let mut r = Rng(7);
        let boundary = b"----tern-boundary-1234";
        for _ in 0..2000 {
            let mut body = Vec::new();
            if r.below(2) == 0 {
                body.extend_from_slice(b"preamble\r\n--");
                body.extend_from_slice(&boundary[..5]);
                body.extend_from_slice(b"\r\n");
            }
            let n = r.below(5);
            let mut want = Vec::new();
            for k in 0..n {
                // Content full of near-misses: CRLF, dashes, prefixes of the boundary.
                let pieces: [&[u8]; 6] = [b"\r\n", b"--", &boundary[..r.below(boundary.len())], b"x", b"\r", b"\n"];
                let content: Vec<u8> = (0..r.below(12)).flat_map(|_| pieces[r.below(6)].to_vec()).collect();
                let name = format!("f{k}");
                body.extend_from_slice(b"--");
                body.extend_from_slice(boundary);
                body.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
                body.extend_from_slice(name.as_bytes());
                body.extend_from_slice(b"\"\r\n\r\n");
                body.extend_from_slice(&content);
                body.extend_from_slice(b"\r\n");
                want.push((name.into_bytes(), content));
            }
            body.extend_from_slice(b"--");
            body.extend_from_slice(boundary);
            body.extend_from_slice(b"--\r\nepilogue");
            let got: Vec<(Vec<u8>, Vec<u8>)> = parts(&body, boundary).iter().map(|p| (p.name.to_vec(), p.body.to_vec())).collect();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn trim_and_find_helpers() {
        assert_eq!(trim_ows(b"  a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"xx\r\n--", b"\r\n--"), Some(2));
    }
}
