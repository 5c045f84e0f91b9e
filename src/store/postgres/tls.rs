//! TLS to the server, through rustls (no system OpenSSL to find or keep patched; the same ring
//! provider orch's HTTP client already links), with libpq's `sslmode` meanings:
//!
//! - `disable`: plain TCP.
//! - `prefer` (libpq's default) and `require`: encrypted, the server's certificate not checked
//!   (as libpq does without a root certificate); `prefer` falls back to plain TCP when the
//!   server offers no TLS, `require` refuses.
//! - `verify-ca`: encrypted, the certificate chained to a trusted root.
//! - `verify-full`: `verify-ca` and the certificate names the host in the URL.
//!
//! Trusted roots: the file `sslrootcert` names (PEM), else the system's store.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => bail!(
                "sslmode={other:?} in the database URL: expected disable, prefer, require, verify-ca or verify-full"
            ),
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `mode` (not `Disable`), trusting `root_cert` or the system's roots.
pub fn client_config(mode: SslMode, root_cert: Option<&str>) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?;
    let chain = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => None,
        SslMode::VerifyCa | SslMode::VerifyFull => Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root_cert)?),
                provider.clone(),
            )
            .build()
            .context("setting up the server certificate's verification")?,
        ),
    };
    let verifier = Verifier {
        chain,
        name: mode == SslMode::VerifyFull,
        provider,
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

fn roots(root_cert: Option<&str>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading sslrootcert {path}"))?
            {
                let cert = cert.with_context(|| format!("reading sslrootcert {path}"))?;
                roots
                    .add(cert)
                    .with_context(|| format!("a certificate in sslrootcert {path}"))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // The system's store may hold a certificate rustls cannot use; the others serve.
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        bail!(
            "no trusted root certificate to verify the database server with (sslmode verify-ca or \
             verify-full): name one with sslrootcert=PATH in the URL, or install the system's"
        );
    }
    Ok(roots)
}

/// The server's certificate as `sslmode` asks: not checked (`prefer`, `require`: as libpq
/// without a root certificate), chained to a trusted root (`verify-ca`), and naming the host
/// (`verify-full`). The handshake's signatures are checked whatever the mode (the server holds
/// the key of the certificate it sent).
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
