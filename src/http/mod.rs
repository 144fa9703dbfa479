//! HTTP/1.1 (RFC 9112): where a request is parsed (`parse`), how a body is framed
//! (`chunked`), what a handler sees (`msg`), how responses are written (`response`)
//! and ordered among pipelined requests, deferred or not (`server`), static files
//! (`files`).

pub mod chunked;
pub mod client;
pub mod date;
pub mod defer;
pub mod file_cache;
pub mod files;
pub mod listing;
pub mod msg;
pub mod parse;
pub mod response;
pub mod server;
#[cfg(test)]
mod test_rng;
pub mod util;
