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
