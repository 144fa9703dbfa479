//! HTTP's part of a manager: what every HTTP connection on one loop shares.

use super::date::DateCache;
use super::defer::DeferRegistry;
use super::files::cache::FileCache;
use super::parse::Head;
use super::server::ExchangePool;
use std::sync::Arc;

#[derive(Default)]
pub struct Shared {
    /// The `Date` field, formatted once per second.
    pub date: DateCache,
    /// Scratch for the head being parsed or delivered (one at a time on the loop);
    /// out while a message is lent to a handler. Boxed, so lending it moves a pointer.
    head: Option<Box<Head>>,
    /// Resolved static files (`http_serve_dir` / `http_serve_file`).
    pub files: FileCache,
    /// Deferred requests that may still be answered, shared with remotes.
    pub defer: Arc<DeferRegistry>,
    /// Request state of server connections that are idle, ready for the next request.
    pub(super) exchanges: ExchangePool,
}

impl Shared {
    /// The scratch head, to parse into.
    pub fn head(&mut self) -> &mut Head {
        self.head.get_or_insert_with(Box::default)
    }

    /// The scratch head, taken out to lend with a message.
    pub(super) fn take_head(&mut self) -> Box<Head> {
        self.head.take().unwrap_or_default()
    }

    /// The scratch head, back from a handler.
    pub(super) fn put_head(&mut self, head: Box<Head>) {
        self.head = Some(head);
    }
}
