//! The test CA's fixtures (tests/fixtures/tls: `ca.pem`, `other-ca.pem`, and a
//! certificate for 127.0.0.1 with its key; `client-ca.pem` and the client
//! certificate `client.pem` it signed, with `client.key`, for mutual TLS), a
//! TLS server configuration on them, and a TLS terminator in front of a plain
//! HTTP server. All were made with `openssl` and are valid for 100 years.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A server configuration with the certificate for 127.0.0.1, offering `alpn`.
pub fn server_config(alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
    server_config_with(alpn, None)
}

/// [`server_config`] that requires a client certificate signed by the CA in
/// the fixture `client_ca`, when given.
pub fn server_config_with(alpn: &[&[u8]], client_ca: Option<&str>) -> Arc<rustls::ServerConfig> {
    let pem = |name: &str| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(fixture(name))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in pem(ca) {
                roots.add(c).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(pem("server.pem"), key).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Terminate TLS on 127.0.0.1 (the fixture certificate, no ALPN: HTTP/1.1) and
/// pass the plain bytes to `backend`, until `stop`. Runs on the caller's runtime.
pub async fn tls_terminator(backend: std::net::SocketAddr, stop: CancellationToken) -> std::net::SocketAddr {
    tls_terminator_with(backend, stop, server_config(&[])).await
}

/// [`tls_terminator`] with the server configuration `config`.
pub async fn tls_terminator_with(
    backend: std::net::SocketAddr,
    stop: CancellationToken,
    config: Arc<rustls::ServerConfig>,
) -> std::net::SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                a = listener.accept() => a.unwrap(),
                _ = stop.cancelled() => return,
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake is the point of one test: just drop it.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}
