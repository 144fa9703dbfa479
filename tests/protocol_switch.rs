//! Switching a connection's protocol keeps the connection: its id, handler,
//! transport, the bytes it already received and what is queued on it. Driven here by
//! the switch the tests can make: an HTTP request answered with 101 and the
//! connection turned into raw bytes (`Manager::http_switch_raw`).

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tern::{ConnId, Error, Event, Manager, ProtoEvent};

#[derive(Default)]
struct Seen {
    http_ids: Vec<ConnId>,
    read_ids: Vec<ConnId>,
    switch_result: Option<Result<(), Error>>,
    closed: usize,
}

fn poll_until(m: &Manager, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < end, "timed out");
        m.poll(Some(Duration::from_millis(10))).unwrap();
    }
}

/// An HTTP server whose handler switches every request to raw bytes and then echoes.
fn switching_server(m: &Manager, seen: Rc<RefCell<Seen>>) -> u16 {
    let h = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
        Event::Proto(ProtoEvent::HttpMsg(msg)) => {
            assert_eq!(msg.header(b"upgrade"), Some(&b"echo"[..]));
            seen.borrow_mut().http_ids.push(id);
            let r = m.http_switch_raw(id, 101, b"Upgrade: echo\r\nConnection: upgrade\r\n");
            seen.borrow_mut().switch_result = Some(r);
        }
        Event::Read(data) => {
            seen.borrow_mut().read_ids.push(id);
            m.send(id, data).unwrap();
            m.consume(id, data.len()).unwrap();
        }
        Event::Close => seen.borrow_mut().closed += 1,
        _ => {}
    });
    let lid = m.http_listen("http://127.0.0.1:0", h, 0).unwrap();
    m.local_addr(lid).unwrap().port()
}

const UPGRADE: &[u8] = b"GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n";

#[test]
fn a_switch_keeps_the_id_the_bytes_received_and_the_queue() {
    let m = Manager::new().unwrap();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let port = switching_server(&m, seen.clone());
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The request and the first raw bytes behind it arrive in one segment: they
        // must not be lost nor parsed as HTTP.
        let mut first = UPGRADE.to_vec();
        first.extend_from_slice(b"hello, raw world");
        s.write_all(&first).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"hello, raw world") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "EOF after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{text:?}");
        let head_end = text.find("\r\n\r\n").expect("a whole head before the raw bytes") + 4;
        assert!(!text[..head_end].to_ascii_lowercase().contains("content-length"), "no framing on a 101: {text:?}");
        assert_eq!(&text[head_end..], "hello, raw world", "the 101 (queued before the switch) comes first, then the echo");
        // And the connection keeps speaking raw bytes.
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut echo = [0u8; 18];
        s.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"GET / HTTP/1.1\r\n\r\n", "after the switch HTTP is just bytes");
    });
    poll_until(&m, || client.is_finished());
    client.join().unwrap();
    poll_until(&m, || seen.borrow().closed == 1);
    let seen = seen.borrow();
    assert_eq!(seen.switch_result, Some(Ok(())));
    assert_eq!(seen.http_ids.len(), 1);
    assert!(seen.read_ids.len() >= 2);
    assert!(seen.read_ids.iter().all(|id| *id == seen.http_ids[0]), "the same connection id before and after");
    assert_eq!(m.conn_count(), 1, "only the listener is left");
    assert_eq!(m.timer_count(), 0, "nothing of the HTTP protocol outlives the switch");
}

#[test]
fn a_switch_behind_an_unanswered_request_is_refused() {
    let m = Manager::new().unwrap();
    let result: Rc<RefCell<Option<Result<(), Error>>>> = Rc::default();
    let r2 = result.clone();
    let h = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
        if let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev {
            if msg.uri() == b"/first" {
                // Left for a worker: it keeps its place ahead of the upgrade.
                m.http_defer(id, msg.seq()).unwrap();
            } else {
                *r2.borrow_mut() = Some(m.http_switch_raw(id, 101, b"Upgrade: echo\r\nConnection: upgrade\r\n"));
            }
        }
    });
    let lid = m.http_listen("http://127.0.0.1:0", h, 0).unwrap();
    let port = m.local_addr(lid).unwrap().port();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        s.write_all(UPGRADE).unwrap();
        s
    });
    poll_until(&m, || result.borrow().is_some());
    assert_eq!(*result.borrow(), Some(Err(Error::Protocol)), "the deferred answer would be lost");
    drop(client.join().unwrap());
}
