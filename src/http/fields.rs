//! Header lines a caller hands to tern (`headers` of `tern_http_reply`, `begin`,
//! `respond` and `request`): checked and read in one pass, so a response costs one
//! scan of them, however many questions tern has about them.
//!
//! A block is empty, or lines of `name: value` each ending in CRLF. Names are tokens;
//! values hold no control byte but tab (no CR, no LF, no NUL), so no line can end the
//! head early or smuggle another field in.

use super::lex::{is_tchar, trim_ows};

/// What tern needs to know of a caller's header block.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// A `Content-Length` field (its value, if it is a valid length).
    pub content_length: Option<Option<u64>>,
    /// A `Transfer-Encoding` field.
    pub transfer_encoding: bool,
    /// A `Connection` field, and whether one of its tokens is `close`.
    pub connection: bool,
    pub close: bool,
    /// A `Host` field.
    pub host: bool,
}

/// Checks `headers` and reads what tern needs of them; `None` if they are malformed.
pub fn scan(headers: &[u8]) -> Option<Fields> {
    let mut f = Fields::default();
    let mut rest = headers;
    while !rest.is_empty() {
        let colon = rest.iter().position(|&b| b == b':')?;
        let name = &rest[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        let after = &rest[colon + 1..];
        let cr = after.iter().position(|&b| b == b'\r')?;
        if after.get(cr + 1) != Some(&b'\n') {
            return None;
        }
        let value = &after[..cr];
        if !value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            return None;
        }
        note(&mut f, name, trim_ows(value));
        rest = &after[cr + 2..];
    }
    Some(f)
}

/// Calls `out` with `headers` (a block `scan` accepted) in runs of whole lines, in
/// order, without the `Content-Length` lines (if `content_length`) and the
/// `Connection` lines (if `connection`): the fields tern writes itself. Only blocks
/// that have such a field need this (see `Fields`); the others are copied whole.
pub fn kept(headers: &[u8], content_length: bool, connection: bool, mut out: impl FnMut(&[u8])) {
    let (mut run, mut at) = (0, 0);
    while at < headers.len() {
        let line = &headers[at..];
        let colon = line.iter().position(|&b| b == b':').unwrap_or(0);
        let end = at + line.iter().position(|&b| b == b'\n').map_or(line.len(), |i| i + 1);
        let name = &line[..colon];
        let drop = (content_length && name.eq_ignore_ascii_case(b"content-length")) || (connection && name.eq_ignore_ascii_case(b"connection"));
        if drop {
            if at > run {
                out(&headers[run..at]);
            }
            run = end;
        }
        at = end;
    }
    if headers.len() > run {
        out(&headers[run..]);
    }
}

/// Records the fields tern cares about (compared by length first: most fields are
/// none of them).
fn note(f: &mut Fields, name: &[u8], value: &[u8]) {
    match name.len() {
        4 if name.eq_ignore_ascii_case(b"host") => f.host = true,
        10 if name.eq_ignore_ascii_case(b"connection") => {
            f.connection = true;
            f.close |= value.split(|&b| b == b',').any(|t| trim_ows(t).eq_ignore_ascii_case(b"close"));
        }
        14 if name.eq_ignore_ascii_case(b"content-length") => {
            let n = (!value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit)).then(|| value.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0')));
            f.content_length = Some(match f.content_length {
                // Two lengths must agree to be one.
                Some(prev) if prev != n => None,
                _ => n,
            });
        }
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => f.transfer_encoding = true,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_blocks_are_read() {
        assert_eq!(scan(b""), Some(Fields::default()));
        let f = scan(b"Content-Type: text/plain\r\nconnection: keep-alive, Close\r\nContent-Length: 5\r\n").unwrap();
        assert_eq!((f.connection, f.close, f.content_length, f.transfer_encoding), (true, true, Some(Some(5)), false));
        let f = scan(b"X-A: 1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n").unwrap();
        assert!(f.transfer_encoding && f.host && !f.connection);
        assert_eq!(scan(b"Content-Length: 3\r\nContent-Length: 4\r\n").unwrap().content_length, Some(None), "two lengths that disagree are no length");
        assert_eq!(scan(b"Content-Length: +3\r\n").unwrap().content_length, Some(None));
        assert_eq!(scan(b"X-Tab: a\tb\r\n").map(|f| f.connection), Some(false));
    }

    #[test]
    fn the_fields_tern_writes_are_taken_out() {
        let kept_of = |block: &[u8], cl: bool, conn: bool| {
            let mut v = Vec::new();
            kept(block, cl, conn, |p| v.extend_from_slice(p));
            String::from_utf8(v).unwrap()
        };
        let block = b"Connection: close\r\nX-A: 1\r\ncontent-length: 3\r\nX-B: 2\r\nCONNECTION: x\r\n";
        assert!(scan(block).is_some());
        assert_eq!(kept_of(block, true, true), "X-A: 1\r\nX-B: 2\r\n");
        assert_eq!(kept_of(block, false, true), "X-A: 1\r\ncontent-length: 3\r\nX-B: 2\r\n");
        assert_eq!(kept_of(block, true, false), "Connection: close\r\nX-A: 1\r\nX-B: 2\r\nCONNECTION: x\r\n");
        assert_eq!(kept_of(b"", true, true), "");
        assert_eq!(kept_of(b"X-Connection: y\r\n", true, true), "X-Connection: y\r\n");
    }

    #[test]
    fn malformed_blocks_are_refused() {
        for bad in [
            &b"A: b"[..],
            b"A: b\r\n\r\nBody\r\n",
            b"A: b\nC: d\r\n",
            b"A: b\rC: d\r\n",
            b"A: b\x00c\r\n",
            b": v\r\n",
            b"Bad Name: v\r\n",
            b"(x): v\r\n",
            b"\r\n",
            b"\nA: b\r\n",
            b"A: b\x7f\r\n",
            b"no colon\r\n",
        ] {
            assert_eq!(scan(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
