//! The small lexical pieces of HTTP (RFC 9110 §5.6): whitespace, tokens, hex digits.

pub(crate) fn skip_lwsp(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
        i += 1;
    }
    i
}

pub(crate) fn skip_ows(s: &[u8], i: usize) -> usize {
    skip_lwsp(s, i)
}

pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
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
