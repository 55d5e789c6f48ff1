//! A TLS-terminating proxy in front of `gitplane apiserver` that answers some
//! requests itself with 429 or 500, to show that clients retry.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Counts of what the proxy did.
#[derive(Default)]
pub struct Counts {
    pub forwarded: AtomicUsize,
    pub injected: AtomicUsize,
}

/// Serves on a free loopback port with the server's certificate; every
/// `every`-th request is answered with 429 (odd ones) or 500 (even ones)
/// instead of being forwarded. Returns the address.
pub async fn start(
    data: &Path,
    upstream: SocketAddr,
    every: usize,
    counts: Arc<Counts>,
) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(data.join("server.crt"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(data.join("server.key")).unwrap();
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(data.join("ca.crt")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, connector, seen, counts) = (
                acceptor.clone(),
                connector.clone(),
                seen.clone(),
                counts.clone(),
            );
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (connector, seen, counts) =
                        (connector.clone(), seen.clone(), counts.clone());
                    async move {
                        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                        if n % every == 0 {
                            counts.injected.fetch_add(1, Ordering::SeqCst);
                            let code = if (n / every) % 2 == 1 { 429 } else { 500 };
                            let body = format!(
                                r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected by the test proxy","reason":"Injected","code":{code}}}"#
                            );
                            let response = Response::builder()
                                .status(code)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap();
                            return Ok::<_, hyper::Error>(response);
                        }
                        counts.forwarded.fetch_add(1, Ordering::SeqCst);
                        Ok(forward(request, upstream, &connector).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    address
}

async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let stream = tokio::net::TcpStream::connect(upstream).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, stream).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut builder = Request::builder().method(parts.method).uri(
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    );
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = sender
        .send_request(builder.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Response::from_parts(parts, Full::new(body))
}
