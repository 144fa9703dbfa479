//! What both sides of HTTP/1.1 share: bodies handed to tern, a chunked body decoded
//! beside its head, and how a message is lent to the handler and given back. The
//! server (`server`) and the client (`client`) differ only in what they parse and
//! what they answer.

use super::chunked::{ChunkError, ChunkedDecoder};
use super::msg::HttpMsg;
use super::parse::Head;
use crate::buf::pool::BufPool;
use crate::buf::recv_buf::RecvBuf;
use crate::buf::send_queue::{FileSeg, SendQueue};
use crate::bytes::Bytes;

/// A message body handed to tern.
pub enum Body<'a> {
    Copy(&'a [u8]),
    Shared(Bytes),
    /// A range of an open file, sent with `sendfile` (never read into memory).
    File(FileSeg),
}

impl Body<'_> {
    pub fn len(&self) -> usize {
        match self {
            Body::Copy(d) => d.len(),
            Body::Shared(b) => b.len(),
            Body::File(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the body to `q`: copied, by reference, or as a file segment.
    pub fn queue(self, q: &mut SendQueue, pool: &mut BufPool) {
        match self {
            Body::Copy(d) => q.push_copy(d, pool),
            Body::Shared(b) => q.push_bytes(b),
            Body::File(f) => q.push_file(f),
        }
    }
}

/// A chunked body decoded out of the receive buffer: its head waits in `head`
/// while the body collects in `body`, so the message can be lent whole.
#[derive(Default)]
pub struct Chunked {
    head: Vec<u8>,
    body: Vec<u8>,
    decoder: ChunkedDecoder,
}

impl Chunked {
    /// Moves the head (the first `head_len` bytes of `recv`) aside and starts
    /// decoding the body behind it.
    pub fn start(&mut self, recv: &mut RecvBuf, head_len: usize) {
        self.head.clear();
        self.head.extend_from_slice(&recv.data()[..head_len]);
        recv.consume(head_len);
        self.start_body();
    }

    /// Starts decoding a body whose head is not kept here.
    pub fn start_body(&mut self) {
        self.decoder.reset();
        self.body.clear();
    }

    /// Keeps `head` as the head of a body streamed in pieces.
    pub fn keep_head(&mut self, head: &[u8]) {
        self.head.clear();
        self.head.extend_from_slice(head);
    }

    /// Decodes what `recv` holds into the body (at most `max` bytes in all): true at
    /// the end of the body. Decoded bytes are consumed from `recv`.
    pub fn decode(&mut self, recv: &mut RecvBuf, max: usize) -> Result<bool, ChunkError> {
        let body = &mut self.body;
        let (used, done) = self.decoder.decode(recv.data(), max, &mut |piece: &[u8]| body.extend_from_slice(piece))?;
        recv.consume(used);
        Ok(done)
    }

    /// Whether decoded bytes wait to be delivered.
    pub fn has_body(&self) -> bool {
        !self.body.is_empty()
    }

    /// The head and body buffers, to lend.
    fn take(&mut self) -> (Vec<u8>, Vec<u8>) {
        (std::mem::take(&mut self.head), std::mem::take(&mut self.body))
    }

    /// Only the decoded body, to lend as a piece (the head stays).
    fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Buffers coming back from a delivery: emptied, their memory kept.
    fn put_back(&mut self, head: Option<Vec<u8>>, mut body: Vec<u8>) {
        if let Some(mut h) = head {
            h.clear();
            self.head = h;
        }
        body.clear();
        self.body = body;
    }
}

/// What one side asks to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A whole message. Its head and body are at the front of the receive buffer, or
    /// (`chunked`) in the `Chunked` buffers. `parsed`: the shared scratch head holds
    /// this head already.
    Msg { head_len: usize, body_len: usize, chunked: bool, parsed: bool },
    /// The head of a request whose body is not read yet (HTTP_HEAD).
    Head { head_len: usize },
    /// A piece of a streamed body: the first `len` bytes of the receive buffer, or
    /// (`None`) the decoded bytes of a chunked body.
    Piece { len: Option<usize> },
}

/// Which event a lent message shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shows {
    Msg,
    Head,
    Piece,
}

/// A message lent to the handler: everything its event borrows.
pub struct Lent {
    /// What was asked to be delivered.
    pub delivery: Delivery,
    recv: RecvBuf,
    head: Head,
    /// A chunked message's head, when it is not in `recv`.
    head_buf: Option<Vec<u8>>,
    /// A chunked message's decoded body (or a decoded piece).
    body_buf: Vec<u8>,
    shows: Shows,
    /// Where the head and body are in `recv` (when not in the buffers above).
    head_len: usize,
    body_len: usize,
    /// The request's position on its connection (server side).
    pub seq: u64,
    /// The response's status (client side).
    pub status: u16,
    /// Bytes of `recv` the delivery uses up.
    consumed: usize,
}

impl Lent {
    /// Lends delivery `d` from `recv`, the scratch `head` (taken from the shared
    /// state, which gets it back with `give_back`) and the chunked buffers.
    pub fn new(d: Delivery, recv: RecvBuf, head: Head, chunked: &mut Chunked) -> Lent {
        let mut l = Lent { delivery: d, recv, head, head_buf: None, body_buf: Vec::new(), shows: Shows::Msg, head_len: 0, body_len: 0, seq: 0, status: 0, consumed: 0 };
        match d {
            Delivery::Msg { chunked: true, .. } => {
                let (h, b) = chunked.take();
                l.head_buf = Some(h);
                l.body_buf = b;
            }
            Delivery::Msg { head_len, body_len, .. } => {
                (l.head_len, l.body_len) = (head_len, body_len);
                l.consumed = head_len + body_len;
            }
            Delivery::Head { head_len } => {
                l.shows = Shows::Head;
                l.head_len = head_len;
            }
            Delivery::Piece { len: Some(len) } => {
                l.shows = Shows::Piece;
                l.body_len = len;
                l.consumed = len;
            }
            Delivery::Piece { len: None } => {
                l.shows = Shows::Piece;
                l.body_buf = chunked.take_body();
            }
        }
        l
    }

    /// The parsed head, to parse again when the scratch no longer holds it.
    pub fn head_mut(&mut self) -> (&mut Head, &[u8]) {
        let buf = match &self.head_buf {
            Some(h) => &h[..],
            None => &self.recv.data()[..self.head_len],
        };
        (&mut self.head, buf)
    }

    /// Whether the lent message's sender keeps the connection open after it.
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive
    }

    fn body(&self) -> &[u8] {
        match (self.shows, &self.head_buf) {
            (Shows::Head, _) => &[],
            (Shows::Msg, Some(_)) => &self.body_buf,
            (Shows::Msg, None) => &self.recv.data()[self.head_len..self.head_len + self.body_len],
            (Shows::Piece, _) if self.consumed > 0 => &self.recv.data()[..self.body_len],
            (Shows::Piece, _) => &self.body_buf,
        }
    }

    /// What the handler sees.
    pub fn event(&self) -> HttpEvent<'_> {
        if self.shows == Shows::Piece {
            return HttpEvent::Body(self.body());
        }
        let buf = match &self.head_buf {
            Some(h) => &h[..],
            None => self.recv.data(),
        };
        let msg = HttpMsg { buf, head: &self.head, body: self.body(), seq: self.seq, status: self.status };
        match self.shows {
            Shows::Head => HttpEvent::Head(msg),
            _ => HttpEvent::Msg(msg),
        }
    }

    /// Puts everything back: the receive buffer (less what the delivery used up)
    /// into `recv`, the scratch head into `scratch`, the chunked buffers into
    /// `chunked` (when there is one to take them).
    pub fn give_back(self, recv: &mut RecvBuf, scratch: &mut Head, chunked: Option<&mut Chunked>) {
        *recv = self.recv;
        recv.consume(self.consumed);
        *scratch = self.head;
        let took_body = matches!(self.delivery, Delivery::Msg { chunked: true, .. } | Delivery::Piece { len: None });
        if let (Some(c), true) = (chunked, took_body) {
            c.put_back(self.head_buf, self.body_buf);
        }
    }
}

/// An HTTP event: a whole message (a request on the server, a response on the
/// client), the head of a request whose body comes in pieces, or one such piece.
pub enum HttpEvent<'a> {
    Msg(HttpMsg<'a>),
    Head(HttpMsg<'a>),
    Body(&'a [u8]),
}

impl HttpEvent<'_> {
    /// The stable number of the event (`TERN_EV_*`).
    pub fn code(&self) -> i32 {
        match self {
            HttpEvent::Msg(_) => 8,
            HttpEvent::Head(_) => 14,
            HttpEvent::Body(_) => 15,
        }
    }
}
