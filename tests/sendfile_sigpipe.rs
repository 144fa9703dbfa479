//! `sendfile` to peers that vanish, with SIGPIPE at its default disposition (which
//! kills the process if tern ever lets one through). Its own test binary: the
//! disposition is process-wide, and std's harness would otherwise ignore SIGPIPE.

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern::net::socket::{send_file, SigpipeBlock};
use tern::{ConnId, Event, Manager};

const FILE_LEN: usize = 64 << 20;

fn sigpipe_default() {
    // SAFETY: setting a signal's disposition to its default is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
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
    std::thread::sleep(Duration::from_millis(20));
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

#[test]
fn sendfile_to_reset_peers_never_raises_sigpipe() {
    sigpipe_default();
    let file = sparse_file(FILE_LEN);

    // Directly: EPIPE under the guard leaves nothing pending.
    send_until_epipe(&file);
    assert!(!sigpipe_pending(), "the SIGPIPE raised by sendfile was consumed");

    // A SIGPIPE the program itself left pending (blocked) is not tern's to take.
    let own_sigpipe_is_left_pending = || {
        // SAFETY: blocking SIGPIPE on this thread and raising it at this thread;
        // it is taken off again below before the mask is restored.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            libc::pthread_kill(libc::pthread_self(), libc::SIGPIPE);
            send_until_epipe(&file);
            assert!(sigpipe_pending(), "the program's own SIGPIPE is still pending");
            let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            assert_eq!(libc::sigtimedwait(&set, std::ptr::null_mut(), &zero), libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    };
    own_sigpipe_is_left_pending();

    // Through the reactor: clients reset in the middle of large downloads.
    let m = Manager::new().unwrap();
    let errors = Rc::new(std::cell::Cell::new(0));
    let (f, e) = (file.clone(), errors.clone());
    let handler = Rc::new(move |m: &Manager, id: ConnId, ev: &Event<'_>| match ev {
        Event::Accept => {
            m.send(id, b"file follows\n").unwrap();
            m.send_file(id, f.clone(), 0, FILE_LEN).unwrap();
            assert!(m.queued(id).unwrap() > FILE_LEN, "file bytes count as queued");
        }
        Event::Error(_) => e.set(e.get() + 1),
        _ => {}
    });
    let lid = m.listen("tcp://127.0.0.1:0", handler, 0).unwrap();
    let port = m.local_addr(lid).unwrap().port();
    let baseline = open_fds();
    const CLIENTS: usize = 20;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                // A different amount read before each reset, up to ~8 MiB.
                let mut left = (i * 7919 % CLIENTS) * (400 << 10) + 1;
                let mut buf = vec![0u8; 64 << 10];
                while left > 0 {
                    let n = s.read(&mut buf[..left.min(64 << 10)]).unwrap();
                    assert!(n > 0);
                    left -= n;
                }
                reset(s);
            })
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(30);
    while !(clients.iter().all(|c| c.is_finished()) && m.conn_count() == 1) {
        assert!(Instant::now() < end, "timed out");
        m.poll(Some(Duration::from_millis(10))).unwrap();
    }
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(errors.get(), CLIENTS, "every reset connection ended with an error");
    assert_eq!(open_fds(), baseline, "descriptors back to the baseline");
    assert_eq!(Arc::strong_count(&file), 2, "only the test and the handler hold the file");
    assert!(!sigpipe_pending());
}
