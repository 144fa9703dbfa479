//! How the client writes a request: the request line, `Host`, the caller's fields,
//! and the framing, which tern owns: `Content-Length` for a body given whole (or
//! declared by the caller for a body streamed after the head), else
//! `Transfer-Encoding: chunked` for a streamed body; and then a streamed body's
//! pieces, framed to match.

use super::fields::{self, Fields};
use super::parse::Framing;
use super::response::{chunk_size_line, decimal, LAST_CHUNK};
use crate::buf::pool::BufPool;
use crate::buf::send_queue::SendQueue;
use crate::error::{Error, Result};

/// Checks a request's method (a token), target (origin-form, `*`, or absolute
/// `http://`) and header block, and reads what tern needs of the block. `Invalid`
/// for anything that would let the bytes written mean another request, and for a
/// `Transfer-Encoding` (tern frames the body).
pub fn check(method: &[u8], target: &[u8], headers: &[u8]) -> Result<Fields> {
    let token = |b: &u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(b);
    let target_ok = target.first() == Some(&b'/') || target == b"*" || target.starts_with(b"http://");
    if method.is_empty() || !method.iter().all(token) || !target_ok || !target.iter().all(u8::is_ascii_graphic) {
        return Err(Error::Invalid);
    }
    let f = fields::scan(headers).ok_or(Error::Invalid)?;
    if f.transfer_encoding {
        return Err(Error::Invalid);
    }
    Ok(f)
}

/// The framing of a body of `len` bytes given whole: a `Content-Length` when there
/// is a body, when the method usually has one, or when the caller declared one
/// (which must then be `len`: `Invalid` otherwise).
pub fn whole_framing(method: &[u8], f: &Fields, len: usize) -> Result<Framing> {
    match f.content_length {
        Some(declared) if declared != Some(len as u64) => Err(Error::Invalid),
        Some(_) => Ok(Framing::Length(len as u64)),
        None if len > 0 || matches!(method, b"POST" | b"PUT" | b"PATCH") => Ok(Framing::Length(len as u64)),
        None => Ok(Framing::None),
    }
}

/// The framing of a body streamed after the head: the length the caller declared,
/// or chunked. `Invalid` for a `Content-Length` that is not a length.
pub fn streamed_framing(f: &Fields) -> Result<Framing> {
    match f.content_length {
        Some(Some(n)) => Ok(Framing::Length(n)),
        Some(None) => Err(Error::Invalid),
        None => Ok(Framing::Chunked),
    }
}

/// Writes the head: request line, `Host` (unless the caller's block has one), the
/// caller's lines (without its `Content-Length`: tern writes the one `framing`
/// says), the framing field and the blank line.
pub fn write_head(q: &mut SendQueue, pool: &mut BufPool, (method, target): (&[u8], &[u8]), host: &[u8], (headers, f): (&[u8], &Fields), framing: Framing) {
    for part in [method, b" ", target, b" HTTP/1.1\r\n"] {
        q.push_copy(part, pool);
    }
    if !f.host {
        for part in [b"Host: ", host, b"\r\n"] {
            q.push_copy(part, pool);
        }
    }
    if f.content_length.is_some() {
        fields::kept(headers, true, false, |piece| q.push_copy(piece, pool));
    } else {
        q.push_copy(headers, pool);
    }
    match framing {
        Framing::Length(n) => {
            let mut num = [0u8; 20];
            q.push_copy(b"Content-Length: ", pool);
            q.push_copy(decimal(n, &mut num), pool);
            q.push_copy(b"\r\n", pool);
        }
        Framing::Chunked => q.push_copy(b"Transfer-Encoding: chunked\r\n", pool),
        Framing::None | Framing::UntilClose => {}
    }
    q.push_copy(b"\r\n", pool);
}

/// A request body being streamed after its head: what is still owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// Bytes the declared `Content-Length` still expects.
    Length(u64),
    Chunked,
}

impl Outgoing {
    /// What a head written with `framing` still owes, if anything.
    pub fn after_head(framing: Framing) -> Option<Outgoing> {
        match framing {
            Framing::Length(0) | Framing::None | Framing::UntilClose => None,
            Framing::Length(n) => Some(Outgoing::Length(n)),
            Framing::Chunked => Some(Outgoing::Chunked),
        }
    }

    /// Frames one piece of `len` bytes around `queue_it` (which queues the bytes).
    /// `Invalid`, nothing written, past a declared length.
    pub fn piece(&mut self, q: &mut SendQueue, pool: &mut BufPool, len: usize, queue_it: impl FnOnce(&mut SendQueue, &mut BufPool)) -> Result<()> {
        match self {
            Outgoing::Length(left) => {
                *left = left.checked_sub(len as u64).ok_or(Error::Invalid)?;
                queue_it(q, pool);
            }
            Outgoing::Chunked if len == 0 => {}
            Outgoing::Chunked => {
                let mut line = [0u8; 20];
                q.push_copy(chunk_size_line(len, &mut line), pool);
                queue_it(q, pool);
                q.push_copy(b"\r\n", pool);
            }
        }
        Ok(())
    }

    /// Ends the body: the last chunk, or nothing for a declared length that was met.
    /// `Protocol` for one that was not (the request can never be completed).
    pub fn end(self, q: &mut SendQueue, pool: &mut BufPool) -> Result<()> {
        match self {
            Outgoing::Length(0) => Ok(()),
            Outgoing::Length(_) => Err(Error::Protocol),
            Outgoing::Chunked => {
                q.push_copy(LAST_CHUNK, pool);
                Ok(())
            }
        }
    }

    /// Bytes a declared length still expects (None for chunked).
    pub fn left(&self) -> Option<u64> {
        match self {
            Outgoing::Length(n) => Some(*n),
            Outgoing::Chunked => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &[u8], headers: &[u8], framing: Framing) -> String {
        let (mut q, mut pool) = (SendQueue::default(), BufPool::default());
        let f = check(method, b"/p?q", headers).unwrap();
        write_head(&mut q, &mut pool, (method, b"/p?q"), b"h:81", (headers, &f), framing);
        String::from_utf8(q.contiguous_for_tests()).unwrap()
    }

    #[test]
    fn tern_writes_the_one_framing_field() {
        assert_eq!(head(b"GET", b"", Framing::None), "GET /p?q HTTP/1.1\r\nHost: h:81\r\n\r\n");
        let h = head(b"PUT", b"Content-Length: 5\r\nX: y\r\n", Framing::Length(5));
        assert_eq!(h, "PUT /p?q HTTP/1.1\r\nHost: h:81\r\nX: y\r\nContent-Length: 5\r\n\r\n");
        let h = head(b"POST", b"Host: other\r\n", Framing::Chunked);
        assert_eq!(h, "POST /p?q HTTP/1.1\r\nHost: other\r\nTransfer-Encoding: chunked\r\n\r\n");
    }

    #[test]
    fn bad_requests_and_framings_are_refused() {
        assert_eq!(check(b"G T", b"/", b""), Err(Error::Invalid));
        assert_eq!(check(b"GET", b"x", b""), Err(Error::Invalid));
        assert_eq!(check(b"GET", b"/", b"Transfer-Encoding: chunked\r\n"), Err(Error::Invalid));
        assert_eq!(check(b"GET", b"/", b"X: a\nb\r\n"), Err(Error::Invalid));
        let f = check(b"POST", b"/", b"Content-Length: 3\r\n").unwrap();
        assert_eq!(whole_framing(b"POST", &f, 4), Err(Error::Invalid));
        assert_eq!(whole_framing(b"POST", &f, 3), Ok(Framing::Length(3)));
        assert_eq!(whole_framing(b"GET", &Fields::default(), 0), Ok(Framing::None));
        assert_eq!(whole_framing(b"POST", &Fields::default(), 0), Ok(Framing::Length(0)));
        let bad = check(b"POST", b"/", b"Content-Length: x\r\n").unwrap();
        assert_eq!(streamed_framing(&bad), Err(Error::Invalid));
    }

    #[test]
    fn a_streamed_body_keeps_its_promise() {
        let (mut q, mut pool) = (SendQueue::default(), BufPool::default());
        let mut out = Outgoing::after_head(Framing::Length(4)).unwrap();
        out.piece(&mut q, &mut pool, 3, |q, p| q.push_copy(b"abc", p)).unwrap();
        assert_eq!(out.piece(&mut q, &mut pool, 2, |q, p| q.push_copy(b"de", p)), Err(Error::Invalid));
        assert_eq!(out.end(&mut q, &mut pool), Err(Error::Protocol), "one byte short");
        let mut out = Outgoing::after_head(Framing::Chunked).unwrap();
        out.piece(&mut q, &mut pool, 2, |q, p| q.push_copy(b"xy", p)).unwrap();
        out.end(&mut q, &mut pool).unwrap();
        assert_eq!(q.contiguous_for_tests(), b"abc2\r\nxy\r\n0\r\n\r\n");
        assert_eq!(Outgoing::after_head(Framing::Length(0)), None);
    }
}
