//! TEST HARNESS ONLY, not a server to deploy: a blocking, thread-per-connection
//! WebSocket echo testee for the Autobahn|Testsuite, built on `tern::ws`'s sans-IO
//! codec with `std::net`, so the codec can be checked against Autobahn before it is
//! wired into tern's reactor. It has none of tern's limits or timeouts beyond what the
//! test needs.
//!
//! ```text
//! cargo run --release --example ws_autobahn -- server 9001 &
//! /work/shared/tools/autobahn/run.sh ws://127.0.0.1:9001/ '*'
//! /work/shared/tools/autobahn/client.sh '*' -- target/release/examples/ws_autobahn client
//! ```
//!
//! `server PORT [low-memory]` echoes every message on every connection; with
//! `low-memory` it answers permessage-deflate offers with both no-context-takeover
//! parameters (`DeflateConfig::low_memory`). `client` runs the
//! fuzzingserver's testee loop: reads the case count from `$AUTOBAHN_SERVER_URL`,
//! then runs every case as agent `$AUTOBAHN_AGENT`, echoing until closed.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;
use tern::ws::{self, deflate, handshake, Decoded, Decoder, DeflateConfig, Encoder, Item, Role};

const MAX_MESSAGE: usize = 64 << 20;
const MAX_HEAD: usize = 16 << 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => {
            let low = args.get(3).is_some_and(|a| a == "low-memory");
            let base = if low { DeflateConfig::low_memory() } else { DeflateConfig::default() };
            server(args.get(2).map_or("9001", String::as_str), DeflateConfig { min_compress_len: 0, ..base })
        }
        Some("client") => client(),
        _ => eprintln!("usage: ws_autobahn server PORT | client"),
    }
}

fn server(port: &str, cfg: DeflateConfig) {
    let listener = TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
    eprintln!("ws_autobahn: test echo server on 127.0.0.1:{port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, cfg) {
                eprintln!("connection: {e}");
            }
        });
    }
}

/// Reads until the end of an HTTP head; returns the head's length and what followed.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(i + 4);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("head too large"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("eof in head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn values<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Vec<&'a [u8]> {
    headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value).collect()
}

fn serve(mut s: TcpStream, cfg: DeflateConfig) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = Vec::new();
    let head_len = read_head(&mut s, &mut buf)?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf[..head_len]).map_err(io::Error::other)?;
    let hs = req.headers;
    let accept = match handshake::server_accept(|n| values(hs, n)) {
        Ok(a) => a,
        Err(e) => {
            let extra = if e.status() == 426 { "Sec-WebSocket-Version: 13\r\n" } else { "" };
            write!(s, "HTTP/1.1 {} Bad Request\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n", e.status())?;
            return Ok(());
        }
    };
    let params = deflate::negotiate(values(hs, "Sec-WebSocket-Extensions"), &cfg);
    let ext = params.map(|p| p.response_header());
    let lines = handshake::response_headers(&accept, None, ext.as_deref());
    write!(s, "HTTP/1.1 101 Switching Protocols\r\n{lines}\r\n")?;
    buf.drain(..head_len);
    let (dec, enc) = ws::codec(Role::Server, MAX_MESSAGE, params.as_ref(), &cfg);
    echo(s, buf, dec, enc)
}

/// The echo loop, either role: messages back as they came, pings answered, a close
/// answered with the same code, a violation answered with its close code.
fn echo(mut s: TcpStream, mut recv: Vec<u8>, mut dec: Decoder, mut enc: Encoder) -> io::Result<()> {
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        loop {
            match dec.decode(&mut recv) {
                Ok(Decoded { consumed, item: None }) => {
                    recv.drain(..consumed);
                    break;
                }
                Ok(Decoded { consumed, item: Some(item) }) => {
                    let done = answer(&mut s, &mut enc, item)?;
                    recv.drain(..consumed);
                    if done {
                        return finish(s);
                    }
                }
                Err(e) => {
                    if let Some(f) = enc.close(Some(e.close_code()), "") {
                        s.write_all(&f)?;
                    }
                    return finish(s);
                }
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        recv.extend_from_slice(&chunk[..n]);
    }
}

/// Sends what `item` calls for; true once the connection is to end.
fn answer(s: &mut TcpStream, enc: &mut Encoder, item: Item) -> io::Result<bool> {
    match item {
        Item::Message { kind, data } => {
            let f = enc.message(kind, data);
            write_all_vectored(s, &f.header, f.payload.as_slice())?;
        }
        Item::Ping(p) => s.write_all(&enc.pong(p).expect("ping payload fits a pong"))?,
        Item::Pong(_) => {}
        Item::Close(c) => {
            let reply = enc.close(c.code(), "").or_else(|| enc.close(None, "")).expect("empty close");
            s.write_all(&reply)?;
            return Ok(true);
        }
    }
    Ok(false)
}

fn write_all_vectored(s: &mut TcpStream, a: &[u8], b: &[u8]) -> io::Result<()> {
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        let n = s.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}

/// Half-closes, waits briefly for the peer's close, then closes.
fn finish(s: TcpStream) -> io::Result<()> {
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut sink = [0u8; 4096];
    while matches!((&s).read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}

fn client() {
    let base = std::env::var("AUTOBAHN_SERVER_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "tern".into());
    let addr = base.trim_start_matches("ws://").trim_end_matches('/').to_string();
    let count = case_count(&addr).expect("getCaseCount");
    eprintln!("ws_autobahn: {count} cases");
    for case in 1..=count {
        if let Err(e) = run_case(&addr, &format!("/runCase?case={case}&agent={agent}")) {
            eprintln!("case {case}: {e}");
        }
    }
}

fn case_count(addr: &str) -> io::Result<usize> {
    let (mut s, mut recv, mut dec, _) = connect(addr, "/getCaseCount")?;
    let mut chunk = [0u8; 4096];
    loop {
        let consumed = match dec.decode(&mut recv).map_err(io::Error::other)? {
            Decoded { item: Some(Item::Message { data, .. }), .. } => {
                return std::str::from_utf8(data).ok().and_then(|t| t.trim().parse().ok()).ok_or(io::Error::other("bad count"));
            }
            Decoded { consumed, .. } => consumed,
        };
        recv.drain(..consumed);
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::other("closed before the count"));
        }
        recv.extend_from_slice(&chunk[..n]);
    }
}

fn run_case(addr: &str, path: &str) -> io::Result<()> {
    let (s, recv, dec, enc) = connect(addr, path)?;
    echo(s, recv, dec, enc)
}

/// Opens a client connection: handshake with a permessage-deflate offer.
fn connect(addr: &str, path: &str) -> io::Result<(TcpStream, Vec<u8>, Decoder, Encoder)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let key = handshake::client_key().map_err(io::Error::other)?;
    let cfg = DeflateConfig { min_compress_len: 0, ..DeflateConfig::default() };
    let lines = handshake::request_headers(&key, &[], Some(&deflate::client_offer(&cfg)));
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{lines}\r\n")?;
    let mut buf = Vec::new();
    let head_len = read_head(&mut s, &mut buf)?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(&buf[..head_len]).map_err(io::Error::other)?;
    let status = resp.code.unwrap_or(0);
    let hs = resp.headers;
    handshake::client_check(status, &key, |n| values(hs, n), &[]).map_err(io::Error::other)?;
    let params = deflate::accept_response(values(hs, "Sec-WebSocket-Extensions"), &cfg).map_err(io::Error::other)?;
    buf.drain(..head_len);
    let (dec, enc) = ws::codec(Role::Client, MAX_MESSAGE, params.as_ref(), &cfg);
    Ok((s, buf, dec, enc))
}
