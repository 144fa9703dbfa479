//! Fetch: outbound HTTP for programs, on top of the HTTP client connections.
//!
//! `Manager::fetch` sends one request to a URL and reports back through one
//! callback: the response whole (or its head, then body pieces, when streamed) and
//! then `Done`, exactly once, whatever happens (an answer, a timeout, a reset, a
//! refused or unresolvable host, a cancel, the manager freed). Connections come
//! from a keep-alive pool per origin (`pool`), with bounds, an idle timeout, a
//! bounded wait queue and one retry of an idempotent request that a dead pooled
//! connection lost; names resolve off the loop thread through the reactor's DNS
//! cache. `location` splits URLs and resolves redirects; `client` is the state
//! machine.

mod client;
mod location;
mod pool;

use crate::error::Error;
use crate::http::msg::HttpMsg;
use crate::Manager;
use std::rc::Rc;
use std::time::Duration;

/// What a fetch's callback is told. Borrowed data lives for the call.
pub enum FetchEvent<'a> {
    /// Streamed responses: the head (status and fields).
    Head(&'a HttpMsg<'a>),
    /// Streamed responses: the next piece of the body (de-chunked).
    Body(&'a [u8]),
    /// A request body being streamed: everything written so far went to the kernel.
    Drain,
    /// The end, exactly once, last: the response (whole, or its head with an empty
    /// body when streamed) or why there is none.
    Done(std::result::Result<&'a HttpMsg<'a>, (Error, &'a str)>),
}

/// A fetch's callback, run on the loop thread.
pub type FetchCb = Rc<dyn Fn(&Manager, u64, FetchEvent<'_>)>;

/// A fetch's own settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchOpts {
    /// The connection must be established within this long (else the manager's
    /// connect timeout applies).
    pub connect_timeout: Option<Duration>,
    /// The response head must come within this long of the request being sent, and
    /// each body piece within this long of the one before.
    pub response_timeout: Option<Duration>,
    /// The whole fetch must be done within this long.
    pub total_timeout: Option<Duration>,
    /// Redirects (301, 302, 303, 307, 308 with a Location) followed at most; 0
    /// delivers them as responses.
    pub follow: u32,
    /// The largest body collected (not streamed); the manager's max body by default.
    pub max_size: Option<usize>,
    /// Deliver the response as Head, Body pieces and Done instead of whole.
    pub stream: bool,
    /// The request body follows the call in pieces (`fetch_write`, `fetch_end`).
    pub stream_body: bool,
}

/// What the fetch client holds, for leak checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Fetches whose Done has not run yet.
    pub pending: usize,
    /// Pooled connections open (connecting, busy or idle).
    pub conns: usize,
    /// Of them, idle.
    pub idle: usize,
}

pub use client::next_fetch_id;
