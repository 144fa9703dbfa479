//! Large uploads taken in pieces (Opt::HttpHeadEvents + http_stream_body): the body
//! goes to the handler as it arrives, in pieces no larger than one receive buffer,
//! whatever its size; requests that do not opt in are buffered and bounded as before.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::Duration;
use tern::http::Body;
use tern::{ConnId, Error, Event, Manager, Opt, ProtoEvent};

mod common;
use common::{serve, Server};

const MAX_RECV: usize = 256 * 1024;

/// `/upload` streams (the answer reports bytes, a checksum and the largest piece);
/// `/early` tries to answer inside HTTP_HEAD (must be refused) and then buffers;
/// anything else is buffered and echoed back by length.
fn start() -> Server {
    let opts = [(Opt::HttpHeadEvents, 1), (Opt::MaxBodyBytes, 1 << 20), (Opt::MaxRecvBuffer, MAX_RECV as i64), (Opt::MaxStreamBodyBytes, 1 << 30)];
    serve(&opts, |_| {
        let total = Rc::new(Cell::new(0u64));
        let sum = Rc::new(Cell::new(0u64));
        let biggest = Rc::new(Cell::new(0usize));
        let pieces = Rc::new(Cell::new(0u64));
        Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
            Event::Proto(ProtoEvent::HttpHead(msg)) => {
                assert!(msg.body().is_empty());
                if msg.uri() == b"/upload" {
                    total.set(0);
                    sum.set(0);
                    biggest.set(0);
                    pieces.set(0);
                    m.http_stream_body(id).unwrap();
                } else if msg.uri() == b"/early" {
                    let r = m.http_reply(id, 200, b"", Body::Copy(b"too early"));
                    assert_eq!(r, Err(Error::Protocol), "an answer inside HTTP_HEAD");
                }
            }
            Event::Proto(ProtoEvent::HttpBody(piece)) => {
                assert!(!piece.is_empty() && piece.len() <= MAX_RECV, "piece of {} bytes", piece.len());
                total.set(total.get() + piece.len() as u64);
                sum.set(piece.iter().fold(sum.get(), |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b))));
                biggest.set(biggest.get().max(piece.len()));
                pieces.set(pieces.get() + 1);
            }
            Event::Proto(ProtoEvent::HttpMsg(msg)) if msg.uri() == b"/upload" => {
                assert!(msg.body().is_empty(), "a streamed body is not buffered too");
                assert_eq!(msg.header(b"x-check"), Some(&b"yes"[..]), "the head is there at the end");
                let answer = format!("{} {} {} {}", total.get(), sum.get(), biggest.get(), pieces.get());
                m.http_reply(id, 200, b"", Body::Copy(answer.as_bytes())).unwrap();
            }
            Event::Proto(ProtoEvent::HttpMsg(msg)) => {
                let answer = format!("buffered {}", msg.body().len());
                m.http_reply(id, 200, b"", Body::Copy(answer.as_bytes())).unwrap();
            }
            _ => {}
        })
    })
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Status and body of one Content-Length response.
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "EOF in a head: {:?}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head[9..12].parse().unwrap(), String::from_utf8(body).unwrap())
}

/// Deterministic bytes and their checksum, as the handler computes it.
fn pattern(len: usize, seed: u64) -> (Vec<u8>, u64) {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let sum = data.iter().fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
    (data, sum)
}

#[test]
fn content_length_upload_far_past_max_body_arrives_in_bounded_pieces() {
    let srv = start();
    let mut s = connect(srv.port);
    let len = 64 << 20; // 64 times MAX_BODY_BYTES
    let (data, sum) = pattern(len, 7);
    let head = format!("PUT /upload HTTP/1.1\r\nHost: x\r\nX-Check: yes\r\nContent-Length: {len}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&data).unwrap();
    let (status, body) = read_response(&mut s);
    let f: Vec<u64> = body.split(' ').map(|v| v.parse().unwrap()).collect();
    assert_eq!((status, f[0], f[1]), (200, len as u64, sum), "{body}");
    assert!(f[2] <= MAX_RECV as u64 && f[3] >= (len / MAX_RECV) as u64, "{body}");
    // The connection stays usable: a small buffered request after it.
    s.write_all(b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").unwrap();
    assert_eq!(read_response(&mut s), (200, "buffered 3".to_string()));
}

#[test]
fn chunked_upload_with_expect_continue_is_streamed_decoded() {
    let srv = start();
    let mut s = connect(srv.port);
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nX-Check: yes\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n").unwrap();
    let mut cont = [0u8; 25];
    s.read_exact(&mut cont).unwrap();
    assert_eq!(&cont, b"HTTP/1.1 100 Continue\r\n\r\n");
    let (data, sum) = pattern(8 << 20, 9);
    let mut wire = Vec::new();
    for piece in data.chunks(100_000) {
        wire.extend_from_slice(format!("{:x};e=1\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\nT: 1\r\n\r\n");
    s.write_all(&wire).unwrap();
    let (status, body) = read_response(&mut s);
    let f: Vec<u64> = body.split(' ').map(|v| v.parse().unwrap()).collect();
    assert_eq!((status, f[0], f[1]), (200, data.len() as u64, sum), "{body}");
}

#[test]
fn requests_that_do_not_opt_in_are_buffered_and_bounded() {
    let srv = start();
    let mut s = connect(srv.port);
    s.write_all(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!(read_response(&mut s), (200, "buffered 5".to_string()));
    s.write_all(format!("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", (1 << 20) + 1).as_bytes()).unwrap();
    let (status, _) = read_response(&mut s);
    assert_eq!(status, 413);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed after the 413");
}

#[test]
fn streamed_length_past_its_own_limit_is_refused_before_reading() {
    let srv = start();
    let mut s = connect(srv.port);
    s.write_all(format!("PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", (1u64 << 30) + 1).as_bytes()).unwrap();
    let (status, _) = read_response(&mut s);
    assert_eq!(status, 413);
}
