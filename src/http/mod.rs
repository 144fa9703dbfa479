//! HTTP/1.1 (RFC 9112), server and client, as protocols of the protocol interface.
//!
//! Where things are: a head is parsed in `parse` (requests and responses), a chunked
//! body in `chunked`; what both sides share (bodies, lending a message to the
//! handler) in `h1`; the server (pipelining, deferral, timeouts) in `server`, the
//! client in `client` (its requests are written by `request`); response heads are
//! written by `response`; what a handler sees
//! is `msg`; deferred requests' tokens are in `defer`; static files in `files`; the
//! per-manager state in `shared`. Request helpers for handlers: `form` (variables),
//! `glob` (routing), `auth` (Basic credentials), `multipart`; `lex` and `date` are
//! the small pieces under them.

pub mod auth;
pub mod chunked;
pub mod client;
pub mod date;
pub mod defer;
pub mod fields;
pub mod files;
pub mod form;
pub mod glob;
pub mod h1;
mod lex;
pub mod msg;
pub mod multipart;
pub mod parse;
pub mod request;
pub mod response;
pub mod server;
pub mod shared;
#[cfg(test)]
mod test_rng;

pub use h1::{Body, HttpEvent};
pub use msg::HttpMsg;
pub use shared::Shared;
