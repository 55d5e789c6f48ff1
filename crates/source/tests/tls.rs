//! A Helm repository over HTTPS with its own CA and client certificates
//! (mutual TLS): refused without the CA, reached with it (Argo CD's
//! `argocd-tls-certs-cm` entry) or with `insecure`, and only with the
//! client certificate (`tlsClientCertData` / `tlsClientCertKey`).
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use gitplane_source::{Credentials, SnapshotLimits, Sources};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Digest as _;

const CHART: &[u8] = b"a chart archive, as far as the source crate cares";

/// A CA, to sign certificates with.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn sign(&self, names: &[&str]) -> (String, String, CertificateDer<'static>, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            cert.pem(),
            key.serialize_pem(),
            cert.der().clone(),
            key.serialize_der(),
        )
    }
}

/// Serves `index.yaml` and the chart over TLS, asking clients for a
/// certificate signed by `clients`; returns the repository's URL.
fn serve(server: &Pki, clients: &Pki) -> String {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (_, _, cert, key) = server.sign(&["localhost"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(clients.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![cert],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let digest = format!("{:x}", sha2::Sha256::digest(CHART));
    let index = format!(
        "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 1.0.0\n    digest: {digest}\n    urls: [web-1.0.0.tgz]\n"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let connection = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, stream);
            let mut reader = BufReader::new(&mut tls);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue; // the handshake failed: the client was refused
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let body: &[u8] = match path {
                "/index.yaml" => index.as_bytes(),
                "/web-1.0.0.tgz" => CHART,
                _ => b"",
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = tls.write_all(head.as_bytes());
            let _ = tls.write_all(body);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    url
}

#[test]
fn helm_repositories_over_tls_with_a_private_ca_and_client_certificates() {
    let (server_pki, client_pki) = (Pki::new(), Pki::new());
    let url = serve(&server_pki, &client_pki);
    let (cert, key, _, _) = client_pki.sign(&["gitplane"]);
    let pull = |credentials: &Credentials| {
        let cache = tempfile::tempdir().unwrap();
        let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
        sources
            .pull_chart(
                &url,
                "web",
                "1.x",
                credentials,
                Duration::ZERO,
                &AtomicBool::new(false),
            )
            .map(|pulled| pulled.version)
            .map_err(|e| e.to_string())
    };
    let trusted = Credentials {
        ca_certs: Some(server_pki.ca_pem.clone()),
        client_cert: Some((cert.clone(), key.clone())),
        ..Credentials::default()
    };
    assert_eq!(pull(&trusted), Ok("1.0.0".to_string()));

    // Not trusting the server's CA: refused, unless told not to check.
    let untrusted = Credentials {
        client_cert: Some((cert.clone(), key.clone())),
        ..Credentials::default()
    };
    let refused = pull(&untrusted).unwrap_err();
    assert!(refused.contains("index.yaml"), "{refused}");
    let insecure = Credentials {
        insecure: true,
        ..untrusted
    };
    assert_eq!(pull(&insecure), Ok("1.0.0".to_string()));

    // Without a client certificate the server refuses the handshake.
    let anonymous = Credentials {
        ca_certs: Some(server_pki.ca_pem.clone()),
        ..Credentials::default()
    };
    assert!(pull(&anonymous).is_err());

    // Bad PEM is reported without being quoted; Debug hides the secrets.
    let bad = Credentials {
        client_cert: Some(("not pem".into(), "secret-key-text".into())),
        password: Some("hunter2".into()),
        ..Credentials::default()
    };
    let error = pull(&bad).unwrap_err();
    assert!(
        error.contains("client certificate and key are not PEM"),
        "{error}"
    );
    assert!(!error.contains("secret-key-text"));
    let shown = format!("{bad:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("secret-key-text"),
        "{shown}"
    );
}
