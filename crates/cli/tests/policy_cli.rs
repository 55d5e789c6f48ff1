#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! `gitplane policy check`: the golden paths pass Pod Security "restricted";
//! a workload that does not fails with PSA's messages and exit 3; the
//! tenants' namespace labels are honoured; JSON output.

mod common;

use common::{gitplane, repo_root};

fn path(relative: &str) -> String {
    repo_root().join(relative).to_str().unwrap().to_string()
}

#[test]
fn the_golden_paths_pass_restricted() {
    let graphs = path("examples/platform/platform/graphs");
    let mut args = vec![
        "policy",
        "check",
        "--pss",
        "restricted",
        "--graphs",
        &graphs,
    ];
    let paths: Vec<String> = [
        "examples/platform/apps/shop/overlays/dev",
        "examples/platform/apps/shop/overlays/staging",
        "examples/platform/apps/shop/overlays/prod",
        "examples/platform/apps/catalog/overlays/prod",
        "examples/platform/platform/tenants",
        "examples/platform/platform/tools",
    ]
    .iter()
    .map(|p| path(p))
    .collect();
    args.extend(paths.iter().map(String::as_str));
    let out = gitplane(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("0 failing a Pod Security Standard"),
        "{stdout}"
    );
}

#[test]
fn a_workload_that_fails_is_reported_and_exits_3() {
    let ingress = path("examples/platform/infrastructure/ingress-nginx");
    let out = gitplane(&["policy", "check", "--pss", "restricted:v1.30", &ingress]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Deployment ingress-nginx/ingress-nginx-controller"),
        "{stdout}"
    );
    assert!(
        stdout.contains("violates PodSecurity \"restricted:v1.30\": allowPrivilegeEscalation != false (container \"controller\" must set securityContext.allowPrivilegeEscalation=false)"),
        "{stdout}"
    );
    // Baseline allows it.
    let out = gitplane(&["policy", "check", "--pss", "baseline", &ingress]);
    assert_eq!(out.status.code(), Some(0));
    // A level that does not exist is a usage error.
    let out = gitplane(&["policy", "check", "--pss", "strict", &ingress]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn namespace_labels_are_honoured_and_json_lists_findings() {
    let graphs = path("examples/platform/platform/graphs");
    let tenants = path("examples/platform/platform/tenants");
    let pod = path("crates/cli/tests/fixtures/policy/privileged-pod.yaml");
    let out = gitplane(&[
        "policy", "check", "--graphs", &graphs, &tenants, &pod, "-o", "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = findings.as_array().unwrap();
    let enforce = findings
        .iter()
        .find(|f| f["mode"] == "Enforce")
        .expect("an enforced finding");
    assert_eq!(enforce["object"], "Pod shop-dev/debug");
    assert_eq!(enforce["source"], "namespace shop-dev");
    assert_eq!(enforce["standard"], "restricted:latest");
    let checks: Vec<&str> = enforce["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    for check in [
        "hostNamespaces",
        "privileged",
        "allowPrivilegeEscalation",
        "runAsUser",
    ] {
        assert!(checks.contains(&check), "{checks:?}");
    }
    assert!(
        findings
            .iter()
            .any(|f| f["mode"] == "Warn" || f["mode"] == "Audit")
    );
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The embedded API server admits pods as a cluster does: a privileged pod
/// in a namespace labelled `enforce: restricted` is refused with PSA's
/// message; a Deployment whose template fails is created with a warning.
#[test]
fn the_embedded_server_enforces_namespace_pod_security_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = common::start_apiserver(&data, true);
    let kc = data.join("kubeconfig");
    assert!(kubectl(&kc, &["create", "namespace", "team"], None).0);
    let (ok, out) = kubectl(
        &kc,
        &[
            "label",
            "namespace",
            "team",
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    );
    assert!(ok, "{out}");
    let pod = std::fs::read_to_string(
        repo_root().join("crates/cli/tests/fixtures/policy/privileged-pod.yaml"),
    )
    .unwrap()
    .replace("shop-dev", "team");
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&pod));
    assert!(!ok, "{out}");
    assert!(
        out.contains("pods \"debug\" is forbidden: violates PodSecurity \"restricted:latest\": host namespaces (hostNetwork=true), privileged (container \"shell\" must not set securityContext.privileged=true)"),
        "{out}"
    );
    let (ok, out) = kubectl(
        &kc,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "-n",
            "team",
        ],
        None,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Warning: would violate PodSecurity \"restricted:latest\""),
        "{out}"
    );
    // A namespace without labels admits the same pod.
    let elsewhere = pod.replace("namespace: team", "namespace: default");
    let (ok, out) = kubectl(&kc, &["apply", "-f", "-"], Some(&elsewhere));
    assert!(ok, "{out}");
}
