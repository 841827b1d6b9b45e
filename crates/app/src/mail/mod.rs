//! Email transports: the outbox worker that delivers queued mail through SMTP
//! ([`worker`]) and the IMAP poller that takes the help desk's mailbox ([`imap`]). What is
//! sent, to whom and how it reads is the service's (`service::notify`); what received mail
//! means too (`service::inbound`).

pub mod imap;
pub mod smtp;
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

/// The TLS client settings of every outgoing connection (SMTP, IMAP, webhooks, the banner
/// check): the public roots plus the extra authorities of `ca_pem`, with the `ring`
/// provider.
pub fn tls_config(ca_pem: Option<&[u8]>) -> Result<tokio_rustls::rustls::ClientConfig, String> {
    let mut roots = tokio_rustls::rustls::RootCertStore::from_iter(
        webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
    );
    if let Some(pem) = ca_pem {
        for cert in ca_certificates(pem)? {
            roots
                .add(cert)
                .map_err(|e| format!("certificado de autoridad no utilizable: {e}"))?;
        }
    }
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(
        tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("configuración TLS no válida: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
