//! WebSocket (RFC 6455) with permessage-deflate (RFC 7692), sans-IO.
//!
//! Nothing here reads or writes a socket. The protocol layer feeds received bytes to
//! a [`Decoder`] and queues the frames an [`Encoder`] builds; `handshake` and
//! `deflate` turn header values into decisions. The pieces:
//!
//! - `frame`: header decoding with every receiver check, header encoding;
//! - `mask`: XOR masking in place;
//! - `utf8`: incremental UTF-8 validation that fails at the first bad byte;
//! - `close`: close payloads and status codes;
//! - `handshake`: accept keys, header token lists, subprotocols, client keys;
//! - `deflate`: permessage-deflate negotiation and per-message (de)compression;
//! - `stack_buf`: the small stack buffers headers and control frames are built in;
//! - `codec`: the decoder and encoder that put it all together.
//!
//! # Wiring it into a protocol layer
//!
//! Server upgrade (inside the HTTP request handler; `values(name)` yields every
//! value of a request header):
//! 1. `handshake::server_accept(values)` gives the accept key, or the status to
//!    answer with (400, or 426 plus `Sec-WebSocket-Version: 13`);
//! 2. optional: `handshake::select_subprotocol(values("Sec-WebSocket-Protocol"), &ours)`;
//! 3. `deflate::negotiate(values("Sec-WebSocket-Extensions"), &cfg)` gives the
//!    agreed `DeflateParams`, or `None` for no compression;
//! 4. answer `101 Switching Protocols` with `handshake::response_headers(&accept,
//!    protocol, params.map(|p| p.response_header()).as_deref())`;
//! 5. `let (dec, enc) = ws::codec(Role::Server, max_message, params.as_ref(), &cfg)`
//!    and keep both in the connection's protocol state. Bytes already received
//!    after the request head are WebSocket bytes.
//!
//! Client: `handshake::client_key()`, send `handshake::request_headers(&key,
//! protocols, Some(&deflate::client_offer(&cfg)))`, check the answer with
//! `handshake::client_check(status, &key, values, protocols)` and
//! `deflate::accept_response(values("Sec-WebSocket-Extensions"), &cfg)` (an error
//! from either fails the connection), then `ws::codec(Role::Client, ...)`.
//!
//! On readable data: call `dec.decode(recv)` in a loop (see `codec`'s module
//! comment): a `Message` goes to the application (`TERN_EV_WS_MSG`), a `Ping` is
//! answered with `enc.pong(data)` (and may be reported), a `Close` is reported
//! (`TERN_EV_WS_CTL`, data `close.raw()`) and answered with `enc.close(code, "")`
//! unless this end already sent one, after which a server closes the TCP connection
//! (a client waits, bounded, for the server to close first). An `Err(e)`: queue
//! `enc.close(Some(e.close_code()), "")` and close after it is written. The decoder
//! never needs the socket, a timer or the send queue.
//!
//! To send: `enc.message(kind, data)` gives a header to copy into the send queue and
//! a payload that is either the caller's own buffer (queue the shared buffer as it is)
//! or new bytes; `enc.ping`, `enc.pong`, `enc.close` give whole small frames. The
//! closing handshake's state (sent a close? got one? the timer) belongs to the
//! protocol layer.

#[cfg(test)]
mod alloc_count;
pub mod close;
pub mod codec;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod shared;
pub mod stack_buf;
pub mod topics;
pub mod utf8;

pub use codec::{codec, ControlFrame, Decoded, Decoder, Encoder, Frame, Item, MessageKind, Payload};
pub use connection::{Publish, WsConn, WsEvent, WsMessage};
pub use shared::Shared;
pub use deflate::{DeflateConfig, DeflateParams};
pub use error::Error;
pub use frame::{OpCode, Role};
