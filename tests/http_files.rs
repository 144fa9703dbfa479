//! Static files (`http_serve_dir`, `http_serve_file`) through real sockets on
//! 127.0.0.1: statuses, validators, ranges, gzip negotiation, path safety, and a
//! large download that does not starve other connections.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tern::{ConnId, Event, Manager, Opt, ProtoEvent};

mod common;
use common::{serve, Server};

const BIG: u64 = 200 << 20;
const SECRET: &[u8] = b"SECRET-OUTSIDE-ROOT";

/// A tree under a fresh temporary directory:
/// `outside/secret.txt`, `rootx/x.txt` (a sibling whose name extends the root's),
/// and `root/` with files, directories, symlinks in and out, a FIFO, a sparse file.
struct Tree {
    base: PathBuf,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

fn make_tree(tag: &str) -> Tree {
    let base = std::env::temp_dir().join(format!("tern-files-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    for d in ["root/sub", "root/empty", "outside", "rootx"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    let w = |p: &str, data: &[u8]| std::fs::write(base.join(p), data).unwrap();
    w("outside/secret.txt", SECRET);
    w("rootx/x.txt", SECRET);
    w("root/index.html", b"<h1>home</h1>\n");
    w("root/sub/index.html", b"<h1>sub</h1>\n");
    w("root/a.txt", &pattern(10_000));
    w("root/style.css", b"body { color: red }\n");
    w("root/style.css.gz", b"\x1f\x8bFAKE-GZIP-BYTES");
    w("root/data.bin", b"\x00\x01\x02");
    w("root/%2e%2e", b"a file with an odd name\n");
    let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
    link(&base.join("outside/secret.txt"), "link_out.txt");
    link(&base.join("outside"), "dir_out");
    link(&base.join("rootx/x.txt"), "link_sibling.txt");
    link(Path::new("a.txt"), "link_in.txt");
    let fifo = std::ffi::CString::new(root.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path for the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::File::create(root.join("big.bin")).unwrap().set_len(BIG).unwrap();
    Tree { base }
}

/// `/only` is served with `http_serve_file(root/a.txt)`; everything else with
/// `http_serve_dir(root)`.
fn start(tree: &Tree) -> Server {
    start_with(tree, &[])
}

fn start_with(tree: &Tree, opts: &[(Opt, i64)]) -> Server {
    let root = tree.base.join("root");
    serve(opts, move |_| {
        Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
            let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev else { return };
            if msg.uri() == b"/only" {
                m.http_serve_file(id, msg, &root.join("a.txt")).unwrap();
            } else {
                m.http_serve_dir(id, msg, &root).unwrap();
            }
        })
    })
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().find_map(|l| l.to_ascii_lowercase().starts_with(&prefix).then(|| l[prefix.len()..].trim().to_string()))
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// One response on a kept-alive connection; `head_only` for answers to HEAD.
fn read_response(s: &mut TcpStream, head_only: bool) -> Response {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "EOF inside a head: {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let mut r = Response { status: head[9..12].parse().unwrap(), head, body: Vec::new() };
    let len: usize = r.header("content-length").map_or(0, |v| v.parse().unwrap());
    if !head_only {
        r.body = vec![0u8; len];
        s.read_exact(&mut r.body).unwrap();
    }
    r
}

/// `GET path` with extra header lines, on a fresh connection.
fn get(port: u16, path: &str, extra: &str) -> Response {
    request(port, "GET", path, extra)
}

fn request(port: u16, method: &str, path: &str, extra: &str) -> Response {
    let mut s = connect(port);
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").unwrap();
    read_response(&mut s, method == "HEAD")
}

#[test]
fn files_directories_and_errors_get_their_statuses() {
    let tree = make_tree("status");
    let srv = start(&tree);
    let p = srv.port;
    let r = get(p, "/a.txt", "");
    assert_eq!((r.status, r.body.len()), (200, 10_000));
    assert!(r.body == pattern(10_000));
    assert_eq!(r.header("content-type").unwrap(), "text/plain; charset=utf-8");
    assert_eq!(r.header("accept-ranges").unwrap(), "bytes");
    assert_eq!(get(p, "/data.bin", "").header("content-type").unwrap(), "application/octet-stream");
    let r = get(p, "/", "");
    assert_eq!((r.status, &r.body[..]), (200, &b"<h1>home</h1>\n"[..]));
    assert_eq!(r.header("content-type").unwrap(), "text/html; charset=utf-8");
    assert_eq!(get(p, "/sub/", "").body, b"<h1>sub</h1>\n");
    let r = get(p, "/sub?x=1", "");
    assert_eq!((r.status, r.header("location").unwrap()), (301, "/sub/?x=1".to_string()));
    assert_eq!(get(p, "/empty/", "").status, 403, "a directory without index.html is not listed");
    assert_eq!(get(p, "/fifo", "").status, 403);
    assert_eq!(get(p, "/missing.txt", "").status, 404);
    assert_eq!(get(p, "/a.txt/x", "").status, 404);
    assert_eq!(get(p, "/link_in.txt", "").body, pattern(10_000), "a symlink inside the root is followed");
    assert_eq!(get(p, "/%2525%32e", "").status, 404);
    assert_eq!(get(p, "/only", "").body, pattern(10_000), "http_serve_file");
    for m in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = request(p, m, "/a.txt", "Content-Length: 0\r\n");
        assert_eq!((r.status, r.header("allow").unwrap()), (405, "GET, HEAD".to_string()), "{m}");
    }
    let r = request(p, "HEAD", "/a.txt", "");
    assert_eq!((r.status, r.header("content-length").unwrap()), (200, "10000".to_string()));
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
}

#[test]
fn head_sends_no_body_and_keeps_the_connection_in_step() {
    let tree = make_tree("head");
    let srv = start(&tree);
    let mut s = connect(srv.port);
    s.write_all(b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let r = read_response(&mut s, true);
    assert_eq!((r.status, r.header("content-length").unwrap()), (200, "10000".to_string()));
    let r = read_response(&mut s, false);
    assert_eq!(r.body, b"<h1>home</h1>\n", "the next response follows the HEAD answer directly");
}

#[test]
fn conditional_requests_round_trip_to_304() {
    let tree = make_tree("cond");
    let srv = start(&tree);
    let p = srv.port;
    let first = get(p, "/a.txt", "");
    let etag = first.header("etag").unwrap();
    let lm = first.header("last-modified").unwrap();
    let r = get(p, "/a.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((r.status, r.body.len()), (304, 0));
    assert_eq!(r.header("etag").unwrap(), etag);
    assert_eq!(get(p, "/a.txt", &format!("If-None-Match: \"x\", W/{etag}\r\n")).status, 304);
    assert_eq!(get(p, "/a.txt", "If-None-Match: \"other\"\r\n").status, 200);
    assert_eq!(get(p, "/a.txt", &format!("If-Modified-Since: {lm}\r\n")).status, 304);
    assert_eq!(get(p, "/a.txt", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n").status, 200);
    assert_eq!(get(p, "/a.txt", "If-Modified-Since: garbage\r\n").status, 200);
    // If-None-Match wins over If-Modified-Since.
    assert_eq!(get(p, "/a.txt", &format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {lm}\r\n")).status, 200);
}

#[test]
fn single_ranges_are_byte_exact() {
    let tree = make_tree("range");
    let srv = start(&tree);
    let p = srv.port;
    let all = pattern(10_000);
    for (spec, a, b) in [("0-0", 0, 0), ("100-199", 100, 199), ("9990-", 9990, 9999), ("-25", 9975, 9999), ("5000-99999", 5000, 9999)] {
        let r = get(p, "/a.txt", &format!("Range: bytes={spec}\r\n"));
        assert_eq!(r.status, 206, "{spec}");
        assert_eq!(r.header("content-range").unwrap(), format!("bytes {a}-{b}/10000"));
        assert!(r.body == all[a..=b], "{spec}: bytes differ");
    }
    let r = get(p, "/a.txt", "Range: bytes=10000-\r\n");
    assert_eq!((r.status, r.header("content-range").unwrap()), (416, "bytes */10000".to_string()));
    assert_eq!(get(p, "/a.txt", "Range: bytes=0-1,5-6\r\n").status, 200, "several ranges: the whole file");
    let etag = get(p, "/a.txt", "").header("etag").unwrap();
    assert_eq!(get(p, "/a.txt", &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n")).status, 206);
    let r = get(p, "/a.txt", "Range: bytes=0-9\r\nIf-Range: \"stale\"\r\n");
    assert_eq!((r.status, r.body.len()), (200, 10_000), "a stale If-Range gets the whole file");
}

#[test]
fn precompressed_gz_is_chosen_only_when_accepted() {
    let tree = make_tree("gz");
    let srv = start(&tree);
    let p = srv.port;
    let r = get(p, "/style.css", "Accept-Encoding: br, gzip\r\n");
    assert_eq!(r.body, b"\x1f\x8bFAKE-GZIP-BYTES");
    assert_eq!(r.header("content-encoding").unwrap(), "gzip");
    assert_eq!(r.header("content-type").unwrap(), "text/css; charset=utf-8");
    assert_eq!(r.header("vary").unwrap(), "Accept-Encoding");
    for ae in ["", "Accept-Encoding: br\r\n", "Accept-Encoding: gzip;q=0\r\n"] {
        let r = get(p, "/style.css", ae);
        assert_eq!(r.body, b"body { color: red }\n", "{ae:?}");
        assert!(r.header("content-encoding").is_none());
        assert_eq!(r.header("vary").unwrap(), "Accept-Encoding");
    }
    assert!(get(p, "/a.txt", "Accept-Encoding: gzip\r\n").header("vary").is_none(), "no .gz, no Vary");
}

#[test]
fn no_path_leaves_the_root() {
    let tree = make_tree("trav");
    let srv = start(&tree);
    let attempts = [
        "/../outside/secret.txt",
        "/../../../../../../etc/passwd",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2e%2foutside%2fsecret.txt",
        "/..%2foutside/secret.txt",
        "/%2e%2e%2Foutside/secret.txt",
        "/%252e%252e/outside/secret.txt",
        "/a/../../outside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/\\..\\outside\\secret.txt",
        "/%5c..%5coutside%5csecret.txt",
        "/..\\outside/secret.txt",
        "/%00",
        "/a.txt%00.html",
        "//etc/passwd",
        "/./../outside/secret.txt",
        "/.%2e/outside/secret.txt",
        "/%2e./outside/secret.txt",
        "/sub/%2e%2e/%2e%2e/outside/secret.txt",
        "/link_out.txt",
        "/dir_out/secret.txt",
        "/link_sibling.txt",
        "/../rootx/x.txt",
        "/%c0%ae%c0%ae/outside/secret.txt",
        "/....//outside/secret.txt",
        "/etc/passwd",
        "/%zz/../x",
        "/sub/..",
    ];
    for path in attempts {
        let mut s = connect(srv.port);
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(!text.starts_with("HTTP/1.1 200") && !text.starts_with("HTTP/1.1 206"), "{path}: {text}");
        assert!(!out.windows(SECRET.len()).any(|w| w == SECRET), "{path} leaked the secret");
        assert!(!text.contains("root:"), "{path} leaked /etc/passwd");
    }
    // The odd but legal name "%2e%2e" is a file inside the root.
    assert_eq!(get(srv.port, "/%252e%252e", "").status, 200);
}

#[test]
fn a_large_download_does_not_starve_other_connections() {
    let tree = make_tree("big");
    let srv = start(&tree);
    let port = srv.port;
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let big = std::thread::spawn(move || {
        let mut s = connect(port);
        s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = read_response(&mut s, true);
        assert_eq!(r.header("content-length").unwrap(), BIG.to_string());
        started_tx.send(()).unwrap();
        let (mut got, mut buf) = (0u64, vec![0u8; 1 << 20]);
        while got < BIG {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0 && buf[..n].iter().all(|&b| b == 0), "a sparse file reads as zeros");
            got += n as u64;
        }
    });
    // Small requests on another connection while the download runs.
    started_rx.recv_timeout(Duration::from_secs(5)).expect("the download started");
    let mut s = connect(port);
    let (mut slowest, mut answered_during) = (Duration::ZERO, 0);
    for _ in 0..50 {
        let t = Instant::now();
        s.write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s, false).status, 200);
        slowest = slowest.max(t.elapsed());
        answered_during += usize::from(!big.is_finished());
    }
    big.join().unwrap();
    assert!(slowest < Duration::from_millis(500), "a small request waited {slowest:?}");
    assert!(answered_during > 0, "small requests were answered while the download ran");
}

/// The file cache serves a resolved file without touching the file system for at
/// most `FRESH`: a file changed, replaced or removed is seen once that has passed.
#[test]
fn changed_and_removed_files_are_seen_after_the_cache_window() {
    let tree = make_tree("cache");
    let srv = start(&tree);
    let p = srv.port;
    let file = tree.base.join("root/changing.txt");
    std::fs::write(&file, b"first version\n").unwrap();
    assert_eq!(get(p, "/changing.txt", "").body, b"first version\n");
    let etag1 = get(p, "/changing.txt", "").head.lines().find(|l| l.starts_with("ETag:")).unwrap().to_string();
    // Replaced by rename (how deployments write files): a new inode, new size.
    let tmp = tree.base.join("root/changing.tmp");
    std::fs::write(&tmp, b"second, longer version\n").unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    std::thread::sleep(tern::http::files::cache::FRESH + std::time::Duration::from_millis(200));
    let r = get(p, "/changing.txt", "");
    assert_eq!(r.body, b"second, longer version\n");
    let etag2 = r.head.lines().find(|l| l.starts_with("ETag:")).unwrap().to_string();
    assert_ne!(etag1, etag2, "a new ETag for new content");
    std::fs::remove_file(&file).unwrap();
    std::thread::sleep(tern::http::files::cache::FRESH + std::time::Duration::from_millis(200));
    assert_eq!(get(p, "/changing.txt", "").status, 404);
}

#[test]
fn listing_and_symlinks_out_of_the_root_are_opt_in() {
    let tree = make_tree("options");
    std::fs::write(tree.base.join("root/empty/<b>&.txt"), b"12345").unwrap();
    let srv = start_with(&tree, &[(Opt::DirListing, 1), (Opt::FollowSymlinksOut, 1)]);
    let r = get(srv.port, "/empty/", "");
    assert_eq!(r.status, 200);
    assert!(r.head.contains("Content-Type: text/html"), "{}", r.head);
    let html = String::from_utf8(r.body).unwrap();
    assert!(html.contains("href=\"%3Cb%3E%26.txt\">&lt;b&gt;&amp;.txt</a> 5 bytes"), "{html}");
    // Symlinks out of the root now lead where they point...
    assert_eq!(get(srv.port, "/link_out.txt", "").body, SECRET);
    assert_eq!(get(srv.port, "/dir_out/secret.txt", "").body, SECRET);
    // ...but `..` is refused whatever the options.
    assert_eq!(get(srv.port, "/../outside/secret.txt", "").status, 400);
    assert_eq!(get(srv.port, "/%2e%2e/outside/secret.txt", "").status, 400);
}
