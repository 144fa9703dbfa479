//! Property tests of the request parser and the chunked decoder with many random
//! inputs (a seeded generator, so a failure names the seed that reproduces it), and a
//! bounded socket-level fuzz of the live server. Each part runs for a bounded number of
//! cases; what it asserts: no panic, no hang, the same answer however the bytes are
//! split across reads, a server that keeps serving well-formed requests, and
//! responses whose framing is honest: every response read carries exactly as many
//! body bytes as its head says (Content-Length, chunked, none for 1xx/204/304 and
//! HEAD), whatever shape of answer the handler tried (some of which tern refuses).
//!
//! More cases: TERN_FUZZ_CASES=1000000 cargo test --release --test http_fuzz

use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tern::http::chunked::{ChunkError, ChunkedDecoder};
use tern::http::parse::Head;
use tern::http::Body;
use std::cell::Cell;
use tern::{ConnId, Error, Event, Manager, Opt, ProtoEvent};

/// xorshift64*: small, fast, and reproducible from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a [u8]]) -> &'a [u8] {
        xs[self.below(xs.len())]
    }
}

fn cases(default: usize) -> usize {
    std::env::var("TERN_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const GOOD_METHODS: &[&[u8]] = &[b"GET", b"POST", b"HEAD", b"PUT", b"DELETE"];
const BAD_METHODS: &[&[u8]] = &[b"G T", b"", b"get", b"G\x01T"];
const GOOD_TARGETS: &[&[u8]] = &[b"/", b"/a/b?x=1&y=%20", b"http://h:80/p?q", b"*", b"https://h", b"/?"];
const BAD_TARGETS: &[&[u8]] = &[b"nope", b"/\x7f", b"/a b", b""];
const GOOD_VERSIONS: &[&[u8]] = &[b"HTTP/1.1", b"HTTP/1.0"];
const BAD_VERSIONS: &[&[u8]] = &[b"HTTP/2.0", b"HTTP/1.", b"http/1.1"];
const GOOD_FIELDS: &[&[u8]] = &[
    b"Content-Length: 5",
    b"Content-Length: 0",
    b"Transfer-Encoding: chunked",
    b"Connection: close",
    b"Connection: keep-alive, Upgrade",
    b"Upgrade: websocket",
    b"Expect: 100-continue",
    b"X-Empty:",
    b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];
const BAD_FIELDS: &[&[u8]] = &[
    b"Host: other",
    b"Content-Length: 18446744073709551616",
    b"Content-Length: -1",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, gzip",
    b"Expect: x",
    b" folded",
    b"Bad\x01Name: v",
    b"V: a\x00b",
    b": novalue",
];
const GOOD_EOL: &[&[u8]] = &[b"\r\n"];
const BAD_EOL: &[&[u8]] = &[b"\n", b"\r", b""];

/// Mostly a good part, sometimes a bad one: the interesting inputs are near the edge,
/// and the test needs both accepted and refused heads.
fn part<'a>(r: &mut Rng, good: &[&'a [u8]], bad: &[&'a [u8]]) -> &'a [u8] {
    if r.below(12) == 0 {
        r.pick(bad)
    } else {
        r.pick(good)
    }
}

/// A request head that is often almost valid.
fn random_head(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(part(r, GOOD_METHODS, BAD_METHODS));
    v.push(b' ');
    v.extend_from_slice(part(r, GOOD_TARGETS, BAD_TARGETS));
    v.push(b' ');
    v.extend_from_slice(part(r, GOOD_VERSIONS, BAD_VERSIONS));
    v.extend_from_slice(part(r, GOOD_EOL, BAD_EOL));
    let fields = r.below(6);
    let host_at = if r.below(10) == 0 { usize::MAX } else { r.below(fields + 1) };
    for i in 0..=fields {
        if i == host_at {
            v.extend_from_slice(b"Host: h\r\n");
        }
        if i < fields {
            v.extend_from_slice(part(r, GOOD_FIELDS, BAD_FIELDS));
            v.extend_from_slice(part(r, GOOD_EOL, BAD_EOL));
        }
    }
    v.extend_from_slice(b"\r\n");
    if r.below(3) == 0 {
        mutate(r, &mut v);
    }
    v
}

/// Flips, inserts or deletes one to three bytes.
fn mutate(r: &mut Rng, v: &mut Vec<u8>) {
    for _ in 0..1 + r.below(3) {
        if v.is_empty() {
            break;
        }
        let i = r.below(v.len());
        match r.below(3) {
            0 => v[i] = r.next() as u8,
            1 => v.insert(i, r.next() as u8),
            _ => {
                v.remove(i);
            }
        }
    }
}

fn parse_all(buf: &[u8], max: usize) -> Result<Option<(usize, String)>, u16> {
    let mut h = Head::default();
    match h.parse(buf, max) {
        Ok(true) => {
            let method = String::from_utf8_lossy(h.method.of(buf)).into_owned();
            let path = String::from_utf8_lossy(h.path.of(buf)).into_owned();
            let query = String::from_utf8_lossy(h.query.of(buf)).into_owned();
            Ok(Some((h.len, format!("{method} {path}?{query} {:?} {}", h.framing, h.keep_alive))))
        }
        Ok(false) => Ok(None),
        Err(r) => Err(r.status),
    }
}

/// Whatever the input, the parser answers without panicking; a complete head parses
/// the same when it arrives a prefix at a time (no prefix is "complete" earlier, and
/// none is refused unless the whole is refused); spans stay inside the buffer.
#[test]
fn request_parser_is_total_and_split_invariant() {
    let seed = 0x7e57_u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut r = Rng(seed);
    let max = 1024;
    let n = cases(20_000);
    let (mut complete, mut refused) = (0, 0);
    for case in 0..n {
        let mut buf = random_head(&mut r);
        if r.below(4) == 0 {
            buf.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"); // a pipelined follower
        }
        let whole = parse_all(&buf, max);
        match &whole {
            Ok(Some((len, _))) => {
                complete += 1;
                assert!(*len <= buf.len(), "case {case}: head length {len} past the buffer");
                for cut in 0..*len {
                    match parse_all(&buf[..cut], max) {
                        Ok(None) => {}
                        other => panic!("case {case}: prefix {cut} of {:?} gave {other:?}", String::from_utf8_lossy(&buf)),
                    }
                }
            }
            Err(status) => {
                refused += 1;
                assert!(matches!(status, 400 | 414 | 417 | 431 | 501 | 505), "case {case}: status {status}");
            }
            Ok(None) => {}
        }
    }
    // The generator must exercise both outcomes, or the test proves little.
    assert!(complete > n / 20 && refused > n / 20, "complete {complete}, refused {refused} of {n}");
}

/// Random valid chunked bodies decode to the same bytes however the input is split;
/// random corruptions are refused or decoded, never a panic, never more body than
/// `max_body`.
#[test]
fn chunked_decoder_is_split_invariant_and_bounded() {
    let mut r = Rng(0xc0ff_ee00_dead_beef);
    for case in 0..cases(5_000) {
        let mut body = Vec::new();
        let mut wire = Vec::new();
        for _ in 0..r.below(6) {
            let len = 1 + r.below(300);
            let piece: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            wire.extend_from_slice(format!("{len:x}").as_bytes());
            if r.below(3) == 0 {
                wire.extend_from_slice(b";name=\"v\"");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&piece);
            wire.extend_from_slice(b"\r\n");
            body.extend_from_slice(&piece);
        }
        wire.extend_from_slice(b"0\r\n");
        if r.below(2) == 0 {
            wire.extend_from_slice(b"Trailer-Field: x\r\n");
        }
        wire.extend_from_slice(b"\r\nNEXT");
        let valid = r.below(3) != 0;
        if !valid {
            mutate(&mut r, &mut wire);
        }
        let max_body = if r.below(5) == 0 { body.len() / 2 } else { 1 << 20 };
        let whole = decode_in_pieces(&wire, &[wire.len()], max_body);
        let mut cuts = Vec::new();
        let mut left = wire.len();
        while left > 0 {
            let k = 1 + r.below(left.min(40));
            cuts.push(k);
            left -= k;
        }
        let split = decode_in_pieces(&wire, &cuts, max_body);
        assert_eq!(whole, split, "case {case}: the split changed the result");
        match whole {
            Ok((out, used)) => {
                assert!(out.len() <= max_body, "case {case}: body past max_body");
                if valid {
                    assert_eq!(out, body, "case {case}");
                    assert_eq!(&wire[used..], b"NEXT", "case {case}: the follower was eaten");
                }
            }
            Err(ChunkError::TooLarge) => assert!(!valid || body.len() > max_body, "case {case}"),
            Err(ChunkError::Malformed) => assert!(!valid, "case {case}: valid body refused"),
        }
    }
}

/// Feeds `wire` in pieces of the given sizes; returns the body and the bytes used, or
/// the error. Incomplete input is reported as Malformed here (the tests always end
/// with "NEXT" after a final chunk, so a correct decoder finishes).
fn decode_in_pieces(wire: &[u8], pieces: &[usize], max_body: usize) -> Result<(Vec<u8>, usize), ChunkError> {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &k in pieces {
        let (used, done) = d.decode(&wire[at..at + k], max_body, &mut |p: &[u8]| out.extend_from_slice(p))?;
        at += used;
        if done {
            return Ok((out, at));
        }
        assert_eq!(used, k, "an unfinished decode must consume all its input");
    }
    Err(ChunkError::Malformed)
}

/// One answer of a shape picked in turn: whole, 204, 304, streamed with a length,
/// streamed chunked, framing tern must refuse (then a good answer), the caller's
/// `Connection: close`. Every refusal is asserted: a refused call must put nothing on
/// the wire, and the framing check on the client side proves it did not.
fn answer(m: &Manager, id: ConnId, body: &[u8], head: bool, kind: u32) {
    let half = body.len() / 2;
    match kind % 7 {
        0 => m.http_reply(id, 200, b"", Body::Copy(body)).unwrap(),
        1 => m.http_reply(id, 204, b"X-Kind: 204\r\n", Body::Copy(b"")).unwrap(),
        2 => m.http_reply(id, 304, b"ETag: \"e\"\r\n", Body::Copy(b"")).unwrap(),
        3 => {
            let cl = format!("Content-Length: {}\r\n", body.len());
            m.http_begin(id, 200, cl.as_bytes()).unwrap();
            m.http_write(id, Body::Copy(&body[..half])).unwrap();
            // HEAD's answer sends no body: nothing to keep, every write is dropped.
            let past = vec![b'!'; body.len() - half + 1];
            assert_eq!(m.http_write(id, Body::Copy(&past)), if head { Ok(()) } else { Err(Error::Invalid) });
            m.http_write(id, Body::Copy(&body[half..])).unwrap();
            m.http_end(id).unwrap();
        }
        4 => {
            m.http_begin(id, 200, b"X-Kind: chunked\r\n").unwrap();
            m.http_write(id, Body::Copy(&body[..half])).unwrap();
            m.http_write(id, Body::Copy(&body[half..])).unwrap();
            m.http_end(id).unwrap();
        }
        5 => {
            let wrong = format!("Content-Length: {}\r\n", body.len() + 1);
            assert_eq!(m.http_reply(id, 200, wrong.as_bytes(), Body::Copy(body)), Err(Error::Invalid));
            assert_eq!(m.http_reply(id, 200, b"Transfer-Encoding: chunked\r\n", Body::Copy(body)), Err(Error::Invalid));
            assert_eq!(m.http_reply(id, 204, b"", Body::Copy(b"x")), Err(Error::Invalid));
            assert_eq!(m.http_reply(id, 100, b"", Body::Copy(b"")), Err(Error::Invalid));
            assert_eq!(m.http_begin(id, 304, b"Content-Length: 0\r\n"), Err(Error::Invalid));
            m.http_reply(id, 200, b"X-Kind: fixed\r\n", Body::Copy(body)).unwrap();
        }
        _ => {
            let cl = format!("Connection: close\r\nContent-Length: {}\r\n", body.len());
            m.http_reply(id, 200, cl.as_bytes(), Body::Copy(body)).unwrap();
        }
    }
}

/// Checks that `wire` is a sequence of whole responses, each with exactly the body
/// bytes its framing says, and nothing after the last; `head_req`: the first request
/// was a HEAD (its answer has no body, even when tern refused the request: the client
/// reads none). Returns how many final responses there were.
fn check_framing(wire: &[u8], head_req: bool) -> Result<usize, String> {
    let mut rest = wire;
    let mut finals = 0;
    while !rest.is_empty() {
        if !rest.starts_with(b"HTTP/1.1 ") {
            return Err(format!("bytes that are not a response after {finals} responses"));
        }
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").ok_or("a response head cut short")? + 4;
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        rest = &rest[end..];
        let status: u16 = head[9..12].parse().map_err(|_| format!("status in {head:?}"))?;
        let field = |name: &str| head.split("\r\n").filter(|l| l.starts_with(name)).map(|l| l[name.len()..].trim().to_string()).collect::<Vec<_>>();
        let (lens, tes) = (field("content-length:"), field("transfer-encoding:"));
        if lens.len() > 1 || (!lens.is_empty() && !tes.is_empty()) || field("connection:").len() > 1 {
            return Err(format!("framing fields repeated or mixed: {head:?}"));
        }
        if status < 200 {
            continue;
        }
        finals += 1;
        let bodiless = status == 204 || status == 304;
        if bodiless && !(lens.is_empty() && tes.is_empty()) {
            return Err(format!("a framing field on a {status}: {head:?}"));
        }
        if bodiless || (head_req && finals == 1) {
            continue;
        }
        if tes.first().is_some_and(|te| te == "chunked") {
            loop {
                let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or("a chunk size line cut short")?;
                let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).map_err(|_| "chunk size")?, 16).map_err(|_| "chunk size")?;
                rest = &rest[line_end + 2..];
                if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
                    return Err(format!("a chunk of {size} bytes cut short or not followed by CRLF"));
                }
                rest = &rest[size + 2..];
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = lens.first() {
            let n: usize = n.parse().map_err(|_| format!("Content-Length in {head:?}"))?;
            if rest.len() < n {
                return Err(format!("{} body bytes for Content-Length {n}: {head:?}", rest.len()));
            }
            rest = &rest[n..];
        } else if field("connection:").first().is_some_and(|c| c == "close") {
            // Until the close: the rest is the body.
            rest = &[];
        } else {
            return Err(format!("a response with a body and no framing: {head:?}"));
        }
    }
    Ok(finals)
}

#[test]
fn the_framing_check_catches_dishonest_responses() {
    assert_eq!(check_framing(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false), Ok(1));
    assert_eq!(check_framing(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", false), Ok(1));
    assert_eq!(check_framing(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", true), Ok(1));
    assert_eq!(check_framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false), Ok(1));
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nok",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nok",
    ] {
        assert!(check_framing(bad, false).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    assert!(check_framing(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true).is_err(), "a HEAD answer with a body");
}

/// Random heads and bodies thrown at a live server over real sockets, a few at a
/// time: each connection ends with a response or a close within the header timeout,
/// every response's framing is honest (`check_framing`), and a well-formed request
/// beside them is always answered.
#[test]
fn live_server_survives_random_requests() {
    let (port_tx, port_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        let m = Manager::new().unwrap();
        m.set_option(Opt::HeaderTimeoutMs, 300).unwrap();
        m.set_option(Opt::IdleTimeoutMs, 300).unwrap();
        m.set_option(Opt::MaxHeaderBytes, 2048).unwrap();
        m.set_option(Opt::MaxBodyBytes, 4096).unwrap();
        let turn = Cell::new(0u32);
        let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
            if let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev {
                if msg.uri() == b"/x" {
                    m.http_reply(id, 200, b"", Body::Copy(msg.body())).unwrap();
                } else {
                    turn.set(turn.get() + 1);
                    answer(m, id, msg.body(), msg.method() == b"HEAD", turn.get());
                }
            }
        });
        let lid = m.http_listen("http://127.0.0.1:0", handler, 0).unwrap();
        port_tx.send(m.local_addr(lid).unwrap().port()).unwrap();
        while !stop2.load(Ordering::SeqCst) {
            m.poll(Some(Duration::from_millis(5))).unwrap();
        }
        // The clients are gone; their last FINs may still be on the way.
        let deadline = Instant::now() + Duration::from_secs(3);
        while m.conn_count() > 1 && Instant::now() < deadline {
            m.poll(Some(Duration::from_millis(5))).unwrap();
        }
        m.conn_count()
    });
    let port = port_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut r = Rng(0x5eed_1234_5678_9abc);
    let rounds = cases(20_000) / 100;
    for round in 0..rounds {
        let mut socks = Vec::new();
        for _ in 0..4 {
            let mut req = random_head(&mut r);
            let body_len = r.below(64);
            req.extend((0..body_len).map(|_| r.next() as u8));
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // The server may refuse and close before everything is written.
            let _ = s.write_all(&req);
            socks.push((s, req));
        }
        let mut good = TcpStream::connect(("127.0.0.1", port)).unwrap();
        good.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        good.write_all(b"POST /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok").unwrap();
        let mut answer = String::new();
        good.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("\r\n\r\nok"), "round {round}: {answer:?}");
        for (mut s, req) in socks {
            let t = Instant::now();
            let mut sink = Vec::new();
            // Ends within the timeouts: a response then close, or just a close.
            let whole = match s.read_to_end(&mut sink) {
                Ok(_) => true,
                // A reset may cut what was read: its framing cannot be judged.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
                Err(e) => panic!("round {round}: {e} after {:?} for {:?}", t.elapsed(), String::from_utf8_lossy(&req)),
            };
            assert!(sink.is_empty() || sink.starts_with(b"HTTP/1.1 "), "round {round}: {:?}", String::from_utf8_lossy(&sink));
            if whole {
                if let Err(why) = check_framing(&sink, req.starts_with(b"HEAD ")) {
                    panic!("round {round}: {why}\nrequest: {:?}\nresponses: {:?}", String::from_utf8_lossy(&req), String::from_utf8_lossy(&sink));
                }
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let left = server.join().unwrap();
    assert_eq!(left, 1, "only the listener is left");
}
