//! Per-manager limits and timeouts. Every option has a default that is safe on the
//! open internet; the numeric ids are part of the C ABI (`TERN_OPT_*`).

use crate::error::{Error, Result};

/// Option ids, stable across versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Opt {
    IdleTimeoutMs = 1,
    HeaderTimeoutMs = 2,
    MaxHeaderBytes = 3,
    MaxBodyBytes = 4,
    MaxConns = 5,
    MaxSendQueue = 6,
    MaxPosted = 7,
    DeferTimeoutMs = 8,
    MaxWsMessage = 9,
    ConnectTimeoutMs = 10,
    MaxRecvBuffer = 11,
    CloseTimeoutMs = 12,
    HttpHeadEvents = 13,
    MaxStreamBodyBytes = 14,
    DirListing = 15,
    FollowSymlinksOut = 16,
    HttpLenientLf = 17,
    HttpClientLenientLf = 18,
    WsDeflate = 21,
    WsClientDeflate = 22,
    WsHandshakeTimeoutMs = 23,
    WsCloseTimeoutMs = 24,
    TlsHandshakeTimeoutMs = 30,
}

impl Opt {
    pub fn from_id(id: i32) -> Result<Opt> {
        use Opt::*;
        const ALL: [Opt; 23] = [
            IdleTimeoutMs,
            HeaderTimeoutMs,
            MaxHeaderBytes,
            MaxBodyBytes,
            MaxConns,
            MaxSendQueue,
            MaxPosted,
            DeferTimeoutMs,
            MaxWsMessage,
            ConnectTimeoutMs,
            MaxRecvBuffer,
            CloseTimeoutMs,
            HttpHeadEvents,
            MaxStreamBodyBytes,
            DirListing,
            FollowSymlinksOut,
            WsDeflate,
            WsClientDeflate,
            WsHandshakeTimeoutMs,
            WsCloseTimeoutMs,
            HttpLenientLf,
            HttpClientLenientLf,
            TlsHandshakeTimeoutMs,
        ];
        ALL.into_iter().find(|o| *o as i32 == id).ok_or(Error::Invalid)
    }
}

/// The values in force for one manager.
#[derive(Debug, Clone)]
pub struct Options {
    /// A keep-alive connection with no request in flight is closed after this long.
    pub idle_timeout_ms: u64,
    /// A request head must be complete within this long of its first byte (slowloris).
    pub header_timeout_ms: u64,
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    /// Accepted connections beyond this many are closed at once.
    pub max_conns: usize,
    /// Bytes held in memory in one connection's send queue (file segments queued
    /// for `sendfile` do not count); past it the connection is closed with an error.
    pub max_send_queue: usize,
    /// Messages waiting from remotes; past it `Remote` calls fail with `Full`.
    pub max_posted: usize,
    pub defer_timeout_ms: u64,
    pub max_ws_message: usize,
    pub connect_timeout_ms: u64,
    /// Unconsumed received bytes kept per connection; when full, reading pauses.
    pub max_recv_buffer: usize,
    /// A graceful close that cannot flush its queue within this long is forced.
    pub close_timeout_ms: u64,
    /// Deliver HTTP_HEAD before reading a request body (so a handler can stream it).
    pub http_head_events: bool,
    /// Bound on a body taken in pieces (HTTP_BODY) instead of buffered.
    pub max_stream_body: u64,
    /// serve_dir lists a directory without index.html (else 403).
    pub dir_listing: bool,
    /// serve_dir follows symlinks that point out of the root (else 403).
    pub follow_symlinks_out: bool,
    /// permessage-deflate on WebSocket servers: 0 off, 1 without context takeover
    /// (no compressor state between messages), 2 with it (better ratio, ~400 KiB per
    /// connection).
    pub ws_deflate: u8,
    /// WebSocket clients offer permessage-deflate (without context takeover).
    pub ws_client_deflate: u8,
    /// A WebSocket client's handshake must be answered within this long.
    pub ws_handshake_timeout_ms: u64,
    /// The peer's close frame (or, for a client, the server's TCP close) must follow
    /// ours within this long.
    pub ws_close_timeout_ms: u64,
    /// The server takes a bare LF as a line end in request heads (else 400).
    pub http_lenient_lf: bool,
    /// The client takes a bare LF as a line end in response heads (else ERROR).
    pub http_client_lenient_lf: bool,
    /// A TLS handshake (server or client side) must finish within this long.
    pub tls_handshake_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            idle_timeout_ms: 60_000,
            header_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 8 * 1024 * 1024,
            max_conns: 50_000,
            max_send_queue: 16 * 1024 * 1024,
            max_posted: 8192,
            defer_timeout_ms: 30_000,
            max_ws_message: 1024 * 1024,
            connect_timeout_ms: 15_000,
            max_recv_buffer: 1024 * 1024,
            close_timeout_ms: 10_000,
            http_head_events: false,
            max_stream_body: 64 << 30,
            dir_listing: false,
            follow_symlinks_out: false,
            ws_deflate: 0,
            ws_client_deflate: 0,
            ws_handshake_timeout_ms: 10_000,
            ws_close_timeout_ms: 5_000,
            http_lenient_lf: false,
            http_client_lenient_lf: false,
            tls_handshake_timeout_ms: 10_000,
        }
    }
}

impl Options {
    /// Sets one option; values that would disable a limit (negative, or zero where zero
    /// makes no sense) are refused rather than silently meaning "unbounded".
    pub fn set(&mut self, opt: Opt, value: i64) -> Result<()> {
        // The switches take 0 or 1; everything else is a limit, where 0 or less would
        // mean "none" and is refused.
        let switch = match opt {
            Opt::HttpHeadEvents => Some(&mut self.http_head_events),
            Opt::DirListing => Some(&mut self.dir_listing),
            Opt::FollowSymlinksOut => Some(&mut self.follow_symlinks_out),
            Opt::HttpLenientLf => Some(&mut self.http_lenient_lf),
            Opt::HttpClientLenientLf => Some(&mut self.http_client_lenient_lf),
            _ => None,
        };
        match opt {
            Opt::WsDeflate => return u8::try_from(value).ok().filter(|v| *v <= 2).map(|v| self.ws_deflate = v).ok_or(Error::Invalid),
            Opt::WsClientDeflate => return u8::try_from(value).ok().filter(|v| *v <= 1).map(|v| self.ws_client_deflate = v).ok_or(Error::Invalid),
            _ => {}
        }
        if let Some(flag) = switch {
            return match value {
                0 | 1 => {
                    *flag = value == 1;
                    Ok(())
                }
                _ => Err(Error::Invalid),
            };
        }
        if value <= 0 {
            return Err(Error::Invalid);
        }
        let ms = value as u64;
        let n = usize::try_from(value).map_err(|_| Error::Invalid)?;
        match opt {
            Opt::IdleTimeoutMs => self.idle_timeout_ms = ms,
            Opt::HeaderTimeoutMs => self.header_timeout_ms = ms,
            Opt::MaxHeaderBytes => self.max_header_bytes = n.max(256),
            Opt::MaxBodyBytes => self.max_body_bytes = n,
            Opt::MaxConns => self.max_conns = n,
            Opt::MaxSendQueue => self.max_send_queue = n,
            Opt::MaxPosted => self.max_posted = n,
            Opt::DeferTimeoutMs => self.defer_timeout_ms = ms,
            Opt::MaxWsMessage => self.max_ws_message = n,
            Opt::ConnectTimeoutMs => self.connect_timeout_ms = ms,
            Opt::MaxRecvBuffer => self.max_recv_buffer = n.max(4096),
            Opt::CloseTimeoutMs => self.close_timeout_ms = ms,
            Opt::WsHandshakeTimeoutMs => self.ws_handshake_timeout_ms = ms,
            Opt::WsCloseTimeoutMs => self.ws_close_timeout_ms = ms,
            Opt::TlsHandshakeTimeoutMs => self.tls_handshake_timeout_ms = ms,
            Opt::HttpHeadEvents
            | Opt::DirListing
            | Opt::FollowSymlinksOut
            | Opt::HttpLenientLf
            | Opt::HttpClientLenientLf
            | Opt::WsDeflate
            | Opt::WsClientDeflate => return Err(Error::Invalid),
            Opt::MaxStreamBodyBytes => self.max_stream_body = ms,
        }
        Ok(())
    }
}
