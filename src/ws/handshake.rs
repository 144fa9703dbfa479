//! The opening handshake (RFC 6455 §4) as pure functions over header values.
//!
//! No HTTP parsing here: the HTTP layer hands over header values (all lines of a
//! header name, matched case-insensitively) through a closure, and writes the status
//! line and the header lines built here.
//!
//! Crates: `sha1_smol` for SHA-1 (no dependencies, one small file of safe code; the
//! hash only proves the server read the key, RFC 6455 §10.8, so a constant-time or
//! accelerated implementation buys nothing, and RustCrypto's `sha1` would bring
//! `digest` and its helper crates for one 60-byte hash per connection), and `base64`
//! (the ecosystem's standard; its strict decoder rejects non-canonical padding, which
//! is what key validation wants).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;

/// The GUID the accept hash appends to the key (§1.3).
pub const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version (§4.1).
pub const VERSION: &str = "13";

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The request is not a valid upgrade: answer 400.
    BadRequest(&'static str),
    /// Sec-WebSocket-Version is not 13: answer 426 with `Sec-WebSocket-Version: 13`
    /// (§4.4).
    UnsupportedVersion,
    /// (client) The server's answer is not a valid acceptance: fail the connection.
    BadResponse(&'static str),
    /// The system random number generator failed.
    Random,
}

impl HandshakeError {
    /// The HTTP status a server answers with; 0 for client-side errors.
    pub const fn status(self) -> u16 {
        match self {
            HandshakeError::BadRequest(_) => 400,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::BadResponse(_) | HandshakeError::Random => 0,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BadRequest(s) => write!(f, "websocket upgrade refused: {s}"),
            HandshakeError::UnsupportedVersion => f.write_str("websocket upgrade refused: version is not 13"),
            HandshakeError::BadResponse(s) => write!(f, "websocket handshake failed: {s}"),
            HandshakeError::Random => f.write_str("websocket handshake failed: no random bytes"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)), 28 ASCII bytes.
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(trim_ows(key));
    sha.update(GUID);
    let mut out = [0u8; 28];
    let n = STANDARD.encode_slice(sha.digest().bytes(), &mut out).expect("20 bytes encode to 28");
    debug_assert_eq!(n, 28);
    out
}

/// A valid `Sec-WebSocket-Key`: base64 that decodes to exactly 16 bytes (§4.1).
pub fn is_valid_key(key: &[u8]) -> bool {
    let key = trim_ows(key);
    let mut out = [0u8; 18]; // room to see that a longer value decodes past 16
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut out), Ok(16))
}

/// The elements of a comma-separated header list (`#element`, RFC 9110 §5.6.1), with
/// optional whitespace trimmed and empty elements skipped.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|s| !s.is_empty())
}

/// Whether any of the header's values lists `token` (case-insensitive), as in
/// `Connection: keep-alive, Upgrade`.
pub fn has_token<'a>(values: impl IntoIterator<Item = &'a [u8]>, token: &str) -> bool {
    values.into_iter().any(|v| list_items(v).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
}

/// The subprotocol to answer with: the first of the server's `supported` list (its
/// order of preference) that the client offered in `Sec-WebSocket-Protocol`.
/// Subprotocol names are compared exactly: they are tokens whose case is theirs.
pub fn select_subprotocol<'s, 'a, I>(offered: I, supported: &[&'s str]) -> Option<&'s str>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let offered: Vec<&[u8]> = offered.into_iter().flat_map(list_items).collect();
    supported.iter().copied().find(|s| offered.contains(&s.as_bytes()))
}

/// Checks a client's upgrade request (§4.2.1) and returns the accept value.
///
/// `header(name)` gives every value of header `name`. The HTTP layer checks what is
/// HTTP's own: method GET, version 1.1 or later, a Host header.
pub fn server_accept<'a, F, H>(header: F) -> Result<[u8; 28], HandshakeError>
where
    F: Fn(&str) -> H,
    H: IntoIterator<Item = &'a [u8]>,
{
    if !has_token(header("Upgrade"), "websocket") {
        return Err(HandshakeError::BadRequest("Upgrade does not list websocket"));
    }
    if !has_token(header("Connection"), "upgrade") {
        return Err(HandshakeError::BadRequest("Connection does not list upgrade"));
    }
    if !has_token(header("Sec-WebSocket-Version"), VERSION) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let mut keys = header("Sec-WebSocket-Key").into_iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::BadRequest("not exactly one Sec-WebSocket-Key"));
    };
    if !is_valid_key(key) {
        return Err(HandshakeError::BadRequest("Sec-WebSocket-Key is not 16 bytes in base64"));
    }
    Ok(accept_key(key))
}

/// The header lines of a 101 answer (each ending in CRLF; the HTTP layer writes the
/// status line, its own headers and the blank line).
pub fn response_headers(accept: &[u8; 28], protocol: Option<&str>, extensions: Option<&str>) -> String {
    let mut s = String::with_capacity(128);
    s.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    s.push_str(std::str::from_utf8(accept).unwrap_or(""));
    s.push_str("\r\n");
    push_header(&mut s, "Sec-WebSocket-Protocol", protocol);
    push_header(&mut s, "Sec-WebSocket-Extensions", extensions);
    s
}

/// A fresh client key: 16 bytes from the system's random number generator, in base64.
pub fn client_key() -> Result<[u8; 24], HandshakeError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|_| HandshakeError::Random)?;
    let mut out = [0u8; 24];
    STANDARD.encode_slice(raw, &mut out).expect("16 bytes encode to 24");
    Ok(out)
}

/// The header lines of a client's upgrade request (the HTTP layer writes the request
/// line, Host and the blank line).
pub fn request_headers(key: &[u8; 24], protocols: &[&str], extensions: Option<&str>) -> String {
    let mut s = String::with_capacity(160);
    s.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    s.push_str(std::str::from_utf8(key).unwrap_or(""));
    s.push_str("\r\nSec-WebSocket-Version: 13\r\n");
    let joined = protocols.join(", ");
    push_header(&mut s, "Sec-WebSocket-Protocol", Some(joined.as_str()).filter(|p| !p.is_empty()));
    push_header(&mut s, "Sec-WebSocket-Extensions", extensions);
    s
}

/// Checks a server's answer to our upgrade request (§4.2.2 / §4.1 "the client MUST
/// Fail the WebSocket Connection" list) and returns the subprotocol it chose, if any.
/// Extensions are checked by `deflate::accept_response`.
pub fn client_check<'a, F, H>(status: u16, key: &[u8; 24], header: F, offered: &[&str]) -> Result<Option<&'a [u8]>, HandshakeError>
where
    F: Fn(&str) -> H,
    H: IntoIterator<Item = &'a [u8]>,
{
    if status != 101 {
        return Err(HandshakeError::BadResponse("status is not 101"));
    }
    if !has_token(header("Upgrade"), "websocket") {
        return Err(HandshakeError::BadResponse("Upgrade does not list websocket"));
    }
    if !has_token(header("Connection"), "upgrade") {
        return Err(HandshakeError::BadResponse("Connection does not list upgrade"));
    }
    let mut accepts = header("Sec-WebSocket-Accept").into_iter();
    match (accepts.next(), accepts.next()) {
        (Some(a), None) if trim_ows(a) == accept_key(key) => {}
        _ => return Err(HandshakeError::BadResponse("Sec-WebSocket-Accept does not match the key")),
    }
    let mut protocols = header("Sec-WebSocket-Protocol").into_iter();
    match (protocols.next(), protocols.next()) {
        (None, _) => Ok(None),
        (Some(p), None) if offered.iter().any(|o| o.as_bytes() == trim_ows(p)) => Ok(Some(trim_ows(p))),
        _ => Err(HandshakeError::BadResponse("Sec-WebSocket-Protocol was not offered")),
    }
}

fn push_header(s: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        s.push_str(name);
        s.push_str(": ");
        s.push_str(v);
        s.push_str("\r\n");
    }
}

/// Strips optional whitespace (SP, HTAB) at both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    type Headers<'a> = &'a [(&'a str, &'a str)];

    fn lookup<'a>(h: Headers<'a>) -> impl Fn(&str) -> Vec<&'a [u8]> {
        move |name| h.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_bytes()).collect()
    }

    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const RFC_ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn good_request() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Host", "x"),
            ("Upgrade", "WebSocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", RFC_KEY),
        ]
    }

    #[test]
    fn accept_matches_rfc_example() {
        assert_eq!(&accept_key(RFC_KEY.as_bytes()), RFC_ACCEPT);
        assert_eq!(&accept_key(b"  dGhlIHNhbXBsZSBub25jZQ==\t"), RFC_ACCEPT);
    }

    #[test]
    fn key_must_be_base64_of_16_bytes() {
        assert!(is_valid_key(RFC_KEY.as_bytes()));
        assert!(!is_valid_key(b""));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ")); // no padding
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=")); // short padding
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ!=")); // not base64
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZWU=")); // 17 bytes
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j")); // 15 bytes
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZR==")); // non-canonical trailing bits
    }

    #[test]
    fn token_lists_are_case_insensitive_with_ows() {
        assert!(has_token([&b"keep-alive, Upgrade"[..]], "upgrade"));
        assert!(has_token([&b"keep-alive"[..], b" \tUPGRADE \t"], "upgrade"));
        assert!(has_token([&b",,upgrade,"[..]], "upgrade"));
        assert!(!has_token([&b"upgraded"[..]], "upgrade"));
        assert!(!has_token([&b"keep-alive"[..]], "upgrade"));
        assert!(!has_token(Vec::<&[u8]>::new(), "upgrade"));
        assert_eq!(list_items(b" a ,, b\t,c ").collect::<Vec<_>>(), [&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn subprotocol_is_servers_first_choice_among_offered() {
        let offered = [&b"chat, superchat"[..], b"v2.json"];
        assert_eq!(select_subprotocol(offered, &["v2.json", "chat"]), Some("v2.json"));
        assert_eq!(select_subprotocol(offered, &["superchat", "chat"]), Some("superchat"));
        assert_eq!(select_subprotocol(offered, &["mqtt"]), None);
        assert_eq!(select_subprotocol(offered, &["Chat"]), None);
    }

    #[test]
    fn server_accepts_a_valid_request() {
        let h = good_request();
        assert_eq!(&server_accept(lookup(&h)).unwrap(), RFC_ACCEPT);
        let lines = response_headers(&server_accept(lookup(&h)).unwrap(), Some("chat"), Some("permessage-deflate"));
        assert_eq!(
            lines,
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
        );
    }

    #[test]
    fn server_refuses_each_missing_or_bad_piece() {
        let drop = |name: &str| good_request().into_iter().filter(|(n, _)| *n != name).collect::<Vec<_>>();
        for name in ["Upgrade", "Connection", "Sec-WebSocket-Key"] {
            assert_eq!(server_accept(lookup(&drop(name))).unwrap_err().status(), 400, "{name}");
        }
        assert_eq!(server_accept(lookup(&drop("Sec-WebSocket-Version"))), Err(HandshakeError::UnsupportedVersion));
        let mut h = good_request();
        h[3].1 = "8";
        assert_eq!(server_accept(lookup(&h)).unwrap_err().status(), 426);
        let mut h = good_request();
        h.push(("Sec-WebSocket-Key", RFC_KEY));
        assert!(server_accept(lookup(&h)).is_err(), "two keys");
        let mut h = good_request();
        h[4].1 = "short";
        assert!(server_accept(lookup(&h)).is_err());
        let mut h = good_request();
        h[1].1 = "h2c";
        assert!(server_accept(lookup(&h)).is_err());
    }

    #[test]
    fn client_key_is_random_and_valid_and_checks_the_answer() {
        let k1 = client_key().unwrap();
        let k2 = client_key().unwrap();
        assert_ne!(k1, k2);
        assert!(is_valid_key(&k1));
        let accept = accept_key(&k1);
        let accept = std::str::from_utf8(&accept).unwrap();
        let ok = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)];
        assert_eq!(client_check(101, &k1, lookup(&ok), &[]), Ok(None));
        assert!(client_check(200, &k1, lookup(&ok), &[]).is_err());
        assert!(client_check(101, &k2, lookup(&ok), &[]).is_err(), "accept for another key");
        let with_proto = [ok[0], ok[1], ok[2], ("Sec-WebSocket-Protocol", "chat")];
        assert_eq!(client_check(101, &k1, lookup(&with_proto), &["x", "chat"]), Ok(Some(&b"chat"[..])));
        assert!(client_check(101, &k1, lookup(&with_proto), &["x"]).is_err(), "protocol not offered");
        let req = request_headers(&k1, &["chat", "x"], Some("permessage-deflate"));
        assert!(req.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(req.contains("Sec-WebSocket-Protocol: chat, x\r\n"));
        assert!(!request_headers(&k1, &[], None).contains("Protocol"));
    }
}
