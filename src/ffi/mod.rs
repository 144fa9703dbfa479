//! The C ABI: every `extern "C"` function of tern lives under this module and does
//! only the boundary's work (null checks, pointer conversion, catching panics, error
//! codes). `include/tern.h` is generated from these files by cbindgen, one section per
//! file in this order, the order a reader learns them (tools/header_sections.rs; a
//! file's `// tern.h:` comment blocks title its sections). Each file uses only types of
//! the files above it.

#![allow(non_camel_case_types)]
// Every exported function checks its pointers before dereferencing them; the
// remaining obligations (a live handle from the right thread) are the C contract.
#![allow(clippy::missing_safety_doc)]
#![allow(clippy::not_unsafe_ptr_arg_deref)]

#[macro_use]
mod boundary;
pub mod error;
pub mod version;
pub mod log;
pub mod bytes;
pub mod mgr;
pub mod conn;
pub mod timer;
pub mod remote;
pub mod http;
pub mod ws;
pub mod tls;
pub mod fetch;
