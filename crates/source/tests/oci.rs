//! Charts from an OCI registry: a local registry that wants a bearer token
//! (from its token realm, for basic credentials) serves a chart's tags over
//! two pages, its manifest and its layer; the chart is pulled by tag and
//! by range, kept once by digest, and a layer whose digest is not the
//! manifest's is refused.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitplane_source::{Credentials, SnapshotLimits, Sources};
use sha2::Digest as _;

const CHART: &[u8] = b"not really a tgz: the source crate only stores it";
/// `reader:s3cret` in basic auth.
const BASIC: &str = "Basic cmVhZGVyOnMzY3JldA==";

/// The registry's answer to one request: status, extra headers, body.
fn answer(
    base: &str,
    path: &str,
    auth: &str,
    layer_digest: &str,
) -> (&'static str, String, Vec<u8>) {
    let challenge = format!(
        "WWW-Authenticate: Bearer realm=\"{base}/token\",service=\"reg\",scope=\"repository:charts/web:pull\"\r\n"
    );
    if path.starts_with("/token?") {
        return if auth == BASIC && path.contains("scope=repository%3Acharts%2Fweb%3Apull") {
            ("200 OK", String::new(), br#"{"token":"t0k"}"#.to_vec())
        } else {
            ("401 Unauthorized", String::new(), Vec::new())
        };
    }
    if auth != "Bearer t0k" {
        return ("401 Unauthorized", challenge, Vec::new());
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:{z}","size":2}},"layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"sha256:{layer_digest}","size":{}}}]}}"#,
        CHART.len(),
        z = "0".repeat(64)
    );
    match path {
        "/v2/charts/web/tags/list" => (
            "200 OK",
            "Link: </v2/charts/web/tags/list?last=0.2.0&n=2>; rel=\"next\"\r\n".into(),
            br#"{"name":"charts/web","tags":["0.1.0","0.2.0"]}"#.to_vec(),
        ),
        "/v2/charts/web/tags/list?last=0.2.0&n=2" => (
            "200 OK",
            String::new(),
            br#"{"name":"charts/web","tags":["0.3.1","1.0.0-rc.1"]}"#.to_vec(),
        ),
        "/v2/charts/web/manifests/0.3.1" | "/v2/charts/web/manifests/0.2.0" => {
            ("200 OK", String::new(), manifest.into_bytes())
        }
        p if p == format!("/v2/charts/web/blobs/sha256:{layer_digest}") => {
            ("200 OK", String::new(), CHART.to_vec())
        }
        _ => ("404 Not Found", String::new(), Vec::new()),
    }
}

/// Serves the registry on a local port; returns its URL and the requests.
fn serve_registry(layer_digest: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let url = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap_or_default();
            let mut auth = String::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.trim().split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    auth = value.trim().to_string();
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(path.clone());
            let (status, headers, body) = answer(&base, &path, &auth, &layer_digest);
            let head = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (url, asked)
}

fn credentials() -> Credentials {
    Credentials {
        username: Some("reader".into()),
        password: Some("s3cret".into()),
        ..Credentials::default()
    }
}

#[test]
fn charts_are_pulled_from_an_oci_registry_with_a_token() {
    let digest = format!("{:x}", sha2::Sha256::digest(CHART));
    let (url, asked) = serve_registry(digest.clone());
    let cache = tempfile::tempdir().unwrap();
    let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
    let repo = format!("oci://{}/charts", url.trim_start_matches("http://"));
    let never = AtomicBool::new(false);
    let pull = |version: &str, credentials: &Credentials| {
        sources.pull_chart(&repo, "web", version, credentials, Duration::ZERO, &never)
    };

    // A range: the tags (both pages) decide; pre-releases are left out.
    let pulled = pull("0.x", &credentials()).unwrap();
    assert_eq!(pulled.version, "0.3.1");
    assert_eq!(pulled.digest, digest);
    assert_eq!(
        std::fs::read(pulled.dir.join(&pulled.file_name)).unwrap(),
        CHART
    );
    let requests = asked.lock().unwrap().clone();
    assert!(
        requests.iter().any(|p| p.starts_with("/token?")),
        "{requests:?}"
    );
    assert!(requests.contains(&"/v2/charts/web/tags/list?last=0.2.0&n=2".to_string()));

    // An exact version is a tag; the layer is not downloaded again. A
    // repository URL without a scheme (Argo CD's `enableOCI`) is a registry.
    asked.lock().unwrap().clear();
    let schemeless = repo.trim_start_matches("oci://");
    let again = sources
        .pull_chart(
            schemeless,
            "web",
            "0.2.0",
            &credentials(),
            Duration::ZERO,
            &never,
        )
        .unwrap();
    assert_eq!(
        (again.version.as_str(), again.digest.as_str()),
        ("0.2.0", digest.as_str())
    );
    let requests = asked.lock().unwrap().clone();
    assert!(
        !requests.iter().any(|p| p.contains("/blobs/")),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|p| p.contains("tags/list")),
        "{requests:?}"
    );

    // Asked again within the reuse interval, nothing is requested.
    asked.lock().unwrap().clear();
    let reuse = || {
        sources
            .pull_chart(
                &repo,
                "web",
                "0.x",
                &credentials(),
                Duration::from_secs(600),
                &never,
            )
            .unwrap()
    };
    let reused = reuse();
    assert_eq!(reused.version, "0.3.1");
    let reused_again = reuse();
    assert_eq!(reused_again, reused);
    let requests = asked.lock().unwrap().clone();
    assert!(requests.is_empty(), "{requests:?}");

    // Without credentials the realm gives no token: a clear error, and no
    // credentials in it.
    let refused = pull("0.3.1", &Credentials::default())
        .unwrap_err()
        .to_string();
    assert!(refused.contains("no token for charts/web"), "{refused}");
    assert!(!refused.contains("s3cret"));
    assert!(
        pull("9.x", &credentials())
            .unwrap_err()
            .to_string()
            .contains("no tag")
    );
}

#[test]
fn a_layer_that_is_not_the_manifests_is_refused() {
    let wrong = "ab".repeat(32);
    let (url, _) = serve_registry(wrong.clone());
    let cache = tempfile::tempdir().unwrap();
    let sources = Sources::new(cache.path(), SnapshotLimits::default()).unwrap();
    let repo = format!("oci://{}/charts", url.trim_start_matches("http://"));
    let error = sources
        .pull_chart(
            &repo,
            "web",
            "0.3.1",
            &credentials(),
            Duration::ZERO,
            &AtomicBool::new(false),
        )
        .unwrap_err()
        .to_string();
    assert!(error.contains("not the manifest's"), "{error}");
    assert!(!cache.path().join(format!("charts/{wrong}.tgz")).exists());
}
