//! The graceful shutdown of the core (`Manager::begin_shutdown`), begun from inside a
//! handler: the request being answered is answered (and says `Connection: close`),
//! a request pipelined behind it is not read, an idle connection is closed, `poll`
//! then says `Closed` and nothing is left. (tests/c/test_http_shutdown.c covers the C
//! API with deferred answers and the deadline.)

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tern::http::Body;
use tern::{ConnId, Error, Event, Manager, ProtoEvent};

/// Reads `s` to its end while `m` polls; `None` until the peer closed it.
fn read_all(m: &Manager, s: &mut TcpStream) -> Vec<u8> {
    s.set_nonblocking(true).unwrap();
    let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no EOF; read {:?}", String::from_utf8_lossy(&out));
                let _ = m.poll(Some(Duration::from_millis(5)));
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn a_shutdown_begun_in_a_handler_answers_what_was_read_and_nothing_after() {
    let m = Manager::new().unwrap();
    let after = Rc::new(Cell::new(0));
    let seen = after.clone();
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
        let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev else { return };
        match msg.uri() {
            b"/quit" => {
                m.begin_shutdown(Duration::from_secs(5)).unwrap();
                // Opening anything is refused from now on.
                assert_eq!(m.http_listen("http://127.0.0.1:0", Rc::new(|_: &Manager, _: ConnId, _: &Event<'_>| {}), 0), Err(Error::Closed));
                m.http_reply(id, 200, b"", Body::Copy(b"bye")).unwrap();
            }
            _ => {
                seen.set(seen.get() + 1);
                m.http_reply(id, 200, b"", Body::Copy(b"hi")).unwrap();
            }
        }
    });
    let lid = m.http_listen("http://127.0.0.1:0", handler, 0).unwrap();
    let port = m.local_addr(lid).unwrap().port();
    // An idle keep-alive connection, answered once.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(b"GET /hi HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    idle.set_nonblocking(true).unwrap();
    let mut first = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !first.ends_with(b"hi") {
        assert!(Instant::now() < deadline, "the idle connection's answer");
        m.poll(Some(Duration::from_millis(5))).unwrap();
        let mut buf = [0u8; 512];
        if let Ok(n) = idle.read(&mut buf) {
            first.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(after.get(), 1);
    // The quitting request, and one pipelined behind it.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /quit HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let got = String::from_utf8(read_all(&m, &mut s)).unwrap();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye"), "{got:?}");
    assert_eq!(got.matches("HTTP/1.1").count(), 1, "the request after the shutdown began was answered: {got:?}");
    assert_eq!(after.get(), 1, "the request after the shutdown began reached the handler");
    assert!(read_all(&m, &mut idle).is_empty(), "the idle connection got more than its EOF");
    drop((s, idle));
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        match m.poll(Some(Duration::from_millis(5))) {
            Ok(_) => assert!(Instant::now() < deadline, "the shutdown did not finish: {} connections", m.conn_count()),
            Err(e) => break e,
        }
    };
    assert_eq!(done, Error::Closed);
    assert_eq!(m.poll(Some(Duration::ZERO)), Err(Error::Closed), "done stays done");
    assert_eq!(m.conn_count(), 0);
    assert_eq!(m.timer_count(), 0, "a timer outlived the connections");
    assert_eq!(m.begin_shutdown(Duration::ZERO), Err(Error::Closed));
}
