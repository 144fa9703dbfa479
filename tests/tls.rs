//! TLS through real sockets on 127.0.0.1, tern's server and tern's client on one
//! loop, with certificates made here (rcgen): verification and its failures, the
//! release of wrapped buffers only once their records are in the kernel, truncation,
//! handshake timeouts and garbage costing only their connection.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tern::http::Body;
use tern::transport::tls::{Role, TlsConfig};
use tern::{Bytes, ConnId, Event, Manager, Opt, ProtoEvent};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and what it can sign.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn make_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), issuer: Issuer::new(p, key) }
}

/// A certificate for `names` signed by `ca` (expired if `expired`): (chain PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str], expired: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn server_config(chains: &[(String, String)]) -> TlsConfig {
    let cfg = TlsConfig::new(Role::Server);
    for (chain, key) in chains {
        cfg.add_cert(chain.as_bytes(), key.as_bytes()).unwrap();
    }
    cfg
}

fn client_config(ca_pem: &str) -> TlsConfig {
    let cfg = TlsConfig::new(Role::Client);
    cfg.add_ca(ca_pem.as_bytes()).unwrap();
    cfg
}

fn poll_until(m: &Manager, what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        m.poll(Some(Duration::from_millis(10))).unwrap();
    }
}

/// An HTTPS server on `m` answering every request with its path.
fn https_server(m: &Manager) -> u16 {
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
        if let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev {
            let body = [b"path=".as_slice(), msg.uri()].concat();
            m.http_reply(id, 200, b"", Body::Copy(&body)).unwrap();
        }
    });
    let lid = m.http_listen("https://127.0.0.1:0", handler, 0).unwrap();
    m.local_addr(lid).unwrap().port()
}

#[derive(Default)]
struct Seen {
    connected: bool,
    code: Option<tern::Error>,
    responses: Vec<(u16, Vec<u8>)>,
    error: Option<String>,
    closed: bool,
}

fn https_client(m: &Manager, url: &str) -> (ConnId, Rc<RefCell<Seen>>) {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let s = seen.clone();
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
        Event::Connect => s.borrow_mut().connected = true,
        Event::Proto(ProtoEvent::HttpMsg(msg)) => s.borrow_mut().responses.push((msg.status(), msg.body().to_vec())),
        Event::Error(e) => {
            s.borrow_mut().error = Some(e.to_string());
            s.borrow_mut().code = m.conn_error(id).map(|(code, _)| code);
        }
        Event::Close => s.borrow_mut().closed = true,
        _ => {}
    });
    (m.http_connect(url, handler, 0).unwrap(), seen)
}

#[test]
fn https_client_and_server_on_one_loop_verify_and_pick_certificates_by_name() {
    let ca = make_ca("tern test CA");
    let m = Manager::new().unwrap();
    let default = leaf(&ca, &["localhost", "127.0.0.1"], false);
    let other = leaf(&ca, &["other.test"], false);
    m.set_tls(&server_config(&[default, other])).unwrap();
    m.set_tls(&client_config(&ca.pem)).unwrap();
    let port = https_server(&m);
    let (c, seen) = https_client(&m, &format!("https://localhost:{port}"));
    // Requests made before CONNECT wait for the handshake.
    m.http_request(c, b"GET", b"/one", b"", Body::Copy(b"")).unwrap();
    m.http_request(c, b"GET", b"/two", b"", Body::Copy(b"")).unwrap();
    poll_until(&m, "two responses", || seen.borrow().responses.len() == 2);
    assert!(seen.borrow().connected && seen.borrow().error.is_none());
    assert_eq!(seen.borrow().responses, vec![(200, b"path=/one".to_vec()), (200, b"path=/two".to_vec())]);
    m.close(c).unwrap();
    poll_until(&m, "the client's close", || seen.borrow().closed);
    assert!(seen.borrow().error.is_none(), "{:?}", seen.borrow().error);
    poll_until(&m, "only the listener left", || m.conn_count() == 1);
}

#[test]
fn a_client_refuses_a_wrong_name_an_unknown_ca_and_an_expired_certificate_with_the_reason() {
    let ca = make_ca("tern test CA");
    let stranger = make_ca("someone else");
    let cases = [
        (leaf(&ca, &["elsewhere.test"], false), "not valid for name"),
        (leaf(&stranger, &["localhost"], false), "UnknownIssuer"),
        (leaf(&ca, &["localhost"], true), "expired"),
    ];
    for (chain, why) in cases {
        let m = Manager::new().unwrap();
        m.set_tls(&server_config(&[chain])).unwrap();
        m.set_tls(&client_config(&ca.pem)).unwrap();
        let port = https_server(&m);
        let (c, seen) = https_client(&m, &format!("https://localhost:{port}"));
        m.http_request(c, b"GET", b"/", b"", Body::Copy(b"")).unwrap();
        poll_until(&m, "the refusal", || seen.borrow().closed);
        let s = seen.borrow();
        let err = s.error.clone().unwrap_or_default();
        assert!(!s.connected && s.responses.is_empty(), "{why}: no CONNECT, no response");
        assert_eq!(s.code, Some(tern::Error::Tls), "{why}: the failure's code is TERN_ETLS");
        assert!(err.contains("TLS handshake failed") && err.contains(why), "{why}: the error says so: {err}");
        drop(s);
        poll_until(&m, "the server side gone too", || m.conn_count() == 1);
    }
}

/// A raw TLS server on `m` that answers the first bytes it reads with a response
/// delimited by the close, then closes gracefully (`abrupt` false: close_notify,
/// then FIN) or, once the response is written, drops the TCP connection without
/// close_notify.
fn close_delimited_server(m: &Manager, abrupt: bool) -> u16 {
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
        Event::Read(d) => {
            m.consume(id, d.len()).unwrap();
            m.send(id, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe whole body").unwrap();
            if !abrupt {
                m.close(id).unwrap();
            }
        }
        Event::Drain if abrupt => m.close_now(id).unwrap(),
        _ => {}
    });
    let lid = m.listen("tls://127.0.0.1:0", handler, 0).unwrap();
    m.local_addr(lid).unwrap().port()
}

#[test]
fn a_body_delimited_by_the_close_needs_close_notify() {
    let ca = make_ca("tern test CA");
    for abrupt in [false, true] {
        let m = Manager::new().unwrap();
        m.set_tls(&server_config(&[leaf(&ca, &["localhost"], false)])).unwrap();
        m.set_tls(&client_config(&ca.pem)).unwrap();
        let port = close_delimited_server(&m, abrupt);
        let (c, seen) = https_client(&m, &format!("https://localhost:{port}"));
        m.http_request(c, b"GET", b"/", b"", Body::Copy(b"")).unwrap();
        poll_until(&m, "the client's close", || seen.borrow().closed);
        let s = seen.borrow();
        if abrupt {
            let err = s.error.clone().unwrap_or_default();
            assert!(s.responses.is_empty(), "a body that may be cut short is not delivered as whole");
            assert!(err.contains("truncated") && err.contains("close_notify"), "{err}");
        } else {
            assert_eq!(s.responses, vec![(200, b"the whole body".to_vec())]);
            assert!(s.error.is_none(), "{:?}", s.error);
        }
    }
}

/// Counts the releases of each wrapped buffer.
struct Frees(Mutex<Vec<usize>>);

fn wrapped(frees: &Arc<Frees>, i: usize, len: usize) -> Bytes {
    let data: Vec<u8> = (0..len).map(|k| pattern(i * len + k)).collect();
    let p = data.as_ptr();
    let f = frees.clone();
    let release = Box::new(move || {
        drop(data);
        f.0.lock().unwrap()[i] += 1;
    });
    // SAFETY: the vector's heap block lives, unchanged, until `release` runs.
    unsafe { Bytes::from_foreign(p, len, Some(release)) }
}

fn pattern(at: usize) -> u8 {
    (at % 251) as u8 ^ (at / 251 % 7) as u8
}

#[test]
fn a_wrapped_buffer_is_released_only_once_its_records_are_in_the_kernel() {
    const N: usize = 128;
    const LEN: usize = 256 * 1024;
    let ca = make_ca("tern test CA");
    let m = Manager::new().unwrap();
    m.set_option(Opt::MaxSendQueue, (N * LEN) as i64 + 1).unwrap();
    m.set_tls(&server_config(&[leaf(&ca, &["localhost"], false)])).unwrap();
    m.set_tls(&client_config(&ca.pem)).unwrap();
    let frees = Arc::new(Frees(Mutex::new(vec![0; N])));
    let server_id = Rc::new(RefCell::new(None));
    let sid = server_id.clone();
    let f2 = frees.clone();
    let lid = m
        .listen(
            "tls://127.0.0.1:0",
            Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
                if let Event::Accept = ev {
                    *sid.borrow_mut() = Some(id);
                    for i in 0..N {
                        m.send_bytes(id, wrapped(&f2, i, LEN)).unwrap();
                    }
                }
            }),
            0,
        )
        .unwrap();
    let port = m.local_addr(lid).unwrap().port();
    // The client reads nothing at first: everything backs up into the kernel.
    let reading = Rc::new(RefCell::new(false));
    // (bytes consumed, all as sent, closed, bytes seen but not consumed)
    let got = Rc::new(RefCell::new((0usize, true, false, 0usize)));
    let (r2, g2) = (reading.clone(), got.clone());
    let cid = m
        .connect(
            &format!("tls://localhost:{port}"),
            Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
                Event::Read(d) => {
                    let mut g = g2.borrow_mut();
                    let start = g.0;
                    g.1 &= d.iter().enumerate().all(|(k, b)| *b == pattern(start + k));
                    if *r2.borrow() {
                        g.0 += d.len();
                        m.consume(id, d.len()).unwrap();
                    } else {
                        g.3 = d.len();
                    }
                }
                Event::Close => g2.borrow_mut().2 = true,
                _ => {}
            }),
            0,
        )
        .unwrap();
    // Wait until nothing moves any more: the server's queue stalls on a full socket.
    let sid = || server_id.borrow().expect("accepted");
    poll_until(&m, "the accept", || server_id.borrow().is_some());
    let mut last = usize::MAX;
    let mut still = 0;
    poll_until(&m, "the server's queue to stall", || {
        let q = m.queued(sid()).unwrap();
        still = if q == last { still + 1 } else { 0 };
        last = q;
        still > 30
    });
    let freed_at_stall: usize = frees.0.lock().unwrap().iter().filter(|&&n| n > 0).count();
    assert!(freed_at_stall < N, "the stall holds buffers back");
    assert!(m.queued(sid()).unwrap() > 0);
    // Dropping the connection now discards what is not in the kernel. Whatever
    // was released before must have been in the kernel: the peer gets all of it.
    m.close_now(sid()).unwrap();
    *reading.borrow_mut() = true;
    // What the paused reader holds is taken now; then it reads again.
    let held = got.borrow().3;
    m.consume(cid, held).unwrap();
    got.borrow_mut().0 += held;
    poll_until(&m, "every buffer released", || frees.0.lock().unwrap().iter().all(|&n| n == 1));
    poll_until(&m, "the client's close", || got.borrow().2);
    let (received, intact, _, _) = *got.borrow();
    assert!(intact, "the bytes arrive in order, unchanged");
    assert!(received >= freed_at_stall * LEN, "released before the kernel had them: {received} bytes received, {freed_at_stall} buffers of {LEN} were released");
    assert!(frees.0.lock().unwrap().iter().all(|&n| n == 1), "each free callback ran exactly once");
}

#[test]
fn every_wrapped_buffer_reaches_a_reading_peer_and_is_released_once() {
    const N: usize = 64;
    const LEN: usize = 100_000;
    let ca = make_ca("tern test CA");
    let m = Manager::new().unwrap();
    m.set_tls(&server_config(&[leaf(&ca, &["localhost"], false)])).unwrap();
    m.set_tls(&client_config(&ca.pem)).unwrap();
    let frees = Arc::new(Frees(Mutex::new(vec![0; N])));
    let f2 = frees.clone();
    let lid = m
        .listen(
            "tls://127.0.0.1:0",
            Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
                if let Event::Accept = ev {
                    for i in 0..N {
                        m.send_bytes(id, wrapped(&f2, i, LEN)).unwrap();
                    }
                    m.close(id).unwrap();
                }
            }),
            0,
        )
        .unwrap();
    let port = m.local_addr(lid).unwrap().port();
    let got = Rc::new(RefCell::new((0usize, true, false, None::<String>)));
    let g2 = got.clone();
    m.connect(
        &format!("tls://localhost:{port}"),
        Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
            Event::Read(d) => {
                let mut g = g2.borrow_mut();
                let start = g.0;
                g.1 &= d.iter().enumerate().all(|(k, b)| *b == pattern(start + k));
                g.0 += d.len();
                m.consume(id, d.len()).unwrap();
            }
            Event::Error(e) => g2.borrow_mut().3 = Some(e.to_string()),
            Event::Close => g2.borrow_mut().2 = true,
            _ => {}
        }),
        0,
    )
    .unwrap();
    poll_until(&m, "the client's close", || got.borrow().2);
    let g = got.borrow();
    assert_eq!((g.0, g.1), (N * LEN, true), "every byte, in order");
    assert!(g.3.is_none(), "a graceful close with close_notify is no error: {:?}", g.3);
    assert!(frees.0.lock().unwrap().iter().all(|&n| n == 1));
}

fn count_closes(m: &Manager) -> (u16, Arc<AtomicUsize>) {
    let closes = Arc::new(AtomicUsize::new(0));
    let c2 = closes.clone();
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
        Event::Close => {
            c2.fetch_add(1, Ordering::SeqCst);
        }
        Event::Proto(ProtoEvent::HttpMsg(_)) => m.http_reply(id, 200, b"", Body::Copy(b"ok")).unwrap(),
        _ => {}
    });
    let lid = m.http_listen("https://127.0.0.1:0", handler, 0).unwrap();
    (m.local_addr(lid).unwrap().port(), closes)
}

#[test]
fn a_stalled_handshake_times_out_and_garbage_costs_only_its_connection() {
    let ca = make_ca("tern test CA");
    let m = Manager::new().unwrap();
    m.set_option(Opt::TlsHandshakeTimeoutMs, 300).unwrap();
    m.set_tls(&server_config(&[leaf(&ca, &["localhost"], false)])).unwrap();
    m.set_tls(&client_config(&ca.pem)).unwrap();
    let (port, closes) = count_closes(&m);
    // Silent after connecting, and half a ClientHello: both time out.
    let started = Instant::now();
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut half = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]).unwrap();
    // Plain HTTP to a TLS port: refused with an alert at once.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    poll_until(&m, "three closes", || closes.load(Ordering::SeqCst) == 3);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "closed after {took:?}");
    for mut s in [silent, half, plain] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.len() < 64, "at most an alert comes back");
    }
    // The server is fine: a real client is served.
    let (c, seen) = https_client(&m, &format!("https://localhost:{port}"));
    m.http_request(c, b"GET", b"/", b"", Body::Copy(b"")).unwrap();
    poll_until(&m, "a response", || !seen.borrow().responses.is_empty());
    assert_eq!(seen.borrow().responses[0], (200, b"ok".to_vec()));
    m.close(c).unwrap();
    poll_until(&m, "only the listener left", || m.conn_count() == 1);
    assert_eq!(m.timer_count(), 0, "no timer outlives its connection");
}

#[test]
fn a_client_handshake_that_gets_no_answer_times_out() {
    let m = Manager::new().unwrap();
    m.set_option(Opt::TlsHandshakeTimeoutMs, 200).unwrap();
    // A TCP server that accepts and says nothing.
    let quiet = m.listen("tcp://127.0.0.1:0", Rc::new(|_: &Manager, _: ConnId, _: &Event<'_>| {}), 0).unwrap();
    let port = m.local_addr(quiet).unwrap().port();
    let (_, seen) = https_client(&m, &format!("https://127.0.0.1:{port}"));
    poll_until(&m, "the client's close", || seen.borrow().closed);
    let s = seen.borrow();
    assert!(!s.connected);
    assert_eq!(s.error.as_deref(), Some("TLS handshake timed out"));
}
