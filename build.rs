//! Generates `include/tern.h` from the `extern "C"` items under `src/ffi/`, one
//! section per concept (tools/header_sections.rs).
//!
//! The header is committed: the `header_fresh` test fails when a build changes it,
//! so a stale header can never ship. The file is only rewritten when its content
//! changes, so builds do not churn its timestamp. When cbindgen cannot generate it,
//! the build fails: a build that went on would leave the old header in place, and
//! C programs would compile against declarations the library no longer has.

use std::path::PathBuf;

#[path = "tools/header_sections.rs"]
mod header_sections;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=tools/header_sections.rs");
    // An edited or deleted header is written again by the next build.
    println!("cargo:rerun-if-changed=include/tern.h");

    // The soname carries the major version, so an ABI break is a new file name.
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtern.so.{major}");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let header = match cbindgen::Builder::new().with_crate(&crate_dir).with_config(config).generate() {
        Ok(bindings) => {
            let mut out = Vec::new();
            bindings.write(&mut out);
            // cbindgen orders by kind; the header is read by concept (see that file).
            let text = String::from_utf8(out).expect("cbindgen writes UTF-8");
            header_sections::sectioned(&text, &crate_dir.join("src").join("ffi")).into_bytes()
        }
        Err(e) => {
            eprintln!("error: cbindgen could not generate include/tern.h from src/ffi/: {e}");
            eprintln!("       (the committed header would be stale; fix the error above and build again)");
            std::process::exit(1);
        }
    };
    let path = crate_dir.join("include").join("tern.h");
    if std::fs::read(&path).ok().as_deref() != Some(header.as_slice()) {
        std::fs::create_dir_all(path.parent().expect("include/ has a parent")).expect("create include/");
        std::fs::write(&path, &header).expect("write include/tern.h");
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("tern.h"), &header).expect("write OUT_DIR/tern.h");
}
