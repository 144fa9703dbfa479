//! Feeding the front of a send queue to rustls, which encrypts it into records.
//! Nothing is taken off the queue here: the caller advances it once the records
//! are written (see `stream`).

use crate::buf::send_queue::{FileSeg, SendQueue};
use rustls::Connection;
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;

/// Slices offered to rustls per call: enough for a batch of small WebSocket frames.
const SLICES: usize = 64;

/// A connection's file buffer: one read per batch.
pub const FILE_BUF: usize = super::stream::BATCH;

/// Encrypts bytes from the front of `q`: the memory chunks up to the first file
/// segment, or up to `max` bytes of the file segment in front. Returns how many
/// plaintext bytes rustls took (its buffer limit bounds them to about a batch).
pub fn front(conn: &mut Connection, q: &SendQueue, file_buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    match q.front_file() {
        Some((seg, done)) => file(conn, seg, done, file_buf, max),
        None => memory(conn, q),
    }
}

/// Memory chunks go to rustls by reference: the record it builds is the only copy.
fn memory(conn: &mut Connection, q: &SendQueue) -> io::Result<usize> {
    let mut iov = [IoSlice::new(&[]); SLICES];
    let (n, _) = q.memory_slices(&mut iov);
    conn.writer().write_vectored(&iov[..n])
}

/// File bytes have to pass through memory to be encrypted: they are read into the
/// connection's file buffer (one batch, allocated while file segments are queued)
/// and encrypted from there, `max` bytes at most.
fn file(conn: &mut Connection, seg: &FileSeg, done: usize, file_buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    if file_buf.is_empty() {
        file_buf.resize(FILE_BUF, 0);
    }
    encrypt_file(conn, seg, done, file_buf, max)
}

fn encrypt_file(conn: &mut Connection, seg: &FileSeg, done: usize, piece: &mut [u8], max: usize) -> io::Result<usize> {
    let goal = (seg.len - done).min(max);
    let mut total = 0;
    while total < goal {
        let want = (goal - total).min(piece.len());
        let at = seg.offset + (done + total) as u64;
        let got = match seg.file.read_at(&mut piece[..want], at) {
            // End of file before the end of the segment: the file shrank under a
            // response whose length is already promised.
            Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent")),
            r => r,
        };
        let got = match got {
            Ok(n) => n,
            // What was encrypted already goes out; the next call meets the error.
            Err(_) if total > 0 => break,
            Err(e) => return Err(e),
        };
        let took = conn.writer().write(&piece[..got])?;
        total += took;
        if took < got {
            break;
        }
    }
    Ok(total)
}
