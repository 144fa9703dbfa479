//! The HTTP client, with its servers on the same manager and thread: one loop both
//! asks and answers, so a deadlock or a lost wakeup would hang these tests (each is
//! bounded). Raw TCP servers on the same loop play broken servers.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tern::http::Body;
use tern::{Bytes, ConnId, Event, Manager, Opt, ProtoEvent};

/// What a client connection saw: responses (status, body, a header) and its end.
#[derive(Default)]
struct Seen {
    responses: Vec<(u16, Vec<u8>, Option<Vec<u8>>)>,
    error: Option<String>,
    closed: bool,
}

fn client(m: &Manager, url: &str) -> (ConnId, Rc<RefCell<Seen>>) {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let s = seen.clone();
    let handler = Rc::new(move |_: &Manager, _: ConnId, ev: &Event<'_>| match ev {
        Event::Proto(ProtoEvent::HttpMsg(msg)) => {
            let x = msg.header(b"x-kind").map(<[u8]>::to_vec);
            s.borrow_mut().responses.push((msg.status(), msg.body().to_vec(), x));
        }
        Event::Error(e) => s.borrow_mut().error = Some(e.to_string()),
        Event::Close => s.borrow_mut().closed = true,
        _ => {}
    });
    (m.http_connect(url, handler, 0).unwrap(), seen)
}

fn poll_until(m: &Manager, what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        m.poll(Some(Duration::from_millis(10))).unwrap();
    }
}

/// An HTTP server on `m`: /len (Content-Length), /stream (chunked, in 3 pieces),
/// /empty (204), /close (answers with Connection: close), /defer (a worker thread
/// answers after 50 ms through a remote), /echo (the body back).
fn server(m: &Manager) -> u16 {
    let remote = m.remote().unwrap();
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
        let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev else { return };
        match msg.uri() {
            b"/len" => m.http_reply(id, 200, b"X-Kind: len\r\n", Body::Copy(b"0123456789")).unwrap(),
            b"/stream" => {
                m.http_begin(id, 200, b"X-Kind: stream\r\n").unwrap();
                for piece in [&b"alpha "[..], b"beta ", b"gamma"] {
                    m.http_write(id, Body::Copy(piece)).unwrap();
                }
                m.http_end(id).unwrap();
            }
            b"/empty" => m.http_reply(id, 204, b"", Body::Copy(b"")).unwrap(),
            b"/close" => m.http_reply(id, 200, b"Connection: close\r\n", Body::Copy(b"bye")).unwrap(),
            b"/echo" => m.http_reply(id, 201, b"", Body::Copy(msg.body())).unwrap(),
            b"/defer" => {
                let token = m.http_defer(id, msg.seq()).unwrap();
                let r = remote.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    r.http_respond(token, tern::http::defer::Stage::Whole, 200, b"X-Kind: deferred\r\n", Some(Bytes::copy_from(b"later"))).unwrap();
                });
            }
            _ => m.http_reply(id, 404, b"", Body::Copy(b"no")).unwrap(),
        }
    });
    let lid = m.http_listen("http://127.0.0.1:0", handler, 0).unwrap();
    m.local_addr(lid).unwrap().port()
}

#[test]
fn client_and_server_on_one_loop_with_every_framing_and_pipelining() {
    let m = Manager::new().unwrap();
    let port = server(&m);
    let (c, seen) = client(&m, &format!("http://127.0.0.1:{port}"));
    // Made before the connection is up: queued, then pipelined in one go.
    m.http_request(c, b"GET", b"/len", b"", Body::Copy(b"")).unwrap();
    m.http_request(c, b"GET", b"/defer", b"", Body::Copy(b"")).unwrap();
    m.http_request(c, b"GET", b"/stream", b"", Body::Copy(b"")).unwrap();
    m.http_request(c, b"HEAD", b"/len", b"", Body::Copy(b"")).unwrap();
    m.http_request(c, b"GET", b"/empty", b"", Body::Copy(b"")).unwrap();
    m.http_request(c, b"POST", b"/echo", b"Content-Type: text/plain\r\n", Body::Copy(b"posted body")).unwrap();
    poll_until(&m, "six responses", || seen.borrow().responses.len() == 6);
    let r = seen.borrow().responses.clone();
    assert_eq!(r[0], (200, b"0123456789".to_vec(), Some(b"len".to_vec())));
    assert_eq!(r[1], (200, b"later".to_vec(), Some(b"deferred".to_vec())), "the deferred answer keeps its place");
    assert_eq!(r[2], (200, b"alpha beta gamma".to_vec(), Some(b"stream".to_vec())), "chunked, de-chunked");
    assert_eq!(r[3], (200, Vec::new(), Some(b"len".to_vec())), "HEAD: no body despite Content-Length");
    assert_eq!((r[4].0, r[4].1.len()), (204, 0));
    assert_eq!((r[5].0, &r[5].1[..]), (201, &b"posted body"[..]));
    assert!(!seen.borrow().closed && seen.borrow().error.is_none());
    // The server's Connection: close ends the client connection cleanly.
    m.http_request(c, b"GET", b"/close", b"", Body::Copy(b"")).unwrap();
    poll_until(&m, "close", || seen.borrow().closed);
    assert_eq!(seen.borrow().responses[6], (200, b"bye".to_vec(), None));
    assert!(seen.borrow().error.is_none(), "{:?}", seen.borrow().error);
    assert_eq!(m.http_request(c, b"GET", b"/len", b"", Body::Copy(b"")), Err(tern::Error::Closed));
}

#[test]
fn bad_requests_are_refused_before_anything_is_sent() {
    let m = Manager::new().unwrap();
    let port = server(&m);
    let (c, _) = client(&m, &format!("http://127.0.0.1:{port}"));
    for (method, target, headers) in [
        (&b"G T"[..], &b"/"[..], &b""[..]),
        (b"GET", b"/a b", b""),
        (b"GET", b"nope", b""),
        (b"GET", b"/", b"X: 1\r\n\r\nGET /smuggled HTTP/1.1\r\n"),
        (b"GET", b"/", b"X: 1"),
    ] {
        assert_eq!(m.http_request(c, method, target, headers, Body::Copy(b"")), Err(tern::Error::Invalid));
    }
    let raw = m.listen("tcp://127.0.0.1:0", Rc::new(|_: &Manager, _: ConnId, _: &Event<'_>| {}), 0).unwrap();
    let tport = m.local_addr(raw).unwrap().port();
    let tcp = m.connect(&format!("tcp://127.0.0.1:{tport}"), Rc::new(|_: &Manager, _: ConnId, _: &Event<'_>| {}), 0).unwrap();
    assert_eq!(m.http_request(tcp, b"GET", b"/", b"", Body::Copy(b"")), Err(tern::Error::Protocol));
}

/// A raw TCP server on the loop that answers every connection's first bytes with
/// `answer` and then, if `close`, closes.
fn raw_server(m: &Manager, answer: &'static [u8], close: bool) -> u16 {
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
        if let Event::Read(data) = ev {
            let n = data.len();
            m.consume(id, n).unwrap();
            if !answer.is_empty() {
                m.send(id, answer).unwrap();
            }
            if close {
                m.close(id).unwrap();
            }
        }
    });
    let lid = m.listen("tcp://127.0.0.1:0", handler, 0).unwrap();
    m.local_addr(lid).unwrap().port()
}

#[test]
fn a_body_delimited_by_the_close_is_delivered_at_eof() {
    let m = Manager::new().unwrap();
    let port = raw_server(&m, b"HTTP/1.0 200 OK\r\nX-Kind: eof\r\n\r\nuntil the end", true);
    let (c, seen) = client(&m, &format!("http://127.0.0.1:{port}"));
    m.http_request(c, b"GET", b"/", b"", Body::Copy(b"")).unwrap();
    poll_until(&m, "close", || seen.borrow().closed);
    assert_eq!(seen.borrow().responses, vec![(200, b"until the end".to_vec(), Some(b"eof".to_vec()))]);
    assert!(seen.borrow().error.is_none());
}

#[test]
fn broken_servers_cost_an_error_and_the_connection_only() {
    let m = Manager::new().unwrap();
    m.set_option(Opt::IdleTimeoutMs, 300).unwrap();
    m.set_option(Opt::MaxBodyBytes, 1000).unwrap();
    let cases: [(&'static [u8], bool, &str); 5] = [
        (b"", false, "response timed out"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true, "before the response was complete"),
        (b"NOT HTTP AT ALL\r\n\r\n", false, "malformed response head"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", false, "too large"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, "malformed chunked"),
    ];
    let good_port = server(&m);
    for (answer, close, why) in cases {
        let port = raw_server(&m, answer, close);
        let (c, seen) = client(&m, &format!("http://127.0.0.1:{port}"));
        m.http_request(c, b"GET", b"/", b"", Body::Copy(b"")).unwrap();
        // A healthy exchange beside it is unaffected.
        let (g, good) = client(&m, &format!("http://127.0.0.1:{good_port}"));
        m.http_request(g, b"GET", b"/len", b"", Body::Copy(b"")).unwrap();
        let t = Instant::now();
        poll_until(&m, why, || seen.borrow().closed && good.borrow().responses.len() == 1);
        let err = seen.borrow().error.clone().unwrap_or_default();
        assert!(err.contains(why), "{why}: got {err:?}");
        assert!(seen.borrow().responses.is_empty());
        assert!(t.elapsed() < Duration::from_secs(3));
        assert_eq!(good.borrow().responses[0].0, 200);
    }
}
