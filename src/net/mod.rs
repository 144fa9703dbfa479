//! Addresses and raw socket calls: URL parsing, name resolution off the loop thread
//! and a cache of its recent answers, and the syscalls (`socket`: sendmsg with
//! MSG_NOSIGNAL, sendfile under a SIGPIPE block, recv) that the plain transport is
//! built on.

pub mod dns_cache;
pub mod resolver;
pub mod socket;
pub mod url;
