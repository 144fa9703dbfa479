//! `scheme://host:port/path` as the C API takes it.

use crate::error::{Error, Result};
use std::net::{IpAddr, SocketAddr};

/// A parsed URL. `host` is without IPv6 brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: u16,
    /// Starts with '/', "/" when absent.
    pub path: &'a str,
}

/// Where to connect or listen: a literal address, or a name to resolve first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

impl<'a> Url<'a> {
    /// Parses `url`; `default_port` applies when the URL has none (0: a port is required).
    pub fn parse(url: &'a str, default_port: u16) -> Result<Url<'a>> {
        let (scheme, rest) = url.split_once("://").ok_or(Error::Invalid)?;
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+') {
            return Err(Error::Invalid);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| Error::Invalid)?,
            None if default_port != 0 => default_port,
            None => return Err(Error::Invalid),
        };
        if host.is_empty() || host.bytes().any(|b| b.is_ascii_whitespace() || b == b'@') {
            return Err(Error::Invalid);
        }
        Ok(Url { scheme, host, port, path })
    }

    /// Whether the URL names an address and nothing more: its path is "/" or absent,
    /// with no query (what a `tcp://` URL must be: a path means nothing to TCP).
    pub fn bare(&self) -> bool {
        self.path == "/"
    }

    /// The address to use, without resolving anything: IP literals directly,
    /// "localhost" as 127.0.0.1, any other name for the resolver.
    pub fn target(&self) -> Target {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Target::Addr(SocketAddr::new(ip, self.port));
        }
        if self.host.eq_ignore_ascii_case("localhost") {
            return Target::Addr(SocketAddr::from(([127, 0, 0, 1], self.port)));
        }
        Target::Name(self.host.to_string(), self.port)
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(Error::Invalid)?;
        return match after {
            "" => Ok((host, None)),
            p => Ok((host, Some(p.strip_prefix(':').ok_or(Error::Invalid)?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_ipv6_names_and_defaults() {
        let u = Url::parse("tcp://127.0.0.1:8000", 0).unwrap();
        assert_eq!((u.scheme, u.host, u.port, u.path), ("tcp", "127.0.0.1", 8000, "/"));
        let u = Url::parse("http://[::1]:81/a/b?c", 80).unwrap();
        assert_eq!((u.host, u.port, u.path), ("::1", 81, "/a/b?c"));
        assert_eq!(Url::parse("http://example.org/x", 80).unwrap().port, 80);
        assert_eq!(Url::parse("tcp://localhost:9", 0).unwrap().target(), Target::Addr("127.0.0.1:9".parse().unwrap()));
        assert!(matches!(Url::parse("tcp://example.org:9", 0).unwrap().target(), Target::Name(_, 9)));
    }

    #[test]
    fn only_a_bare_address_has_no_path() {
        assert!(Url::parse("tcp://127.0.0.1:80", 0).unwrap().bare());
        assert!(Url::parse("tcp://127.0.0.1:80/", 0).unwrap().bare());
        for with_path in ["tcp://127.0.0.1:80/x", "tcp://127.0.0.1:80/?q", "tcp://h:1//"] {
            assert!(!Url::parse(with_path, 0).unwrap().bare(), "{with_path}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "127.0.0.1:80", "tcp://", "tcp://:80", "tcp://host", "tcp://h:99999", "tcp://[::1", "tcp://h:x", "t p://h:1"] {
            assert_eq!(Url::parse(bad, 0), Err(Error::Invalid), "{bad}");
        }
    }
}
