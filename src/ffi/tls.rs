//! `tern_tls_config`: TLS configurations (certificates, trust, settings), shared by
//! reference count between listeners, connections and managers on any thread.

use super::boundary::{c_path, c_slice, c_str, status};
use super::mgr::{mgr, tern_mgr};
use crate::error::Error;
use crate::transport::tls::{Role, TlsConfig};
use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

// tern.h: TLS
// https://, wss:// and tls:// URLs use TLS (rustls), configured per manager with a
// reference-counted tern_tls_config (tern_mgr_set_tls); everything above works the same
// over it. The tern_tls_config_* functions may be called from any thread; a configuration
// is frozen from its first use on.

/// A TLS configuration (a reference-counted handle): a server's certificates and
/// keys, or a client's trust anchors, plus ALPN, cipher suites and tickets. Filled
/// in with tern_tls_config_* calls, then given to managers with tern_mgr_set_tls;
/// from its first use on it is frozen (further changes return TERN_EPROTO). One
/// configuration may serve many listeners and managers, on any thread; each holds
/// its own reference. Every function here may be called from any thread.
pub struct tern_tls_config {
    _private: [u8; 0],
}

fn into_handle(c: Arc<TlsConfig>) -> *mut tern_tls_config {
    Arc::into_raw(c) as *mut tern_tls_config
}

/// Runs `f` on the configuration behind a handle the caller holds a reference to.
fn with<R>(p: *const tern_tls_config, f: impl FnOnce(&Arc<TlsConfig>) -> R) -> Option<R> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null handles come from `into_handle` (Arc::into_raw) and the caller
    // holds a reference; ManuallyDrop leaves the count as it was.
    let arc = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(p as *const TlsConfig) });
    Some(f(&arc))
}

fn status_of(p: *const tern_tls_config, f: impl FnOnce(&TlsConfig) -> Result<(), Error>) -> c_int {
    status(with(p, |c| f(c)).unwrap_or(Err(Error::Invalid)))
}

/// Reads a file named by a C path; a failure is recorded on the configuration.
fn read_file(cfg: &TlsConfig, path: *const c_char) -> Result<Vec<u8>, Error> {
    let path = c_path(path)?;
    std::fs::read(path).map_err(|e| {
        cfg.note_error(&format!("{}: {e}", path.display()));
        Error::Io
    })
}

/// A new, empty server configuration (the caller owns one reference): add at least
/// one certificate. Defaults: TLS 1.2 and 1.3, ALPN "http/1.1", session tickets on,
/// no client certificates requested. NULL only on a caught internal error. Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_new_server() -> *mut tern_tls_config {
    boundary! { into_handle(Arc::new(TlsConfig::new(Role::Server))) }
}

/// A new client configuration (the caller owns one reference). Defaults: servers
/// are verified against the system's trust store (unless CA certificates are added)
/// and must be valid for the host name of the URL (sent as SNI); ALPN "http/1.1".
/// Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_new_client() -> *mut tern_tls_config {
    boundary! { into_handle(Arc::new(TlsConfig::new(Role::Client))) }
}

/// One more reference to the same configuration (returns `cfg`; NULL for NULL). Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_share(cfg: *mut tern_tls_config) -> *mut tern_tls_config {
    boundary! { with(cfg, |c| into_handle(c.clone())).unwrap_or(std::ptr::null_mut()) }
}

/// Drops one reference; the configuration goes with the last one (listeners and
/// managers using it hold their own). NULL is ignored. Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_release(cfg: *mut tern_tls_config) {
    boundary! {
        if !cfg.is_null() {
            // SAFETY: the caller gives up the reference `cfg` stands for (made by
            // `into_handle`).
            drop(unsafe { Arc::from_raw(cfg as *const TlsConfig) });
        }
    }
}

/// Server: adds the certificate chain in the PEM file `cert_path` (end-entity
/// certificate first, then intermediates) with the private key in the PEM file
/// `key_path` (PKCS#8, RSA or EC). The first certificate added is the default; a
/// client that names a host (SNI) gets the first one valid for that name.
/// TERN_ETLS if the PEM is unusable or the key does not match, TERN_EIO if a file
/// cannot be read, TERN_EPROTO on a client or frozen configuration. Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_add_cert_file(cfg: *mut tern_tls_config, cert_path: *const c_char, key_path: *const c_char) -> c_int {
    boundary! {
        status_of(cfg, |c| {
            let chain = read_file(c, cert_path)?;
            let key = read_file(c, key_path)?;
            c.add_cert(&chain, &key)
        })
    }
}

/// Like tern_tls_config_add_cert_file, with the PEM text in memory (copied). Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_add_cert_pem(cfg: *mut tern_tls_config, cert: *const c_void, cert_len: usize, key: *const c_void, key_len: usize) -> c_int {
    boundary! { status_of(cfg, |c| c.add_cert(c_slice(cert, cert_len)?, c_slice(key, key_len)?)) }
}

/// Client: trusts the CA certificates in the PEM file `path`; once any is added,
/// the system's store is no longer used. TERN_ETLS, TERN_EIO, TERN_EPROTO as above.
/// Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_add_ca_file(cfg: *mut tern_tls_config, path: *const c_char) -> c_int {
    boundary! { status_of(cfg, |c| c.add_ca(&read_file(c, path)?).map(drop)) }
}

/// Like tern_tls_config_add_ca_file, with the PEM text in memory (copied). Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_add_ca_pem(cfg: *mut tern_tls_config, pem: *const c_void, len: usize) -> c_int {
    boundary! { status_of(cfg, |c| c.add_ca(c_slice(pem, len)?).map(drop)) }
}

/// The ALPN protocols, comma-separated in preference order ("h2,http/1.1"; "" for
/// none): offered by a client, the only ones a server accepts from clients that
/// offer any (default "http/1.1"). Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_set_alpn(cfg: *mut tern_tls_config, protocols: *const c_char) -> c_int {
    boundary! { status_of(cfg, |c| c.set_alpn(c_str(protocols)?)) }
}

/// The cipher suites allowed, separated by ':' or ',', by IANA name
/// ("TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256") or rustls
/// name ("TLS13_AES_128_GCM_SHA256"). TERN_ETLS for an unknown name. Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_set_ciphersuites(cfg: *mut tern_tls_config, suites: *const c_char) -> c_int {
    boundary! { status_of(cfg, |c| c.set_suites(c_str(suites)?)) }
}

/// Server: session resumption tickets on (1, the default) or off (0). Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_set_tickets(cfg: *mut tern_tls_config, on: c_int) -> c_int {
    boundary! {
        status_of(cfg, |c| match on {
            0 | 1 => c.set_tickets(on == 1),
            _ => Err(Error::Invalid),
        })
    }
}

/// Client, FOR TESTS ONLY: accepts any server certificate, whoever signed it and
/// whatever name it is for. Anyone on the path can then read and change the
/// traffic. Logged as a warning. Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_dangerous_skip_verify_for_tests(cfg: *mut tern_tls_config) -> c_int {
    boundary! { status_of(cfg, TlsConfig::dangerous_accept_any_server_cert) }
}

/// Why the last failed call on `cfg` failed ("private key PEM: no items found"),
/// or NULL. Valid until the next call on `cfg`. Any thread.
#[no_mangle]
pub extern "C" fn tern_tls_config_error(cfg: *const tern_tls_config) -> *const c_char {
    boundary! { with(cfg, |c| c.last_error_ptr()).flatten().unwrap_or(std::ptr::null()) }
}

/// Makes `cfg` this manager's server configuration (a server config: for the
/// https://, wss:// and tls:// listeners opened after this call) or its client one
/// (for https://, wss:// and tls:// connections opened after it; without one they
/// use the system's trust store). The manager holds its own reference; `cfg` is
/// frozen. TERN_ETLS if it cannot be used (a server configuration without
/// certificate; a client one with no trust anchor). Loop thread.
#[no_mangle]
pub extern "C" fn tern_mgr_set_tls(m: *mut tern_mgr, cfg: *const tern_tls_config) -> c_int {
    boundary! {
        let Some(m) = mgr(m) else { return Error::Invalid.code() };
        status(with(cfg, |c| m.set_tls(c)).unwrap_or(Err(Error::Invalid)))
    }
}
