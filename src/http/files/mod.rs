//! Static files: `http_serve_file` answers a request with one file, `http_serve_dir`
//! maps the request path into a root directory first (after taking a URL prefix off
//! it, for `http_serve_prefix`: `/static/x` served from `root/x`).
//!
//! The answer goes into the request's slot like any `http_reply`, so it keeps its
//! place among pipelined requests. The body is a file segment of the send queue,
//! written with `sendfile`: file bytes never pass through memory. Validators
//! (`ETag` from size and mtime, `Last-Modified`), one `Range`, and a precompressed
//! `name.gz` are handled here; everything else about the response is the server's.
//!
//! Path safety (serve_dir): the path is percent-decoded once; `..` segments, NUL,
//! backslashes and encoded slashes are refused before the file system is touched;
//! then the result is canonicalized and must still lie under the canonical root, so
//! a symlink pointing out of the root is refused too. The file is opened from the
//! canonical path with `O_NOFOLLOW` (a last-moment swap to a symlink fails) and
//! `O_NONBLOCK` (a FIFO swapped in cannot block the loop).

pub mod cache;
mod listing;

use super::date::{self, DATE_LEN};
use super::form::url_decode;
use super::h1::Body;
use super::msg::HttpMsg;
use cache::FileCache;
use crate::buf::send_queue::FileSeg;
use crate::bytes::Bytes;
use crate::error::Result;
use crate::options::Options;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

/// A response decided but not yet queued.
pub struct Reply {
    status: u16,
    headers: Vec<u8>,
    body: ReplyBody,
}

enum ReplyBody {
    /// The status's reason as text (errors, redirects); nothing for 304.
    Reason,
    /// Bytes of an open file, sent with `sendfile`.
    File(FileSeg),
    /// A small file's cached bytes, sent from memory without a copy.
    Cached(Bytes),
    /// Generated (a directory listing) or copied (a range of a small file).
    Page(Vec<u8>),
}

impl Reply {
    /// A short text answer (errors, redirects).
    fn text(status: u16, headers: Vec<u8>) -> Reply {
        let mut h = headers;
        h.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        Reply { status, headers: h, body: ReplyBody::Reason }
    }
}

/// The answer to a request for the file at `path` (GET and HEAD; conditional and
/// range requests; `path.gz` for clients that accept gzip); a missing file is a 404
/// answer.
pub fn serve_file(msg: &HttpMsg<'_>, path: &Path, files: &mut FileCache) -> Reply {
    method_not_allowed(msg).unwrap_or_else(|| cached(msg, files, b"", path.as_os_str().as_bytes(), |gzip| resolve(path, None, gzip)))
}

/// A URL path prefix taken off a request's path before it is mapped under a root
/// (`/static`, as nginx's `location /static/ { alias ...; }`); empty for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix<'a>(&'a [u8]);

impl<'a> Prefix<'a> {
    /// `None` unless `p` is empty or a path (starts with '/'). Trailing slashes do
    /// not count: "/static/" is "/static", and "/" is no prefix at all.
    pub fn new(p: &'a [u8]) -> Option<Prefix<'a>> {
        if !p.is_empty() && !p.starts_with(b"/") {
            return None;
        }
        let end = p.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        Some(Prefix(&p[..end]))
    }

    /// The rest of `path` once the prefix is taken off, if `path` is under it: the
    /// prefix must end at a segment boundary ("/static" matches "/static" and
    /// "/static/x", not "/staticx"). Matched against the path as sent, before
    /// percent-decoding.
    pub fn strip<'p>(&self, path: &'p [u8]) -> Option<&'p [u8]> {
        if self.0.is_empty() {
            return Some(path);
        }
        let rest = path.strip_prefix(self.0)?;
        (rest.is_empty() || rest.starts_with(b"/")).then_some(rest)
    }
}

/// The answer to a request for the file its path (less `prefix`) names under
/// `root`: 404 for a path not under `prefix`; `index.html` for a directory, 301 to
/// add a directory's trailing slash (the Location keeps the prefix), 400 for paths
/// that try to leave the root, 403 for what may not be served, 404.
pub fn serve_dir(msg: &HttpMsg<'_>, prefix: Prefix<'_>, root: &Path, opts: &Options, files: &mut FileCache) -> Reply {
    let Some(rest) = prefix.strip(msg.uri()) else { return refuse(404) };
    method_not_allowed(msg).unwrap_or_else(|| {
        let scope = Scope { root, rest, listing: opts.dir_listing, follow_out: opts.follow_symlinks_out };
        cached(msg, files, root.as_os_str().as_bytes(), rest, |gzip| serve_under(msg, &scope, gzip))
    })
}

/// The answer from the file cache when it has this lookup, else from `lookup`
/// (whose files are then cached).
fn cached(msg: &HttpMsg<'_>, files: &mut FileCache, root: &[u8], path: &[u8], lookup: impl FnOnce(bool) -> Lookup) -> Reply {
    let gzip = accepts_gzip(msg.header(b"accept-encoding").unwrap_or(b""));
    let now = Instant::now();
    let found = match files.get(root, path, gzip, now) {
        Some(f) => f,
        None => match lookup(gzip) {
            Ok(f) => {
                let f = Rc::new(f);
                files.put(root, path, gzip, f.clone(), now);
                f
            }
            Err(reply) => return reply,
        },
    };
    respond_with(msg, &found)
}

impl Reply {
    /// Hands status, headers and body to `answer` (an `http_reply`).
    pub fn send(self, answer: impl FnOnce(u16, &[u8], Body<'_>) -> Result<()>) -> Result<()> {
        match self.body {
            ReplyBody::File(seg) => answer(self.status, &self.headers, Body::File(seg)),
            ReplyBody::Cached(b) => answer(self.status, &self.headers, Body::Shared(b)),
            ReplyBody::Page(page) => answer(self.status, &self.headers, Body::Copy(&page)),
            ReplyBody::Reason if self.status == 304 => answer(self.status, &self.headers, Body::Copy(b"")),
            ReplyBody::Reason => {
                let text = super::response::reason(self.status);
                let body = format!("{}\n", text.to_ascii_lowercase());
                answer(self.status, &self.headers, Body::Copy(body.as_bytes()))
            }
        }
    }
}

fn method_not_allowed(msg: &HttpMsg<'_>) -> Option<Reply> {
    let m = msg.method();
    (m != b"GET" && m != b"HEAD").then(|| Reply::text(405, b"Allow: GET, HEAD\r\n".to_vec()))
}

/// A file to serve, or the answer that replaces it (an error, a redirect).
type Lookup = std::result::Result<Found, Reply>;

fn refuse(status: u16) -> Reply {
    Reply::text(status, Vec::new())
}

/// What serve_dir may reach: the root, the request's path under it (its prefix
/// taken off), and the options that widen it.
struct Scope<'a> {
    root: &'a Path,
    rest: &'a [u8],
    /// TERN_OPT_DIR_LISTING: list a directory that has no index.html.
    listing: bool,
    /// TERN_OPT_FOLLOW_SYMLINKS_OUT: symlinks may point out of the root.
    follow_out: bool,
}

/// serve_dir after the method check: map, then a file, a listing or a redirect.
fn serve_under(msg: &HttpMsg<'_>, scope: &Scope<'_>, gzip: bool) -> Lookup {
    let follow = scope.follow_out;
    // The prefix alone names the root itself.
    let rel = if scope.rest.is_empty() { &b"/"[..] } else { scope.rest };
    let (root, real) = map_path(scope.root, rel).and_then(|(root, rel)| confine(&root, &rel, follow).map(|p| (root, p))).map_err(refuse)?;
    let within = Within { root: &root, follow_out: follow };
    let is_dir = std::fs::metadata(&real).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return resolve(&real, Some(&within), gzip);
    }
    if !msg.uri().ends_with(b"/") {
        return Err(redirect_to_slash(msg));
    }
    match confine(&root, &real.join("index.html"), follow) {
        Ok(index) => resolve(&index, Some(&within), gzip),
        Err(404) if scope.listing => Err(listing::page(msg.uri(), &real).map_or_else(refuse, |page| Reply {
            status: 200,
            headers: b"Content-Type: text/html; charset=utf-8\r\n".to_vec(),
            body: ReplyBody::Page(page),
        })),
        // No listing: a directory without an index is not served.
        Err(404) => Err(refuse(403)),
        Err(status) => Err(refuse(status)),
    }
}

/// The canonical root a file found by serve_dir must stay under (and its .gz).
struct Within<'a> {
    root: &'a Path,
    follow_out: bool,
}

fn redirect_to_slash(msg: &HttpMsg<'_>) -> Reply {
    let mut h = b"Location: ".to_vec();
    h.extend_from_slice(msg.uri());
    h.push(b'/');
    if !msg.query().is_empty() {
        h.push(b'?');
        h.extend_from_slice(msg.query());
    }
    h.extend_from_slice(b"\r\n");
    Reply::text(301, h)
}

/// The canonical root and the request path joined to it, segment by segment, or the
/// status that refuses the path. Nothing here touches the file system but the root.
fn map_path(root: &Path, uri: &[u8]) -> std::result::Result<(PathBuf, PathBuf), u16> {
    if !uri.starts_with(b"/") || uri.contains(&b'\\') {
        return Err(400);
    }
    // An encoded slash or backslash would change how the path splits once decoded;
    // an encoded NUL would cut it short in the kernel.
    let encoded = |e: &[u8]| uri.windows(3).any(|w| w.eq_ignore_ascii_case(e));
    if encoded(b"%2f") || encoded(b"%5c") || encoded(b"%00") {
        return Err(400);
    }
    let mut decoded = vec![0u8; uri.len()];
    let n = url_decode(uri, &mut decoded, false).map_err(|_| 400u16)?;
    decoded.truncate(n);
    if decoded.contains(&0) || decoded.contains(&b'\\') {
        return Err(400);
    }
    let mut path = root.canonicalize().map_err(|e| io_status(&e))?;
    let root = path.clone();
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => return Err(400),
            s => path.push(OsStr::from_bytes(s)),
        }
    }
    Ok((root, path))
}

/// `path` with every symlink resolved, if it exists and still lies under `root`
/// (or anywhere, when symlinks out of the root are allowed: `..` never got this far).
fn confine(root: &Path, path: &Path, follow_out: bool) -> std::result::Result<PathBuf, u16> {
    let real = path.canonicalize().map_err(|e| io_status(&e))?;
    if follow_out || real.starts_with(root) {
        Ok(real)
    } else {
        Err(403)
    }
}

fn io_status(e: &io::Error) -> u16 {
    match e.kind() {
        io::ErrorKind::PermissionDenied => 403,
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename => 404,
        _ if e.raw_os_error() == Some(libc::ENAMETOOLONG) || e.raw_os_error() == Some(libc::ELOOP) => 404,
        _ => 500,
    }
}

/// A file ready to be answered with, whatever the request's conditions and range:
/// what the file cache keeps.
pub struct Found {
    file: Arc<File>,
    size: usize,
    /// The whole content of a small file, read once when resolved: answered with
    /// the head in one write, no `sendfile` (and no SIGPIPE guard) per request.
    small: Option<Bytes>,
    v: Validators,
    /// Content-Type, Accept-Ranges, and the gzip fields when they apply.
    headers: Vec<u8>,
}

/// One file (`root` is Some when it came from serve_dir: its .gz must stay inside).
fn resolve(path: &Path, root: Option<&Within<'_>>, gzip: bool) -> Lookup {
    let gz = gz_sibling(path, root);
    let use_gz = gz.is_some() && gzip;
    let chosen = if use_gz { gz.as_deref().unwrap_or(path) } else { path };
    let (file, meta) = open_regular(chosen, root.is_some()).map_err(refuse)?;
    let size = usize::try_from(meta.len()).map_err(|_| refuse(500))?;
    let mut h = Vec::with_capacity(128);
    h.extend_from_slice(b"Content-Type: ");
    h.extend_from_slice(mime_type(path).as_bytes());
    h.extend_from_slice(b"\r\nAccept-Ranges: bytes\r\n");
    if use_gz {
        h.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    if gz.is_some() {
        h.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    }
    let small = (size <= SMALL_FILE).then(|| read_small(&file, size)).flatten();
    Ok(Found { file: Arc::new(file), size, small, v: Validators::of(&meta), headers: h })
}

/// Files up to this size are kept in memory by the file cache (at most 256 of them).
const SMALL_FILE: usize = 32 * 1024;

/// The whole of a small file, or None if it changed size under us (then it is
/// served with `sendfile` and the length check of the send queue).
fn read_small(file: &File, size: usize) -> Option<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut data = vec![0u8; size];
    file.read_exact_at(&mut data, 0).ok()?;
    Some(Bytes::from_vec(data))
}

/// `path.gz`, if it is a regular file (inside `root` when there is one).
fn gz_sibling(path: &Path, root: Option<&Within<'_>>) -> Option<PathBuf> {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    let gz = PathBuf::from(name);
    let real = match root {
        Some(w) => confine(w.root, &gz, w.follow_out).ok()?,
        None => gz,
    };
    std::fs::metadata(&real).ok().filter(Metadata::is_file).map(|_| real)
}

/// Opens a regular file without ever blocking on it; anything else is 403.
fn open_regular(path: &Path, canonical: bool) -> std::result::Result<(File, Metadata), u16> {
    let meta = std::fs::metadata(path).map_err(|e| io_status(&e))?;
    if !meta.is_file() {
        return Err(403);
    }
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if canonical {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(|e| io_status(&e))?;
    // What was opened is what is described (not what the path named a moment ago).
    let meta = file.metadata().map_err(|e| io_status(&e))?;
    if !meta.is_file() {
        return Err(403);
    }
    Ok((file, meta))
}

/// The validators of an open file.
struct Validators {
    etag: String,
    mtime: u64,
    last_modified: [u8; DATE_LEN],
}

impl Validators {
    fn of(meta: &Metadata) -> Validators {
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
        let mut last_modified = [0u8; DATE_LEN];
        date::DateCache::format(mtime, &mut last_modified);
        Validators { etag: format!("\"{:x}-{:x}\"", mtime, meta.len()), mtime, last_modified }
    }
}

/// Decides 200, 206, 304 or 416 for an open file and adds the validators.
fn respond_with(msg: &HttpMsg<'_>, f: &Found) -> Reply {
    let (v, size) = (&f.v, f.size);
    let mut h = Vec::with_capacity(f.headers.len() + 96);
    h.extend_from_slice(&f.headers);
    h.extend_from_slice(b"ETag: ");
    h.extend_from_slice(v.etag.as_bytes());
    h.extend_from_slice(b"\r\nLast-Modified: ");
    h.extend_from_slice(&v.last_modified);
    h.extend_from_slice(b"\r\n");
    if not_modified(msg, v) {
        return Reply { status: 304, headers: h, body: ReplyBody::Reason };
    }
    let file = f.file.clone();
    let range = msg.header(b"range").filter(|_| if_range_holds(msg, v));
    match range.map(|r| parse_range(r, size)) {
        Some(Range::Unsatisfiable) => {
            let mut h = format!("Content-Range: bytes */{size}\r\n").into_bytes();
            h.extend_from_slice(b"Accept-Ranges: bytes\r\n");
            Reply::text(416, h)
        }
        Some(Range::Bytes(start, end)) => {
            h.extend_from_slice(format!("Content-Range: bytes {start}-{end}/{size}\r\n").as_bytes());
            let body = match &f.small {
                Some(b) => ReplyBody::Page(b.as_slice()[start..=end].to_vec()),
                None => ReplyBody::File(FileSeg { file, offset: start as u64, len: end - start + 1 }),
            };
            Reply { status: 206, headers: h, body }
        }
        Some(Range::Ignore) | None => {
            let body = match &f.small {
                Some(b) => ReplyBody::Cached(b.clone()),
                None => ReplyBody::File(FileSeg { file, offset: 0, len: size }),
            };
            Reply { status: 200, headers: h, body }
        }
    }
}

/// `If-None-Match` (weak comparison) takes precedence over `If-Modified-Since`.
fn not_modified(msg: &HttpMsg<'_>, v: &Validators) -> bool {
    if let Some(inm) = msg.header(b"if-none-match") {
        return inm.split(|&b| b == b',').map(trim).any(|t| t == b"*" || t.strip_prefix(b"W/").unwrap_or(t) == v.etag.as_bytes());
    }
    msg.header(b"if-modified-since").and_then(|d| date::parse(trim(d))).is_some_and(|since| v.mtime <= since)
}

/// `If-Range`: the range applies only if the representation is the one the client
/// has (a strong ETag match, or exactly its Last-Modified date).
fn if_range_holds(msg: &HttpMsg<'_>, v: &Validators) -> bool {
    match msg.header(b"if-range").map(trim) {
        None => true,
        Some(t) if t.starts_with(b"\"") => t == v.etag.as_bytes(),
        Some(t) => t == v.last_modified,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// First and last byte, inclusive.
    Bytes(usize, usize),
    Unsatisfiable,
    /// Malformed, another unit, or several ranges: answered with the whole file
    /// (RFC 9110 §14.2 lets a server ignore Range).
    Ignore,
}

fn parse_range(value: &[u8], size: usize) -> Range {
    let v = trim(value);
    let Some(spec) = v.get(..6).filter(|p| p.eq_ignore_ascii_case(b"bytes=")).map(|_| trim(&v[6..])) else { return Range::Ignore };
    if spec.contains(&b',') {
        return Range::Ignore;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else { return Range::Ignore };
    let (first, last) = (number(&spec[..dash]), number(&spec[dash + 1..]));
    match (dash, first, last) {
        // "-N": the last N bytes.
        (0, _, Some(0)) => Range::Unsatisfiable,
        (0, _, Some(_)) if size == 0 => Range::Unsatisfiable,
        (0, _, Some(n)) => Range::Bytes(size - n.min(size), size - 1),
        (_, Some(a), _) if a >= size => Range::Unsatisfiable,
        (_, Some(a), None) if spec.len() == dash + 1 => Range::Bytes(a, size - 1),
        (_, Some(a), Some(b)) if a <= b => Range::Bytes(a, b.min(size - 1)),
        _ => Range::Ignore,
    }
}

/// Decimal digits only (no sign, no spaces); saturates instead of overflowing.
fn number(s: &[u8]) -> Option<usize> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0usize, |n, &b| n.saturating_mul(10).saturating_add(usize::from(b - b'0'))))
}

/// Whether `Accept-Encoding` admits gzip (`gzip`, `x-gzip` or `*`, with q > 0).
fn accepts_gzip(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|item| {
        let mut parts = item.split(|&b| b == b';').map(trim);
        let coding = parts.next().unwrap_or(b"");
        let named = coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") || coding == b"*";
        let zero_q = parts.any(|p| {
            p.len() > 2 && p[..2].eq_ignore_ascii_case(b"q=") && p[2] == b'0' && p[3..].iter().all(|&b| b == b'.' || b == b'0')
        });
        named && !zero_q
    })
}

fn trim(s: &[u8]) -> &[u8] {
    super::parse::trim(s)
}

/// The Content-Type for a file name's extension.
fn mime_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(OsStr::to_str).unwrap_or("").to_ascii_lowercase();
    MIME_TYPES.iter().find(|(e, _)| *e == ext).map_or("application/octet-stream", |(_, t)| t)
}

/// The web's common types; text types say UTF-8 so browsers need not guess.
const MIME_TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("xml", "application/xml"),
    ("xhtml", "application/xhtml+xml"),
    ("rss", "application/rss+xml"),
    ("atom", "application/atom+xml"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/vnd.microsoft.icon"),
    ("bmp", "image/bmp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("tar", "application/x-tar"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("ogg", "audio/ogg"),
    ("mp3", "audio/mpeg"),
    ("wav", "audio/wav"),
    ("flac", "audio/flac"),
    ("m4a", "audio/mp4"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(s.as_bytes(), 100);
        assert_eq!(r("bytes=0-9"), Range::Bytes(0, 9));
        assert_eq!(r("bytes=90-"), Range::Bytes(90, 99));
        assert_eq!(r("bytes=90-1000"), Range::Bytes(90, 99));
        assert_eq!(r("bytes=-10"), Range::Bytes(90, 99));
        assert_eq!(r("bytes=-1000"), Range::Bytes(0, 99));
        assert_eq!(r("BYTES= 5-5"), Range::Bytes(5, 5));
        assert_eq!(r("bytes=100-"), Range::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Range::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-5", 0), Range::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 0), Range::Unsatisfiable);
        for bad in ["bytes=9-1", "bytes=a-b", "items=0-1", "bytes=0-1,5-6", "bytes=", "bytes=-", "bytes=+1-2", "bytes 0-1"] {
            assert_eq!(r(bad), Range::Ignore, "{bad}");
        }
    }

    #[test]
    fn gzip_acceptance() {
        assert!(accepts_gzip(b"gzip, deflate, br"));
        assert!(accepts_gzip(b"br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip(b"*"));
        assert!(!accepts_gzip(b"gzip;q=0, br"));
        assert!(!accepts_gzip(b"gzip; q=0.000"));
        assert!(!accepts_gzip(b"deflate, br"));
        assert!(!accepts_gzip(b""));
    }

    #[test]
    fn mime_by_extension() {
        assert_eq!(mime_type(Path::new("/a/index.HTML")), "text/html; charset=utf-8");
        assert_eq!(mime_type(Path::new("x.woff2")), "font/woff2");
        assert_eq!(mime_type(Path::new("x.unknown")), "application/octet-stream");
        assert_eq!(mime_type(Path::new("noext")), "application/octet-stream");
    }

    #[test]
    fn paths_that_leave_the_root_are_refused_before_any_lookup() {
        let root = std::env::temp_dir();
        for uri in ["/../x", "/%2e%2e/x", "/%2E%2e%2fx", "/..%2fx", "/a/../../x", "/\\..\\x", "/%00", "/a%5c..", "x", "/%zz", "/a/%2e%2E/b"] {
            assert!(map_path(&root, uri.as_bytes()).is_err(), "{uri}");
        }
        let (r, p) = map_path(&root, b"//a/./b%20c/").unwrap();
        assert_eq!(p, r.join("a").join("b c"));
    }

    #[test]
    fn a_prefix_ends_at_a_segment_boundary() {
        let p = Prefix::new(b"/static").unwrap();
        assert_eq!(p.strip(b"/static"), Some(&b""[..]));
        assert_eq!(p.strip(b"/static/"), Some(&b"/"[..]));
        assert_eq!(p.strip(b"/static/a/b"), Some(&b"/a/b"[..]));
        assert_eq!(p.strip(b"/staticx"), None);
        assert_eq!(p.strip(b"/stat"), None);
        assert_eq!(p.strip(b"/other/static/x"), None);
        assert_eq!(Prefix::new(b"/static/"), Some(p));
        assert_eq!(Prefix::new(b"/").unwrap().strip(b"/x"), Some(&b"/x"[..]));
        assert_eq!(Prefix::new(b"").unwrap().strip(b"*"), Some(&b"*"[..]));
        assert_eq!(Prefix::new(b"static"), None);
    }
}
