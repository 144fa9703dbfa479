//! tern: an embeddable event-driven network library.
//!
//! The core (everything outside `ffi`) is safe Rust that knows nothing of C. In
//! layers, each knowing only those below it:
//! - `bytes` (shared buffers, where free callbacks run), `buf` (a connection's receive
//!   buffer and send queue), `net` (URLs, names, raw socket calls);
//! - `transport`: plaintext in, queued bytes out to the kernel (plain TCP);
//! - `proto`: the protocol interface (what the reactor knows of a protocol);
//! - `reactor`: the event loop, generic over the protocols it runs;
//! - the protocols: `raw`, `http` (server and client);
//! - `stack`: the list of protocols, which the reactor is instantiated with
//!   ([`Manager`]), and the entry points that pick a protocol;
//! - `ffi`: the stable C ABI over it; `include/tern.h` is generated from it.
//!
//! ARCHITECTURE.md draws the picture.

pub mod buf;
pub mod bytes;
pub mod error;
pub mod http;
pub mod log;
pub mod net;
pub mod options;
pub mod proto;
pub mod raw;
pub mod reactor;
pub mod stack;
pub mod transport;

pub mod ffi;

pub use bytes::Bytes;
pub use error::{Error, Result};
pub use options::{Opt, Options};
pub use proto::ConnId;
pub use stack::{AnyProto, ProtoEvent};

/// An event loop and every connection on it, running tern's protocols.
pub type Manager = reactor::Reactor<AnyProto>;
/// A handle other threads use to post to a [`Manager`].
pub type Remote = reactor::Remote<AnyProto>;
/// What a connection's handler is told.
pub type Event<'a> = reactor::Event<'a, AnyProto>;
/// A message a [`Remote`] posts.
pub type Msg = reactor::Msg<AnyProto>;
/// What a connection's handler implements (closures `Fn(&Manager, ConnId, &Event)`
/// do).
pub use reactor::Handler;
/// A handler as a manager keeps it.
pub type DynHandler = std::rc::Rc<dyn reactor::Handler<AnyProto>>;

/// The library version, "MAJOR.MINOR.PATCH".
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
