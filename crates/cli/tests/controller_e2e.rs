//! The controller never stalls, end to end with the real binary: a platform
//! of many apps (autoscalers, disruption budgets, shared namespaces, an app
//! of apps) converges; apps that never get healthy delay only themselves
//! and fail at their wave timeout while every app's status keeps moving;
//! and `gitplane up --kubeconfig` replicas against one separately started
//! API server elect one leader, the standby taking over after a SIGKILL
//! without running any operation twice.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Commits the app `web` (a ConfigMap `settings`, and its Application under
/// `bootstrap/`), with whatever else was written to the repository.
fn commit_web_app(repo: &Path, message: &str) {
    write(
        repo,
        "apps/web/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {a: '1'}\n",
    );
    write(repo, "bootstrap/web.yaml", &application(repo, "web"));
    common::git(repo, &["add", "-A"]);
    common::git(repo, &["commit", "-qm", message]);
}

fn write(repo: &Path, path: &str, text: &str) {
    let path = repo.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A running `gitplane up`, killed when dropped; what it printed is kept.
struct Up {
    child: Child,
    kubeconfig: PathBuf,
    printed: Arc<Mutex<Vec<String>>>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_up(repo: &Path, data: &Path, extra: &[&str]) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args(["up", "--api", "127.0.0.1:0", "--ui", "127.0.0.1:0"])
        .args(["--reconcile-interval", "1h", "--data-dir"])
        .arg(data)
        .arg("--repo")
        .arg(repo)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed = Arc::new(Mutex::new(Vec::new()));
    let sink = printed.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let kubeconfig = extra
        .iter()
        .position(|a| *a == "--kubeconfig")
        .map(|i| PathBuf::from(extra[i + 1]))
        .unwrap_or_else(|| data.join("kubeconfig"));
    Up {
        child,
        kubeconfig,
        printed,
    }
}

impl Up {
    fn printed(&self, needle: &str) -> bool {
        self.printed
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }
}

fn json(kubeconfig: &Path, args: &[&str]) -> Option<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (ok, text) = common::kubectl(kubeconfig, &all, None);
    ok.then(|| serde_json::from_str(&text).unwrap())
}

fn app(kubeconfig: &Path, name: &str) -> Value {
    json(kubeconfig, &["get", "applications", "-n", "gitplane", name]).unwrap_or(Value::Null)
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_platform_of_apps_with_autoscalers_and_shared_namespaces_converges() {
    // The repository shape of the bench (`gitplane bench generate`), at a
    // size CI affords: 30 apps, three team namespaces, one app of apps.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let generated = common::gitplane(&[
        "bench",
        "generate",
        repo.to_str().unwrap(),
        "--apps",
        "30",
        "--shape",
        "platform",
    ]);
    assert!(generated.status.success(), "{generated:?}");
    let data = dir.path().join("data");
    let output = Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args([
            "up",
            "--once",
            "--api",
            "127.0.0.1:0",
            "--ui",
            "127.0.0.1:0",
        ])
        .args(["--timeout", "5m", "--data-dir"])
        .arg(&data)
        .arg("--repo")
        .arg(&repo)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains("31 of 31 applications Synced and Healthy"),
        "{printed}"
    );
    // More than 30 apps: the view prints counts, not a line per app.
    assert!(
        printed.contains("31 apps: 31 Synced; 31 Healthy"),
        "{printed}"
    );
    // The state `up` left is served again (without the simulator, so it
    // stays as it was) and inspected with kubectl.
    let _server = common::start_apiserver(&data, false);
    let kubeconfig = data.join("kubeconfig");
    let hpa = json(
        &kubeconfig,
        &["get", "hpa", "app-0012-web", "-n", "team-01"],
    )
    .unwrap();
    assert_eq!(hpa["status"]["desiredReplicas"], 2);
    let pdb = json(
        &kubeconfig,
        &["get", "pdb", "app-0029-web", "-n", "team-02"],
    )
    .unwrap();
    assert_eq!(pdb["status"]["currentHealthy"], 2);
}

/// An auto-syncing Application `name` of `apps/<name>` in namespace `name`.
fn application(repo: &Path, name: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  project: default\n  source:\n    repoURL: {}\n    path: apps/{name}\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {name}\n  syncPolicy:\n    automated: {{prune: true, selfHeal: true}}\n    syncOptions: [CreateNamespace=true]\n",
        repo.display()
    )
}

fn multi_wave_app(repo: &Path, name: &str, fault: Option<&str>) {
    let annotations = match fault {
        Some(fault) => format!("simulate.gitplane.dev/pods: {fault}"),
        None => String::new(),
    };
    write(
        repo,
        &format!("apps/{name}/deployment.yaml"),
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations: {{{annotations}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: 'nginx:1.27'}}]}}\n"
        ),
    );
    write(
        repo,
        &format!("apps/{name}/after.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n  annotations: {argocd.argoproj.io/sync-wave: '1'}\n",
    );
    write(
        repo,
        &format!("bootstrap/{name}.yaml"),
        &application(repo, name),
    );
}

#[test]
fn apps_that_never_get_healthy_delay_only_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    common::git(&repo, &["init", "-q", "-b", "main"]);
    let stuck = ["stuck-1", "stuck-2", "stuck-3", "stuck-4"];
    for name in stuck {
        multi_wave_app(&repo, name, Some("never-ready"));
    }
    multi_wave_app(&repo, "fine", None);
    common::git(&repo, &["add", "-A"]);
    common::git(&repo, &["commit", "-qm", "four stuck apps and a fine one"]);
    let data = dir.path().join("data");
    let up = start_up(
        &repo,
        &data,
        &["--operation-processors", "2", "--wave-timeout", "20s"],
    );
    let kubeconfig = up.kubeconfig.clone();

    // The fine app converges while four operations wait, with two
    // operation processors: no waiting operation holds one.
    wait_for("the fine app converged", Duration::from_secs(60), || {
        let fine = app(&kubeconfig, "fine");
        fine["status"]["sync"]["status"] == "Synced"
            && fine["status"]["health"]["status"] == "Healthy"
            && fine["status"]["operationState"]["phase"] == "Succeeded"
    });
    for name in stuck {
        let stuck = app(&kubeconfig, name);
        let state = &stuck["status"]["operationState"];
        assert_eq!(state["phase"], "Running", "{name}: {state}");
        assert_eq!(
            state["message"], "waiting for healthy state of apps/Deployment/web",
            "{name}"
        );
    }
    // Status keeps moving while the operations wait: each stuck app shows
    // its Deployment Progressing, and the next wave's ConfigMap Missing.
    let health_of = |app: &Value, kind: &str| {
        app["status"]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["kind"] == kind))
            .map(|r| r["health"]["status"].clone())
    };
    wait_for("the stuck apps' status", Duration::from_secs(30), || {
        stuck.iter().all(|name| {
            let stuck = app(&kubeconfig, name);
            health_of(&stuck, "Deployment") == Some("Progressing".into())
                && health_of(&stuck, "ConfigMap") == Some("Missing".into())
                && stuck["status"]["health"]["status"] == "Missing"
                && stuck["status"]["operationState"]["phase"] == "Running"
        })
    });
    // A change to a stuck app's object shows in its status at once, though
    // its operation still waits.
    let (ok, text) = common::kubectl(
        &kubeconfig,
        &["label", "deployment", "web", "-n", "stuck-1", "drift=yes"],
        None,
    );
    assert!(ok, "{text}");
    wait_for("the drift reported", Duration::from_secs(30), || {
        app(&kubeconfig, "stuck-1")["status"]["sync"]["status"] == "OutOfSync"
    });
    assert_eq!(
        app(&kubeconfig, "stuck-1")["status"]["operationState"]["phase"],
        "Running"
    );

    // At the wave timeout each stuck operation fails, naming what it waited
    // for; their later waves never ran.
    wait_for("the stuck apps failed", Duration::from_secs(90), || {
        stuck
            .iter()
            .all(|name| app(&kubeconfig, name)["status"]["operationState"]["phase"] == "Failed")
    });
    for name in stuck {
        let message = app(&kubeconfig, name)["status"]["operationState"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains("apps/Deployment:")
                && message.contains("did not become healthy within 20s"),
            "{name}: {message}"
        );
        assert!(json(&kubeconfig, &["get", "configmap", "after", "-n", name]).is_none());
    }
    assert!(json(&kubeconfig, &["get", "configmap", "after", "-n", "fine"]).is_some());
}

#[test]
fn replicas_elect_one_leader_and_the_standby_takes_over_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_apiserver(&dir.path().join("cluster"), true);
    let _ = &server.address;
    let kubeconfig = dir.path().join("cluster/kubeconfig");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    common::git(&repo, &["init", "-q", "-b", "main"]);
    // A PreSync hook that runs for a while: the leader is killed during it.
    write(
        &repo,
        "apps/web/migrate.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n  annotations: {argocd.argoproj.io/hook: PreSync}\nspec:\n  template:\n    metadata:\n      annotations: {gitplane.dev/simulate-duration: '6'}\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n",
    );
    commit_web_app(&repo, "an app with a slow hook");
    let cluster = ["--kubeconfig", kubeconfig.to_str().unwrap()];
    let leader = start_up(
        &repo,
        &dir.path().join("one"),
        &[&cluster[..], &["--identity", "one"]].concat(),
    );
    wait_for("one leads", Duration::from_secs(60), || {
        leader.printed("leading: one holds lease gitplane/gitplane-controller")
    });
    let standby = start_up(
        &repo,
        &dir.path().join("two"),
        &[&cluster[..], &["--identity", "two"]].concat(),
    );
    wait_for("two stands by", Duration::from_secs(60), || {
        standby
            .printed("standing by: two waits for lease gitplane/gitplane-controller, held by one")
    });
    let jobs = |kubeconfig: &Path| {
        json(kubeconfig, &["get", "jobs", "-n", "web"])
            .map(|l| l["items"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    wait_for("the hook running", Duration::from_secs(60), || {
        !jobs(&kubeconfig).is_empty()
    });
    let hook = jobs(&kubeconfig)[0]["metadata"]["uid"].clone();
    assert_eq!(
        app(&kubeconfig, "web")["status"]["operationState"]["phase"],
        "Running"
    );

    let mut leader = leader;
    leader.child.kill().unwrap();
    leader.child.wait().unwrap();
    let killed = Instant::now();
    wait_for("two takes over", Duration::from_secs(30), || {
        standby.printed("leading: two holds lease gitplane/gitplane-controller")
    });
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "took over after {:?}",
        killed.elapsed()
    );
    wait_for("the operation finished", Duration::from_secs(60), || {
        app(&kubeconfig, "web")["status"]["operationState"]["phase"] == "Succeeded"
    });
    // The same hook run finished the operation: none was started twice.
    let all = jobs(&kubeconfig);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["metadata"]["uid"], hook);
    let history = app(&kubeconfig, "web")["status"]["history"].clone();
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    let lease = json(
        &kubeconfig,
        &["get", "lease", "gitplane-controller", "-n", "gitplane"],
    )
    .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "two");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[test]
fn health_customizations_come_from_the_control_namespaces_argocd_cm_and_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    let _server = common::start_apiserver(&dir.path().join("cluster"), true);
    let kubeconfig = dir.path().join("cluster/kubeconfig");
    let (ok, text) = common::kubectl(&kubeconfig, &["create", "namespace", "gitplane"], None);
    assert!(ok, "{text}");
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm, namespace: gitplane}\n\
        data:\n  resource.customizations.health.ConfigMap: |\n    \
        return {status = 'Degraded', message = 'judged by argocd-cm'}\n";
    let (ok, text) = common::kubectl(&kubeconfig, &["apply", "-f", "-"], Some(settings));
    assert!(ok, "{text}");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    common::git(&repo, &["init", "-q", "-b", "main"]);
    commit_web_app(&repo, "one config map");
    let up = start_up(
        &repo,
        &dir.path().join("up"),
        &["--kubeconfig", kubeconfig.to_str().unwrap()],
    );
    wait_for(
        "web judged by the argocd-cm script",
        Duration::from_secs(60),
        || {
            let web = app(&kubeconfig, "web");
            web["status"]["health"]["status"] == "Degraded"
                && web["status"]["health"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("judged by argocd-cm"))
        },
    );
    assert!(up.printed("Lua customizations from gitplane/argocd-cm"));
    // A change to argocd-cm is used at once, without a restart.
    let (ok, text) = common::kubectl(
        &kubeconfig,
        &[
            "patch",
            "configmap",
            "argocd-cm",
            "-n",
            "gitplane",
            "--type",
            "merge",
            "-p",
            r#"{"data": {"resource.customizations.health.ConfigMap": "return {status = 'Healthy', message = 'changed live'}"}}"#,
        ],
        None,
    );
    assert!(ok, "{text}");
    wait_for(
        "web judged by the changed script",
        Duration::from_secs(60),
        || {
            let web = app(&kubeconfig, "web");
            web["status"]["health"]["status"] == "Healthy"
        },
    );
}
