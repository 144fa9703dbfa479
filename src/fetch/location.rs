//! Where a fetch goes: its URL split into the origin the pool keys connections by
//! (`http://host:port` or `https://host:port`) and the request target, and a
//! redirect's `Location` resolved against the URL it answered.

use crate::error::{Error, Result};
use crate::net::url::Url;

/// A fetch's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// `scheme://host:port`, brackets around an IPv6 host: the pool's key and what
    /// the connection is opened to.
    pub origin: String,
    /// Origin-form: the path and query, never empty, without any fragment.
    pub target: String,
}

impl Dest {
    /// Parses an `http://` or `https://` URL (`Invalid` for anything else).
    pub fn parse(url: &str) -> Result<Dest> {
        let scheme = url.split_once("://").map(|(s, _)| s).ok_or(Error::Invalid)?;
        let port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return Err(Error::Invalid),
        };
        let u = Url::parse(url, port)?;
        let host = if u.host.contains(':') { format!("[{}]", u.host) } else { u.host.to_string() };
        let target = u.path.split('#').next().unwrap_or("/");
        if !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Invalid);
        }
        Ok(Dest { origin: format!("{scheme}://{host}:{}", u.port), target: target.to_string() })
    }

    /// The URL a `Location` field names, resolved against this destination:
    /// absolute, scheme-relative (`//host/x`), absolute path, or relative to the
    /// current path's directory.
    pub fn follow(&self, location: &str) -> Result<Dest> {
        let location = location.trim();
        if location.starts_with("http://") || location.starts_with("https://") {
            return Dest::parse(location);
        }
        let scheme = self.origin.split_once("://").map_or("http", |(s, _)| s);
        if let Some(rest) = location.strip_prefix("//") {
            return Dest::parse(&format!("{scheme}://{rest}"));
        }
        if location.is_empty() {
            return Err(Error::Invalid);
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let dir = self.target.split('?').next().unwrap_or("/");
            let dir = &dir[..dir.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Dest::parse(&format!("{}{path}", self.origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_and_target() {
        let d = Dest::parse("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        assert_eq!(d.origin, "http://127.0.0.1:8080");
        assert_eq!(d.target, "/a/b?x=1");
        assert_eq!(Dest::parse("https://localhost").unwrap().origin, "https://localhost:443");
        assert_eq!(Dest::parse("http://[::1]:81/").unwrap().origin, "http://[::1]:81");
        assert_eq!(Dest::parse("ftp://x/"), Err(Error::Invalid));
        assert_eq!(Dest::parse("http:///x"), Err(Error::Invalid));
    }

    #[test]
    fn locations_resolve_like_a_browser_does() {
        let d = Dest::parse("http://h:1/a/b?q").unwrap();
        assert_eq!(d.follow("/c").unwrap().target, "/c");
        assert_eq!(d.follow("c?z").unwrap().target, "/a/c?z");
        assert_eq!(d.follow("https://o:2/x").unwrap().origin, "https://o:2");
        let s = d.follow("//k:3/y").unwrap();
        assert_eq!((s.origin.as_str(), s.target.as_str()), ("http://k:3", "/y"));
        assert_eq!(d.follow(""), Err(Error::Invalid));
    }
}
