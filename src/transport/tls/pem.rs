//! Certificates and keys from PEM text (files are read by the caller).

use super::config::TlsError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Every CERTIFICATE block, in order (a chain: the end-entity certificate first).
pub fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::new(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::new("no CERTIFICATE block in the PEM data"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::new(format!("private key PEM: {e}")))
}
