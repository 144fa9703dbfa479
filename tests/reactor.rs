//! The reactor through its Rust API, over real sockets on 127.0.0.1.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern::{Bytes, ConnId, Error, Event, Manager, Opt};

type Log = Rc<RefCell<Vec<(ConnId, i32)>>>;

/// An echo handler that records every event code per connection.
fn echo(log: Log) -> tern::DynHandler {
    Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
        log.borrow_mut().push((id, ev.code()));
        if let Event::Read(data) = ev {
            m.send(id, data).unwrap();
            m.consume(id, data.len()).unwrap();
        }
    })
}

fn port_of(m: &Manager, id: ConnId) -> u16 {
    m.local_addr(id).expect("listener has an address").port()
}

/// Polls until `done` or the deadline; panics on timeout.
fn poll_until(m: &Manager, secs: u64, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < end, "timed out");
        m.poll(Some(Duration::from_millis(10))).unwrap();
    }
}

#[test]
fn echo_round_trip_with_partial_writes_and_one_close_per_open() {
    let m = Manager::new().unwrap();
    let log: Log = Rc::default();
    let lid = m.listen("tcp://127.0.0.1:0", echo(log.clone()), 0).unwrap();
    let port = port_of(&m, lid);
    let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let expect = payload.clone();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || w.write_all(&payload).unwrap());
        let mut got = vec![0u8; expect.len()];
        s.read_exact(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == expect, "echoed bytes differ");
    });
    poll_until(&m, 20, || client.is_finished());
    client.join().unwrap();
    poll_until(&m, 5, || m.conn_count() == 1);
    let log = log.borrow();
    let accepted: Vec<ConnId> = log.iter().filter(|(_, e)| *e == 4).map(|(id, _)| *id).collect();
    assert_eq!(accepted.len(), 1);
    let ev: Vec<i32> = log.iter().filter(|(id, _)| *id == accepted[0]).map(|(_, e)| *e).collect();
    assert_eq!(&ev[..2], &[2, 4], "OPEN then ACCEPT");
    assert_eq!(ev.iter().filter(|e| **e == 7).count(), 1, "exactly one CLOSE");
    assert_eq!(*ev.last().unwrap(), 7, "CLOSE last");
    assert!(ev.contains(&6), "WRITE reported");
}

#[test]
fn client_and_server_on_one_manager_exchange_data() {
    let m = Manager::new().unwrap();
    let log: Log = Rc::default();
    let lid = m.listen("tcp://127.0.0.1:0", echo(log), 0).unwrap();
    let port = port_of(&m, lid);
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let events: Rc<RefCell<Vec<i32>>> = Rc::default();
    let (g, e) = (got.clone(), events.clone());
    let client = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| {
        e.borrow_mut().push(ev.code());
        if let Event::Read(d) = ev {
            g.borrow_mut().extend_from_slice(d);
            m.consume(id, d.len()).unwrap();
            if g.borrow().len() == 11 {
                m.close(id).unwrap();
            }
        }
    });
    // Host name: resolved off the loop thread; data sent before CONNECT is queued.
    let cid = m.connect(&format!("tcp://localhost:{port}"), client, 0).unwrap();
    m.send(cid, b"hello world").unwrap();
    poll_until(&m, 10, || events.borrow().contains(&7));
    assert_eq!(&got.borrow()[..], b"hello world");
    assert_eq!(&events.borrow()[..2], &[2, 3], "OPEN then CONNECT");
}

#[test]
fn connect_refused_gives_error_then_close() {
    let m = Manager::new().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let events: Rc<RefCell<Vec<i32>>> = Rc::default();
    let e = events.clone();
    m.connect(&format!("tcp://127.0.0.1:{port}"), Rc::new(move |_: &Manager, _: ConnId, ev: &Event<'_>| e.borrow_mut().push(ev.code())), 0)
        .unwrap();
    poll_until(&m, 5, || events.borrow().contains(&7));
    assert_eq!(&events.borrow()[..], &[2, 1, 7]);
    assert_eq!(m.conn_count(), 0);
}

#[test]
fn poll_inside_handler_is_refused_not_deadlocked() {
    let m = Manager::new().unwrap();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    m.timer_add(
        Duration::ZERO,
        false,
        true,
        Box::new(move |m: &Manager| {
            *s.borrow_mut() = Some(m.poll(Some(Duration::ZERO)));
        }),
    )
    .unwrap();
    m.poll(Some(Duration::from_millis(10))).unwrap();
    assert_eq!(*seen.borrow(), Some(Err(Error::Protocol)));
}

#[test]
fn repeating_timer_cancels_itself() {
    let m = Manager::new().unwrap();
    let n = Rc::new(RefCell::new(0));
    let id = Rc::new(RefCell::new(0u64));
    let (n2, id2) = (n.clone(), id.clone());
    *id.borrow_mut() = m
        .timer_add(
            Duration::from_millis(5),
            true,
            false,
            Box::new(move |m: &Manager| {
                *n2.borrow_mut() += 1;
                if *n2.borrow() == 3 {
                    m.timer_cancel(*id2.borrow()).unwrap();
                }
            }),
        )
        .unwrap();
    let end = Instant::now() + Duration::from_millis(200);
    while Instant::now() < end {
        m.poll(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(*n.borrow(), 3);
    assert_eq!(m.timer_cancel(*id.borrow()), Err(Error::Closed));
}

#[test]
fn poll_returns_within_timeout() {
    let m = Manager::new().unwrap();
    let t = Instant::now();
    m.poll(Some(Duration::from_millis(50))).unwrap();
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(45) && e < Duration::from_millis(500), "{e:?}");
}

#[test]
fn slow_reader_past_send_queue_limit_is_closed_fast_one_is_not() {
    let m = Manager::new().unwrap();
    m.set_option(Opt::MaxSendQueue, 256 * 1024).unwrap();
    let accepted: Rc<RefCell<Vec<ConnId>>> = Rc::default();
    let errors: Rc<RefCell<Vec<ConnId>>> = Rc::default();
    let (a, e) = (accepted.clone(), errors.clone());
    let lid = m
        .listen(
            "tcp://127.0.0.1:0",
            Rc::new(move |_: &Manager, id: ConnId, ev: &Event<'_>| match ev {
                Event::Accept => a.borrow_mut().push(id),
                Event::Error(_) => e.borrow_mut().push(id),
                _ => {}
            }),
            0,
        )
        .unwrap();
    let port = port_of(&m, lid);
    let slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    poll_until(&m, 5, || accepted.borrow().len() == 1);
    let fast = TcpStream::connect(("127.0.0.1", port)).unwrap();
    poll_until(&m, 5, || accepted.borrow().len() == 2);
    let (slow_id, fast_id) = (accepted.borrow()[0], accepted.borrow()[1]);
    let total = 8 * 1024 * 1024;
    let reader = std::thread::spawn(move || {
        let mut fast = fast;
        let mut buf = vec![0u8; 65536];
        let mut n = 0;
        while n < total {
            n += fast.read(&mut buf).unwrap();
        }
        n
    });
    let chunk = Bytes::from_vec(vec![1u8; 16 * 1024]);
    let mut sent = 0;
    let mut slow_result = Ok(());
    while sent < total {
        if slow_result.is_ok() {
            slow_result = m.send_bytes(slow_id, chunk.clone());
        }
        if m.queued(fast_id).unwrap() < 128 * 1024 {
            m.send_bytes(fast_id, chunk.clone()).unwrap();
            sent += chunk.len();
        }
        m.poll(Some(Duration::from_millis(1))).unwrap();
    }
    assert_eq!(slow_result, Err(Error::Full));
    poll_until(&m, 10, || reader.is_finished());
    assert_eq!(reader.join().unwrap(), total);
    assert_eq!(&errors.borrow()[..], &[slow_id]);
    drop(slow);
    drop(m);
    assert_eq!(chunk.ref_count(), 1, "every queued reference released");
}

#[test]
fn remote_push_after_free_returns_closed_and_releases() {
    static FREED: AtomicUsize = AtomicUsize::new(0);
    let m = Manager::new().unwrap();
    let r = m.remote().unwrap();
    drop(m);
    let data = vec![9u8; 100];
    let ptr = data.as_ptr();
    let release = Box::new(move || {
        drop(data);
        FREED.fetch_add(1, Ordering::SeqCst);
    });
    // SAFETY: the vector (moved into `release`, its heap block unmoved) lives until
    // `release` runs.
    let b = unsafe { Bytes::from_foreign(ptr, 100, Some(release)) };
    assert_eq!(r.send(1, b), Err(Error::Closed));
    assert_eq!(FREED.load(Ordering::SeqCst), 1);
}

#[test]
fn remote_pushes_from_threads_arrive_in_order() {
    let m = Manager::new().unwrap();
    m.set_option(Opt::MaxPosted, 1024).unwrap();
    let accepted: Rc<RefCell<Vec<ConnId>>> = Rc::default();
    let a = accepted.clone();
    let lid = m
        .listen("tcp://127.0.0.1:0", Rc::new(move |_: &Manager, id: ConnId, ev: &Event<'_>| {
            if let Event::Accept = ev {
                a.borrow_mut().push(id)
            }
        }), 0)
        .unwrap();
    let port = port_of(&m, lid);
    let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    poll_until(&m, 5, || accepted.borrow().len() == 1);
    let id = accepted.borrow()[0];
    let r = m.remote().unwrap();
    assert_eq!(m.set_option(Opt::MaxPosted, 10), Err(Error::Protocol));
    let n = 20_000u32;
    // This test's own buffers, counted: the global live count is shared with the
    // tests running in parallel, and "not more than before" would pass a leak.
    let made = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let (made2, released2) = (made.clone(), released.clone());
    let worker = std::thread::spawn(move || {
        for i in 0..n {
            loop {
                let b = counted(i.to_le_bytes().to_vec(), &made2, &released2);
                match r.send(id, b) {
                    Ok(()) => break,
                    Err(Error::Full) => std::thread::sleep(Duration::from_micros(200)),
                    Err(e) => panic!("{e}"),
                }
            }
        }
    });
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; n as usize * 4];
        peer.read_exact(&mut buf).unwrap();
        for (i, c) in buf.chunks(4).enumerate() {
            assert_eq!(u32::from_le_bytes(c.try_into().unwrap()), i as u32);
        }
    });
    poll_until(&m, 30, || reader.is_finished() && worker.is_finished());
    worker.join().unwrap();
    reader.join().unwrap();
    drop(m);
    let made = made.load(Ordering::SeqCst);
    assert!(made >= n as usize);
    assert_eq!(released.load(Ordering::SeqCst), made, "every buffer made (refused ones too) released exactly once");
}

/// A buffer whose release is counted; `made` counts the buffers.
fn counted(data: Vec<u8>, made: &Arc<AtomicUsize>, released: &Arc<AtomicUsize>) -> Bytes {
    made.fetch_add(1, Ordering::SeqCst);
    let (ptr, len) = (data.as_ptr(), data.len());
    let released = released.clone();
    // SAFETY: the vector (moved into the release closure, its heap block unmoved)
    // lives until the closure runs.
    unsafe {
        Bytes::from_foreign(
            ptr,
            len,
            Some(Box::new(move || {
                drop(data);
                released.fetch_add(1, Ordering::SeqCst);
            })),
        )
    }
}

#[test]
fn free_with_queued_data_releases_every_buffer_and_delivers_close() {
    let m = Manager::new().unwrap();
    let closes = Rc::new(RefCell::new(0));
    let accepted: Rc<RefCell<Vec<ConnId>>> = Rc::default();
    let (c, a) = (closes.clone(), accepted.clone());
    let lid = m
        .listen("tcp://127.0.0.1:0", Rc::new(move |_: &Manager, id: ConnId, ev: &Event<'_>| match ev {
            Event::Accept => a.borrow_mut().push(id),
            Event::Close => *c.borrow_mut() += 1,
            _ => {}
        }), 0)
        .unwrap();
    let port = port_of(&m, lid);
    let peers: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    poll_until(&m, 5, || accepted.borrow().len() == 3);
    let shared = Bytes::from_vec(vec![3u8; 4 * 1024 * 1024]);
    for id in accepted.borrow().iter() {
        m.send_bytes(*id, shared.clone()).unwrap();
    }
    m.poll(Some(Duration::from_millis(10))).unwrap();
    assert!(shared.ref_count() > 1, "still queued: peers do not read");
    drop(m);
    assert_eq!(*closes.borrow(), 4, "three connections and the listener");
    assert_eq!(shared.ref_count(), 1);
    drop(peers);
}

#[test]
fn ids_are_never_reused_and_lookup_fails_after_close() {
    let m = Manager::new().unwrap();
    let h: tern::DynHandler = Rc::new(|_: &Manager, _: ConnId, _: &Event<'_>| {});
    let a = m.listen("tcp://127.0.0.1:0", h.clone(), 0).unwrap();
    m.close_now(a).unwrap();
    m.poll(Some(Duration::ZERO)).unwrap();
    assert!(!m.contains(a));
    let b = m.listen("tcp://127.0.0.1:0", h, 0).unwrap();
    assert!(b > a);
    assert_eq!(m.send(a, b"x"), Err(Error::Closed));
}

#[test]
fn graceful_close_that_cannot_flush_is_forced_after_close_timeout() {
    let m = Manager::new().unwrap();
    m.set_option(Opt::CloseTimeoutMs, 300).unwrap();
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let l2 = log.clone();
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
        Event::Accept => {
            // Far more than the socket buffers hold: the peer never reads.
            m.send(id, &vec![7u8; 8 << 20]).unwrap();
            m.close(id).unwrap();
        }
        Event::Error(e) => l2.borrow_mut().push(format!("error {e}")),
        Event::Close => l2.borrow_mut().push("close".into()),
        _ => {}
    });
    let lid = m.listen("tcp://127.0.0.1:0", handler, 0).unwrap();
    let silent = TcpStream::connect(("127.0.0.1", port_of(&m, lid))).unwrap();
    let t = Instant::now();
    poll_until(&m, 5, || log.borrow().len() == 2);
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(250) && e < Duration::from_secs(3), "{e:?}");
    let log = log.borrow();
    assert!(log[0].contains("close timed out with data unsent"), "{log:?}");
    assert_eq!(log[1], "close");
    drop(silent);
}

#[test]
fn graceful_close_after_an_echo_delivers_everything_then_eof() {
    let m = Manager::new().unwrap();
    let closed = Rc::new(RefCell::new(false));
    let c2 = closed.clone();
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
        Event::Read(d) => {
            m.send(id, d).unwrap();
            m.consume(id, d.len()).unwrap();
            m.close(id).unwrap();
        }
        Event::Close => *c2.borrow_mut() = true,
        _ => {}
    });
    let lid = m.listen("tcp://127.0.0.1:0", handler, 0).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port_of(&m, lid))).unwrap();
    s.write_all(b"ping").unwrap();
    let mut got = Vec::new();
    let reader = std::thread::spawn(move || {
        s.read_to_end(&mut got).unwrap();
        got
    });
    poll_until(&m, 5, || *closed.borrow());
    assert_eq!(reader.join().unwrap(), b"ping", "all data, then EOF");
}
