//! Names resolved recently, kept for a time to live so that connections to the same
//! host (a pool opening its connections, a client reconnecting) do not ask the
//! resolver again each time. Bounded: past `MAX_ENTRIES` names, expired entries go
//! first, then the one closest to expiring.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Names kept at most.
const MAX_ENTRIES: usize = 256;

#[derive(Default)]
pub struct DnsCache {
    entries: HashMap<(Box<str>, u16), Entry>,
}

struct Entry {
    addrs: Vec<SocketAddr>,
    expires: Instant,
}

impl DnsCache {
    /// The addresses `host:port` resolved to, if that was less than its time to live
    /// ago. Names compare case-insensitively (as DNS does).
    pub fn get(&self, host: &str, port: u16, now: Instant) -> Option<Vec<SocketAddr>> {
        let e = self.entries.get(&(host.to_ascii_lowercase().into_boxed_str(), port))?;
        (now < e.expires).then(|| e.addrs.clone())
    }

    /// Remembers what `host:port` resolved to for `ttl` (nothing for a zero `ttl` or
    /// no address: a failed lookup is asked again next time).
    pub fn put(&mut self, host: &str, port: u16, addrs: &[SocketAddr], ttl: Duration, now: Instant) {
        if ttl.is_zero() || addrs.is_empty() {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, e| e.expires > now);
        }
        if self.entries.len() >= MAX_ENTRIES {
            let soonest = self.entries.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| k.clone());
            if let Some(k) = soonest {
                self.entries.remove(&k);
            }
        }
        let key = (host.to_ascii_lowercase().into_boxed_str(), port);
        self.entries.insert(key, Entry { addrs: addrs.to_vec(), expires: now + ttl });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 80))
    }

    #[test]
    fn an_entry_lives_exactly_its_time_to_live() {
        let mut c = DnsCache::default();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(30);
        c.put("Example.ORG", 80, &[addr(1), addr(2)], ttl, t0);
        assert_eq!(c.get("example.org", 80, t0 + Duration::from_secs(29)), Some(vec![addr(1), addr(2)]));
        assert_eq!(c.get("example.org", 81, t0), None, "the port is part of the key");
        assert_eq!(c.get("example.org", 80, t0 + ttl), None, "expired at its time to live");
    }

    #[test]
    fn nothing_is_kept_without_a_ttl_or_an_address() {
        let mut c = DnsCache::default();
        let t0 = Instant::now();
        c.put("a", 1, &[addr(1)], Duration::ZERO, t0);
        c.put("b", 1, &[], Duration::from_secs(1), t0);
        assert!(c.is_empty());
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_soonest_to_expire() {
        let mut c = DnsCache::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES {
            c.put(&format!("h{i}"), 1, &[addr(1)], Duration::from_secs(100 + i as u64), t0);
        }
        c.put("new", 1, &[addr(9)], Duration::from_secs(1000), t0);
        assert_eq!(c.len(), MAX_ENTRIES);
        assert_eq!(c.get("h0", 1, t0), None, "the entry closest to expiring went");
        assert!(c.get("h1", 1, t0).is_some() && c.get("new", 1, t0).is_some());
    }
}
