//! The raw socket calls. `send_vectored` and `send_file` are the syscalls every byte
//! tern writes over plain TCP goes through (called from `transport::plain`). A vanished peer must be an `EPIPE` for that
//! connection, never a SIGPIPE for the process: `sendmsg` takes `MSG_NOSIGNAL`;
//! `sendfile` has no such flag, so it runs under a [`SigpipeBlock`].

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// The most iovecs handed to one `sendmsg` (Linux allows 1024). Small WebSocket
/// frames are two slices each (header, shared payload), so a broadcast queues many
/// short slices: 256 of them still fit in a few KiB of stack and let one syscall carry
/// a hundred frames.
pub(crate) const MAX_IOV: usize = 256;

/// Writes the slices in order with one `sendmsg(MSG_NOSIGNAL | MSG_DONTWAIT)`.
/// Returns the number of bytes the kernel took (possibly fewer than offered).
pub fn send_vectored(sock: &impl AsRawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let fd: RawFd = sock.as_raw_fd();
    let n = bufs.len().min(MAX_IOV);
    // SAFETY: an all-zero msghdr is a valid "no address, no control data" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = n as _;
    loop {
        // SAFETY: `msg` points at `n` valid iovecs borrowed from `bufs` for the call;
        // `fd` is an open socket owned by `sock`.
        let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sends up to `len` bytes of `file` from `offset` with one `sendfile` (the bytes go
/// from the page cache to the socket without a copy through user space). The socket
/// is non-blocking, so this takes what the socket buffer has room for. `_guard`
/// proves SIGPIPE is blocked on this thread for the call; after an `EPIPE` the
/// signal the kernel raised is consumed before returning.
pub fn send_file(sock: &impl AsRawFd, file: &impl AsRawFd, offset: u64, len: usize, guard: &SigpipeBlock) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: both fds are open and owned by their borrowed owners for the call;
        // `off` is a valid off_t the kernel reads and updates.
        let r = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, len) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EPIPE) => guard.consume_raised(),
            _ => {}
        }
        return Err(e);
    }
}

/// Keeps SIGPIPE blocked on the calling thread while it lives.
///
/// Why: `sendfile` to a socket whose peer is gone fails with `EPIPE` *and* raises a
/// SIGPIPE directed at the calling thread, whose default action kills the process.
/// tern must not change the program's process-wide disposition (the program may
/// rely on its own handler, or on the default in other threads), so instead:
/// 1. the loop thread blocks SIGPIPE (`pthread_sigmask`, this thread only) around the
///    `sendfile` calls of one flush: a SIGPIPE raised meanwhile stays pending instead
///    of being delivered;
/// 2. after an `EPIPE`, [`consume_raised`](Self::consume_raised) takes that pending
///    signal off with `sigtimedwait` (zero timeout, never waits), unless a SIGPIPE was
///    already pending before the block began: that one is not tern's (the program had
///    SIGPIPE blocked) and is left for the program, and the kernel folds ours into it;
/// 3. dropping the guard restores the thread's previous mask, so nothing is left
///    pending that was not pending before.
pub struct SigpipeBlock {
    old: libc::sigset_t,
    pending_before: bool,
    /// A signal mask is per thread: the guard must end on the thread it began on.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl SigpipeBlock {
    pub fn new() -> SigpipeBlock {
        let set = sigpipe_set();
        // SAFETY: an all-zero sigset_t is valid storage for pthread_sigmask to fill.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is initialised; `old` is valid for writes. Blocking a signal
        // on the calling thread cannot fail for a valid `how`.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
        SigpipeBlock { old, pending_before: sigpipe_pending(), _not_send: std::marker::PhantomData }
    }

    /// Takes the SIGPIPE our failed `sendfile` raised, if it is ours to take.
    fn consume_raised(&self) {
        if self.pending_before || !sigpipe_pending() {
            return;
        }
        let set = sigpipe_set();
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        loop {
            // SAFETY: `set` and `zero` are valid for the call; no siginfo is wanted.
            let r = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
            if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return;
            }
        }
    }
}

impl Default for SigpipeBlock {
    fn default() -> SigpipeBlock {
        SigpipeBlock::new()
    }
}

impl Drop for SigpipeBlock {
    fn drop(&mut self) {
        // SAFETY: `old` is the mask pthread_sigmask returned in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; SIGPIPE is a valid signal.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

/// Whether SIGPIPE is pending for this thread or the process.
fn sigpipe_pending() -> bool {
    // SAFETY: sigpending fills the zeroed set; sigismember only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set);
        libc::sigismember(&set, libc::SIGPIPE) == 1
    }
}

/// One `recv` into `buf` (which need not be initialised: the kernel only writes);
/// returns how many bytes it wrote, `Ok(0)` being end of stream.
pub fn recv(sock: &impl AsRawFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call, and
        // `recv` never reads from it.
        let r = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether an error means only "try again when the socket is ready".
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// TCP_CORK on or off: while on, the kernel sends only full segments (see the send
/// queue: set around file bodies).
pub fn set_cork(sock: &impl AsRawFd, on: bool) -> io::Result<()> {
    let v: libc::c_int = on.into();
    // SAFETY: `v` is a valid c_int for the call's duration; the fd is owned by `sock`.
    let r = unsafe {
        libc::setsockopt(sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_CORK, (&v as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises a listening socket's accept backlog to the system maximum. mio (like std)
/// listens with 128, which a burst of connects overflows: the kernel then drops SYNs
/// and clients stall a whole second on the retransmit. Linux accepts a second
/// `listen` on a listening socket as "change the backlog".
pub fn raise_backlog(sock: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: `listen` on a socket fd owned by `sock`; no memory is passed.
    if unsafe { libc::listen(sock.as_raw_fd(), libc::SOMAXCONN) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
