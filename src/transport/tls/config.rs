//! The configuration object behind `tern_tls_config`: filled in with certificates,
//! trust anchors and settings, shared by reference between listeners, connections and
//! managers (on any thread), and frozen into a rustls config the first time one uses
//! it. Freezing once is what makes sharing cheap: every connection of every manager
//! holds the same `Arc<ServerConfig>` (one ticket key, one session cache).

use super::{pem, roots, sni::CertsByName, verify::AcceptAnyServerCert};
use crate::error::Error;
use parking_lot::Mutex;
use rustls::crypto::{ring, CryptoProvider};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};
use std::sync::{Arc, OnceLock};

/// Which end of a connection a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// Why TLS material or settings could not be used; the text says what to fix.
#[derive(Debug, Clone)]
pub struct TlsError(String);

impl TlsError {
    pub fn new(why: impl Into<String>) -> TlsError {
        TlsError(why.into())
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A configuration, as rustls runs it.
#[derive(Clone)]
pub enum Frozen {
    Server(Arc<ServerConfig>),
    Client(Arc<ClientConfig>),
}

struct Draft {
    /// Server: certificate chains with their keys, the first being the default.
    certs: Vec<Arc<CertifiedKey>>,
    /// Client: CA certificates added; empty means the system's store.
    roots: RootCertStore,
    /// Client: trust any server certificate (tests only).
    insecure: bool,
    /// ALPN protocols offered (client) or accepted (server); None: http/1.1.
    alpn: Option<Vec<Vec<u8>>>,
    /// Cipher suites allowed; None: the provider's defaults.
    suites: Option<Vec<SupportedCipherSuite>>,
    /// Server: stateless resumption tickets (TLS 1.2 and 1.3).
    tickets: bool,
    frozen: Option<Frozen>,
    /// The last failure, for `tern_tls_config_error`.
    last_error: Option<std::ffi::CString>,
}

/// A TLS configuration in the making, then frozen (see the module doc).
pub struct TlsConfig {
    role: Role,
    draft: Mutex<Draft>,
}

/// The provider every configuration starts from: ring, as built into rustls.
fn base_provider() -> &'static Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(ring::default_provider()))
}

/// The default provider, or one narrowed to `suites`.
fn provider(suites: &Option<Vec<SupportedCipherSuite>>) -> Arc<CryptoProvider> {
    match suites {
        None => base_provider().clone(),
        Some(s) => Arc::new(CryptoProvider { cipher_suites: s.clone(), ..ring::default_provider() }),
    }
}

impl TlsConfig {
    pub fn new(role: Role) -> TlsConfig {
        let draft = Draft { certs: Vec::new(), roots: RootCertStore::empty(), insecure: false, alpn: None, suites: None, tickets: true, frozen: None, last_error: None };
        TlsConfig { role, draft: Mutex::new(draft) }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Runs `f` on the draft if it is still open to changes and meant for `role`;
    /// a failure is remembered for `last_error` and logged.
    fn change<R>(&self, role: Role, f: impl FnOnce(&mut Draft) -> Result<R, TlsError>) -> Result<R, Error> {
        let mut d = self.draft.lock();
        if d.frozen.is_some() || role != self.role {
            return Err(Error::Protocol);
        }
        f(&mut d).map_err(|e| {
            remember(&mut d, &e.0);
            Error::Tls
        })
    }

    /// Records why something failed (for `last_error_ptr`) and logs it.
    pub fn note_error(&self, why: &str) {
        remember(&mut self.draft.lock(), why);
    }

    /// Server: adds a certificate chain (end-entity first) and its private key, both
    /// PEM. The key must match the certificate.
    pub fn add_cert(&self, chain_pem: &[u8], key_pem: &[u8]) -> Result<(), Error> {
        self.change(Role::Server, |d| {
            let chain = pem::certs(chain_pem)?;
            let key = pem::key(key_pem)?;
            let ck = CertifiedKey::from_der(chain, key, base_provider()).map_err(|e| TlsError::new(format!("certificate and key: {e}")))?;
            d.certs.push(Arc::new(ck));
            Ok(())
        })
    }

    /// Client: trusts the CA certificates in `pem` (instead of the system store).
    /// Returns how many were added.
    pub fn add_ca(&self, pem_data: &[u8]) -> Result<usize, Error> {
        self.change(Role::Client, |d| {
            let certs = pem::certs(pem_data)?;
            let (added, bad) = d.roots.add_parsable_certificates(certs);
            if bad > 0 || added == 0 {
                return Err(TlsError::new(format!("{bad} of the CA certificates could not be used as trust anchors")));
            }
            Ok(added)
        })
    }

    /// Client: trusts any server certificate. For tests with self-made certificates.
    pub fn dangerous_accept_any_server_cert(&self) -> Result<(), Error> {
        self.change(Role::Client, |d| {
            crate::tern_log!(crate::log::Level::Warn, "TLS config: server certificates will NOT be verified (test-only setting)");
            d.insecure = true;
            Ok(())
        })
    }

    /// ALPN protocol names, comma-separated, in preference order ("" for none).
    pub fn set_alpn(&self, list: &str) -> Result<(), Error> {
        self.change(self.role, |d| {
            let names: Vec<Vec<u8>> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect();
            if names.iter().any(|n| n.len() > 255) {
                return Err(TlsError::new("an ALPN protocol name is longer than 255 bytes"));
            }
            d.alpn = Some(names);
            Ok(())
        })
    }

    /// Cipher suites allowed, by name (rustls's "TLS13_AES_128_GCM_SHA256" or the
    /// IANA "TLS_AES_128_GCM_SHA256"), separated by ':' or ','.
    pub fn set_suites(&self, list: &str) -> Result<(), Error> {
        self.change(self.role, |d| {
            let mut chosen = Vec::new();
            for name in list.split([':', ',']).map(str::trim).filter(|s| !s.is_empty()) {
                let suite = base_provider().cipher_suites.iter().find(|s| suite_named(s, name));
                chosen.push(*suite.ok_or_else(|| TlsError::new(format!("unknown cipher suite {name:?}")))?);
            }
            if chosen.is_empty() {
                return Err(TlsError::new("no cipher suite named"));
            }
            d.suites = Some(chosen);
            Ok(())
        })
    }

    /// Server: resumption tickets on (the default) or off.
    pub fn set_tickets(&self, on: bool) -> Result<(), Error> {
        self.change(Role::Server, |d| {
            d.tickets = on;
            Ok(())
        })
    }

    /// The last failure of a call on this configuration, as a C string that stays
    /// valid until the next failure is recorded.
    pub fn last_error_ptr(&self) -> Option<*const std::ffi::c_char> {
        self.draft.lock().last_error.as_ref().map(|s| s.as_ptr())
    }

    /// The rustls configuration, built on first use; no change is accepted after.
    pub fn freeze(&self) -> Result<Frozen, Error> {
        let mut d = self.draft.lock();
        if let Some(f) = &d.frozen {
            return Ok(f.clone());
        }
        let built = match self.role {
            Role::Server => server_config(&d).map(Frozen::Server),
            Role::Client => client_config(&d).map(Frozen::Client),
        };
        match built {
            Ok(f) => {
                d.frozen = Some(f.clone());
                Ok(f)
            }
            Err(e) => {
                remember(&mut d, &e.0);
                Err(Error::Tls)
            }
        }
    }
}

fn remember(d: &mut Draft, why: &str) {
    crate::tern_log!(crate::log::Level::Warn, "TLS config: {why}");
    d.last_error = std::ffi::CString::new(why.replace('\0', " ")).ok();
}

/// Whether `s` is called `name`, in rustls's spelling or IANA's.
fn suite_named(s: &SupportedCipherSuite, name: &str) -> bool {
    let ours = format!("{:?}", s.suite());
    ours.eq_ignore_ascii_case(name) || ours.strip_prefix("TLS13_").is_some_and(|rest| name.strip_prefix("TLS_").is_some_and(|n| n.eq_ignore_ascii_case(rest)))
}

fn default_alpn(d: &Draft) -> Vec<Vec<u8>> {
    d.alpn.clone().unwrap_or_else(|| vec![b"http/1.1".to_vec()])
}

fn server_config(d: &Draft) -> Result<Arc<ServerConfig>, TlsError> {
    if d.certs.is_empty() {
        return Err(TlsError::new("a server configuration needs a certificate (tern_tls_config_add_cert_file)"));
    }
    let builder = ServerConfig::builder_with_provider(provider(&d.suites)).with_safe_default_protocol_versions().map_err(|e| TlsError::new(e.to_string()))?;
    let mut cfg = builder.with_no_client_auth().with_cert_resolver(Arc::new(CertsByName::new(d.certs.clone())));
    cfg.alpn_protocols = default_alpn(d);
    if d.tickets {
        cfg.ticketer = ring::Ticketer::new().map_err(|e| TlsError::new(format!("session tickets: {e}")))?;
    }
    Ok(Arc::new(cfg))
}

fn client_config(d: &Draft) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider(&d.suites);
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| TlsError::new(e.to_string()))?;
    let mut cfg = if d.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new(provider))).with_no_client_auth()
    } else if d.roots.is_empty() {
        builder.with_root_certificates(roots::system()?).with_no_client_auth()
    } else {
        builder.with_root_certificates(d.roots.clone()).with_no_client_auth()
    };
    cfg.alpn_protocols = default_alpn(d);
    Ok(Arc::new(cfg))
}

/// The client configuration of a manager that was given none: the system's trust
/// store, ALPN http/1.1; one per process, so its resumption cache is shared.
pub fn default_client() -> Result<Arc<ClientConfig>, Error> {
    static DEFAULT: OnceLock<TlsConfig> = OnceLock::new();
    match DEFAULT.get_or_init(|| TlsConfig::new(Role::Client)).freeze()? {
        Frozen::Client(c) => Ok(c),
        Frozen::Server(_) => Err(Error::Internal),
    }
}
