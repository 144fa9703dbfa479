//! tern: an embeddable event-driven network library.
//!
//! The core (everything outside `ffi`) is safe Rust that knows nothing of C: a
//! reactor on mio ([`Manager`]), connections with pooled buffers, shared byte
//! buffers ([`Bytes`]) and cross-thread handles ([`Remote`]). The `ffi` module is the
//! stable C ABI over it, and `include/tern.h` is generated from that module.

pub mod bytes;
pub mod conn;
pub mod error;
pub mod http;
pub mod log;
pub mod net;
pub mod options;
pub mod reactor;
pub mod ws;

pub mod ffi;

pub use bytes::Bytes;
pub use conn::ConnId;
pub use error::{Error, Result};
pub use options::{Opt, Options};
pub use reactor::{Event, Handler, Manager, Remote};

/// The library version, "MAJOR.MINOR.PATCH".
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
