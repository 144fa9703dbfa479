//! Serialising response heads and chunk framing straight into a send queue (no
//! intermediate string), so head and body leave in one `sendmsg`; checks on the
//! header lines a caller hands in.

use super::parse::Framing;
use crate::buf::pool::BufPool;
use crate::buf::send_queue::SendQueue;

/// What the `Connection` field must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnField {
    Omit,
    Close,
    KeepAlive,
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Statuses whose responses never carry a body (RFC 9110 §6.4.1).
pub fn bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Whether the caller's header lines contain a field called `name`.
pub fn has_field(headers: &[u8], name: &[u8]) -> bool {
    field_lines(headers).any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Whether the caller's headers ask for the connection to close.
pub fn asks_close(headers: &[u8]) -> bool {
    field_lines(headers)
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .any(|(_, v)| v.split(|&b| b == b',').any(|t| super::parse::trim(t).eq_ignore_ascii_case(b"close")))
}

fn field_lines(headers: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers.split(|&b| b == b'\n').filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        Some((super::parse::trim(&line[..colon]), super::parse::trim(&line[colon + 1..])))
    })
}

/// Caller-supplied header lines must each end in CRLF (or be empty): anything else
/// would corrupt the response framing.
pub fn valid_extra_headers(headers: &[u8]) -> bool {
    let Some(body) = headers.strip_suffix(b"\r\n") else {
        return headers.is_empty();
    };
    // Every line is "name: value": no empty line (it would end the head early and
    // smuggle the rest in as body), no bare CR or LF, no control bytes but tab.
    body.split(|&b| b == b'\n').all(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':');
        matches!(colon, Some(p) if p > 0 && line[..p].iter().all(|&b| b.is_ascii_graphic()))
            && line.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
    }) && !body.windows(2).any(|w| w[0] != b'\r' && w[1] == b'\n')
        && !body.starts_with(b"\n")
}

/// Writes "HTTP/1.1 STATUS REASON", Date, the caller's lines, the framing field
/// (`Content-Length` or `Transfer-Encoding: chunked`; none for `Framing::None` and
/// `UntilClose`), the Connection field, and the blank line.
pub fn write_head(q: &mut SendQueue, pool: &mut BufPool, status: u16, extra: &[u8], framing: Framing, conn: ConnField, date: &[u8]) {
    let mut num = [0u8; 20];
    q.push_copy(b"HTTP/1.1 ", pool);
    q.push_copy(decimal(u64::from(status), &mut num), pool);
    q.push_copy(b" ", pool);
    q.push_copy(reason(status).as_bytes(), pool);
    q.push_copy(b"\r\nDate: ", pool);
    q.push_copy(date, pool);
    q.push_copy(b"\r\n", pool);
    q.push_copy(extra, pool);
    match framing {
        Framing::Length(n) => {
            q.push_copy(b"Content-Length: ", pool);
            q.push_copy(decimal(n, &mut num), pool);
            q.push_copy(b"\r\n", pool);
        }
        Framing::Chunked => q.push_copy(b"Transfer-Encoding: chunked\r\n", pool),
        Framing::None | Framing::UntilClose => {}
    }
    match conn {
        ConnField::Close => q.push_copy(b"Connection: close\r\n", pool),
        ConnField::KeepAlive => q.push_copy(b"Connection: keep-alive\r\n", pool),
        ConnField::Omit => {}
    }
    q.push_copy(b"\r\n", pool);
}

/// The size line that precedes a chunk of `len` bytes.
pub fn chunk_size_line(len: usize, out: &mut [u8; 20]) -> &[u8] {
    let mut n = len;
    let mut i = out.len() - 2;
    out[i] = b'\r';
    out[i + 1] = b'\n';
    loop {
        i -= 1;
        out[i] = b"0123456789abcdef"[n % 16];
        n /= 16;
        if n == 0 {
            break;
        }
    }
    &out[i..]
}

/// The last chunk and an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

pub fn decimal(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &out[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_fields() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(18446744073709551615, &mut b), b"18446744073709551615");
        assert_eq!(chunk_size_line(0, &mut b), b"0\r\n");
        assert_eq!(chunk_size_line(0x1a2f, &mut b), b"1a2f\r\n");
        assert!(has_field(b"X: 1\r\ncontent-length: 5\r\n", b"Content-Length"));
        assert!(!has_field(b"X-Content-Length: 5\r\n", b"Content-Length"));
        assert!(asks_close(b"Connection: keep-alive, Close\r\n"));
        assert!(valid_extra_headers(b"A: b\r\nC: d\r\n"));
        assert!(!valid_extra_headers(b"A: b"));
        assert!(!valid_extra_headers(b"A: b\r\n\r\nBody\r\n"));
    }

    #[test]
    fn head_is_well_formed() {
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        write_head(&mut q, &mut pool, 200, b"X-A: 1\r\n", Framing::Length(5), ConnField::Close, b"Thu, 01 Jan 1970 00:00:00 GMT");
        let text = String::from_utf8(q.contiguous_for_tests()).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nX-A: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
    }
}
