//! `sendfile` to peers that vanish, with SIGPIPE at its default disposition (which
//! kills the process if tern ever lets one through). Its own test binary with one
//! test: the disposition is process-wide, std's runtime starts every Rust program with
//! SIGPIPE ignored (so it is set back to the default first), and the phases must not
//! run in parallel.
//!
//! A reset alone makes the next write fail with ECONNRESET, which raises no SIGPIPE;
//! a reset that reaches a socket in CLOSE_WAIT (the peer half-closed first) makes the
//! next `sendfile` fail with EPIPE, which does. So some clients half-close before
//! resetting, and the number of connections that failed with EPIPE is checked: the
//! SIGPIPE path is known to have run.

use std::cell::Cell;
use std::fs::File;
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern::net::socket::{send_file, SigpipeBlock};
use tern::{ConnId, Event, Manager};

const FILE_LEN: usize = 64 << 20;
const HELLO: &[u8] = b"file follows\n";

fn sigpipe_default() {
    // SAFETY: setting a signal's disposition to its default is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// SIGPIPE's process-wide disposition: handler, flags and the signals its mask holds.
fn disposition() -> (libc::sighandler_t, libc::c_int, Vec<i32>) {
    // SAFETY: sigaction with a null new action only fills `old`; sigismember reads it.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old), 0);
        let mask = (1..65).filter(|&s| libc::sigismember(&old.sa_mask, s) == 1).collect();
        (old.sa_sigaction, old.sa_flags, mask)
    }
}

/// The signals blocked on the calling thread.
fn thread_mask() -> Vec<i32> {
    // SAFETY: pthread_sigmask with a null set only fills `cur`; sigismember reads it.
    unsafe {
        let mut cur: libc::sigset_t = std::mem::zeroed();
        assert_eq!(libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur), 0);
        (1..65).filter(|&s| libc::sigismember(&cur, s) == 1).collect()
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A sparse file of `len` bytes, already unlinked (the open file stays readable).
fn sparse_file(len: usize) -> Arc<File> {
    let path = std::env::temp_dir().join(format!("tern-sigpipe-{}", std::process::id()));
    File::create(&path).unwrap().set_len(len as u64).unwrap();
    let f = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    Arc::new(f)
}

/// Closing with SO_LINGER 0 sends a reset instead of a FIN.
fn reset(s: TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    let size = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: `l` is a valid linger struct of `size` bytes for the call.
    let r = unsafe { libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, (&l as *const libc::linger).cast(), size) };
    assert_eq!(r, 0);
    drop(s);
}

/// Pins a small receive buffer, so the server keeps file bytes queued.
fn small_rcvbuf(s: &TcpStream) {
    let v: libc::c_int = 4096;
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` is a valid c_int of `size` bytes for the call.
    let r = unsafe { libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, (&v as *const libc::c_int).cast(), size) };
    assert_eq!(r, 0);
}

fn sigpipe_pending() -> bool {
    // SAFETY: sigpending fills the zeroed set; sigismember reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set);
        libc::sigismember(&set, libc::SIGPIPE) == 1
    }
}

/// Resets the peer of a fresh connection and sends a file into it until `EPIPE`.
fn send_until_epipe(file: &File) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    reset(client);
    // Wait for the reset to arrive (the socket reports an error) rather than sleeping.
    let mut p = libc::pollfd { fd: server.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: `p` is one valid pollfd for the call.
    let ready = unsafe { libc::poll(&mut p, 1, 5000) };
    assert!(ready == 1 && p.revents & (libc::POLLERR | libc::POLLHUP) != 0, "the reset arrived");
    let guard = SigpipeBlock::new();
    for _ in 0..10 {
        if let Err(e) = send_file(&server, file, 0, 1 << 20, &guard) {
            if e.raw_os_error() == Some(libc::EPIPE) {
                return;
            }
        }
    }
    panic!("no EPIPE after a reset");
}

/// Blocks SIGPIPE on this thread and raises one at it: the program's own, pending.
/// Returns the mask to restore.
fn own_pending_sigpipe() -> libc::sigset_t {
    // SAFETY: blocking SIGPIPE on this thread, then raising it at this thread; the
    // caller takes it off with `take_own_sigpipe` before restoring the mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE);
        old
    }
}

fn take_own_sigpipe(old: libc::sigset_t) {
    // SAFETY: `set` holds SIGPIPE, which is blocked and pending; `old` is the mask
    // own_pending_sigpipe saved.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        assert_eq!(libc::sigtimedwait(&set, std::ptr::null_mut(), &zero), libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// What the reactor phase saw.
#[derive(Default)]
struct Seen {
    errors: Cell<usize>,
    epipes: Cell<usize>,
    writes_checked: Cell<usize>,
    /// Bytes written so far, per connection.
    written: std::cell::RefCell<std::collections::HashMap<ConnId, usize>>,
}

/// A manager whose accepted connections get `HELLO` and then the whole file. Every
/// WRITE event (each follows a flush that ran sendfile) checks the loop thread's mask.
fn file_server(file: &Arc<File>, mask: &[i32]) -> (Manager, u16, Rc<Seen>) {
    let m = Manager::new().unwrap();
    let seen = Rc::new(Seen::default());
    let (f, s, want) = (file.clone(), seen.clone(), mask.to_vec());
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
        Event::Accept => {
            m.send(id, HELLO).unwrap();
            m.send_file(id, f.clone(), 0, FILE_LEN).unwrap();
        }
        Event::Write(n) => {
            assert_eq!(thread_mask(), want, "the loop thread's mask after a flush with sendfile");
            s.writes_checked.set(s.writes_checked.get() + 1);
            // File bytes count as queued: what is left plus what went out is the whole.
            let mut written = s.written.borrow_mut();
            let w = written.entry(id).or_default();
            *w += n;
            assert_eq!(m.queued(id).unwrap() + *w, HELLO.len() + FILE_LEN, "queued after {w} bytes written");
        }
        Event::Error(msg) => {
            s.errors.set(s.errors.get() + 1);
            if msg.contains("Broken pipe") {
                s.epipes.set(s.epipes.get() + 1);
            }
        }
        _ => {}
    });
    let lid = m.listen("tcp://127.0.0.1:0", handler, 0).unwrap();
    let port = m.local_addr(lid).unwrap().port();
    (m, port, seen)
}

/// A client that reads `amount` bytes (at least one file byte after `HELLO`) and then
/// resets; with `half_close` it shuts its side down first.
fn client(port: u16, amount: usize, half_close: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if half_close {
            small_rcvbuf(&s);
        }
        let mut left = amount.max(HELLO.len() + 1);
        let mut buf = vec![0u8; 64 << 10];
        while left > 0 {
            let n = s.read(&mut buf[..left.min(64 << 10)]).unwrap();
            assert!(n > 0);
            left -= n;
        }
        if half_close {
            s.shutdown(Shutdown::Write).unwrap();
        }
        reset(s);
    })
}

/// Polls until every client finished and only the listener is left.
fn serve_until_done(m: &Manager, clients: Vec<std::thread::JoinHandle<()>>) {
    let end = Instant::now() + Duration::from_secs(30);
    while !(clients.iter().all(|c| c.is_finished()) && m.conn_count() == 1) {
        assert!(Instant::now() < end, "timed out");
        m.poll(Some(Duration::from_millis(10))).unwrap();
    }
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn sendfile_to_reset_peers_never_raises_sigpipe() {
    sigpipe_default();
    let file = sparse_file(FILE_LEN);
    let disposition_before = disposition();
    let mask_before = thread_mask();
    assert!(!mask_before.contains(&libc::SIGPIPE), "SIGPIPE blocked on the test thread");

    // Directly: EPIPE under the guard leaves nothing pending.
    send_until_epipe(&file);
    assert!(!sigpipe_pending(), "the SIGPIPE raised by sendfile was consumed");
    assert_eq!(thread_mask(), mask_before, "the guard restored the mask");

    // A SIGPIPE the program itself left pending (blocked) is not tern's to take.
    let old = own_pending_sigpipe();
    send_until_epipe(&file);
    assert!(sigpipe_pending(), "the program's own SIGPIPE is still pending");
    take_own_sigpipe(old);

    // Through the reactor: clients reset in the middle of large downloads, some after
    // a half-close (those fail with EPIPE).
    let (m, port, seen) = file_server(&file, &mask_before);
    assert_eq!(disposition(), disposition_before, "SIGPIPE's disposition after Manager::new");
    let checks = Rc::new(Cell::new(0usize));
    let (c2, s2) = (checks.clone(), seen.clone());
    let want = mask_before.clone();
    m.timer_add(
        Duration::from_millis(2),
        true,
        false,
        Box::new(move |_: &Manager| {
            assert_eq!(thread_mask(), want, "the loop thread's mask in a timer callback");
            if s2.writes_checked.get() > 0 {
                c2.set(c2.get() + 1);
            }
        }),
    )
    .unwrap();
    let baseline = open_fds();
    const CLIENTS: usize = 20;
    const HALF_CLOSERS: usize = 8;
    // A different amount read before each reset, up to ~8 MiB.
    let mut clients: Vec<_> = (0..CLIENTS).map(|i| client(port, (i * 7919 % CLIENTS) * (400 << 10) + 1, false)).collect();
    clients.extend((0..HALF_CLOSERS).map(|i| client(port, 1 + i * 1000, true)));
    serve_until_done(&m, clients);
    assert_eq!(seen.errors.get(), CLIENTS + HALF_CLOSERS, "every reset connection ended with an error");
    assert!(
        seen.epipes.get() >= HALF_CLOSERS,
        "{} connections failed with EPIPE, {HALF_CLOSERS} clients half-closed first: the sendfile EPIPE path was not reached",
        seen.epipes.get()
    );
    assert!(seen.writes_checked.get() >= CLIENTS + HALF_CLOSERS, "the mask was checked after sendfile flushes");
    let end = Instant::now() + Duration::from_secs(5);
    while checks.get() == 0 {
        assert!(Instant::now() < end, "the timer never ran after a sendfile flush");
        m.poll(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(thread_mask(), mask_before, "the loop thread's mask after poll");
    assert_eq!(disposition(), disposition_before, "SIGPIPE's disposition after the traffic");
    assert_eq!(open_fds(), baseline, "descriptors back to the baseline");
    assert!(!sigpipe_pending());
    drop(m);
    assert_eq!(disposition(), disposition_before, "SIGPIPE's disposition after the manager is dropped");
    assert_eq!(Arc::strong_count(&file), 1, "the manager released every reference to the file");

    // The program's own pending SIGPIPE survives EPIPEs in the reactor too, and the
    // mask it set (SIGPIPE blocked) is the one restored after each flush.
    let old = own_pending_sigpipe();
    let (m, port, seen) = file_server(&file, &thread_mask());
    serve_until_done(&m, (0..4).map(|i| client(port, 1 + i, true)).collect());
    assert!(seen.epipes.get() >= 4, "{} EPIPEs with SIGPIPE blocked by the program", seen.epipes.get());
    drop(m);
    assert!(sigpipe_pending(), "the program's own SIGPIPE is still pending after EPIPEs in the reactor");
    take_own_sigpipe(old);
    assert!(!sigpipe_pending());
}
