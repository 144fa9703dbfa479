//! The manager's TLS settings and what the URL schemes mean for them: `tls://`,
//! `https://` and `wss://` listen or connect over TLS (the server configuration
//! set with `set_tls`, or the client one, by default the system's trust store),
//! `tcp://`, `http://` and `ws://` in the clear.

use super::AnyProto;
use crate::error::{Error, Result};
use crate::net::url::Url;
use crate::reactor::Reactor;
use crate::transport::tls::config::{self, Frozen};
use crate::transport::tls::TlsConfig;
use crate::transport::Security;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use std::sync::Arc;

/// The TLS configurations a manager uses for what it opens from now on.
#[derive(Default)]
pub struct TlsDefaults {
    server: Option<Arc<ServerConfig>>,
    client: Option<Arc<ClientConfig>>,
}

/// Whether a scheme is a TLS one, and its plain twin (`https` -> `http`).
pub(super) fn plain_scheme(scheme: &str) -> (&str, bool) {
    match scheme {
        "tls" => ("tcp", true),
        "https" => ("http", true),
        "wss" => ("ws", true),
        s => (s, false),
    }
}

/// The port a URL of `scheme` means when it names none.
pub(super) fn default_port(scheme: &str, plain: u16) -> u16 {
    match scheme {
        "https" | "wss" => 443,
        _ => plain,
    }
}

impl Reactor<AnyProto> {
    /// Makes `cfg` (frozen now: `Tls` if it cannot be built) the server or client
    /// configuration, by its role, of what this manager opens over TLS from now on.
    /// Listeners and connections opened before keep theirs.
    pub fn set_tls(&self, cfg: &TlsConfig) -> Result<()> {
        let frozen = cfg.freeze()?;
        self.with_shared(|_, s| match frozen {
            Frozen::Server(c) => s.tls.server = Some(c),
            Frozen::Client(c) => s.tls.client = Some(c),
        });
        Ok(())
    }

    /// How a listener for `u` wraps what it accepts.
    pub(super) fn listen_security(&self, u: &Url<'_>) -> Result<Security> {
        if !plain_scheme(u.scheme).1 {
            return Ok(Security::Plain);
        }
        match self.with_shared(|_, s| s.tls.server.clone()) {
            Some(c) => Ok(Security::TlsServer(c)),
            None => {
                crate::tern_log!(crate::log::Level::Error, "{}:// listener: no server TLS configuration (tern_mgr_set_tls)", u.scheme);
                Err(Error::Tls)
            }
        }
    }

    /// How a connection to `u` is wrapped: TLS to its host name (SNI and the
    /// certificate check use it).
    pub(super) fn connect_security(&self, u: &Url<'_>) -> Result<Security> {
        if !plain_scheme(u.scheme).1 {
            return Ok(Security::Plain);
        }
        let cfg = match self.with_shared(|_, s| s.tls.client.clone()) {
            Some(c) => c,
            None => config::default_client()?,
        };
        let name = ServerName::try_from(u.host.to_string()).map_err(|_| Error::Invalid)?;
        Ok(Security::TlsClient(cfg, name))
    }
}
