//! The TLS settings every HTTP client of the bridge shares (upstreams, registry,
//! OAuth). reqwest builds a fresh certificate verifier for each client, and on
//! Linux that reads and parses every system root certificate each time: with 10
//! upstreams that was 1,600 file opens at start-up and about 0.15 MB of memory
//! per server (benches/bridge.rs, `scale`). Here one verifier is shared, and the system roots
//! are loaded on the first TLS handshake rather than at start-up, so a bridge
//! whose servers are all plain `http://` (local development) never loads them.
//! Verification itself is rustls-platform-verifier's, exactly what reqwest uses.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The client configuration to hand to `reqwest::ClientBuilder::tls_backend_preconfigured`
/// (a cheap clone: the verifier and provider are shared).
pub fn client_config() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

fn build() -> rustls::ClientConfig {
    client_config_with(&ClientFiles::default()).expect("no file to read, nothing to refuse")
}

/// As reqwest does: a process-wide default provider if one was installed.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

fn builder(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
}

fn finish(mut config: rustls::ClientConfig) -> rustls::ClientConfig {
    // What reqwest speaks, HTTP/2 first: a server that offers it gets every
    // request to it on one connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

/// PEM files a client adds to the shared settings: certificates to trust
/// besides the system's roots (a private CA), and a certificate with its key
/// to present (mutual TLS).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientFiles {
    pub roots: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientFiles {
    pub fn is_empty(&self) -> bool {
        *self == ClientFiles::default()
    }
}

/// A client configuration like [`client_config`] with `files` added, read
/// now (the system roots too, when there are extra ones). The error names
/// the file and what is wrong with it, never a key's content.
pub fn client_config_with(files: &ClientFiles) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match &files.roots {
        Some(path) => Arc::new(
            rustls_platform_verifier::Verifier::new_with_extra_roots(certificates(path)?, provider.clone())
                .map_err(|e| format!("cannot trust {} with the system's roots: {e}", path.display()))?,
        ),
        None => Arc::new(LazyVerifier {
            provider: provider.clone(),
            verifier: OnceLock::new(),
        }),
    };
    let builder = builder(provider, verifier);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let pem = PrivateKeyDer::from_pem_slice(&read(key)?)
                .map_err(|e| format!("{}: no usable private key in PEM ({e})", key.display()))?;
            builder.with_client_auth_cert(certificates(cert)?, pem).map_err(|e| {
                format!(
                    "the client certificate {} and key {} cannot be used together: {e}",
                    cert.display(),
                    key.display()
                )
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate needs its key, and a key its certificate".into()),
    };
    Ok(finish(config))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The certificates of a PEM file; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in PEM", path.display()));
    }
    Ok(certs)
}

/// The platform verifier, made on first use and then shared.
#[derive(Debug)]
struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl LazyVerifier {
    fn get(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                let v = rustls_platform_verifier::Verifier::new(self.provider.clone());
                if let Err(e) = &v {
                    tracing::warn!("cannot load the system's root certificates: {e}");
                }
                v
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.get()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    // Signatures need the provider's algorithms, not the roots: no loading here.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh config (not the process-wide one, which another test's handshake
    /// could have initialised): building it and a client on it loads no roots.
    #[test]
    fn roots_are_not_loaded_to_build_a_client() {
        let config = build();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let _client = reqwest::Client::builder()
            .tls_backend_preconfigured(config.clone())
            .build()
            .unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("LazyVerifier"), "{debug}");
        assert!(debug.contains("verifier: OnceLock(<uninit>)"), "{debug}");
    }

    /// Extra roots and a client certificate from PEM files; each unusable
    /// file named with what is wrong with it.
    #[test]
    fn client_files_are_read_and_named_when_unusable() {
        let fixture = |name: &str| {
            Some(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/tls")
                    .join(name),
            )
        };
        let files = |roots, cert, key| ClientFiles { roots, cert, key };
        let ok = client_config_with(&files(fixture("ca.pem"), fixture("client.pem"), fixture("client.key"))).unwrap();
        assert!(ok.client_auth_cert_resolver.has_certs());
        assert_eq!(ok.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let err = |f: ClientFiles| client_config_with(&f).unwrap_err();
        let e = err(files(fixture("missing.pem"), None, None));
        assert!(e.starts_with("cannot read ") && e.contains("missing.pem"), "{e}");
        let e = err(files(fixture("client.key"), None, None));
        assert!(e.contains("client.key: no certificate in PEM"), "{e}");
        let e = err(files(None, fixture("client.pem"), None));
        assert!(e.contains("needs its key"), "{e}");
        let e = err(files(None, fixture("client.pem"), fixture("client.pem")));
        assert!(e.contains("no usable private key"), "{e}");
        let e = err(files(None, fixture("client.pem"), fixture("server.key")));
        assert!(e.contains("cannot be used together"), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "{e}");
    }
}
