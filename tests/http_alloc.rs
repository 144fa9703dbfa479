//! "No allocation per request in steady state", checked: a counting global allocator
//! counts heap allocations made on the server's loop thread only, and once the
//! connections and pools are warm, thousands of keep-alive requests (pipelined and
//! not, with and without a body) must cost no allocation at all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tern::http::Body;
use tern::{ConnId, Event, Manager, ProtoEvent};

struct Counting;

thread_local! {
    /// Set on the server thread: only its allocations are counted.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the counter is
// only an atomic increment and touches no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTED.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTED.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn read_responses(s: &mut TcpStream, n: usize, buf: &mut Vec<u8>) {
    // Every response of this server is the same size; count them by their ends.
    let mut seen = 0;
    let mut chunk = [0u8; 65536];
    buf.clear();
    while seen < n {
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "EOF after {seen} responses");
        buf.extend_from_slice(&chunk[..k]);
        seen = buf.windows(6).filter(|w| w == b"hello\n").count();
    }
    assert_eq!(seen, n);
}

#[test]
fn keep_alive_requests_allocate_nothing_once_warm() {
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        COUNTED.with(|c| c.set(true));
        let m = Manager::new().unwrap();
        let handler = Rc::new(|m: &Manager, id: ConnId, ev: &Event<'_>| {
            if let Event::Proto(ProtoEvent::HttpMsg(msg)) = ev {
                let _ = msg.header(b"host");
                m.http_reply(id, 200, b"Content-Type: text/plain\r\n", Body::Copy(b"hello\n")).unwrap();
            }
        });
        let lid = m.http_listen("http://127.0.0.1:0", handler, 0).unwrap();
        tx.send(m.local_addr(lid).unwrap().port()).unwrap();
        while !stop2.load(Ordering::SeqCst) {
            m.poll(Some(Duration::from_millis(5))).unwrap();
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut conns: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    let get = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n";
    let post = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde";
    let chunked = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n";
    let mut batch = Vec::new();
    for _ in 0..8 {
        batch.extend_from_slice(get);
        batch.extend_from_slice(post);
        batch.extend_from_slice(chunked);
    }
    let mut buf = Vec::with_capacity(1 << 20);
    let mut round = |conns: &mut Vec<TcpStream>| {
        for s in conns.iter_mut() {
            s.write_all(get).unwrap();
            read_responses(s, 1, &mut buf);
            s.write_all(&batch).unwrap();
            read_responses(s, 24, &mut buf);
        }
    };
    for _ in 0..50 {
        round(&mut conns);
    }
    // Setting up (manager, connections, pools) allocated: the counter does see the
    // loop thread, so the zero below means something.
    let before = ALLOCS.load(Ordering::SeqCst);
    assert!(before > 0, "no allocation counted while warming up");
    for _ in 0..200 {
        round(&mut conns);
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    server.join().unwrap();
    let requests = 200 * 4 * 25;
    assert_eq!(after - before, 0, "{} allocations on the loop thread for {requests} warm requests", after - before);
}
