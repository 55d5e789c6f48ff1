//! `gitplane up` end to end: a temporary Git repository, the real binary on
//! loopback ports, kubectl and the webhook. One scenario, in order: converge
//! an app-of-apps (plain and Kustomize apps), heal drift, prune what left Git
//! while an unrelated object survives, roll out a new commit, report invalid
//! YAML without touching the cluster and recover, history and rollback,
//! refuse a project violation; a restart in the middle of a sync; apps on
//! other clusters from Secrets (exec plugins refused), an escaping symlink.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Up {
    child: Child,
    kubeconfig: PathBuf,
    http: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(repo: &Path, path: &str, text: &str) {
    let path = repo.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn commit(repo: &Path, message: &str) -> String {
    common::git(repo, &["add", "-A"]);
    common::git(repo, &["commit", "-qm", message]);
    common::git(repo, &["rev-parse", "HEAD"])
}

fn child_app(name: &str, path: &str, project: &str, repo: &Path) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  project: {project}\n  source:\n    repoURL: {}\n    path: {path}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {name}\n  syncPolicy:\n    automated: {{prune: true, selfHeal: true}}\n    syncOptions: [CreateNamespace=true]\n",
        repo.display()
    )
}

/// A repository holding one app, `web`, of one Deployment (not committed).
fn web_app(repo: &Path) {
    common::git(repo, &["init", "-q", "-b", "main"]);
    write(
        repo,
        "bootstrap/web.yaml",
        &child_app("web", "apps/web", "default", repo),
    );
    write(repo, "apps/web/deployment.yaml", DEPLOYMENT);
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n";

fn fixture(repo: &Path) {
    common::git(repo, &["init", "-q", "-b", "main"]);
    write(
        repo,
        "bootstrap/web.yaml",
        &child_app("web", "apps/web", "default", repo),
    );
    write(
        repo,
        "bootstrap/kapp.yaml",
        &child_app("kapp", "apps/kapp", "default", repo),
    );
    write(repo, "apps/web/deployment.yaml", DEPLOYMENT);
    write(
        repo,
        "apps/web/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-extra\ndata: {a: '1'}\n",
    );
    write(
        repo,
        "apps/kapp/kustomization.yaml",
        "namePrefix: k-\nresources: [cm.yaml]\n",
    );
    write(
        repo,
        "apps/kapp/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {b: '2'}\n",
    );
    commit(repo, "first");
}

fn start_up(repo: &Path, data: &Path) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args(["up", "--api", "127.0.0.1:0", "--ui", "127.0.0.1:0"])
        .args(["--reconcile-interval", "1h", "--data-dir"])
        .arg(data)
        .arg("--repo")
        .arg(repo)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut kubeconfig, mut http) = (None, None);
    while kubeconfig.is_none() || http.is_none() {
        let line = lines.next().expect("up prints where to look").unwrap();
        if let Some(rest) = line.strip_prefix("kubeconfig: ") {
            kubeconfig = Some(PathBuf::from(rest.trim()));
        }
        if let Some(rest) = line.strip_prefix("http: http://") {
            http = Some(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Up {
        child,
        kubeconfig: kubeconfig.unwrap(),
        http: http.unwrap(),
    }
}

impl Up {
    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    }

    fn json(&self, args: &[&str]) -> Option<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let (ok, text) = self.kubectl(&all);
        ok.then(|| serde_json::from_str(&text).unwrap())
    }

    fn app(&self, name: &str) -> Value {
        self.json(&["get", "applications", "-n", "gitplane", name])
            .unwrap_or(Value::Null)
    }

    fn gitplane_app(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_gitplane"))
            .arg("app")
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    }

    fn post(&self, path: &str, body: &str) -> String {
        let mut stream = std::net::TcpStream::connect(&self.http).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    fn webhook(&self, repo: &Path) {
        let body = format!("{{\"repoURL\": \"file://{}\"}}", repo.display());
        let response = self.post("/api/webhook", &body);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Up {
    /// Waits until `name` is Synced and Healthy; on timeout, fails with its
    /// status (what it waited for, its conditions).
    fn wait_converged(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let app = self.app(name);
            if converged(&app) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {name} to converge: {:#}",
                app["status"]
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn converged(app: &Value) -> bool {
    app["status"]["sync"]["status"] == "Synced" && app["status"]["health"]["status"] == "Healthy"
}

#[test]
fn up_converges_heals_prunes_rolls_out_and_rolls_back() {
    let repo_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let repo = repo_dir.path();
    fixture(repo);
    let up = start_up(repo, data.path());

    // The app of apps converges, plain and Kustomize children included.
    wait_for("every app synced and healthy", || {
        ["root", "web", "kapp"]
            .iter()
            .all(|a| converged(&up.app(a)))
    });
    assert!(
        up.json(&["get", "configmap", "-n", "kapp", "k-settings"])
            .is_some()
    );
    let first = common::git(repo, &["rev-parse", "HEAD"]);
    assert_eq!(up.app("web")["status"]["sync"]["revision"], first.as_str());

    // Drift is healed.
    let (ok, text) = up.kubectl(&["scale", "deployment/web", "-n", "web", "--replicas=5"]);
    assert!(ok, "{text}");
    wait_for("replicas back to 1", || {
        up.json(&["get", "deployment", "web", "-n", "web"])
            .is_some_and(|d| d["spec"]["replicas"] == 1)
    });

    // A file removed from Git is pruned; an unrelated object survives; the
    // new commit is what the status reports.
    let (ok, text) = up.kubectl(&["create", "configmap", "unrelated", "-n", "web"]);
    assert!(ok, "{text}");
    std::fs::remove_file(repo.join("apps/web/config.yaml")).unwrap();
    let second = commit(repo, "drop the extra config");
    up.webhook(repo);
    wait_for("web-extra pruned", || {
        up.json(&["get", "configmap", "web-extra", "-n", "web"])
            .is_none()
    });
    assert!(
        up.json(&["get", "configmap", "unrelated", "-n", "web"])
            .is_some()
    );
    wait_for("the new revision reported", || {
        let app = up.app("web");
        app["status"]["sync"]["revision"] == second.as_str() && converged(&app)
    });

    // Invalid YAML: a ComparisonError naming the file; nothing touched.
    write(
        repo,
        "apps/web/broken.yaml",
        "kind: ConfigMap\nmetadata: {name: [unclosed\n",
    );
    commit(repo, "broken");
    up.webhook(repo);
    wait_for("a ComparisonError naming the file", || {
        let app = up.app("web");
        app["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| {
                c["type"] == "ComparisonError"
                    && c["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("broken.yaml"))
            })
        })
    });
    assert!(
        up.json(&["get", "deployment", "web", "-n", "web"])
            .is_some()
    );
    std::fs::remove_file(repo.join("apps/web/broken.yaml")).unwrap();
    let fixed = commit(repo, "fixed");
    up.webhook(repo);
    wait_for("recovered", || {
        let app = up.app("web");
        app["status"]["sync"]["revision"] == fixed.as_str()
            && converged(&app)
            && app["status"]["conditions"]
                .as_array()
                .is_none_or(Vec::is_empty)
    });

    // A project that allows no cluster-scoped kinds refuses a ClusterRole.
    let project = "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: restricted\n  namespace: gitplane\nspec:\n  sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n";
    write(repo, "bootstrap/project.yaml", project);
    write(
        repo,
        "bootstrap/greedy.yaml",
        &child_app("greedy", "apps/greedy", "restricted", repo),
    );
    write(
        repo,
        "apps/greedy/role.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: greedy\nrules: []\n",
    );
    commit(repo, "a greedy app");
    up.webhook(repo);
    wait_for("the ClusterRole refused", || {
        up.app("greedy")["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("ClusterRole") && m.contains("not permitted"))
                })
            })
    });
    assert!(up.json(&["get", "clusterrole", "greedy"]).is_none());

    // `app diff`: nothing differs now; a commit not yet synced (no webhook,
    // the interval is an hour) shows up as a diff, exit 1.
    let (ok, text) = up.gitplane_app(&["diff", "web"]);
    assert!(ok, "{text}");
    write(
        repo,
        "apps/web/deployment.yaml",
        &DEPLOYMENT.replace("nginx:1.27", "nginx:1.28"),
    );
    commit(repo, "a new image, not announced");
    let (ok, text) = up.gitplane_app(&["diff", "web"]);
    assert!(
        !ok && text.contains("nginx:1.28") && text.contains("nginx:1.27"),
        "{text}"
    );

    // History and rollback: `web` back to the first revision. Its parent
    // (root) heals drift, so the CLI warns that root will restore web's spec.
    let (ok, history) = up.gitplane_app(&["history", "web", "-o", "json"]);
    assert!(ok, "{history}");
    let history: Value = serde_json::from_str(&history).unwrap();
    let entry = history
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["revision"] == first.as_str())
        .expect("the first sync is in the history")
        .clone();
    let id = entry["id"].to_string();
    let newest = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["id"].as_i64())
        .max()
        .unwrap();
    let (ok, text) = up.gitplane_app(&["rollback", "web", &id]);
    assert!(ok, "{text}");
    assert!(text.contains("automated sync turned off"), "{text}");
    assert!(text.contains("managed by application root"), "{text}");
    // The rollback is the next history entry (root may heal web's spec and
    // sync it forward again right after, as the CLI warned).
    let web = up.app("web");
    let rolled_back = web["status"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"].as_i64() == Some(newest + 1))
        .cloned()
        .expect("the rollback is in the history");
    assert_eq!(rolled_back["revision"], first.as_str());

    // As in Argo CD, root's sync (one wave of plain resources) succeeded once
    // applied; root's health is its children's, so the greedy app makes it
    // Degraded. Rolling root back to the first revision prunes the greedy app
    // and its project, and turns root's automated sync off.
    wait_for("root degraded by the greedy app", || {
        let root = up.app("root");
        root["status"]["operationState"]["phase"] == "Succeeded"
            && root["status"]["health"]["status"] == "Degraded"
            && root["status"]["health"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("greedy"))
    });
    let (ok, text) = up.gitplane_app(&["history", "root", "-o", "json"]);
    assert!(ok, "{text}");
    let history: Value = serde_json::from_str(&text).unwrap();
    let id = history
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["revision"] == first.as_str())
        .expect("root's first sync is in its history")["id"]
        .to_string();
    let (ok, text) = up.gitplane_app(&["rollback", "root", &id]);
    assert!(ok, "{text}");
    let root = up.app("root");
    assert!(root["spec"]["syncPolicy"].get("automated").is_none());
    assert!(up.app("greedy").is_null(), "pruned by the rollback");
    assert!(
        up.json(&["get", "appproject", "restricted", "-n", "gitplane"])
            .is_none()
    );

    // Metrics and the JSON API.
    let mut stream = std::net::TcpStream::connect(&up.http).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut metrics = String::new();
    stream.read_to_string(&mut metrics).unwrap();
    assert!(
        metrics.contains("gitplane_apps{sync_status=\"Synced\""),
        "{metrics}"
    );
    assert!(metrics.contains("gitplane_reconcile_duration_seconds_count"));
    assert!(metrics.contains("verb=\"patch\",code=\"2xx\""), "{metrics}");
    let refused = up.post("/api/webhook", "{\"not\": \"a push\"}");
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
}

#[test]
fn a_restart_mid_sync_resumes_without_running_the_hook_again() {
    let repo_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let repo = repo_dir.path();
    web_app(repo);
    write(
        repo,
        "apps/web/migrate.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec:\n  template:\n    metadata:\n      annotations: {gitplane.dev/simulate-duration: '4'}\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n",
    );
    commit(repo, "with a slow PreSync hook");
    let mut up = start_up(repo, data.path());
    wait_for("the hook running", || {
        up.json(&["get", "job", "migrate", "-n", "web"]).is_some()
    });
    let uid = up.json(&["get", "job", "migrate", "-n", "web"]).unwrap()["metadata"]["uid"].clone();
    assert_eq!(
        up.app("web")["status"]["operationState"]["phase"],
        "Running"
    );
    // SIGKILL: no chance to clean up; the embedded API server dies with it.
    up.child.kill().unwrap();
    up.child.wait().unwrap();

    let up = start_up(repo, data.path());
    wait_for("web synced and healthy after the restart", || {
        converged(&up.app("web"))
    });
    let job = up.json(&["get", "job", "migrate", "-n", "web"]).unwrap();
    assert_eq!(
        job["metadata"]["uid"], uid,
        "the running hook was adopted, not run again"
    );
    assert!(
        up.json(&["get", "deployment", "web", "-n", "web"])
            .is_some()
    );
    assert_eq!(
        up.app("web")["status"]["operationState"]["phase"],
        "Succeeded"
    );
}

#[test]
fn apps_sync_to_clusters_from_secrets_and_refuse_exec_plugins() {
    let repo_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let remote_data = tempfile::tempdir().unwrap();
    let remote = common::start_apiserver(remote_data.path(), true);
    let remote_kubeconfig = remote_data.path().join("kubeconfig");
    let raw = Command::new("kubectl")
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(&remote_kubeconfig)
        .output()
        .unwrap();
    let config: Value = serde_json::from_slice(&raw.stdout).unwrap();
    let server = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string();
    let ca = config["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    let token = config["users"][0]["user"]["token"].as_str().unwrap();
    assert!(server.contains(&remote.address), "{server}");

    let repo = repo_dir.path();
    common::git(repo, &["init", "-q", "-b", "main"]);
    for (name, destination) in [("far", server.as_str()), ("shady", "https://shady.example")] {
        let app = child_app(name, "apps/web", "default", repo)
            .replace("https://kubernetes.default.svc", destination);
        write(repo, &format!("bootstrap/{name}.yaml"), &app);
    }
    write(repo, "apps/web/deployment.yaml", DEPLOYMENT);
    // A symlink that leaves the repository: refused by name, nothing read.
    std::os::unix::fs::symlink("/etc/passwd", repo.join("apps/escape.yaml")).unwrap();
    write(
        repo,
        "bootstrap/escape.yaml",
        &child_app("escape", "apps/escape.yaml", "default", repo),
    );
    commit(repo, "apps on other clusters");
    let up = start_up(repo, data.path());

    let secret = |name: &str, server: &str, config: &Value| {
        let (ok, text) = up.kubectl(&[
            "create",
            "secret",
            "generic",
            name,
            "-n",
            "gitplane",
            &format!("--from-literal=name={name}"),
            &format!("--from-literal=server={server}"),
            &format!("--from-literal=config={config}"),
        ]);
        assert!(ok, "{text}");
        let (ok, text) = up.kubectl(&[
            "label",
            "secret",
            name,
            "-n",
            "gitplane",
            "argocd.argoproj.io/secret-type=cluster",
        ]);
        assert!(ok, "{text}");
    };
    secret(
        "far",
        &server,
        &serde_json::json!({"bearerToken": token, "tlsClientConfig": {"caData": ca}}),
    );
    secret(
        "shady",
        "https://shady.example",
        &serde_json::json!({"execProviderConfig": {"command": "sh", "args": ["-c", "touch /tmp/pwned"]}}),
    );
    for app in ["far", "shady"] {
        let (ok, text) = up.gitplane_app(&["refresh", app]);
        assert!(ok, "{text}");
    }

    up.wait_converged("far");
    let (ok, text) = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&remote_kubeconfig)
        .args(["get", "deployment", "web", "-n", "far"])
        .output()
        .map(|o| {
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert!(ok, "{text}");
    assert!(
        up.json(&["get", "namespace", "far"]).is_none(),
        "not on the control cluster"
    );
    let condition_of = |app: &str, needle: &str| {
        up.app(app)["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["message"].as_str().is_some_and(|m| m.contains(needle)))
            })
    };
    wait_for("the exec plugin refused", || {
        condition_of("shady", "execProviderConfig")
    });
    assert!(!Path::new("/tmp/pwned").exists());
    wait_for("the escaping symlink refused", || {
        condition_of("escape", "escape.yaml")
    });

    // `app sync` asks for an operation and reports its result.
    let (ok, text) = up.gitplane_app(&["sync", "far"]);
    assert!(ok, "{text}");
    assert!(text.contains("Succeeded"), "{text}");
}

const POLICIES: &str = r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: disallow-latest-tag
spec:
  rules:
  - name: validate-image-tag
    match:
      any:
      - resources: {kinds: [Pod]}
    validate:
      failureAction: Enforce
      message: "the latest tag is not allowed"
      pattern:
        spec:
          containers:
          - image: "!*:latest"
  - name: team-label
    match:
      any:
      - resources: {kinds: [Deployment]}
    validate:
      failureAction: Audit
      message: "a team label is expected"
      pattern:
        metadata:
          labels:
            team: "?*"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: disallow-nodeport
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [services]}
  validations:
  - expression: "object.spec.type != 'NodePort'"
    message: "NodePort services are not allowed"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: disallow-nodeport
spec:
  policyName: disallow-nodeport
  validationActions: [Deny]
"#;

/// Policies in the repository (`platform/policies`) gate every sync: an
/// audit result becomes a PolicyReport beside its object; a commit with
/// enforced violations is not applied at all (the app says why and stays
/// OutOfSync); the commit that fixes them syncs.
#[test]
fn policies_in_the_repository_block_a_violating_sync() {
    let repo_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let repo = repo_dir.path();
    fixture(repo);
    write(repo, "platform/policies/policies.yaml", POLICIES);
    commit(repo, "policies");
    let up = start_up(repo, data.path());
    up.wait_converged("web");
    wait_for("the audit result reported", || {
        up.json(&["get", "policyreports", "-n", "web"])
            .is_some_and(|list| {
                list["items"].as_array().is_some_and(|items| {
                    items.iter().any(|r| {
                        r["scope"]["kind"] == "Deployment"
                            && r["summary"]["fail"] == 1
                            && r["results"].as_array().is_some_and(|results| {
                                results.iter().any(|x| {
                                    x["rule"] == "team-label"
                                        && x["result"] == "fail"
                                        && x["message"]
                                            .as_str()
                                            .is_some_and(|m| m.contains("a team label is expected"))
                                })
                            })
                    })
                })
            })
    });

    // A commit that violates two enforced policies: nothing of it is applied.
    write(
        repo,
        "apps/web/deployment.yaml",
        &DEPLOYMENT.replace("nginx:1.27", "nginx:latest"),
    );
    write(
        repo,
        "apps/web/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    );
    write(
        repo,
        "apps/web/new.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-new\ndata: {c: '3'}\n",
    );
    let bad = commit(repo, "violations");
    up.webhook(repo);
    wait_for("the sync blocked", || {
        let app = up.app("web");
        app["status"]["sync"]["revision"] == bad.as_str()
            && app["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["type"] == "SyncError"
                        && c["message"].as_str().is_some_and(|m| {
                            m.contains("sync blocked by policy (platform/policies): 2 enforced violation(s), nothing applied")
                                && m.contains("Deployment web/web: disallow-latest-tag/autogen-validate-image-tag")
                                && m.contains("Service web/web: disallow-nodeport/disallow-nodeport: NodePort services are not allowed")
                        })
                })
            })
    });
    let app = up.app("web");
    assert_eq!(app["status"]["sync"]["status"], "OutOfSync", "{app}");
    assert_eq!(app["status"]["operationState"]["phase"], "Failed", "{app}");
    let live = up.json(&["get", "deployment", "web", "-n", "web"]).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert!(
        up.json(&["get", "configmap", "web-new", "-n", "web"])
            .is_none()
    );
    assert!(up.json(&["get", "service", "web", "-n", "web"]).is_none());

    // Fixed: the same objects without the violations sync.
    write(repo, "apps/web/deployment.yaml", DEPLOYMENT);
    std::fs::remove_file(repo.join("apps/web/service.yaml")).unwrap();
    commit(repo, "fixed");
    up.webhook(repo);
    wait_for("web converged again", || converged(&up.app("web")));
    assert!(
        up.json(&["get", "configmap", "web-new", "-n", "web"])
            .is_some()
    );
}

/// An app whose kind is not served yet (its CRD comes from elsewhere, here
/// kubectl) converges once it is, without a Git change, a refresh or its
/// hour-long interval.
#[test]
fn an_app_waiting_for_its_kind_converges_once_the_crd_is_served() {
    let repo_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let repo = repo_dir.path();
    common::git(repo, &["init", "-q", "-b", "main"]);
    write(
        repo,
        "bootstrap/widgets.yaml",
        &child_app("widgets", "apps/widgets", "default", repo),
    );
    write(
        repo,
        "apps/widgets/widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec: {size: 3}\n",
    );
    commit(repo, "a widget");
    let up = start_up(repo, data.path());
    wait_for("the widget app to report its kind is not served", || {
        up.app("widgets")["status"]["conditions"]
            .to_string()
            .contains("is not served")
    });
    let crd = data.path().join("crd.yaml");
    std::fs::write(
        &crd,
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n",
    )
    .unwrap();
    let (ok, text) = up.kubectl(&["apply", "-f", crd.to_str().unwrap()]);
    assert!(ok, "{text}");
    up.wait_converged("widgets");
    assert!(up.json(&["get", "widget", "w", "-n", "widgets"]).is_some());
}

/// `gitplane app actions`: the built-in actions of a Deployment, listed and
/// run against the live object (a restart survives self-heal, as in Argo CD).
#[test]
fn actions_restart_and_scale_a_deployment() {
    let repo_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let repo = repo_dir.path();
    web_app(repo);
    commit(repo, "web");
    let up = start_up(repo, data.path());
    up.wait_converged("web");
    let target = ["--kind", "Deployment", "--resource-name", "web"];
    let (ok, text) =
        up.gitplane_app(&[&["actions", "list", "web"][..], &target, &["-o", "json"]].concat());
    assert!(ok, "{text}");
    let offered: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = offered
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["pause", "restart", "resume", "scale"]);

    let (ok, text) =
        up.gitplane_app(&[&["actions", "run", "web", "restart"][..], &target].concat());
    assert!(ok, "{text}");
    let (ok, text) = up.gitplane_app(
        &[
            &["actions", "run", "web", "scale"][..],
            &target,
            &["--param", "replicas=oops"],
        ]
        .concat(),
    );
    assert!(
        !ok && text.contains("invalid number of replicas: oops"),
        "{text}"
    );
    let deployment = up.json(&["get", "deployment", "web", "-n", "web"]).unwrap();
    assert!(
        deployment["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{deployment}"
    );
    let (ok, text) =
        up.gitplane_app(&[&["actions", "run", "web", "explode"][..], &target].concat());
    assert!(!ok && text.contains("no action \"explode\""), "{text}");
}
