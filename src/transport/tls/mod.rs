//! TLS, the second transport: rustls (on the ring provider) between the socket and
//! the plaintext the protocols see.
//!
//! - `stream`: one connection: reading decrypts into the receive buffer, flushing
//!   encrypts the send queue into records and releases queued bytes only once the
//!   records carrying them are in the kernel.
//! - `encrypt`: feeding the front of a send queue to rustls (memory slices by
//!   reference, file segments through a bounded read buffer).
//! - `config`: the shared, reference-counted configuration behind `tern_tls_config`
//!   (certificates and keys, trust anchors, ALPN, cipher suites, tickets), frozen into
//!   rustls configs on first use.
//! - `pem`, `sni`, `roots`, `verify`: PEM parsing, picking a certificate by server
//!   name, the system trust store, and the test-only verifier that trusts anything.
//!
//! Nothing here knows a protocol; the reactor sees only what `Transport` says
//! (handshaking, records waiting to be written, a truncated end).

pub mod config;
mod encrypt;
mod pem;
mod roots;
mod sni;
mod stream;
mod verify;

pub use config::{Role, TlsConfig, TlsError};
pub use stream::Tls;
