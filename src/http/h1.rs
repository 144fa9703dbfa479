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
            Body::Shared(b) => q.push_bytes(b, pool),
            Body::File(f) => q.push_file(f, pool),
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

/// A message lent to the handler: everything its event borrows.
pub struct Lent {
    /// What was asked to be delivered (where its bytes are).
    pub delivery: Delivery,
    recv: RecvBuf,
    head: Box<Head>,
    /// A chunked message's head and body, or a decoded piece's bytes, when they are
    /// not in `recv`.
    bufs: Option<(Vec<u8>, Vec<u8>)>,
    /// The request's position on its connection (server side).
    pub seq: u64,
    /// The response's status (client side).
    pub status: u16,
}

impl Lent {
    /// Lends delivery `d` from `recv`, the scratch `head` (taken from the shared
    /// state, which gets it back with `give_back`) and the chunked buffers.
    pub fn new(d: Delivery, recv: RecvBuf, head: Box<Head>, chunked: &mut Chunked) -> Lent {
        let bufs = match d {
            Delivery::Msg { chunked: true, .. } => Some(chunked.take()),
            Delivery::Piece { len: None } => Some((Vec::new(), chunked.take_body())),
            _ => None,
        };
        Lent { delivery: d, recv, head, bufs, seq: 0, status: 0 }
    }

    /// The parsed head, to parse again when the scratch no longer holds it.
    pub fn head_mut(&mut self) -> (&mut Head, &[u8]) {
        let buf = match (&self.bufs, self.delivery) {
            (Some((h, _)), _) => &h[..],
            (None, Delivery::Msg { head_len, .. } | Delivery::Head { head_len }) => &self.recv.data()[..head_len],
            (None, Delivery::Piece { .. }) => &[],
        };
        (&mut self.head, buf)
    }

    /// Whether the lent message's sender keeps the connection open after it.
    pub fn keep_alive(&self) -> bool {
        self.head.keep_alive
    }

    /// Bytes of `recv` the delivery uses up.
    fn consumed(&self) -> usize {
        match self.delivery {
            Delivery::Msg { head_len, body_len, chunked: false, .. } => head_len + body_len,
            Delivery::Piece { len: Some(len) } => len,
            _ => 0,
        }
    }

    /// What the handler sees.
    pub fn event(&self) -> HttpEvent<'_> {
        let data = self.recv.data();
        let (buf, body): (&[u8], &[u8]) = match (&self.bufs, self.delivery) {
            (Some((h, b)), _) => (h, b),
            (None, Delivery::Msg { head_len, body_len, .. }) => (data, &data[head_len..head_len + body_len]),
            (None, Delivery::Head { .. }) => (data, &[]),
            (None, Delivery::Piece { len }) => (&[], &data[..len.unwrap_or(0)]),
        };
        let msg = |body| HttpMsg { buf, head: &self.head, body, seq: self.seq, status: self.status };
        match self.delivery {
            Delivery::Msg { .. } => HttpEvent::Msg(msg(body)),
            Delivery::Head { .. } => HttpEvent::Head(msg(&[])),
            Delivery::Piece { .. } => HttpEvent::Body(body),
        }
    }

    /// Puts everything back: the receive buffer (less what the delivery used up)
    /// into `recv`, the scratch head into the shared state, the chunked buffers into
    /// `chunked` (when there is one to take them).
    pub fn give_back(self, recv: &mut RecvBuf, shared: &mut super::Shared, chunked: Option<&mut Chunked>) {
        let consumed = self.consumed();
        *recv = self.recv;
        recv.consume(consumed);
        shared.put_head(self.head);
        if let (Some(c), Some((head, body))) = (chunked, self.bufs) {
            let head = matches!(self.delivery, Delivery::Msg { .. }).then_some(head);
            c.put_back(head, body);
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
