//! Picking a server certificate by the name the client asked for (SNI).

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::ServerName;
use std::sync::Arc;

/// The certificates of one server config, the first being the default: a client
/// that names a host gets the first certificate valid for that name (wildcards
/// included, as webpki checks them), any other client gets the default.
#[derive(Debug)]
pub struct CertsByName {
    certs: Vec<Arc<CertifiedKey>>,
}

impl CertsByName {
    pub fn new(certs: Vec<Arc<CertifiedKey>>) -> CertsByName {
        CertsByName { certs }
    }
}

impl ResolvesServerCert for CertsByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let first = self.certs.first()?;
        // One certificate: nothing to choose, and no parsing per handshake.
        if self.certs.len() == 1 {
            return Some(first.clone());
        }
        let name = hello.server_name().and_then(|n| ServerName::try_from(n).ok());
        let chosen = name.and_then(|n| self.certs.iter().find(|ck| covers(ck, &n)));
        Some(chosen.unwrap_or(first).clone())
    }
}

/// Whether the end-entity certificate of `ck` is valid for `name`.
fn covers(ck: &CertifiedKey, name: &ServerName<'_>) -> bool {
    let Some(ee) = ck.cert.first() else { return false };
    webpki::EndEntityCert::try_from(ee).is_ok_and(|c| c.verify_is_valid_for_subject_name(name).is_ok())
}
