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

#[cfg(test)]
mod alloc_count;
pub mod close;
pub mod codec;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod stack_buf;
pub mod utf8;

pub use codec::{codec, ControlFrame, Decoded, Decoder, Encoder, Frame, Item, MessageKind, Payload};
pub use deflate::{DeflateConfig, DeflateParams};
pub use error::Error;
pub use frame::{OpCode, Role};
