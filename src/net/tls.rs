//! The TLS settings every HTTP client of the bridge shares (upstreams, registry,
//! OAuth). reqwest builds a fresh certificate verifier for each client, and on
//! Linux that reads and parses every system root certificate each time: with 10
//! upstreams that was 1,600 file opens at start-up and about 0.15 MB of memory
//! per server (benches/bridge.rs, `scale`). Here one verifier is shared, and the system roots
//! are loaded on the first TLS handshake rather than at start-up, so a bridge
//! whose servers are all plain `http://` (local development) never loads them.
//! Verification itself is rustls-platform-verifier's, exactly what reqwest uses.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The client configuration to hand to `reqwest::ClientBuilder::tls_backend_preconfigured`
/// (a cheap clone: the verifier and provider are shared).
pub fn client_config() -> rustls::ClientConfig {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

fn build() -> rustls::ClientConfig {
    // As reqwest does: a process-wide default provider if one was installed.
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the default provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(LazyVerifier {
            provider,
            verifier: OnceLock::new(),
        }))
        .with_no_client_auth();
    // What reqwest speaks, HTTP/2 first: a server that offers it gets every
    // request to it on one connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
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
}
