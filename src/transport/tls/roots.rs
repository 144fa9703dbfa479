//! The system's trust store (what clients verify servers against unless given CA
//! certificates), read once per process: parsing a few hundred certificates for
//! every connection would cost more than the handshake.

use super::config::TlsError;
use rustls::RootCertStore;
use std::sync::{Arc, OnceLock};

static SYSTEM: OnceLock<Result<Arc<RootCertStore>, TlsError>> = OnceLock::new();

/// The system's CA certificates (rustls-native-certs: SSL_CERT_FILE / SSL_CERT_DIR,
/// else the distribution's bundle). An empty store is an error: every server would
/// be refused.
pub fn system() -> Result<Arc<RootCertStore>, TlsError> {
    SYSTEM.get_or_init(load).clone()
}

fn load() -> Result<Arc<RootCertStore>, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _unparsable) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found.errors.first().map_or_else(|| "none found".to_string(), |e| e.to_string());
        return Err(TlsError::new(format!("no usable CA certificate in the system trust store ({why}); add one with tern_tls_config_add_ca_file")));
    }
    crate::tern_log!(crate::log::Level::Debug, "TLS: {added} CA certificates from the system trust store");
    Ok(Arc::new(store))
}
