//! Addresses and the raw socket calls: URL parsing, name resolution off the loop
//! thread, and the one place where bytes leave for the kernel (`socket::send_vectored`).

pub mod resolver;
pub mod socket;
pub mod url;
