//! tern: an embeddable event-driven network library.
//!
//! The core (everything outside `ffi`) is safe Rust that knows nothing of C. In
//! layers, each knowing only those below it:
//! - `bytes` (shared buffers, where free callbacks run), `buf` (a connection's receive
//!   buffer and send queue), `net` (URLs, names, raw socket calls);
//! - `transport`: plaintext in, queued bytes out to the kernel (plain TCP);
//! - `proto`: the protocol interface (what the reactor knows of a protocol);
//! - `reactor`: the event loop, generic over the protocols it runs;
//! - the protocols: `raw`, `http` (server and client), `ws` (WebSocket: so far the
//!   sans-IO codec: frames, masking, UTF-8, close, handshake, permessage-deflate);
//! - `stack`: the list of protocols, which the reactor is instantiated with
//!   ([`Manager`]), and the entry points that pick a protocol;
//! - `ffi`: the stable C ABI over it; `include/tern.h` is generated from it.
//!
//! ARCHITECTURE.md draws the picture. Every module but `ffi` is hidden from
//! cbindgen (`cbindgen:ignore`): the C header is made of the C ABI alone.

/// cbindgen:ignore
pub mod buf;
/// cbindgen:ignore
pub mod bytes;
/// cbindgen:ignore
pub mod error;
/// cbindgen:ignore
pub mod fetch;
/// cbindgen:ignore
pub mod http;
/// cbindgen:ignore
pub mod log;
/// cbindgen:ignore
pub mod net;
/// cbindgen:ignore
pub mod options;
/// cbindgen:ignore
pub mod proto;
/// cbindgen:ignore
pub mod raw;
/// cbindgen:ignore
pub mod reactor;
/// cbindgen:ignore
pub mod stack;
/// cbindgen:ignore
pub mod transport;
/// cbindgen:ignore
pub mod ws;

pub mod ffi;

pub use bytes::Bytes;
pub use error::{Error, Result};
pub use options::{Opt, Options};
pub use proto::ConnId;
pub use stack::{AnyProto, ProtoEvent};

/// An event loop and every connection on it, running tern's protocols.
/// cbindgen:ignore
pub type Manager = reactor::Reactor<AnyProto>;
/// A handle other threads use to post to a [`Manager`].
/// cbindgen:ignore
pub type Remote = reactor::Remote<AnyProto>;
/// What a connection's handler is told.
/// cbindgen:ignore
pub type Event<'a> = reactor::Event<'a, AnyProto>;
/// A message a [`Remote`] posts.
/// cbindgen:ignore
pub type Msg = reactor::Msg<AnyProto>;
/// What a connection's handler implements (closures `Fn(&Manager, ConnId, &Event)`
/// do).
pub use reactor::Handler;
/// A handler as a manager keeps it.
/// cbindgen:ignore
pub type DynHandler = std::rc::Rc<dyn reactor::Handler<AnyProto>>;

/// The library version, "MAJOR.MINOR.PATCH".
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
