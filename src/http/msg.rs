//! `HttpMsg`: what a handler sees of a request (or, client side, a response). It
//! borrows the connection's buffers for the duration of one event.

use super::parse::Head;

/// One parsed HTTP message, valid during the event that carries it.
#[derive(Debug)]
pub struct HttpMsg<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) head: &'a Head,
    pub(crate) body: &'a [u8],
    /// Position of the request on its connection (for deferred responses).
    pub(crate) seq: u64,
    /// Responses only.
    pub(crate) status: u16,
}

impl<'a> HttpMsg<'a> {
    pub fn method(&self) -> &'a [u8] {
        self.head.method.of(self.buf)
    }

    /// The path, without the query.
    pub fn uri(&self) -> &'a [u8] {
        self.head.path.of(self.buf)
    }

    /// After '?', without it; empty when absent.
    pub fn query(&self) -> &'a [u8] {
        self.head.query.of(self.buf)
    }

    /// The first field called `name`, case-insensitively.
    pub fn header(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.head.header(self.buf, name)
    }

    /// Every value of the fields called `name`, in order (a list split over several
    /// field lines is one list).
    pub fn header_values<'n>(&'n self, name: &'n [u8]) -> impl Iterator<Item = &'a [u8]> + 'n {
        let buf = self.buf;
        self.head.headers.iter().filter(move |(n, _)| n.of(buf).eq_ignore_ascii_case(name)).map(move |(_, v)| v.of(buf))
    }

    /// Bytes of the head (request line or status line, fields, blank line).
    pub fn head_bytes(&self) -> &'a [u8] {
        &self.buf[..self.head.len]
    }

    pub fn header_count(&self) -> usize {
        self.head.headers.len()
    }

    pub fn header_at(&self, i: usize) -> Option<(&'a [u8], &'a [u8])> {
        self.head.headers.get(i).map(|(n, v)| (n.of(self.buf), v.of(self.buf)))
    }

    /// The decoded (de-chunked) body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub fn minor_version(&self) -> u8 {
        self.head.minor
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }
}
