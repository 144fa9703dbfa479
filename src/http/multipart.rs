//! multipart/form-data bodies (RFC 7578): the boundary of a Content-Type, and the
//! parts of a body, borrowed from it.

use super::lex::{is_tchar, skip_lwsp, skip_ows, trim_ows};

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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_rng::Rng;
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
