//! The raw socket calls. `send_vectored` is where every byte tern writes leaves for
//! the kernel: one `sendmsg` with `MSG_NOSIGNAL`, so a vanished peer is an `EPIPE`
//! for that connection, never a SIGPIPE for the process.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// The most iovecs handed to one `sendmsg`; Linux allows 1024, and past a few dozen
/// chunks the syscall is already moving as much as the socket buffer takes.
pub(crate) const MAX_IOV: usize = 64;

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

/// One `recv` into `buf`; `Ok(0)` is end of stream.
pub fn recv(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
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

/// True when the peer has nothing waiting to be read (or has closed): closing then
/// sends a FIN, not a reset that could destroy the response the peer is reading.
pub fn peer_quiet(sock: &impl AsRawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: `byte` is valid for a 1-byte write for the call; MSG_PEEK leaves the
    // socket's input untouched.
    let r = unsafe { libc::recv(sock.as_raw_fd(), (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    r == 0 || (r < 0 && would_block(&io::Error::last_os_error()))
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
