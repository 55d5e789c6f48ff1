#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports

//! `gitplane health test` as users run it.

use std::process::Command;

fn gitplane(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn passing_suite_exits_zero() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../health/tests/customizations"
    );
    let (code, out) = gitplane(&["health", "test", dir]);
    assert_eq!((code, out.as_str()), (0, "6 passed, 0 failed\n"));
}

#[test]
fn failing_cases_are_listed_and_exit_one() {
    let dir = tempfile::tempdir().unwrap();
    let kind = dir.path().join("example.com/Thing");
    std::fs::create_dir_all(&kind).unwrap();
    std::fs::write(
        kind.join("health.lua"),
        "return {status = 'Healthy', message = 'fine'}",
    )
    .unwrap();
    std::fs::write(kind.join("in.yaml"), "kind: Thing\n").unwrap();
    std::fs::write(
        kind.join("health_test.yaml"),
        "tests:\n- {healthStatus: {status: Healthy, message: fine}, inputPath: in.yaml}\n\
         - {healthStatus: {status: Degraded, message: broken}, inputPath: in.yaml}\n",
    )
    .unwrap();
    let (code, out) = gitplane(&["health", "test", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("FAIL ")
            && lines[0].contains("in.yaml: expected Degraded \"broken\", got Healthy \"fine\""),
        "{out}"
    );
    assert_eq!(lines[1], "1 passed, 1 failed");
}

#[test]
fn check_prints_each_objects_health_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop, generation: 1}\n\
         spec: {replicas: 1}\n\
         status: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
    )
    .unwrap();
    let (code, out) = gitplane(&["health", "check", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["kind"], "Deployment");
    assert_eq!(listed[0]["namespace"], "shop");
    assert_eq!(listed[0]["health"]["status"], "Healthy", "{out}");
    assert_eq!(listed[1]["name"], "settings");
    assert!(
        listed[1]["health"].is_null(),
        "no health check for a ConfigMap"
    );
    let (code, table) = gitplane(&["health", "check", file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        table.contains("Deployment/shop/web") && table.contains("Healthy"),
        "{table}"
    );
}

#[test]
fn check_reads_health_scripts_from_an_argocd_cm_file() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("widget.yaml");
    std::fs::write(
        &objects,
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nstatus: {phase: Broken}\n",
    )
    .unwrap();
    let cm = dir.path().join("argocd-cm.yaml");
    std::fs::write(
        &cm,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm, namespace: argocd}\ndata:\n  \
         resource.customizations.health.example.com_Widget: |\n    \
         if obj.status.phase == 'Broken' then return {status = 'Degraded', message = 'broken'} end\n    \
         return {status = 'Healthy'}\n",
    )
    .unwrap();
    let (code, out) = gitplane(&[
        "health",
        "check",
        objects.to_str().unwrap(),
        "--argocd-cm",
        cm.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["health"]["status"], "Degraded", "{out}");
    assert_eq!(listed[0]["health"]["message"], "broken");
}
