//! `Bytes`: an immutable, reference-counted byte buffer that may be queued on many
//! connections at once and handed between threads.
//!
//! This is where a wrapped buffer's release hook (the C free callback) runs: in
//! `Drop for Inner`, exactly once, when the last reference goes. A reference is held
//! by every send queue the buffer sits in until its last byte reaches the kernel, so
//! "last reference gone" means "written or discarded everywhere".

use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Process-wide count of live buffers, for leak checks in tests.
static LIVE: AtomicU64 = AtomicU64::new(0);

/// Runs once when the last reference to a foreign buffer is gone.
type Release = Box<dyn FnOnce() + Send>;

enum Storage {
    /// Memory tern allocated: a leaked `Box<[u8]>` (raw, so that a C writer holding
    /// the data pointer of a fresh `alloc` never aliases a live Rust reference).
    Heap,
    /// Memory the embedder owns; the hook gives it back.
    Foreign(Option<Release>),
}

pub(crate) struct Inner {
    ptr: NonNull<u8>,
    len: usize,
    storage: Storage,
}

// SAFETY: the bytes are never mutated through a `Bytes` (only through the pointer
// `alloc` hands out before the buffer is shared, which the contract makes the
// caller's duty), so shared access from many threads is sound. The release hook is
// `Send` and only touched in `Drop`, which has exclusive access.
unsafe impl Send for Inner {}
// SAFETY: see above; no `&self` method mutates anything.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        match &mut self.storage {
            Storage::Heap => {
                let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
                // SAFETY: `ptr`/`len` came from `Box::into_raw` of a `Box<[u8]>` of this
                // length in `Bytes::heap`, and this is the only place that frees it.
                drop(unsafe { Box::from_raw(slice) });
            }
            Storage::Foreign(release) => {
                if let Some(release) = release.take() {
                    release();
                }
            }
        }
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A shared, immutable byte buffer. Cloning adds a reference; dropping removes one.
#[derive(Clone)]
pub struct Bytes(Arc<Inner>);

impl Bytes {
    fn new(ptr: NonNull<u8>, len: usize, storage: Storage) -> Bytes {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Bytes(Arc::new(Inner { ptr, len, storage }))
    }

    fn heap(boxed: Box<[u8]>) -> Bytes {
        let len = boxed.len();
        let raw = Box::into_raw(boxed) as *mut u8;
        // SAFETY: `Box::into_raw` never returns null (empty boxes are dangling, not null).
        let ptr = unsafe { NonNull::new_unchecked(raw) };
        Bytes::new(ptr, len, Storage::Heap)
    }

    /// A buffer holding a copy of `data`.
    pub fn copy_from(data: &[u8]) -> Bytes {
        Bytes::heap(data.to_vec().into_boxed_slice())
    }

    /// Takes ownership of a vector without copying it.
    pub fn from_vec(v: Vec<u8>) -> Bytes {
        Bytes::heap(v.into_boxed_slice())
    }

    /// A zero-filled buffer of `len` bytes and a pointer through which the creator may
    /// fill it before it is shared or handed to tern.
    pub fn alloc(len: usize) -> (Bytes, *mut u8) {
        let b = Bytes::heap(vec![0u8; len].into_boxed_slice());
        let p = b.0.ptr.as_ptr();
        (b, p)
    }

    /// Wraps memory owned elsewhere without copying; `release` runs exactly once, on
    /// whichever thread drops the last reference.
    ///
    /// # Safety
    /// `ptr` must be valid for reads of `len` bytes, and unchanged, until `release`
    /// runs (or forever, if `release` is `None`).
    pub unsafe fn from_foreign(ptr: *const u8, len: usize, release: Option<Release>) -> Bytes {
        let ptr = NonNull::new(ptr as *mut u8).unwrap_or(NonNull::dangling());
        let len = if ptr == NonNull::dangling() { 0 } else { len };
        Bytes::new(ptr, len, Storage::Foreign(release))
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes for as long as `Inner` lives (the
        // invariant of every constructor), and `self` keeps `Inner` alive.
        unsafe { std::slice::from_raw_parts(self.0.ptr.as_ptr(), self.0.len) }
    }

    pub fn len(&self) -> usize {
        self.0.len
    }

    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// Buffers alive in this process right now.
    pub fn live_count() -> u64 {
        LIVE.load(Ordering::Relaxed)
    }

    /// References alive to these bytes (queues included).
    pub fn ref_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// Turns this reference into a thin raw pointer (for handles crossing the C ABI).
    pub fn into_raw(self) -> *const () {
        Arc::into_raw(self.0) as *const ()
    }

    /// Takes back a reference made by [`Bytes::into_raw`].
    ///
    /// # Safety
    /// `p` must come from `into_raw` and its reference must not be used again.
    pub unsafe fn from_raw(p: *const ()) -> Bytes {
        // SAFETY: the caller passes a pointer from `Arc::into_raw` it owns.
        Bytes(unsafe { Arc::from_raw(p as *const Inner) })
    }

    /// Runs `f` on the buffer behind a raw reference without consuming it.
    ///
    /// # Safety
    /// `p` must come from `into_raw` and still hold its reference.
    pub unsafe fn with_raw<R>(p: *const (), f: impl FnOnce(&Bytes) -> R) -> R {
        // SAFETY: the caller guarantees `p` is a live reference; ManuallyDrop keeps the
        // count unchanged.
        let b = ManuallyDrop::new(Bytes(unsafe { Arc::from_raw(p as *const Inner) }));
        f(&b)
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn foreign_release_runs_once_after_last_clone() {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        let data = b"hello".to_vec();
        let p = data.as_ptr();
        let release = Box::new(move || {
            drop(data);
            CALLS.fetch_add(1, Ordering::SeqCst);
        });
        // SAFETY: the vector's heap block lives (unmoved) until release runs.
        let a = unsafe { Bytes::from_foreign(p, 5, Some(release)) };
        let b = a.clone();
        let t = std::thread::spawn(move || {
            assert_eq!(b.as_slice(), b"hello");
            drop(b)
        });
        t.join().unwrap();
        assert_eq!(CALLS.load(Ordering::SeqCst), 0);
        drop(a);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn raw_round_trip_keeps_count() {
        let a = Bytes::copy_from(b"xyz");
        let raw = a.clone().into_raw();
        // SAFETY: raw holds a reference made just above.
        unsafe { Bytes::with_raw(raw, |b| assert_eq!(b.as_slice(), b"xyz")) };
        // SAFETY: raw is consumed here and not used again.
        let back = unsafe { Bytes::from_raw(raw) };
        assert_eq!(Arc::strong_count(&back.0), 2);
    }
}
