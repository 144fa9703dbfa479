//! The layering of the source tree, checked: which module may name which (see
//! ARCHITECTURE.md). Reads `src/` and `include/tern.h` as text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The protocols; only the stack (and the C ABI above it) lists them.
const PROTOCOLS: &[&str] = &["raw", "http", "ws"];
/// Layers that must not name any protocol.
const BELOW_PROTOCOLS: &[&str] = &["bytes", "buf", "net", "transport", "proto", "reactor", "error", "options", "log"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/http/server.rs` -> "http").
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let m = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (m != "lib").then_some(m)
}

/// Code lines of a file: comments dropped, so a doc comment mentioning a module is
/// not a dependency.
fn code(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every top-level module a file's code names as `crate::NAME`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + 7..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

struct Tree {
    /// module -> (file, code)
    files: BTreeMap<String, Vec<(PathBuf, String)>>,
}

fn tree() -> Tree {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    rust_files(&src, &mut all);
    let mut files: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    for f in all {
        if let Some(m) = module_of(&src, &f) {
            let text = std::fs::read_to_string(&f).unwrap();
            files.entry(m).or_default().push((f, code(&text)));
        }
    }
    Tree { files }
}

#[test]
fn modules_import_each_other_in_no_circle() {
    let t = tree();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, files) in &t.files {
        let e = edges.entry(m.clone()).or_default();
        for (_, code) in files {
            e.extend(named_modules(code).into_iter().filter(|n| n != m && t.files.contains_key(n)));
        }
    }
    // Depth-first search for a back edge.
    fn visit(m: &str, edges: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(m) {
            return;
        }
        if let Some(i) = path.iter().position(|p| p == m) {
            panic!("import circle: {} -> {m}", path[i..].join(" -> "));
        }
        path.push(m.to_string());
        for n in edges.get(m).into_iter().flatten() {
            visit(n, edges, path, done);
        }
        path.pop();
        done.insert(m.to_string());
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        visit(m, &edges, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_reactor_connections_and_transport_name_no_protocol() {
    let t = tree();
    for layer in BELOW_PROTOCOLS {
        for (file, code) in t.files.get(*layer).into_iter().flatten() {
            let named = named_modules(code);
            for bad in PROTOCOLS.iter().chain(&["stack", "ffi"]) {
                assert!(!named.contains(*bad), "{} names crate::{bad}", file.display());
            }
        }
    }
}

#[test]
fn protocols_never_touch_the_socket_or_the_reactor() {
    let t = tree();
    for proto in PROTOCOLS {
        for (file, code) in t.files.get(*proto).into_iter().flatten() {
            let named = named_modules(code);
            for bad in ["reactor", "transport", "stack", "ffi"] {
                assert!(!named.contains(bad), "{} names crate::{bad}", file.display());
            }
            assert!(!code.contains("net::socket"), "{} calls the socket layer", file.display());
            assert!(!code.contains("mio::"), "{} uses mio", file.display());
        }
    }
}

#[test]
fn protocol_variants_are_matched_only_in_the_stack() {
    let t = tree();
    for (m, files) in &t.files {
        if m == "stack" {
            continue;
        }
        for (file, code) in files {
            assert!(!code.contains("AnyProto::"), "{} matches a protocol variant", file.display());
        }
    }
}

#[test]
fn the_header_declares_only_tern_names() {
    let h = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/tern.h")).unwrap();
    for line in h.lines() {
        let name = if let Some(rest) = line.strip_prefix("#define ") {
            rest.split_whitespace().next().unwrap_or("")
        } else if line.starts_with("typedef ") && line.ends_with(';') {
            // `typedef R (*NAME)(args);` or `typedef T NAME;`
            match line.split_once("(*") {
                Some((_, rest)) => rest.split(')').next().unwrap_or(""),
                None => line.trim_end_matches(';').rsplit(' ').next().unwrap_or(""),
            }
        } else if let Some(rest) = line.strip_prefix("} ").filter(|r| r.ends_with(';')) {
            rest.trim_end_matches(';')
        } else {
            continue;
        };
        assert!(name.starts_with("TERN_") || name.starts_with("tern_"), "tern.h declares {name:?}: internal names must not leak into the C API");
    }
}

#[test]
fn tls_is_known_only_to_the_transport_and_the_stack() {
    // The reactor, the protocols and the buffers see TLS only through the transport
    // seam (`Transport`, `Security`); the stack picks configurations by URL scheme;
    // the C ABI hands over `TlsConfig` and never touches rustls itself.
    let t = tree();
    for (m, files) in &t.files {
        if m == "transport" || m == "stack" {
            continue;
        }
        for (file, code) in files {
            assert!(!code.contains("rustls"), "{} names rustls", file.display());
            if m != "ffi" {
                assert!(!code.contains("transport::tls"), "{} reaches into transport::tls", file.display());
            }
        }
    }
}
