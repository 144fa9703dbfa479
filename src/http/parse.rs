//! Where a request is parsed: the head with `httparse`, then the checks RFC 9112 asks
//! of a server that must not be fooled about where one request ends and the next
//! begins (request smuggling), each failure mapped to the status it deserves.
//!
//! Lines end in CRLF. `httparse` also takes a bare LF as a line end, which a proxy in
//! front of tern may not: a field after a bare LF (a `Content-Length`, a
//! `Transfer-Encoding`) would then be seen by one and not the other, and one request
//! becomes two. So a complete head is refused if any LF in it lacks its CR (400 for
//! a request; a malformed response on the client), unless the manager was told to be
//! lenient (`Opt::HttpLenientLf`, `Opt::HttpClientLenientLf`). For a request this
//! costs a byte per line, not a pass over the head (`Head::ends_lines_with_crlf`).

/// A byte range of the head buffer; spans instead of slices so a parsed head can be
/// kept (and its vector reused) without borrowing the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub off: u32,
    pub len: u32,
}

impl Span {
    pub fn of<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.off as usize..(self.off + self.len) as usize]
    }

    fn within(base: &[u8], part: &[u8]) -> Span {
        let off = part.as_ptr() as usize - base.as_ptr() as usize;
        Span { off: off as u32, len: part.len() as u32 }
    }

    const EMPTY: Span = Span { off: 0, len: 0 };
}

/// How the body of a message is delimited (RFC 9112 §6), for requests and
/// responses, read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// No body (or, when writing, none that tern frames).
    #[default]
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    UntilClose,
}

/// A parsed request head. Reused across requests: `headers` keeps its capacity.
#[derive(Debug, Default, Clone)]
pub struct Head {
    pub method: Span,
    /// The path, without the query (for absolute-form targets, without scheme and host).
    pub path: Span,
    /// After '?', without it.
    pub query: Span,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Vec<(Span, Span)>,
    /// Bytes of the head, final CRLF included.
    pub len: usize,
    pub framing: Framing,
    /// What the client asked for; the server may still close.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` header (for WebSocket).
    pub upgrade: bool,
    pub is_head: bool,
}

/// Why a head was refused: the status to answer with before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub why: &'static str,
}

const fn reject(status: u16, why: &'static str) -> Reject {
    Reject { status, why }
}

/// The most header fields a request may carry (431 past it).
pub(crate) const MAX_HEADERS: usize = 100;

/// Whether some LF of `head` is not preceded by a CR: a pass over every byte (the
/// client's check of a response head, and the reference a request's cheaper check
/// is tested against).
pub fn has_bare_lf(head: &[u8]) -> bool {
    let first = head.first() == Some(&b'\n');
    first | head.iter().zip(&head[1.min(head.len())..]).fold(false, |bad, (&prev, &b)| bad | ((b == b'\n') & (prev != b'\r')))
}

impl Head {
    /// Parses the head at the start of `buf`, refusing bare LF line ends.
    /// `Ok(false)`: incomplete, read more.
    pub fn parse(&mut self, buf: &[u8], max_head: usize) -> Result<bool, Reject> {
        self.parse_with(buf, max_head, false)
    }

    /// `parse`, taking a bare LF as a line end if `lenient_lf`.
    pub fn parse_with(&mut self, buf: &[u8], max_head: usize, lenient_lf: bool) -> Result<bool, Reject> {
        let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut raw);
        let n = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return if buf.len() >= max_head { Err(too_large(buf, max_head)) } else { Ok(false) };
            }
            Err(httparse::Error::TooManyHeaders) => return Err(reject(431, "too many header fields")),
            Err(httparse::Error::Version) => return Err(reject(505, "unsupported HTTP version")),
            Err(_) => return Err(reject(400, "malformed request head")),
        };
        if n > max_head {
            return Err(too_large(buf, max_head));
        }
        self.headers.clear();
        for h in req.headers.iter() {
            self.headers.push((Span::within(buf, h.name.as_bytes()), Span::within(buf, h.value)));
        }
        let method = req.method.expect("complete request has a method");
        let target = req.path.expect("complete request has a target");
        self.method = Span::within(buf, method.as_bytes());
        if !lenient_lf && !self.ends_lines_with_crlf(&buf[..n]) {
            return Err(reject(400, "bare LF in the request head"));
        }
        self.minor = req.version.expect("complete request has a version");
        self.len = n;
        self.is_head = method == "HEAD";
        self.split_target(buf, target.as_bytes())?;
        self.check_fields(buf)?;
        Ok(true)
    }

    /// Whether every line of the request head just parsed (`head`, its method and
    /// fields spanned in `self`) ends in CRLF. httparse ends a line at CRLF or at a
    /// bare LF, refuses a CR not followed by LF, and starts each field name right
    /// after the LF that ended the line before it (no folding, no space before a
    /// name). So every line end is in sight without a pass over the head: the empty
    /// lines before the request line (all "\r\n"), the byte two before each field
    /// name (the CR of the line before it), and the last two line ends.
    fn ends_lines_with_crlf(&self, head: &[u8]) -> bool {
        let n = head.len();
        if n < 4 || head[n - 2] != b'\r' || head[n - 4] != b'\r' {
            return false;
        }
        for (name, _) in &self.headers {
            let at = name.off as usize;
            debug_assert_eq!(head[at - 1], b'\n', "a field name follows a line end");
            if head[at - 2] != b'\r' {
                return false;
            }
        }
        // Empty lines before the request line are rare, but allowed.
        let lead = self.method.off as usize;
        lead == 0 || head[..lead].chunks(2).all(|pair| pair == b"\r\n")
    }

    /// Origin-form `/p?q`, absolute-form `http://h/p?q`, or `*`.
    fn split_target(&mut self, buf: &[u8], target: &[u8]) -> Result<(), Reject> {
        let mut t = target;
        if let Some(rest) = strip_prefix_ci(t, b"http://").or_else(|| strip_prefix_ci(t, b"https://")) {
            t = match rest.iter().position(|&b| b == b'/' || b == b'?') {
                Some(i) if rest[i] == b'/' => &rest[i..],
                // "http://host?q" or "http://host": the path is "/"; keep the query.
                Some(i) => &rest[i..],
                None => &rest[rest.len()..],
            };
        } else if t != b"*" && !t.starts_with(b"/") {
            return Err(reject(400, "request target is not origin- or absolute-form"));
        }
        match t.iter().position(|&b| b == b'?') {
            Some(i) => {
                self.path = Span::within(buf, &t[..i]);
                self.query = Span::within(buf, &t[i + 1..]);
            }
            None => {
                self.path = Span::within(buf, t);
                self.query = Span::EMPTY;
            }
        }
        Ok(())
    }

    /// Host, body framing, Connection and Expect.
    fn check_fields(&mut self, buf: &[u8]) -> Result<(), Reject> {
        let mut hosts = 0;
        let mut length: Option<u64> = None;
        let mut te = TeState::Absent;
        let mut conn_close = false;
        let mut conn_keep_alive = false;
        let mut conn_upgrade = false;
        let mut has_upgrade = false;
        self.expect_continue = false;
        for (name, value) in &self.headers {
            let (name, value) = (name.of(buf), value.of(buf));
            if name.eq_ignore_ascii_case(b"host") {
                hosts += 1;
            } else if name.eq_ignore_ascii_case(b"content-length") {
                let n = parse_length(value).ok_or(reject(400, "invalid Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(reject(400, "conflicting Content-Length fields"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te = te.add(value)?;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',').map(trim) {
                    conn_close |= token.eq_ignore_ascii_case(b"close");
                    conn_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                    conn_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                }
            } else if name.eq_ignore_ascii_case(b"expect") {
                if !trim(value).eq_ignore_ascii_case(b"100-continue") {
                    return Err(reject(417, "unsupported expectation"));
                }
                self.expect_continue = true;
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                has_upgrade = true;
            }
        }
        if self.minor == 1 && hosts != 1 {
            return Err(reject(400, if hosts == 0 { "missing Host" } else { "more than one Host" }));
        }
        self.framing = match (te, length) {
            (TeState::Absent, None) => Framing::None,
            (TeState::Absent, Some(n)) => Framing::Length(n),
            (_, Some(_)) => return Err(reject(400, "both Content-Length and Transfer-Encoding")),
            (_, None) if self.minor == 0 => return Err(reject(400, "Transfer-Encoding in an HTTP/1.0 request")),
            (TeState::Chunked, None) => Framing::Chunked,
            (TeState::NotLast, None) => return Err(reject(400, "chunked is not the final transfer coding")),
            (TeState::Unknown | TeState::ChunkedOverUnknown, None) => return Err(reject(501, "unsupported transfer coding")),
        };
        self.keep_alive = !conn_close && (self.minor == 1 || conn_keep_alive);
        self.upgrade = conn_upgrade && has_upgrade;
        Ok(())
    }

    /// The value of the first field called `name` (case-insensitive).
    pub fn header<'b>(&self, buf: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
        self.headers.iter().find(|(n, _)| n.of(buf).eq_ignore_ascii_case(name)).map(|(_, v)| v.of(buf))
    }
}

impl Head {
    /// Parses a response head at the start of `buf` (client side). `Ok(None)`:
    /// incomplete. `head_request`: the response answers a HEAD (no body, whatever
    /// its fields say). Fields are kept as for a request; method, path and query
    /// are empty.
    /// The framing is `None` for a response without a body (HEAD, 1xx, 204, 304,
    /// Content-Length: 0). A bare LF line end is refused unless `lenient_lf`.
    pub fn parse_response(&mut self, buf: &[u8], max_head: usize, head_request: bool, lenient_lf: bool) -> Result<Option<(u16, Framing)>, Reject> {
        let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut raw);
        let n = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) if n <= max_head => n,
            Ok(httparse::Status::Partial) if buf.len() < max_head => return Ok(None),
            Ok(_) => return Err(reject(502, "response head too large")),
            Err(_) => return Err(reject(502, "malformed response head")),
        };
        if !lenient_lf && has_bare_lf(&buf[..n]) {
            return Err(reject(502, "malformed response head: bare LF"));
        }
        let status = resp.code.expect("complete response has a status");
        self.headers.clear();
        for h in resp.headers.iter() {
            self.headers.push((Span::within(buf, h.name.as_bytes()), Span::within(buf, h.value)));
        }
        (self.method, self.path, self.query) = (Span::EMPTY, Span::EMPTY, Span::EMPTY);
        self.minor = resp.version.expect("complete response has a version");
        self.len = n;
        self.is_head = false;
        let (mut length, mut te, mut close, mut keep) = (None, TeState::Absent, false, false);
        for (name, value) in &self.headers {
            let (name, value) = (name.of(buf), value.of(buf));
            if name.eq_ignore_ascii_case(b"content-length") {
                let v = parse_length(value).ok_or(reject(502, "invalid Content-Length in a response"))?;
                if length.is_some_and(|l| l != v) {
                    return Err(reject(502, "conflicting Content-Length fields in a response"));
                }
                length = Some(v);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te = te.add(value).map_err(|_| reject(502, "invalid Transfer-Encoding in a response"))?;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',').map(trim) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        let framing = match (te, length) {
            _ if head_request || status < 200 || status == 204 || status == 304 => Framing::None,
            (TeState::Chunked, _) => Framing::Chunked,
            (TeState::Absent, Some(0)) => Framing::None,
            (TeState::Absent, Some(n)) => Framing::Length(n),
            _ => Framing::UntilClose,
        };
        self.framing = framing;
        self.keep_alive = !close && (self.minor == 1 || keep) && framing != Framing::UntilClose;
        Ok(Some((status, framing)))
    }
}

/// Transfer-Encoding across all its fields: only "chunked", once, last, is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TeState {
    Absent,
    Chunked,
    /// Chunked followed by another coding.
    NotLast,
    /// A coding tern does not implement (gzip, ...), and no chunked after it.
    Unknown,
    /// Chunked over a coding tern does not implement: the body would reach the
    /// handler still encoded.
    ChunkedOverUnknown,
}

impl TeState {
    fn add(self, value: &[u8]) -> Result<TeState, Reject> {
        let mut st = self;
        let mut any = false;
        for token in value.split(|&b| b == b',').map(trim) {
            if token.is_empty() {
                continue;
            }
            any = true;
            st = match (st, token.eq_ignore_ascii_case(b"chunked")) {
                (TeState::Chunked | TeState::NotLast | TeState::ChunkedOverUnknown, true) => {
                    return Err(reject(400, "chunked applied twice"))
                }
                (TeState::Absent, true) => TeState::Chunked,
                (TeState::Unknown, true) => TeState::ChunkedOverUnknown,
                (TeState::Chunked | TeState::NotLast | TeState::ChunkedOverUnknown, false) => TeState::NotLast,
                (TeState::Absent | TeState::Unknown, false) => TeState::Unknown,
            };
        }
        if !any {
            return Err(reject(400, "empty Transfer-Encoding"));
        }
        Ok(st)
    }
}

/// 414 when even the request line does not fit, 431 when the fields do not.
fn too_large(buf: &[u8], max_head: usize) -> Reject {
    let scan = &buf[..buf.len().min(max_head)];
    if scan.contains(&b'\n') {
        reject(431, "request head too large")
    } else {
        reject(414, "request target too long")
    }
}

/// 1*DIGIT, nothing else (no sign, no spaces inside, no list), within u64.
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &v[start..end]
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Head, Reject> {
        let mut h = Head::default();
        match h.parse(s.as_bytes(), 8192)? {
            true => Ok(h),
            false => panic!("incomplete: {s:?}"),
        }
    }

    fn status(s: &str) -> u16 {
        parse(s).err().map_or(0, |r| r.status)
    }

    #[test]
    fn simple_get_with_query_and_keep_alive() {
        let s = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-Y: z\r\n\r\n";
        let h = parse(s).unwrap();
        let b = s.as_bytes();
        assert_eq!(h.method.of(b), b"GET");
        assert_eq!(h.path.of(b), b"/a/b");
        assert_eq!(h.query.of(b), b"x=1&y=2");
        assert_eq!(h.header(b, b"x-y"), Some(&b"z"[..]));
        assert_eq!(h.len, s.len());
        assert!(h.keep_alive);
        assert_eq!(h.framing, Framing::None);
    }

    #[test]
    fn absolute_form_target() {
        let s = "GET http://example.org:8080/p/q?r HTTP/1.1\r\nHost: example.org\r\n\r\n";
        let h = parse(s).unwrap();
        assert_eq!(h.path.of(s.as_bytes()), b"/p/q");
        assert_eq!(h.query.of(s.as_bytes()), b"r");
    }

    #[test]
    fn keep_alive_rules_for_1_0_and_1_1() {
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap().keep_alive);
        assert!(!parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n").unwrap().keep_alive);
    }

    #[test]
    fn framing_defences() {
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), 400);
        assert_eq!(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").unwrap().framing, Framing::Length(3));
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
        assert_eq!(status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        assert_eq!(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap().framing, Framing::Chunked);
    }

    #[test]
    fn field_defences() {
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400, "missing Host");
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"), 400, "obs-fold");
        assert_eq!(status("GET / HTTP/1.1\r\nHost: h\r\nBad Name: a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n"), 417);
        assert!(parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n").unwrap().expect_continue);
        assert_eq!(status("GET nopath HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    }

    #[test]
    fn bare_lf_is_refused_in_every_position_unless_lenient() {
        for s in [
            "GET / HTTP/1.1\nHost: h\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\n\n",
            "GET / HTTP/1.1\nHost: h\nX: y\n\n",
            "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        ] {
            assert_eq!(status(s), 400, "{s:?}");
            let mut h = Head::default();
            assert_eq!(h.parse_with(s.as_bytes(), 8192, true), Ok(true), "{s:?} with the option");
            assert_eq!(h.header(s.as_bytes(), b"host"), Some(&b"h"[..]));
        }
        assert!(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n").is_ok());
        // Only the head is looked at: a body may hold any byte.
        let mut h = Head::default();
        assert_eq!(h.parse(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n\n\n", 8192), Ok(true));
        assert!(!has_bare_lf(b"") && !has_bare_lf(b"\r\n") && has_bare_lf(b"\n") && has_bare_lf(b"a\r\n\n"));
        for s in ["\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\nX: \t\r\n\r\n"] {
            assert!(parse(s).is_ok(), "{s:?}");
        }
        for s in ["\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET / HTTP/1.0\n\r\n", "GET / HTTP/1.0\r\n\n", "GET / HTTP/1.1\r\nHost: h\r\nX: \t\n\r\n"] {
            assert_eq!(status(s), 400, "{s:?}");
        }
        let mut r = Head::default();
        assert_eq!(r.parse_response(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", 8192, false, false).unwrap_err().status, 502);
        assert_eq!(r.parse_response(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", 8192, false, true), Ok(Some((200, Framing::None))));
    }

    /// The per-line check of a request head agrees with a pass over every byte, on
    /// random heads built from lines that end in CRLF or LF.
    #[test]
    fn the_per_line_check_sees_what_a_full_pass_sees() {
        use crate::http::test_rng::Rng;
        let mut r = Rng(0xb4e1f);
        let lines = ["X-A: 1", "X-B:", "X-C: a b\t", "Content-Length: 0", "X-D:  \t "];
        let eol = |r: &mut Rng| if r.below(8) == 0 { "\n" } else { "\r\n" };
        let (mut bare, mut clean) = (0, 0);
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..r.below(3) {
                s.push_str(eol(&mut r));
            }
            s.push_str(if r.below(2) == 0 { "GET / HTTP/1.1" } else { "POST /x?y HTTP/1.1" });
            s.push_str(eol(&mut r));
            s.push_str("Host: h");
            for _ in 0..r.below(5) {
                s.push_str(eol(&mut r));
                s.push_str(lines[r.below(lines.len())]);
            }
            s.push_str(eol(&mut r));
            s.push_str(eol(&mut r));
            let (mut strict, mut lenient) = (Head::default(), Head::default());
            if lenient.parse_with(s.as_bytes(), 8192, true) != Ok(true) {
                continue;
            }
            let reference = has_bare_lf(&s.as_bytes()[..lenient.len]);
            let got = strict.parse(s.as_bytes(), 8192);
            assert_eq!(got.is_err(), reference, "{s:?}: per-line {got:?}, a full pass says bare LF: {reference}");
            if reference {
                bare += 1;
            } else {
                clean += 1;
            }
        }
        assert!(bare > 1000 && clean > 1000, "{bare} with a bare LF, {clean} without");
    }

    #[test]
    fn size_limits_pick_414_or_431() {
        let mut h = Head::default();
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(300));
        assert_eq!(h.parse(long_target.as_bytes(), 256).unwrap_err().status, 414);
        let long_fields = format!("GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n", "a".repeat(300));
        assert_eq!(h.parse(long_fields.as_bytes(), 256).unwrap_err().status, 431);
        assert_eq!(h.parse(&long_fields.as_bytes()[..200], 256), Ok(false));
        let many = format!("GET / HTTP/1.1\r\nHost: h\r\n{}\r\n", "A: b\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(h.parse(many.as_bytes(), 1 << 20).unwrap_err().status, 431);
    }
}
