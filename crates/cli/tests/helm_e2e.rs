//! Helm charts from a chart repository, end to end: `gitplane up` on a
//! repository whose Application names `repoURL` + `chart` + a version range,
//! served by a local Helm repository that wants basic auth (the credentials
//! from an Argo CD repository Secret synced before the Application). The
//! chart is pulled, its digest checked, rendered with `spec.source.helm`,
//! and synced.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;
use serde_json::Value;
use sha2::Digest as _;

/// A Helm repository on a local port: `index.yaml` and the chart, only
/// with the right basic auth, over TLS when given a server configuration;
/// returns its URL and the paths it was asked.
fn serve_repository(
    index: String,
    chart: Vec<u8>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            match &tls {
                Some(config) => {
                    let Ok(connection) = rustls::ServerConnection::new(config.clone()) else {
                        continue;
                    };
                    answer(
                        rustls::StreamOwned::new(connection, stream),
                        &index,
                        &chart,
                        &log,
                    );
                }
                None => answer(stream, &index, &chart, &log),
            }
        }
    });
    (url, asked)
}

/// Answers one request of the repository on `stream`.
fn answer(mut stream: impl Read + Write, index: &str, chart: &[u8], log: &Mutex<Vec<String>>) {
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("reader:s3cret")
    );
    let mut request = String::new();
    let mut authorized = false;
    {
        let mut reader = BufReader::new(&mut stream);
        if reader.read_line(&mut request).is_err() {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.trim().split_once(':') {
                authorized |=
                    name.eq_ignore_ascii_case("authorization") && value.trim() == expected_auth;
            }
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(path.clone());
    let (status, body): (&str, &[u8]) = match path.as_str() {
        _ if !authorized => ("401 Unauthorized", b""),
        "/index.yaml" => ("200 OK", index.as_bytes()),
        "/charts/web-0.3.1.tgz" => ("200 OK", chart),
        _ => ("404 Not Found", b""),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// The fixture chart of the render tests, with a Secret whose token is
/// random, packed as `helm package` packs it.
fn packed_chart(work: &Path) -> Vec<u8> {
    let charts = work.join("src");
    std::fs::create_dir_all(&charts).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(common::repo_root().join("crates/render/tests/helm/charts/web"))
        .arg(&charts)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        charts.join("web/templates/token.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  token: {{ randAlphaNum 24 | quote }}\n",
    )
    .unwrap();
    let archive = work.join("web-0.3.1.tgz");
    let status = Command::new("tar")
        .args(["-czf"])
        .arg(&archive)
        .args(["--exclude", "*.bak", "-C"])
        .arg(&charts)
        .arg("web")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(archive).unwrap()
}

fn app(kubeconfig: &Path, name: &str) -> Value {
    let (ok, text) = common::kubectl(
        kubeconfig,
        &["get", "applications", "-n", "gitplane", name, "-o", "json"],
        None,
    );
    if ok {
        serde_json::from_str(&text).unwrap()
    } else {
        Value::Null
    }
}

#[test]
fn a_chart_from_a_helm_repository_is_pulled_rendered_and_synced() {
    let work = tempfile::tempdir().unwrap();
    let chart = packed_chart(work.path());
    let digest = format!("{:x}", sha2::Sha256::digest(&chart));
    let index = format!(
        "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 0.3.1\n    digest: {digest}\n    urls: [charts/web-0.3.1.tgz]\n  - name: web\n    version: 0.2.0\n    digest: 0000\n    urls: [charts/web-0.2.0.tgz]\n  - name: web\n    version: 0.4.0-rc.1\n    urls: [charts/web-0.4.0-rc.1.tgz]\n"
    );
    let (url, asked) = serve_repository(index, chart, None);
    let repo = work.path().join("repo");
    std::fs::create_dir_all(repo.join("bootstrap")).unwrap();
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    std::fs::write(
        repo.join("bootstrap/charts-repository.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: charts\n  labels: {{argocd.argoproj.io/secret-type: repository}}\n  annotations: {{argocd.argoproj.io/sync-wave: '-1'}}\ndata:\n  type: {}\n  url: {}\n  username: {}\n  password: {}\n",
            encode("helm"),
            encode(&url),
            encode("reader"),
            encode("s3cret")
        ),
    )
    .unwrap();
    std::fs::write(
        repo.join("bootstrap/web.yaml"),
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    chart: web\n    targetRevision: 0.3.x\n    helm:\n      parameters:\n      - {{name: replicaCount, value: '2'}}\n      valuesObject:\n        service: {{port: 9090}}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: web\n  syncPolicy:\n    automated: {{prune: true, selfHeal: true}}\n    syncOptions: [CreateNamespace=true]\n"
        ),
    )
    .unwrap();
    // `up --once` stops; its data directory still holds the state.
    let (_server, kubeconfig) = converge(&repo, work.path(), "a chart from a Helm repository");
    let web = app(&kubeconfig, "web");
    assert_eq!(web["status"]["sync"]["status"], "Synced", "{web}");
    assert_eq!(web["status"]["health"]["status"], "Healthy", "{web}");
    assert_eq!(web["status"]["sourceType"], "Helm", "{web}");
    assert_eq!(web["status"]["sync"]["revision"], "0.3.1", "{web}");
    // The random token is stable here, and the app says where it comes from.
    let conditions = web["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "NonDeterministicRenderWarning"
                && c["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("web/templates/token.yaml calls randAlphaNum:")),
        "{web}"
    );
    let (ok, deployment) = common::kubectl(
        &kubeconfig,
        &["get", "deployment", "-n", "web", "web", "-o", "json"],
        None,
    );
    assert!(ok, "{deployment}");
    let deployment: Value = serde_json::from_str(&deployment).unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        9090
    );
    // Helm saw the destination cluster: its version and the kinds it serves.
    let (ok, files) = common::kubectl(
        &kubeconfig,
        &["get", "configmap", "-n", "web", "web-files", "-o", "json"],
        None,
    );
    assert!(ok, "{files}");
    let files: Value = serde_json::from_str(&files).unwrap();
    assert_eq!(files["data"]["applications"], "true", "{files}");
    let (_, version) = common::kubectl(&kubeconfig, &["version", "-o", "json"], None);
    let version: Value = serde_json::from_str(&version).unwrap();
    assert_eq!(
        files["data"]["kube"], version["serverVersion"]["gitVersion"],
        "{files}"
    );
    let (ok, crd) = common::kubectl(&kubeconfig, &["get", "crd", "widgets.example.com"], None);
    assert!(ok, "the chart's CRD is applied (skipCrds is false): {crd}");
    let asked = asked.lock().unwrap().clone();
    assert!(asked.contains(&"/index.yaml".to_string()), "{asked:?}");
    assert_eq!(
        asked.iter().filter(|p| p.ends_with(".tgz")).count(),
        1,
        "the archive is pulled once, and only the chosen version: {asked:?}"
    );
}

/// A CA, a server certificate it signs for 127.0.0.1, and a client
/// certificate it signs: (CA PEM, server config that wants a client
/// certificate from that CA, client certificate PEM, client key PEM).
fn tls_material() -> (String, Arc<rustls::ServerConfig>, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let signed = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert, key)
    };
    let (server_cert, server_key) = signed(vec!["127.0.0.1".into()]);
    let (client_cert, client_key) = signed(vec!["gitplane".into()]);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
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
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    (
        ca.pem(),
        Arc::new(config),
        client_cert.pem(),
        client_key.serialize_pem(),
    )
}

#[test]
fn a_chart_repository_over_tls_is_trusted_and_answered_as_argo_cd_configures_it() {
    // The CA from argocd-tls-certs-cm (keyed by host), the client
    // certificate from the repository Secret's tlsClientCertData/Key.
    let work = tempfile::tempdir().unwrap();
    let chart = packed_chart(work.path());
    let digest = format!("{:x}", sha2::Sha256::digest(&chart));
    let index = format!(
        "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 0.3.1\n    digest: {digest}\n    urls: [charts/web-0.3.1.tgz]\n"
    );
    let (ca, config, client_cert, client_key) = tls_material();
    let (url, asked) = serve_repository(index, chart, Some(config));
    let repo = work.path().join("repo");
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let indented = |pem: &str| pem.trim_end().replace('\n', "\n    ");
    write_file(
        &repo,
        "bootstrap/tls-certs.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-tls-certs-cm\n  annotations: {{argocd.argoproj.io/sync-wave: '-1'}}\ndata:\n  127.0.0.1: |\n    {}\n",
            indented(&ca)
        ),
    );
    write_file(
        &repo,
        "bootstrap/charts-repository.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: charts\n  labels: {{argocd.argoproj.io/secret-type: repository}}\n  annotations: {{argocd.argoproj.io/sync-wave: '-1'}}\ndata:\n  type: {}\n  url: {}\n  username: {}\n  password: {}\n  tlsClientCertData: {}\n  tlsClientCertKey: {}\n",
            encode("helm"),
            encode(&url),
            encode("reader"),
            encode("s3cret"),
            encode(&client_cert),
            encode(&client_key),
        ),
    );
    write_file(
        &repo,
        "bootstrap/web.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    chart: web\n    targetRevision: 0.3.1\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: web\n  syncPolicy:\n    automated: {{}}\n    syncOptions: [CreateNamespace=true]\n"
        ),
    );
    let (_server, kubeconfig) = converge(&repo, work.path(), "a chart over TLS");
    let web = app(&kubeconfig, "web");
    assert_eq!(web["status"]["sync"]["status"], "Synced", "{web}");
    assert_eq!(web["status"]["sync"]["revision"], "0.3.1", "{web}");
    let asked = asked.lock().unwrap().clone();
    assert!(
        asked.contains(&"/charts/web-0.3.1.tgz".to_string()),
        "the archive came over TLS with the client certificate: {asked:?}"
    );
}

/// `gitplane helm template NAME CHART [flags]` in `dir`, with its own cache;
/// its status, stdout and stderr.
fn helm_template(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args(["helm", "template"])
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("GITPLANE_HELM_PASSWORD")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn helm_template_pulls_with_repo_and_version_as_helm_does() {
    let work = tempfile::tempdir().unwrap();
    let chart = packed_chart(work.path());
    let digest = format!("{:x}", sha2::Sha256::digest(&chart));
    let index = format!(
        "apiVersion: v1\nentries:\n  web:\n  - name: web\n    version: 0.3.1\n    digest: {digest}\n    urls: [charts/web-0.3.1.tgz]\n"
    );
    let (url, asked) = serve_repository(index, chart, None);
    std::fs::create_dir_all(work.path().join("env")).unwrap();
    std::fs::write(work.path().join("env/prod.yaml"), "replicaCount: 5\n").unwrap();
    std::fs::write(work.path().join("motd.txt"), "hello\n").unwrap();
    let flags = [
        "-f",
        "env/prod.yaml",
        "--set-file",
        "podAnnotations.motd=motd.txt",
        "--root",
        ".",
    ];

    let (ok, local, stderr) = helm_template(
        work.path(),
        &[&["rel", "web-0.3.1.tgz"][..], &flags].concat(),
    );
    assert!(ok, "{stderr}");
    assert!(local.contains("replicas: 5"), "{local}");
    let remote_args = [
        &["rel", "web", "--repo", &url, "--version", "0.3.x"][..],
        &["--username", "reader", "--password", "s3cret"],
        &flags,
    ]
    .concat();
    let (ok, pulled, stderr) = helm_template(work.path(), &remote_args);
    assert!(ok, "{stderr}");
    assert_eq!(pulled, local);
    assert!(stderr.contains("pulled web 0.3.1"), "{stderr}");
    assert!(
        stderr.contains("warning: web/templates/token.yaml calls randAlphaNum"),
        "{stderr}"
    );

    // Pulled once: the archive is kept in the cache by digest.
    let (ok, again, stderr) = helm_template(work.path(), &remote_args);
    assert!(ok, "{stderr}");
    assert_eq!(again, local);
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.iter().filter(|p| p.ends_with(".tgz")).count(),
        1,
        "{asked:?}"
    );

    // Values files stay inside the root; wrong credentials are refused
    // without being echoed.
    let (ok, _, stderr) = helm_template(
        work.path(),
        &[&remote_args[..], &["-f", "/etc/hostname"]].concat(),
    );
    assert!(!ok);
    assert!(stderr.contains("outside the root"), "{stderr}");
    let (ok, _, stderr) = helm_template(
        work.path(),
        &[
            &remote_args[..6],
            &["--username", "reader", "--password", "wrong-pw"],
        ]
        .concat(),
    );
    assert!(!ok);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("wrong-pw"), "{stderr}");
}

#[test]
fn lookup_reads_the_destination_when_the_app_opts_in_and_its_project_allows() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let write = |path: &str, text: &str| write_file(&repo, path, text);
    write(
        "bootstrap/project.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: lookups\n  annotations: {gitplane.dev/allow-helm-lookup: 'true', argocd.argoproj.io/sync-wave: '-2'}\nspec:\n  sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n",
    );
    write(
        "bootstrap/db-namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: db\n  annotations: {argocd.argoproj.io/sync-wave: '-2'}\n",
    );
    // `cGFzc3dvcmQtdGhhdC1zdGF5cw==` is `password-that-stays`.
    write(
        "bootstrap/db-secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: keep\n  namespace: db\n  annotations: {argocd.argoproj.io/sync-wave: '-1'}\ndata:\n  password: cGFzc3dvcmQtdGhhdC1zdGF5cw==\n",
    );
    write(
        "bootstrap/db.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: db\n  annotations: {{gitplane.dev/helm-lookup: 'true'}}\nspec:\n  project: lookups\n  source:\n    repoURL: {}\n    path: charts/db\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: db\n  syncPolicy:\n    automated: {{prune: true}}\n",
            repo.display()
        ),
    );
    write(
        "charts/db/Chart.yaml",
        "apiVersion: v2\nname: db\nversion: 0.1.0\n",
    );
    write(
        "charts/db/templates/settings.yaml",
        "{{- $kept := lookup \"v1\" \"Secret\" .Release.Namespace \"keep\" }}\n{{- $all := lookup \"v1\" \"Secret\" .Release.Namespace \"\" }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db-settings\ndata:\n  password: {{ if $kept }}{{ index $kept.data \"password\" | b64dec | quote }}{{ else }}\"drawn anew\"{{ end }}\n  secrets: {{ len $all.items | quote }}\n  listKind: {{ $all.kind | quote }}\n  missing: {{ lookup \"v1\" \"Secret\" .Release.Namespace \"nope\" | len | quote }}\n",
    );
    let (_server, kubeconfig) = converge(&repo, work.path(), "a chart that keeps its Secret");
    let db = app(&kubeconfig, "db");
    assert_eq!(db["status"]["sync"]["status"], "Synced", "{db}");
    let settings = configmap(&kubeconfig, "db", "db-settings");
    assert_eq!(
        settings["data"],
        serde_json::json!({
            "password": "password-that-stays",
            "secrets": "1",
            "listKind": "SecretList",
            "missing": "0",
        }),
        "{settings}"
    );
}

fn write_file(repo: &Path, path: &str, text: &str) {
    let path = repo.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn commit_all(repo: &Path, message: &str) {
    common::git(repo, &["init", "-q", "-b", "main"]);
    common::git(repo, &["add", "-A"]);
    common::git(repo, &["commit", "-qm", message]);
}

/// Commits `repo`, runs `gitplane up --once` on it (its state under
/// `work`), and serves that state: the server, and its kubeconfig.
fn converge(repo: &Path, work: &Path, message: &str) -> (common::ApiServer, PathBuf) {
    commit_all(repo, message);
    let data = work.join("data");
    up_once(repo, &data);
    (
        common::start_apiserver(&data, false),
        data.join("kubeconfig"),
    )
}

/// A ConfigMap, read with kubectl.
fn configmap(kubeconfig: &Path, namespace: &str, name: &str) -> Value {
    let (ok, text) = common::kubectl(
        kubeconfig,
        &["get", "configmap", "-n", namespace, name, "-o", "json"],
        None,
    );
    assert!(ok, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `gitplane up --once` on `repo`, keeping its state in `data`.
fn up_once(repo: &Path, data: &Path) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args(["up", "--api", "127.0.0.1:0", "--ui", "127.0.0.1:0"])
        .args(["--once", "--timeout", "3m", "--data-dir"])
        .arg(data)
        .arg("--repo")
        .arg(repo)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "gitplane up --once: {} after {:?}\n{}",
        output.status,
        started.elapsed(),
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn values_files_come_from_another_source_by_its_ref() {
    let work = tempfile::tempdir().unwrap();
    let values = work.path().join("values");
    write_file(&values, "envs/prod.yaml", "replicas: 3\ncolor: blue\n");
    write_file(
        &values,
        "apps/README.md",
        "not rendered: a ref-only source\n",
    );
    commit_all(&values, "prod values");
    let repo = work.path().join("repo");
    write_file(
        &repo,
        "bootstrap/web.yaml",
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  project: default\n  sources:\n  - repoURL: {}\n    path: charts/web\n    helm:\n      valueFiles: [$values/envs/prod.yaml]\n  - repoURL: {}\n    targetRevision: main\n    ref: values\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: web\n  syncPolicy:\n    automated: {{prune: true}}\n    syncOptions: [CreateNamespace=true]\n",
            repo.display(),
            values.display()
        ),
    );
    write_file(
        &repo,
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    );
    write_file(&repo, "charts/web/values.yaml", "replicas: 1\ncolor: red\n");
    write_file(
        &repo,
        "charts/web/templates/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  replicas: {{ .Values.replicas | quote }}\n  color: {{ .Values.color }}\n",
    );
    let (_server, kubeconfig) = converge(&repo, work.path(), "a chart whose values live elsewhere");
    let web = app(&kubeconfig, "web");
    assert_eq!(web["status"]["sync"]["status"], "Synced", "{web}");
    assert_eq!(web["status"]["sourceType"], "Helm", "{web}");
    let revisions = web["status"]["sync"]["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 2, "one revision per source: {web}");
    let resources = web["status"]["resources"].as_array().unwrap();
    assert_eq!(
        resources.len(),
        1,
        "the ref-only source renders nothing: {web}"
    );
    let settings = configmap(&kubeconfig, "web", "settings");
    assert_eq!(
        settings["data"],
        serde_json::json!({"replicas": "3", "color": "blue"}),
        "{settings}"
    );
}

#[test]
fn a_platform_of_releases_of_one_chart_converges() {
    // The bench's helm shape at a size CI affords: 12 apps, each a release
    // of one chart in the repository with its own values file.
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let generated = common::gitplane(&[
        "bench",
        "generate",
        repo.to_str().unwrap(),
        "--apps",
        "12",
        "--shape",
        "helm",
    ]);
    assert!(generated.status.success(), "{generated:?}");
    let data = work.path().join("data");
    up_once(&repo, &data);
    let _server = common::start_apiserver(&data, false);
    let kubeconfig = data.join("kubeconfig");
    let last = app(&kubeconfig, "app-0011");
    assert_eq!(last["status"]["sync"]["status"], "Synced", "{last}");
    assert_eq!(last["status"]["health"]["status"], "Healthy", "{last}");
    assert_eq!(last["status"]["sourceType"], "Helm", "{last}");
    // App 11's own values file: 11 % 3 == 2 gives log level `warn`.
    let settings = configmap(&kubeconfig, "team-01", "app-0011-settings");
    assert_eq!(settings["data"]["LOG_LEVEL"], "warn", "{settings}");
}
