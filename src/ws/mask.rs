//! RFC 6455 §5.3 payload masking: XOR with a 4-byte key, in place.
//!
//! Masking is its own inverse, so one function masks (client send) and unmasks
//! (server receive). `offset` is the position of `buf[0]` within the frame's payload,
//! so a payload that arrives in several pieces is unmasked piece by piece with the
//! key's phase carried along.
//!
//! Speed: the key is widened to a 32-byte pattern and the buffer is processed in
//! 32-byte chunks of plain `u8` XOR, which LLVM turns into vector instructions (SSE2
//! on any x86_64, NEON on aarch64); the chunks need no alignment, so there is no
//! unaligned head to peel off and no `unsafe`. The tail (< 32 bytes) goes 8 bytes, then
//! 1 byte at a time. `mask_bench` (ignored test) measures it.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher, RandomState};

/// Bytes processed per step of the wide loop.
const WIDE: usize = 32;

/// XORs `buf` with `key`, starting at key byte `offset % 4`.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotated(key, offset);
    let mut pattern = [0u8; WIDE];
    for (i, p) in pattern.iter_mut().enumerate() {
        *p = key[i % 4];
    }
    let mut chunks = buf.chunks_exact_mut(WIDE);
    for chunk in &mut chunks {
        for (b, k) in chunk.iter_mut().zip(pattern.iter()) {
            *b ^= k;
        }
    }
    // WIDE is a multiple of 4: the remainder starts at key phase 0 again.
    let rest = chunks.into_remainder();
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut words = rest.chunks_exact_mut(8);
    for w in &mut words {
        let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) ^ word;
        w.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// The key as seen from payload position `offset`.
fn rotated(key: [u8; 4], offset: usize) -> [u8; 4] {
    let s = offset % 4;
    [key[s], key[(s + 1) % 4], key[(s + 2) % 4], key[(s + 3) % 4]]
}

/// Keys drawn from the system RNG at once: one `getrandom` call per 256 client frames.
const POOL_BYTES: usize = 1024;

/// A thread's supply of masking keys. Per thread rather than per connection: a loop
/// thread serves all its client connections from one 1 KiB buffer, and a connection
/// carries no key state at all.
struct KeyPool {
    bytes: [u8; POOL_BYTES],
    used: usize,
}

thread_local! {
    static KEYS: RefCell<KeyPool> = const { RefCell::new(KeyPool { bytes: [0; POOL_BYTES], used: POOL_BYTES }) };
}

/// A fresh masking key for a client frame (RFC 6455 §5.3: unpredictable, from a strong
/// source of entropy, so that a script cannot choose the bytes an intermediary sees).
pub fn random_key() -> [u8; 4] {
    KEYS.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.used == POOL_BYTES {
            refill(&mut pool.bytes);
            pool.used = 0;
        }
        let at = pool.used;
        pool.used += 4;
        [pool.bytes[at], pool.bytes[at + 1], pool.bytes[at + 2], pool.bytes[at + 3]]
    })
}

fn refill(bytes: &mut [u8; POOL_BYTES]) {
    if getrandom::fill(bytes).is_err() {
        fallback_fill(bytes);
    }
}

fn fallback_fill(bytes: &mut [u8; POOL_BYTES]) {
    // The kernel's RNG failing is not expected on any supported system; rather than
    // panic or send predictable keys, fall back to SipHash keyed from the OS by std
    // (`RandomState`), run over a counter: still unpredictable to the peer.
    let state = RandomState::new();
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        chunk.copy_from_slice(&h.finish().to_ne_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_example_hello_unmasks() {
        // RFC 6455 §5.7: a masked "Hello" from a client.
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut p = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut p, key, 0);
        assert_eq!(&p, b"Hello");
    }

    #[test]
    fn matches_naive_loop_on_random_lengths_offsets_and_alignments() {
        let mut rng = fastrand::Rng::with_seed(0x6d61_736b);
        let mut backing = vec![0u8; 300];
        for _ in 0..5000 {
            let len = rng.usize(0..200);
            let start = rng.usize(0..16); // unaligned starts
            let offset = rng.usize(0..1000);
            let key = [rng.u8(..), rng.u8(..), rng.u8(..), rng.u8(..)];
            rng.fill(&mut backing);
            let mut expect = backing.clone();
            naive(&mut expect[start..start + len], key, offset);
            apply_mask(&mut backing[start..start + len], key, offset);
            assert_eq!(backing, expect, "len {len} start {start} offset {offset}");
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_at_once() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..500 {
            let len = rng.usize(0..500);
            let key = [rng.u8(..), rng.u8(..), rng.u8(..), rng.u8(..)];
            let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut pieces = data.clone();
            let mut at = 0;
            while at < len {
                let n = rng.usize(1..=(len - at).min(70));
                apply_mask(&mut pieces[at..at + n], key, at);
                at += n;
            }
            assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn masking_twice_restores_the_input() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut buf = data.clone();
        apply_mask(&mut buf, [1, 2, 3, 4], 3);
        assert_ne!(buf, data);
        apply_mask(&mut buf, [1, 2, 3, 4], 3);
        assert_eq!(buf, data);
    }

    #[test]
    fn random_keys_differ_and_span_several_refills() {
        let keys: Vec<[u8; 4]> = (0..1000).map(|_| random_key()).collect();
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        // 1000 draws from 2^32: a repeat is possible but very unlikely (p ~ 1e-4).
        assert!(distinct.len() >= 999, "{} distinct", distinct.len());
        let (mut a, mut b) = ([0u8; POOL_BYTES], [0u8; POOL_BYTES]);
        fallback_fill(&mut a);
        fallback_fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; POOL_BYTES]);
    }

    /// `cargo test --release --lib ws::mask::tests::mask_bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn mask_bench() {
        let mut buf = vec![0x5au8; 1 << 20];
        let rounds = 2000;
        let t = std::time::Instant::now();
        for i in 0..rounds {
            apply_mask(std::hint::black_box(&mut buf), [1, 2, 3, 4], i);
        }
        let secs = t.elapsed().as_secs_f64();
        let mut naive_buf = buf.clone();
        let t2 = std::time::Instant::now();
        for i in 0..rounds / 10 {
            naive(std::hint::black_box(&mut naive_buf), [1, 2, 3, 4], i);
        }
        let naive_secs = t2.elapsed().as_secs_f64() * 10.0;
        println!(
            "apply_mask: {:.2} GB/s; naive loop: {:.2} GB/s",
            rounds as f64 * buf.len() as f64 / secs / 1e9,
            rounds as f64 * buf.len() as f64 / naive_secs / 1e9
        );
    }
}
