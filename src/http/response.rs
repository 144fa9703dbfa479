//! Serialising response heads and chunk framing straight into a send queue (no
//! intermediate string), so head and body leave in one `sendmsg`; and the rules a
//! caller's answer must keep so that tern alone frames it (`check_answer`).

use super::fields::{self, Fields};
use super::parse::Framing;
use crate::buf::pool::BufPool;
use crate::buf::send_queue::SendQueue;
use crate::error::{Error, Result};

/// What the `Connection` field must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnField {
    Omit,
    Close,
    KeepAlive,
}

#[inline(always)]
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

/// Whether a caller may answer with `status` and the header block it scanned to
/// `f`, with a whole body of `len` bytes (`None`: a streamed answer), tern framing
/// it alone; `Invalid` if not:
/// - 1xx is tern's (100 Continue) or a protocol switch's (101), never an answer;
/// - `Transfer-Encoding` is tern's to choose;
/// - a `Content-Length` must be a valid length, and the body's for a whole answer;
/// - 204 and 304 have no body and no length.
pub fn check_answer(status: u16, f: &Fields, len: Option<u64>) -> Result<()> {
    let no_body = status == 204 || status == 304;
    let ok = (200..=999).contains(&status)
        && !f.transfer_encoding
        && f.content_length != Some(None)
        && !(no_body && (f.content_length.is_some() || len.is_some_and(|n| n > 0)))
        && match (f.content_length, len) {
            (Some(Some(n)), Some(l)) => n == l,
            _ => true,
        };
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid)
    }
}

/// Writes "HTTP/1.1 STATUS REASON", Date, the caller's lines, the framing field
/// (`Content-Length` or `Transfer-Encoding: chunked`; none for `Framing::None` and
/// `UntilClose`), the Connection field, and the blank line.
pub fn write_head(q: &mut SendQueue, pool: &mut BufPool, status: u16, extra: &[u8], framing: Framing, conn: ConnField, date: &[u8]) {
    // Assembled on the stack and queued with one copy: the head of a typical response
    // is a few hundred bytes, and one copy costs far less than a dozen.
    let mut head = Head { buf: [0; HEAD_BUF], len: 0 };
    if extra.len() > HEAD_BUF - HEAD_FIXED {
        // A large caller block goes straight to the queue after the status line.
        head.status_line(status, date);
        q.push_copy(head.bytes(), pool);
        q.push_copy(extra, pool);
        head.len = 0;
    } else {
        head.status_line(status, date);
        head.put(extra);
    }
    head.finish(q, pool, framing, conn);
}

/// `write_head` for an answer tern frames: the caller's `Content-Length` and
/// `Connection` lines (`f` says whether there are any) are left out, since tern
/// writes its own (one of each at most).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn write_answer_head(q: &mut SendQueue, pool: &mut BufPool, status: u16, extra: &[u8], f: &Fields, framing: Framing, conn: ConnField, date: &[u8]) {
    if f.content_length.is_none() && !f.connection {
        write_head(q, pool, status, extra, framing, conn, date);
    } else {
        write_head_kept(q, pool, status, extra, framing, conn, date);
    }
}

/// `write_head` with only the lines of `extra` that `fields::kept` keeps (the rare
/// head whose caller wrote a field tern writes itself).
#[cold]
fn write_head_kept(q: &mut SendQueue, pool: &mut BufPool, status: u16, extra: &[u8], framing: Framing, conn: ConnField, date: &[u8]) {
    let mut head = Head { buf: [0; HEAD_BUF], len: 0 };
    head.status_line(status, date);
    if extra.len() > HEAD_BUF - HEAD_FIXED {
        q.push_copy(head.bytes(), pool);
        head.len = 0;
        fields::kept(extra, true, true, |piece| q.push_copy(piece, pool));
    } else {
        fields::kept(extra, true, true, |piece| head.put(piece));
    }
    head.finish(q, pool, framing, conn);
}

/// Room for a response head built on the stack.
const HEAD_BUF: usize = 512;
/// The most tern itself writes around the caller's block: the status line (with the
/// longest reason), Date, Content-Length or Transfer-Encoding, Connection, the blank
/// line.
const HEAD_FIXED: usize = 160;

struct Head {
    buf: [u8; HEAD_BUF],
    len: usize,
}

impl Head {
    fn put(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    // Inlined into both writers, as it was into the one there was: a call here costs
    // more than the copies it makes.
    #[inline(always)]
    fn status_line(&mut self, status: u16, date: &[u8]) {
        let mut num = [0u8; 20];
        self.put(b"HTTP/1.1 ");
        self.put(decimal(u64::from(status), &mut num));
        self.put(b" ");
        self.put(reason(status).as_bytes());
        self.put(b"\r\nDate: ");
        self.put(date);
        self.put(b"\r\n");
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The framing field, the Connection field, the blank line; then queues it all.
    #[inline(always)]
    fn finish(&mut self, q: &mut SendQueue, pool: &mut BufPool, framing: Framing, conn: ConnField) {
        let mut num = [0u8; 20];
        match framing {
            Framing::Length(n) => {
                self.put(b"Content-Length: ");
                self.put(decimal(n, &mut num));
                self.put(b"\r\n");
            }
            Framing::Chunked => self.put(b"Transfer-Encoding: chunked\r\n"),
            Framing::None | Framing::UntilClose => {}
        }
        match conn {
            ConnField::Close => self.put(b"Connection: close\r\n"),
            ConnField::KeepAlive => self.put(b"Connection: keep-alive\r\n"),
            ConnField::Omit => {}
        }
        self.put(b"\r\n");
        q.push_copy(self.bytes(), pool);
    }
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
    }

    #[test]
    fn a_head_around_a_large_caller_block_is_whole() {
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let extra = format!("X-Big: {}\r\n", "v".repeat(2000));
        write_head(&mut q, &mut pool, 404, extra.as_bytes(), Framing::Chunked, ConnField::KeepAlive, b"Thu, 01 Jan 1970 00:00:00 GMT");
        let text = String::from_utf8(q.contiguous_for_tests()).unwrap();
        assert_eq!(text, format!("HTTP/1.1 404 Not Found\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n{extra}Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"));
        // The longest of tern's own lines fit beside a block just under the limit.
        let mut q = SendQueue::default();
        let extra = format!("X: {}\r\n", "v".repeat(HEAD_BUF - HEAD_FIXED - 5));
        assert_eq!(extra.len(), HEAD_BUF - HEAD_FIXED);
        write_head(&mut q, &mut pool, 431, extra.as_bytes(), Framing::Length(u64::MAX), ConnField::KeepAlive, b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert!(String::from_utf8(q.contiguous_for_tests()).unwrap().ends_with("Content-Length: 18446744073709551615\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn answers_tern_cannot_frame_are_refused() {
        let f = |block: &[u8]| fields::scan(block).unwrap();
        assert_eq!(check_answer(200, &f(b""), Some(5)), Ok(()));
        assert_eq!(check_answer(200, &f(b"Content-Length: 5\r\n"), Some(5)), Ok(()));
        assert_eq!(check_answer(200, &f(b"Content-Length: 5\r\n"), None), Ok(()));
        assert_eq!(check_answer(304, &f(b"ETag: \"x\"\r\n"), Some(0)), Ok(()));
        assert_eq!(check_answer(204, &f(b""), None), Ok(()));
        for (status, block, len) in [
            (200, &b"Content-Length: 3\r\n"[..], Some(5)),
            (200, b"Content-Length: x\r\n", None),
            (200, b"Content-Length: 3\r\nContent-Length: 4\r\n", None),
            (200, b"Transfer-Encoding: chunked\r\n", None),
            (204, b"", Some(1)),
            (304, b"Content-Length: 0\r\n", Some(0)),
            (204, b"Content-Length: 0\r\n", None),
            (100, b"", Some(0)),
            (101, b"", None),
        ] {
            assert_eq!(check_answer(status, &f(block), len), Err(Error::Invalid), "{status} {:?} {len:?}", String::from_utf8_lossy(block));
        }
    }

    #[test]
    fn the_callers_framing_and_connection_lines_give_way_to_terns() {
        let mut pool = BufPool::default();
        let mut q = SendQueue::default();
        let extra = b"Connection: close\r\nX-A: 1\r\nContent-Length: 2\r\n";
        let f = fields::scan(extra).unwrap();
        write_answer_head(&mut q, &mut pool, 200, extra, &f, Framing::Length(2), ConnField::Close, b"Thu, 01 Jan 1970 00:00:00 GMT");
        let text = String::from_utf8(q.contiguous_for_tests()).unwrap();
        assert_eq!(text, "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nX-A: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
        // The same past the stack buffer.
        let mut q = SendQueue::default();
        let big = format!("X-Big: {}\r\nconnection: keep-alive\r\nX-C: 3\r\n", "v".repeat(600));
        let f = fields::scan(big.as_bytes()).unwrap();
        write_answer_head(&mut q, &mut pool, 200, big.as_bytes(), &f, Framing::Chunked, ConnField::Omit, b"Thu, 01 Jan 1970 00:00:00 GMT");
        let text = String::from_utf8(q.contiguous_for_tests()).unwrap();
        assert!(text.ends_with(&format!("X-Big: {}\r\nX-C: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "v".repeat(600))), "{text}");
        assert!(!text.to_ascii_lowercase().contains("connection"));
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
