//! Transport security of the embedded server: a CA and a server certificate
//! generated into the data directory on first start (reused afterwards), a bearer
//! token, and the kubeconfig that carries them (written with mode 0600).

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

/// Certificates, key and token of a data directory.
#[derive(Clone)]
pub struct Credentials {
    /// PEM of the CA certificate clients trust.
    pub ca_pem: String,
    /// PEM of the server certificate.
    pub server_cert_pem: String,
    /// PEM of the server key.
    pub server_key_pem: String,
    /// The bearer token every request must carry.
    pub token: String,
}

const CA_CERT: &str = "ca.crt";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const TOKEN: &str = "token";

/// Loads the credentials in `dir`, creating any that are missing.
pub fn load_or_create(dir: &Path) -> Result<Credentials, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
    let existing = (read(CA_CERT), read(SERVER_CERT), read(SERVER_KEY));
    let (ca_pem, server_cert_pem, server_key_pem) = match existing {
        (Some(ca), Some(cert), Some(key)) => (ca, cert, key),
        // Missing pieces: issue a new CA and server certificate together.
        _ => {
            let (ca, cert, key) = issue_certificates()?;
            write_private(&dir.join(CA_CERT), &ca)?;
            write_private(&dir.join(SERVER_CERT), &cert)?;
            write_private(&dir.join(SERVER_KEY), &key)?;
            (ca, cert, key)
        }
    };
    let token = match read(TOKEN) {
        Some(token) if !token.trim().is_empty() => token.trim().to_string(),
        _ => {
            let token = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            write_private(&dir.join(TOKEN), &token)?;
            token
        }
    };
    Ok(Credentials {
        ca_pem,
        server_cert_pem,
        server_key_pem,
        token,
    })
}

/// A new CA and a server certificate it signs for the loopback names and
/// addresses: (CA PEM, server certificate PEM, server key PEM). The CA key is not
/// kept: a new CA is issued whenever a certificate is missing.
fn issue_certificates() -> Result<(String, String, String), String> {
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gitplane-ca");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(err)?;
    let names = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ];
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "gitplane-apiserver");
    for ip in [
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ] {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, content: &str) -> Result<(), String> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(content.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The rustls server configuration (HTTP/2 and HTTP/1.1 offered by ALPN).
pub fn server_config(creds: &Credentials) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(creds.server_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("server certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(creds.server_key_pem.as_bytes())
        .map_err(|e| format!("server key: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Writes a kubeconfig for `https://ADDRESS` with the CA and token (mode 0600).
pub fn write_kubeconfig(path: &Path, server: &str, creds: &Credentials) -> Result<PathBuf, String> {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gitplane", "cluster": {
            "server": server,
            "certificate-authority-data": BASE64.encode(creds.ca_pem.as_bytes()),
        }}],
        "users": [{"name": "gitplane", "user": {"token": creds.token}}],
        "contexts": [{"name": "gitplane", "context": {"cluster": "gitplane", "user": "gitplane", "namespace": "default"}}],
        "current-context": "gitplane",
        "preferences": {},
    });
    let text = gitplane_object::yaml::to_yaml(&config);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    write_private(path, &text)?;
    Ok(path.to_path_buf())
}
