//! URI glob matching for routing (`tern_http_match`).

/// Patterns up to this many bytes are matched without allocating; routes are short.
const GLOB_STACK_BITS: usize = 512;

/// URI glob matching for routing: `?` is one byte other than `/`, `*` any run of bytes
/// other than `/`, `**` any run including `/`; everything else is literal, and the
/// whole path must match.
///
/// Runs as a set-of-states simulation over the pattern, so the cost is
/// O(pattern × path) even for patterns like `*a*a*a*b` that make backtracking matchers
/// explode; a URL chosen by an attacker cannot stall the event loop.
pub fn glob_match(pattern: &[u8], path: &[u8]) -> bool {
    if !pattern.iter().any(|&b| b == b'*' || b == b'?') {
        return pattern == path;
    }
    // One bit per pattern position, plus one for "whole pattern matched".
    let words = (pattern.len() + 1).div_ceil(64);
    if words * 64 <= GLOB_STACK_BITS {
        let mut a = [0u64; GLOB_STACK_BITS / 64];
        let mut b = [0u64; GLOB_STACK_BITS / 64];
        glob_run(pattern, path, &mut a[..words], &mut b[..words])
    } else {
        let mut v = vec![0u64; 2 * words];
        let (a, b) = v.split_at_mut(words);
        glob_run(pattern, path, a, b)
    }
}

/// One element of a glob pattern.
#[derive(Clone, Copy)]
enum Tok {
    Lit(u8),
    One,
    Star,
    DoubleStar,
}

/// The element starting at byte `i` of `p`, and its length in bytes. `***` reads as
/// `**` then `*`, which matches the same as `**`.
fn tok(p: &[u8], i: usize) -> (Tok, usize) {
    match p[i] {
        b'*' if p.get(i + 1) == Some(&b'*') => (Tok::DoubleStar, 2),
        b'*' => (Tok::Star, 1),
        b'?' => (Tok::One, 1),
        c => (Tok::Lit(c), 1),
    }
}

fn set_bit(set: &mut [u64], i: usize) {
    set[i / 64] |= 1 << (i % 64);
}

/// Adds every position reachable from the set by letting stars match nothing. Stars
/// only lead forward, so one ascending pass reaches the fixed point.
fn glob_closure(p: &[u8], set: &mut [u64]) {
    for w in 0..set.len() {
        let mut bits = set[w];
        while bits != 0 {
            let i = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if i < p.len() {
                if let (Tok::Star | Tok::DoubleStar, n) = tok(p, i) {
                    let j = i + n;
                    set_bit(set, j);
                    if j / 64 == w {
                        bits |= 1 << (j % 64);
                    }
                }
            }
        }
    }
}

fn glob_run<'a>(p: &[u8], s: &[u8], mut cur: &'a mut [u64], mut next: &'a mut [u64]) -> bool {
    set_bit(cur, 0);
    glob_closure(p, cur);
    for &c in s {
        next.fill(0);
        for (w, &word) in cur.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if i == p.len() {
                    continue;
                }
                match tok(p, i) {
                    (Tok::Lit(l), n) if l == c => set_bit(next, i + n),
                    (Tok::One, n) if c != b'/' => set_bit(next, i + n),
                    (Tok::Star, _) if c != b'/' => set_bit(next, i),
                    (Tok::DoubleStar, _) => set_bit(next, i),
                    _ => {}
                }
            }
        }
        glob_closure(p, next);
        std::mem::swap(&mut cur, &mut next);
        if cur.iter().all(|&w| w == 0) {
            return false;
        }
    }
    cur[p.len() / 64] & (1 << (p.len() % 64)) != 0
}
#[cfg(test)]
mod tests {
    use super::*;
    /// Reference glob matcher: plain recursion, exponential but obviously right.
    fn naive_glob(p: &[u8], s: &[u8]) -> bool {
        if p.is_empty() {
            s.is_empty()
        } else if p.starts_with(b"**") {
            (0..=s.len()).any(|k| naive_glob(&p[2..], &s[k..]))
        } else if p[0] == b'*' {
            (0..=s.len()).take_while(|&k| k == 0 || s[k - 1] != b'/').any(|k| naive_glob(&p[1..], &s[k..]))
        } else if p[0] == b'?' {
            !s.is_empty() && s[0] != b'/' && naive_glob(&p[1..], &s[1..])
        } else {
            !s.is_empty() && s[0] == p[0] && naive_glob(&p[1..], &s[1..])
        }
    }

    #[test]
    fn glob_cases() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"/api/users", b"/api/users", true),
            (b"/api/users", b"/api/user", false),
            (b"/api/users", b"/api/users/", false),
            (b"", b"", true),
            (b"", b"/", false),
            (b"/api/*", b"/api/users", true),
            (b"/api/*", b"/api/", true),
            (b"/api/*", b"/api/users/1", false),
            (b"/api/*/x", b"/api/users/x", true),
            (b"/api/*/x", b"/api//x", true),
            (b"/api/**", b"/api/users/1/2", true),
            (b"/api/**", b"/api/", true),
            (b"/api/**", b"/api", false),
            (b"/**/x", b"/a/b/c/x", true),
            (b"/**/x", b"//x", true),
            (b"/**.html", b"/a/b.html", true),
            (b"/*.html", b"/a/b.html", false),
            (b"/?", b"/a", true),
            (b"/?", b"/", false),
            (b"/?", b"//", false),
            (b"/?/", b"/ab/", false),
            (b"*", b"", true),
            (b"*", b"abc", true),
            (b"*", b"a/c", false),
            (b"**", b"a/c", true),
            (b"***", b"a/c", true),
            (b"a*b*c", b"aXXbYYc", true),
            (b"a*b*c", b"aXXbYYcd", false),
            (b"*a*a*b", b"aaab", true),
            (b"/x/**/y/*", b"/x/1/2/y/z", true),
            (b"/x/**/y/*", b"/x/1/2/y/z/w", false),
        ];
        for &(p, s, want) in cases {
            assert_eq!(glob_match(p, s), want, "{:?} vs {:?}", String::from_utf8_lossy(p), String::from_utf8_lossy(s));
            assert_eq!(naive_glob(p, s), want, "reference disagrees on {:?}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn glob_pathological_is_fast() {
        let t = std::time::Instant::now();
        let long = vec![b'a'; 20_000];
        assert!(!glob_match(b"*a*a*a*a*a*a*a*a*a*a*b", &long));
        assert!(!glob_match(b"**a**a**a**a**a**a**a**b", &long));
        let mut with_b = long.clone();
        with_b.push(b'b');
        assert!(glob_match(b"*a*a*a*a*a*a*a*a*a*a*b", &with_b));
        // A long pattern takes the allocating path and still behaves.
        let mut pat = b"*a".repeat(400);
        pat.extend_from_slice(b"*b");
        assert!(pat.len() + 1 > GLOB_STACK_BITS);
        assert!(!glob_match(&pat, &long));
        assert!(glob_match(&pat, &with_b));
        let slashy: Vec<u8> = b"a/".repeat(10_000);
        assert!(!glob_match(b"**a*/**a*/**a*/**b", &slashy));
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t.elapsed());
    }

    use crate::http::test_rng::Rng;

    #[test]
    fn glob_random_against_reference() {
        let mut r = Rng(0xdead_beef_cafe_f00d);
        let palette = b"ab/*?";
        let mut matches = 0;
        for _ in 0..30_000 {
            let p: Vec<u8> = (0..r.below(8)).map(|_| palette[r.below(5)]).collect();
            let s: Vec<u8> = (0..r.below(10)).map(|_| palette[r.below(3)]).collect();
            let want = naive_glob(&p, &s);
            matches += usize::from(want);
            assert_eq!(glob_match(&p, &s), want, "{:?} vs {:?}", String::from_utf8_lossy(&p), String::from_utf8_lossy(&s));
        }
        assert!(matches > 1000, "random cases too rarely match to test much ({matches})");
    }
}
