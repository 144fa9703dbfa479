//! The HTTP/1.1 server through the Rust API, with raw-socket clients on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tern::http::defer::Stage;
use tern::http::Body;
use tern::{Bytes, ConnId, Error, Event, Manager, Opt, Remote, ProtoEvent};

mod common;

/// A server on its own thread. Paths: `/defer?ms=N` answers from a worker after N
/// ms; `/pending` is neither answered nor deferred; anything else gets "hello\n".
struct Server {
    port: u16,
    /// Results of late responds, reported by workers.
    respond_results: mpsc::Receiver<Result<(), Error>>,
    /// One message per request deferred (the loop thread sends it).
    deferred: mpsc::Receiver<()>,
    _base: common::Server,
}

fn start(opts: &[(Opt, i64)]) -> Server {
    let (res_tx, res_rx) = mpsc::channel();
    let (def_tx, def_rx) = mpsc::channel();
    let base = common::serve(opts, move |m| {
        let remote: Remote = m.remote().unwrap();
        Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
            let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev else { return };
            let uri = msg.uri();
            if uri == b"/defer" {
                let ms: u64 = std::str::from_utf8(msg.query()).unwrap().trim_start_matches("ms=").parse().unwrap();
                let token = m.http_defer(id, msg.seq()).unwrap();
                def_tx.send(()).unwrap();
                let r = remote.clone();
                let res = res_tx.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    let body = format!("deferred {ms}\n");
                    res.send(r.http_respond(token, Stage::Whole, 200, b"", Some(Bytes::copy_from(body.as_bytes())))).unwrap();
                });
            } else if uri == b"/echo" {
                m.http_reply(id, 200, b"", Body::Copy(msg.body())).unwrap();
            } else if uri != b"/pending" {
                m.http_reply(id, 200, b"Content-Type: text/plain\r\n", Body::Copy(b"hello\n")).unwrap();
            }
        })
    });
    Server { port: base.port, respond_results: res_rx, deferred: def_rx, _base: base }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Everything the server sends until it closes.
fn read_to_eof(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// One response: head and a Content-Length body.
fn read_response(s: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "EOF inside a response head: {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head[9..12].parse().unwrap();
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

#[test]
fn get_has_date_length_and_keeps_alive() {
    let srv = start(&[]);
    let mut s = connect(srv.port);
    for _ in 0..3 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (status, head, body) = read_response(&mut s);
        assert_eq!(status, 200);
        assert_eq!(body, "hello\n");
        assert!(head.contains("\r\nDate: ") && head.contains("Content-Length: 6\r\n"), "{head}");
        assert!(!head.contains("Connection: close"));
    }
}

#[test]
fn three_pipelined_requests_in_one_write_are_answered_in_order() {
    let srv = start(&[]);
    let mut s = connect(srv.port);
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let all = read_to_eof(&mut s);
    let bodies: Vec<&str> = all.split("\r\n\r\n").skip(1).map(|p| p.split("HTTP/1.1").next().unwrap()).collect();
    assert_eq!(bodies, vec!["hello\n", "abc", "hello\n"], "{all}");
    assert!(all.ends_with("hello\n"));
    assert_eq!(all.matches("Connection: close").count(), 1);
}

#[test]
fn deferred_answer_with_connection_close_arrives_whole_then_eof() {
    let srv = start(&[]);
    let mut s = connect(srv.port);
    s.write_all(b"GET /defer?ms=100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let t = Instant::now();
    let all = read_to_eof(&mut s);
    assert!(t.elapsed() >= Duration::from_millis(90));
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(all.contains("Connection: close\r\n"));
    assert!(all.ends_with("\r\n\r\ndeferred 100\n"), "{all}");
    assert_eq!(srv.respond_results.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(()));
}

#[test]
fn deferred_answer_to_http_1_0_arrives_whole_then_eof() {
    let srv = start(&[]);
    let mut s = connect(srv.port);
    s.write_all(b"GET /defer?ms=100 HTTP/1.0\r\n\r\n").unwrap();
    let all = read_to_eof(&mut s);
    assert!(all.ends_with("deferred 100\n") && all.contains("Connection: close"), "{all}");
}

#[test]
fn pipelined_deferred_first_and_immediate_second_keep_order() {
    let srv = start(&[]);
    let mut s = connect(srv.port);
    s.write_all(b"GET /defer?ms=100 HTTP/1.1\r\nHost: x\r\n\r\nGET /now HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let all = read_to_eof(&mut s);
    let first = all.find("deferred 100").expect("deferred answer");
    let second = all.find("hello").expect("immediate answer");
    assert!(first < second, "{all}");
}

#[test]
fn defer_timeout_answers_503_closes_and_late_respond_is_refused() {
    let srv = start(&[(Opt::DeferTimeoutMs, 100)]);
    let mut s = connect(srv.port);
    s.write_all(b"GET /defer?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let all = read_to_eof(&mut s);
    assert!(all.starts_with("HTTP/1.1 503"), "{all}");
    assert!(all.contains("Connection: close"));
    assert_eq!(srv.respond_results.recv_timeout(Duration::from_secs(5)).unwrap(), Err(Error::Closed));
}

#[test]
fn client_gone_before_worker_answers_makes_respond_fail() {
    let srv = start(&[]);
    let mut s = connect(srv.port);
    s.write_all(b"GET /defer?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    srv.deferred.recv_timeout(Duration::from_secs(5)).expect("the request was deferred");
    drop(s);
    assert_eq!(srv.respond_results.recv_timeout(Duration::from_secs(5)).unwrap(), Err(Error::Closed));
}

#[test]
fn second_respond_is_refused_and_releases_its_buffer() {
    static FREED: AtomicUsize = AtomicUsize::new(0);
    let m = Manager::new().unwrap();
    let r = m.remote().unwrap();
    let tokens = Rc::new(std::cell::RefCell::new(Vec::new()));
    let t2 = tokens.clone();
    let lid = m
        .http_listen("http://127.0.0.1:0", Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
            if let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev {
                t2.borrow_mut().push(m.http_defer(id, msg.seq()).unwrap());
            }
        }), 0)
        .unwrap();
    let port = m.local_addr(lid).unwrap().port();
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while tokens.borrow().is_empty() {
        assert!(Instant::now() < end);
        m.poll(Some(Duration::from_millis(5))).unwrap();
    }
    let t = tokens.borrow()[0];
    let counted = || {
        let data = vec![1u8; 4];
        let p = data.as_ptr();
        // SAFETY: the vector lives in the release closure until it runs.
        unsafe { Bytes::from_foreign(p, 4, Some(Box::new(move || {
            drop(data);
            FREED.fetch_add(1, Ordering::SeqCst);
        }))) }
    };
    assert_eq!(r.http_respond(t, Stage::Whole, 200, b"", Some(counted())), Ok(()));
    assert_eq!(r.http_respond(t, Stage::Whole, 200, b"", Some(counted())), Err(Error::Protocol));
    assert_eq!(FREED.load(Ordering::SeqCst), 1, "the refused body is released at once");
    let (status, _, body) = loop {
        m.poll(Some(Duration::from_millis(5))).unwrap();
        let mut probe = [0u8; 1];
        s.set_nonblocking(true).unwrap();
        let ready = matches!(s.peek(&mut probe), Ok(n) if n > 0);
        s.set_nonblocking(false).unwrap();
        if ready {
            // Let the loop finish writing, then read.
            for _ in 0..5 {
                m.poll(Some(Duration::from_millis(2))).unwrap();
            }
            break read_response(&mut s);
        }
    };
    assert_eq!((status, body.len()), (200, 4));
    drop(m);
    assert_eq!(FREED.load(Ordering::SeqCst), 2, "the accepted body is released once, after writing");
}

/// Sends `req` and expects `status` and a close; meanwhile a well-formed request on
/// another connection is answered normally.
fn expect_rejected(srv: &Server, req: &[u8], status: u16) {
    let mut bad = connect(srv.port);
    let mut good = connect(srv.port);
    bad.write_all(req).unwrap();
    good.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = Vec::new();
    if let Err(e) = bad.read_to_end(&mut out) {
        panic!("no close after {:?} ({e}); got {:?}", String::from_utf8_lossy(req), String::from_utf8_lossy(&out));
    }
    let all = String::from_utf8(out).unwrap();
    assert!(all.starts_with(&format!("HTTP/1.1 {status} ")), "expected {status} for {:?}, got {all:?}", String::from_utf8_lossy(req));
    assert!(all.contains("Connection: close"));
    let (s, _, body) = read_response(&mut good);
    assert_eq!((s, body.as_str()), (200, "hello\n"));
}

#[test]
fn defences_answer_with_their_status_and_cost_only_their_connection() {
    let srv = start(&[(Opt::MaxHeaderBytes, 1024), (Opt::MaxBodyBytes, 1000)]);
    expect_rejected(&srv, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_rejected(&srv, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400);
    expect_rejected(&srv, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
    expect_rejected(&srv, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    expect_rejected(&srv, b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400);
    expect_rejected(&srv, b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Name: a\r\n\r\n", 400);
    expect_rejected(&srv, b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n", 400);
    expect_rejected(&srv, b"GET / HTTP/1.1\r\n\r\n", 400);
    expect_rejected(&srv, format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(2000)).as_bytes(), 414);
    expect_rejected(&srv, format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(2000)).as_bytes(), 431);
    expect_rejected(&srv, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413);
    expect_rejected(&srv, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", 413);
    expect_rejected(&srv, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400);
    expect_rejected(&srv, b"GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417);
}

#[test]
fn slow_head_gets_408_and_idle_keep_alive_is_closed() {
    let srv = start(&[(Opt::HeaderTimeoutMs, 150), (Opt::IdleTimeoutMs, 300)]);
    let mut slow = connect(srv.port);
    slow.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let t = Instant::now();
    let all = read_to_eof(&mut slow);
    assert!(all.starts_with("HTTP/1.1 408 "), "{all}");
    assert!(t.elapsed() < Duration::from_secs(3));
    let mut idle = connect(srv.port);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let _ = read_response(&mut idle);
    let t = Instant::now();
    assert_eq!(read_to_eof(&mut idle), "", "closed without a response");
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(200) && e < Duration::from_secs(3), "{e:?}");
}

/// The same two timeouts seen from the server: each connection gets its one CLOSE,
/// last, at the time the option says, and the manager is left with no more
/// connections and no more timers than before, at once (also after a client that left
/// before its idle timeout).
#[test]
fn header_and_idle_timeouts_close_on_the_server_and_leave_no_timer() {
    type Log = Rc<std::cell::RefCell<Vec<(ConnId, i32, Instant)>>>;
    let m = Manager::new().unwrap();
    m.set_option(Opt::HeaderTimeoutMs, 150).unwrap();
    m.set_option(Opt::IdleTimeoutMs, 300).unwrap();
    let log: Log = Rc::default();
    let l2 = log.clone();
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
        l2.borrow_mut().push((id, ev.code(), Instant::now()));
        if let Event::Proto(ProtoEvent::HttpMsg(_)) = ev {
            m.http_reply(id, 200, b"", Body::Copy(b"hello\n")).unwrap();
        }
    });
    let lid = m.http_listen("http://127.0.0.1:0", handler, 0).unwrap();
    let port = m.local_addr(lid).unwrap().port();
    m.poll(Some(Duration::ZERO)).unwrap();
    let base = (m.conn_count(), m.timer_count());
    // First a client that leaves by itself, answered, while its idle timer is pending:
    // the timer must go with the connection, not linger until it fires.
    let gone = std::thread::spawn(move || {
        let mut s = connect(port);
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let _ = read_response(&mut s);
    });
    let end = Instant::now() + Duration::from_secs(10);
    while !(gone.is_finished() && m.conn_count() == base.0) {
        assert!(Instant::now() < end, "timed out: the client that left is still a connection");
        m.poll(Some(Duration::from_millis(10))).unwrap();
    }
    gone.join().unwrap();
    assert_eq!(m.timer_count(), base.1, "timers right after a client left before its idle timeout");
    log.borrow_mut().clear();
    let (tx, rx) = mpsc::channel();
    let clients = std::thread::spawn(move || {
        let mut slow = connect(port);
        slow.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
        let mut idle = connect(port);
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let _ = read_response(&mut idle);
        tx.send(Instant::now()).unwrap();
        let slow_all = read_to_eof(&mut slow);
        let idle_rest = read_to_eof(&mut idle);
        (slow_all, idle_rest)
    });
    let end = Instant::now() + Duration::from_secs(10);
    while !(clients.is_finished() && m.conn_count() == base.0) {
        assert!(Instant::now() < end, "timed out: {} connections, baseline {}", m.conn_count(), base.0);
        m.poll(Some(Duration::from_millis(50))).unwrap();
    }
    // At once, not once leftover timers have fired: a closed connection takes its
    // timers with it.
    assert_eq!(m.timer_count(), base.1, "timers right after the last connection closed");
    let (slow_all, idle_rest) = clients.join().unwrap();
    let answered_at = rx.recv().unwrap();
    assert!(slow_all.starts_with("HTTP/1.1 408 "), "{slow_all}");
    assert_eq!(idle_rest, "", "the idle connection is closed without another byte");
    let log = log.borrow();
    let accepted: Vec<(ConnId, Instant)> = log.iter().filter(|e| e.1 == 4).map(|e| (e.0, e.2)).collect();
    assert_eq!(accepted.len(), 2);
    for (i, &(id, at)) in accepted.iter().enumerate() {
        let ev: Vec<(i32, Instant)> = log.iter().filter(|e| e.0 == id).map(|e| (e.1, e.2)).collect();
        assert_eq!(ev.iter().filter(|e| e.0 == 7).count(), 1, "exactly one CLOSE: {ev:?}");
        let (last, closed_at) = *ev.last().unwrap();
        assert_eq!(last, 7, "CLOSE last");
        let got_msg = ev.iter().any(|e| e.0 == 8);
        // The slow head (no HTTP_MSG) is refused 150 ms after it began; the idle one is
        // closed 300 ms after its answer.
        let (since, at_least) = if got_msg { (answered_at, 250) } else { (at, 120) };
        let after = closed_at.saturating_duration_since(since);
        assert!(after >= Duration::from_millis(at_least) && after < Duration::from_secs(3), "connection {i}: CLOSE {after:?} after it began waiting");
    }
    assert_eq!((m.conn_count(), m.timer_count()), base, "(connections, timers) back to the baseline");
}

#[test]
fn chunked_upload_is_decoded_and_expect_continue_answered() {
    let srv = start(&[]);
    let mut s = connect(srv.port);
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n").unwrap();
    let mut cont = [0u8; 25];
    s.read_exact(&mut cont).unwrap();
    assert_eq!(&cont, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n").unwrap();
    let (status, _, body) = read_response(&mut s);
    assert_eq!((status, body.as_str()), (200, "hello world"));
}

#[test]
fn head_request_gets_length_but_no_body() {
    let srv = start(&[]);
    let mut s = connect(srv.port);
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let all = read_to_eof(&mut s);
    assert!(all.contains("Content-Length: 6\r\n") && all.ends_with("\r\n\r\n"), "{all}");
}

#[test]
fn connections_past_max_conns_are_refused_and_others_keep_working() {
    let srv = start(&[(Opt::MaxConns, 3)]);
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect(srv.port)).collect();
    for s in held.iter_mut() {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_response(s).0, 200);
    }
    // The fourth is accepted by the kernel, then closed by tern without a byte.
    let mut extra = connect(srv.port);
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    match extra.read_to_end(&mut got) {
        Ok(_) => assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    // The held ones are untouched, and a place freed is a place to use.
    for s in held.iter_mut() {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_response(s).0, 200);
    }
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = connect(srv.port);
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut first = [0u8; 12];
        if s.read_exact(&mut first).is_ok() {
            assert_eq!(&first, b"HTTP/1.1 200");
            break;
        }
        assert!(Instant::now() < deadline, "the freed place never became usable");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every connection's state goes with it: after many requests on connections that
/// close (by `Connection: close`, by the client, by an error), the manager holds no
/// more connections and no more timers than before.
#[test]
fn closed_connections_leave_no_connection_or_timer_behind() {
    let (tx, rx) = mpsc::channel();
    let (count_tx, count_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let m = Manager::new().unwrap();
        let handler = Rc::new(|m: &Manager, id: ConnId, ev: &Event<'_>| {
            if let Event::Proto(ProtoEvent::HttpMsg(_)) = ev {
                m.http_reply(id, 200, b"", Body::Copy(b"ok")).unwrap();
            }
        });
        let lid = m.http_listen("http://127.0.0.1:0", handler, 0).unwrap();
        let base = (m.conn_count(), m.timer_count());
        tx.send(m.local_addr(lid).unwrap().port()).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while count_rx.try_recv().is_err() && Instant::now() < end {
            m.poll(Some(Duration::from_millis(5))).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while (m.conn_count(), m.timer_count()) != base && Instant::now() < deadline {
            m.poll(Some(Duration::from_millis(5))).unwrap();
        }
        (base, (m.conn_count(), m.timer_count()))
    });
    let port = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    for i in 0..300 {
        let mut s = connect(port);
        match i % 3 {
            0 => {
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
                read_to_eof(&mut s);
            }
            1 => {
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let _ = read_response(&mut s);
            }
            _ => {
                s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
                read_to_eof(&mut s);
            }
        }
    }
    count_tx.send(()).unwrap();
    let (base, after) = thread.join().unwrap();
    assert_eq!(after, base, "(connections, timers) before and after 300 closed connections");
}

/// A request refused while its body is still coming (413 on Content-Length) must
/// reach the client whole: the server lingers, reading and dropping the rest, instead
/// of closing with unread input (which would reset the connection and could destroy
/// the answer before the client reads it).
#[test]
fn refusal_mid_upload_reaches_a_client_that_keeps_sending() {
    let srv = start(&[(Opt::MaxBodyBytes, 1000)]);
    let mut s = connect(srv.port);
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n").unwrap();
    let mut w = s.try_clone().unwrap();
    let (sent_tx, sent_rx) = mpsc::channel();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..30 {
            if w.write_all(&chunk).is_err() {
                break;
            }
            let _ = sent_tx.send(());
        }
    });
    // The body is under way (the client keeps sending) before the answer is read.
    sent_rx.recv_timeout(Duration::from_secs(5)).expect("the upload started");
    let mut got = Vec::new();
    let r = s.read_to_end(&mut got);
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413 "), "{r:?} {text:?}");
    assert!(text.contains("Connection: close"), "{text}");
}
