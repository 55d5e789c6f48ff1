//! `gitplane render` as users run it: the real binary, its output and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: panics are its failure reports

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn gitplane(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitplane"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("gitplane runs")
}

#[test]
fn renders_a_kustomize_overlay_like_kubectl_kustomize() {
    let root = common::repo_root();
    let out = gitplane(
        &["render", "crates/cli/tests/fixtures/shop/overlays/prod"],
        &root,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("image: ghcr.io/example/shop:1.4.2"), "{text}");
    assert!(text.contains("namespace: shop-prod"));
    assert_eq!(text.matches("\n---\n").count(), 2, "three objects");
}

#[test]
fn json_output_is_a_list() {
    let root = common::repo_root();
    let out = gitplane(
        &[
            "render",
            "-o",
            "json",
            "crates/cli/tests/fixtures/shop/overlays/dev",
        ],
        &root,
    );
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources: [missing.yaml]\n",
    )
    .unwrap();
    let out = gitplane(&["render", "."], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: kustomization.yaml: resource \"missing.yaml\" not found"
    );
}

#[test]
fn yaml_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n",
    )
    .unwrap();
    let out = gitplane(&["render", "."], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: app.yaml:"), "{stderr}");
}

#[test]
fn directory_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    for (path, name) in [("a.yaml", "a"), ("sub/b.yaml", "b"), ("sub/c.yaml", "c")] {
        std::fs::write(
            dir.path().join(path),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"),
        )
        .unwrap();
    }
    let out = gitplane(
        &["render", ".", "--recurse", "--exclude", "sub/c.yaml"],
        dir.path(),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("name: a") && text.contains("name: b") && !text.contains("name: c"),
        "{text}"
    );
}

#[test]
fn helm_template_value_flags_and_show_only_match_helm() {
    // From the chart directory, helm 4.1.4 printed expected/cli-flags.yaml
    // for `helm template` with these arguments (helm_oracle.rs checks them
    // against helm itself).
    let root = common::repo_root();
    let chart = root.join("crates/render/tests/helm/charts/web");
    let args = [&["helm", "template"][..], common::HELM_FLAG_ARGS].concat();
    let out = gitplane(&args, &chart);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected =
        std::fs::read_to_string(root.join("crates/render/tests/helm/expected/cli-flags.yaml"))
            .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    // A template that does not exist, and JSON that is not, are errors.
    let missing = gitplane(
        &["helm", "template", "rel", ".", "-s", "templates/nope.yaml"],
        &chart,
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("could not find template templates/nope.yaml in chart")
    );
    let bad = gitplane(
        &["helm", "template", "rel", ".", "--set-json", "a={"],
        &chart,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("the value is not JSON"));
}

#[test]
fn helm_template_prints_what_helm_prints() {
    let root = common::repo_root();
    let chart = "crates/render/tests/helm/charts/web";
    let out = gitplane(
        &[
            "helm",
            "template",
            "rel",
            chart,
            "-f",
            &format!("{chart}/extra.yaml"),
            "--namespace",
            "team-a",
        ],
        &root,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected =
        std::fs::read_to_string(root.join("crates/render/tests/helm/expected/values-file.yaml"))
            .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    // A values file outside the root is refused, naming the file.
    let outside = gitplane(
        &[
            "helm",
            "template",
            "rel",
            chart,
            "--root",
            chart,
            "-f",
            "Cargo.toml",
        ],
        &root,
    );
    assert_eq!(outside.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&outside.stderr).contains("is outside the root"));
    // `render` detects the chart and prints its objects.
    let rendered = gitplane(&["render", chart], &root);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert!(String::from_utf8_lossy(&rendered.stdout).contains("name: release-name-web"));
}
