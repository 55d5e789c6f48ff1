#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! `gitplane apply` and `gitplane diff` against `gitplane apiserver`: the
//! example overlay, hostile jq, a sync killed half-way, and injected 429/500s.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{gitplane, repo_root, start_apiserver};
use gitplane_cluster::{Cluster, ConnectOptions};
use gitplane_object::Gvk;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn apply_args<'a>(path: &'a str, kubeconfig: &'a str, app: &'a str) -> Vec<&'a str> {
    vec![
        "apply",
        path,
        "--app",
        app,
        "--namespace",
        "shop-prod",
        "--kubeconfig",
        kubeconfig,
        "--sync-option",
        "CreateNamespace=true",
    ]
}

#[test]
fn applies_and_diffs_the_example_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = start_apiserver(&data, true);
    let kubeconfig = data.join("kubeconfig");
    let kubeconfig = kubeconfig.to_str().unwrap();
    let overlay = repo_root().join("crates/cli/tests/fixtures/shop/overlays/prod");
    let overlay = overlay.to_str().unwrap();

    let out = gitplane(&apply_args(overlay, kubeconfig, "shop"));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("operation Succeeded"), "{stdout}");
    let deployment = stdout
        .lines()
        .find(|l| l.starts_with("Deployment"))
        .unwrap();
    assert!(
        deployment.contains("Synced") && deployment.contains("Healthy"),
        "{deployment}"
    );
    assert!(
        text(&out.stderr).contains("planned: 3 objects (3 changed)"),
        "{}",
        text(&out.stderr)
    );

    let diff = [
        "diff",
        overlay,
        "--app",
        "shop",
        "--namespace",
        "shop-prod",
        "--kubeconfig",
        kubeconfig,
    ];
    let out = gitplane(&diff);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // A changed copy differs, and says how.
    let copy = dir.path().join("platform");
    common::copy_dir(&repo_root().join("crates/cli/tests/fixtures/shop"), &copy);
    let patch = copy.join("overlays/prod/kustomization.yaml");
    let changed = std::fs::read_to_string(&patch)
        .unwrap()
        .replace("1.4.2", "1.4.3");
    std::fs::write(&patch, changed).unwrap();
    let changed_overlay = copy.join("overlays/prod");
    let mut diff = diff.to_vec();
    diff[1] = changed_overlay.to_str().unwrap();
    // Outside a Git repository, the root that reads stay in is given.
    diff.extend(["--root", copy.to_str().unwrap()]);
    let out = gitplane(&diff);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("-        image: ghcr.io/example/shop:1.4.2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+        image: ghcr.io/example/shop:1.4.3"),
        "{stdout}"
    );
}

#[test]
fn a_hostile_jq_expression_is_stopped_by_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = start_apiserver(&data, false);
    let kubeconfig = data.join("kubeconfig");
    let manifests = dir.path().join("app");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n",
    )
    .unwrap();
    let rules = dir.path().join("ignore.yaml");
    // CVE-2024-32476's shape: an expression that never stops producing.
    std::fs::write(
        &rules,
        "- kind: ConfigMap\n  jqPathExpressions: ['range(1e18) as $x | .data']\n",
    )
    .unwrap();
    let out = gitplane(&[
        "diff",
        manifests.to_str().unwrap(),
        "--app",
        "a",
        "--namespace",
        "default",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--ignore-differences",
        rules.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("budget"), "{stderr}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The uid of the Job, if it exists.
fn job_uid(cluster: &Cluster, runtime: &tokio::runtime::Runtime) -> Option<String> {
    let job = runtime
        .block_on(cluster.get(&Gvk::new("batch", "v1", "Job"), "shop-prod", "migrate"))
        .unwrap()?;
    job.str_at(&["metadata", "uid"]).map(str::to_string)
}

#[test]
fn a_sync_killed_half_way_resumes_without_running_its_hook_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = start_apiserver(&data, true);
    let kubeconfig = data.join("kubeconfig");
    let manifests = dir.path().join("app");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("all.yaml"),
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations: {argocd.argoproj.io/hook: PreSync}\n\
         spec:\n  template:\n    metadata: {annotations: {gitplane.dev/simulate-duration: '4'}}\n    spec: {restartPolicy: Never, containers: [{name: m, image: migrate}]}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
    )
    .unwrap();
    let (path, config) = (manifests.to_str().unwrap(), kubeconfig.to_str().unwrap());
    let mut first = Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args(apply_args(path, config, "shop"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = runtime();
    let cluster = runtime
        .block_on(Cluster::connect(&ConnectOptions::for_kubeconfig(
            &kubeconfig,
        )))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let uid = loop {
        if let Some(uid) = job_uid(&cluster, &runtime) {
            break uid;
        }
        assert!(Instant::now() < deadline, "the hook never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The hook runs for 4 seconds: kill the sync while it waits.
    first.kill().unwrap();
    first.wait().unwrap();

    let out = gitplane(&apply_args(path, config, "shop"));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let hook = stdout.lines().find(|l| l.starts_with("Job")).unwrap();
    assert!(hook.contains("HookSucceeded"), "{stdout}");
    assert_eq!(
        job_uid(&cluster, &runtime),
        Some(uid),
        "the hook was adopted, not run again"
    );
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_apiserver(&data, true);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counts = Arc::new(common::proxy::Counts::default());
    let upstream = server.address.parse().unwrap();
    let proxy = runtime.block_on(common::proxy::start(&data, upstream, 4, counts.clone()));
    let kubeconfig = std::fs::read_to_string(data.join("kubeconfig"))
        .unwrap()
        .replace(&server.address, &proxy.to_string());
    let proxied = dir.path().join("proxied-kubeconfig");
    std::fs::write(&proxied, kubeconfig).unwrap();
    let overlay = repo_root().join("crates/cli/tests/fixtures/shop/overlays/prod");
    let out = gitplane(&apply_args(
        overlay.to_str().unwrap(),
        proxied.to_str().unwrap(),
        "shop",
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        counts.injected.load(Ordering::SeqCst) >= 3,
        "errors were injected"
    );
    assert!(counts.forwarded.load(Ordering::SeqCst) > 0);
}
