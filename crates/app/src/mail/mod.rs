//! Email transports: the outbox worker that delivers queued mail through SMTP
//! ([`worker`]) and the IMAP poller that takes the help desk's mailbox ([`imap`]). What is
//! sent, to whom and how it reads is the service's (`service::notify`); what received mail
//! means too (`service::inbound`).

pub mod imap;
pub mod worker;

/// The certificates of a PEM file of extra trusted authorities (`INCIDENCIAS_TLS_CA_FILE`):
/// at least one, all readable, or a Spanish error.
pub fn ca_certificates(
    pem: &[u8],
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, String> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "los certificados de autoridad no son PEM válidos".to_string())?;
    if certs.is_empty() {
        return Err(
            "el archivo no contiene ningún certificado PEM (-----BEGIN CERTIFICATE-----)".into(),
        );
    }
    Ok(certs)
}
